/* api/ratelimit.c -- per-key token buckets in a fixed table (api/ratelimit.h).
 *
 * Tokens are counted in thousandths, so a rate of r per second refills exactly r
 * thousandths per millisecond: integer arithmetic, no drift, no floating point. The table
 * has FL_RL_SLOTS buckets in FL_RL_STRIPES contiguous blocks, one mutex per block. A key
 * hashes to a home slot and may live in any of the FL_RL_PROBE slots after it (within its
 * block, so one lock covers the search). A new key takes an empty or idle (full again)
 * bucket there; only when all are busy does it evict the least recently used one, which
 * can only make limiting more lenient for that key, never stricter. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/ratelimit_int.h"
#include "core/mem.h"

#define FL_RL_SLOTS   8192
#define FL_RL_STRIPES 128
#define FL_RL_BLOCK   (FL_RL_SLOTS / FL_RL_STRIPES)
#define FL_RL_PROBE   8
#define FL_RL_KEY     48
#define ONE           1000 /* one token, in thousandths */

typedef struct bucket {
    char key[FL_RL_KEY]; /* "" = empty */
    int64_t milli;       /* tokens left, in thousandths */
    int64_t last_ms;     /* monotonic time of the last refill */
} bucket;

struct fl_ratelimit {
    int64_t rate; /* thousandths per millisecond = tokens per second */
    int64_t cap;  /* burst, in thousandths */
    const fl_clock *clock;
    pthread_mutex_t locks[FL_RL_STRIPES];
    bucket slots[FL_RL_SLOTS];
};

fl_ratelimit *fl_ratelimit__new_clock(int rate_per_s, int burst, const fl_clock *clock)
{
    fl_ratelimit *rl = fl_xcalloc(1, sizeof(*rl));

    rl->rate = rate_per_s > 0 ? rate_per_s : 0;
    rl->cap = (int64_t)(burst > 0 ? burst : 1) * ONE;
    rl->clock = clock;
    for (int i = 0; i < FL_RL_STRIPES; i++) {
        pthread_mutex_init(&rl->locks[i], NULL);
    }
    return rl;
}

fl_ratelimit *fl_ratelimit_new(int rate_per_s, int burst)
{
    return fl_ratelimit__new_clock(rate_per_s, burst, fl_clock_system());
}

void fl_ratelimit_free(fl_ratelimit *rl)
{
    if (rl == NULL) {
        return;
    }
    for (int i = 0; i < FL_RL_STRIPES; i++) {
        pthread_mutex_destroy(&rl->locks[i]);
    }
    free(rl);
}

static uint32_t hash_key(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (const char *p = key; *p; p++) {
        h = (h ^ (uint8_t)*p) * 16777619u;
    }
    return h;
}

/* Tokens of b after refilling up to now (b unchanged). */
static int64_t refilled(const fl_ratelimit *rl, const bucket *b, int64_t now)
{
    int64_t elapsed = now - b->last_ms;

    if (elapsed <= 0) {
        return b->milli;
    }
    /* an idle bucket is simply full; capping first keeps the product from overflowing */
    if (elapsed > rl->cap / rl->rate + 1) {
        return rl->cap;
    }
    return b->milli + elapsed * rl->rate > rl->cap ? rl->cap : b->milli + elapsed * rl->rate;
}

/* The bucket of `key` in its block, claiming one when the key has none. Lock held. */
static bucket *find(fl_ratelimit *rl, const char *key, size_t home, size_t block, int64_t now)
{
    bucket *spare = NULL, *oldest = NULL;

    for (size_t i = 0; i < FL_RL_PROBE; i++) {
        bucket *b = &rl->slots[block + (home + i) % FL_RL_BLOCK];
        if (!strcmp(b->key, key)) {
            return b;
        }
        if (spare == NULL && (b->key[0] == '\0' || refilled(rl, b, now) == rl->cap)) {
            spare = b;
        }
        if (oldest == NULL || b->last_ms < oldest->last_ms) {
            oldest = b;
        }
    }
    spare = spare ? spare : oldest;
    memset(spare->key, 0, sizeof(spare->key));
    memcpy(spare->key, key, strnlen(key, FL_RL_KEY - 1));
    spare->milli = rl->cap;
    spare->last_ms = now;
    return spare;
}

bool fl_ratelimit_take(fl_ratelimit *rl, const char *key, int *retry_after_s)
{
    char k[FL_RL_KEY] = {0};
    uint32_t h;
    size_t block;
    int64_t now, wait_ms;
    bucket *b;
    bool ok;

    if (rl == NULL || rl->rate == 0) {
        return true;
    }
    /* keys longer than the slot are cut: they are API key ids (16 characters) in practice */
    memcpy(k, key, strnlen(key, FL_RL_KEY - 1));
    h = hash_key(k);
    block = (h / FL_RL_BLOCK) % FL_RL_STRIPES;
    pthread_mutex_lock(&rl->locks[block]);
    now = fl_clock_mono_ms(rl->clock);
    b = find(rl, k, h % FL_RL_BLOCK, block * FL_RL_BLOCK, now);
    b->milli = refilled(rl, b, now);
    b->last_ms = now > b->last_ms ? now : b->last_ms;
    ok = b->milli >= ONE;
    if (ok) {
        b->milli -= ONE;
    }
    wait_ms = ok ? 0 : (ONE - b->milli + rl->rate - 1) / rl->rate;
    pthread_mutex_unlock(&rl->locks[block]);
    if (!ok && retry_after_s != NULL) {
        *retry_after_s = (int)((wait_ms + 999) / 1000);
        *retry_after_s = *retry_after_s < 1 ? 1 : *retry_after_s;
    }
    return ok;
}
