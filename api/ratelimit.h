/* api/ratelimit.h -- one token bucket per API key (api.rate_limit per second, depth
 * api.rate_burst). Buckets live in a fixed hash table of striped locks, so two keys
 * rarely contend and memory stays bounded (idle buckets are reused).
 *
 * Thread-safety: every function may be called from any thread. */
#ifndef FL_API_RATELIMIT_H
#define FL_API_RATELIMIT_H

#include <stdbool.h>

typedef struct fl_ratelimit fl_ratelimit;

/* rate = 0 disables limiting (take always succeeds). */
fl_ratelimit *fl_ratelimit_new(int rate_per_s, int burst);
void fl_ratelimit_free(fl_ratelimit *rl); /* NULL-safe */

/* Takes one token for `key`; false when empty, with *retry_after_s the whole seconds
 * (>= 1) until a token is back. */
bool fl_ratelimit_take(fl_ratelimit *rl, const char *key, int *retry_after_s);

#endif
