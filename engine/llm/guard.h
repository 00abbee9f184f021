/* engine/llm/guard.h -- what stands before one provider: a circuit breaker, a
 * requests-per-minute limit and daily request and token quotas.
 *
 * Breaker: closed; `breaker_failures` consecutive failed attempts (timeouts, connection
 * errors, 5xx, 429) open it; while open every admission is refused; after
 * `breaker_cooldown` the next admission is the one half-open probe (others are still
 * refused until it ends); the probe's success closes the breaker, its failure opens it
 * for another cool-down. Any answer that is not such a failure (a 2xx, a 400) counts as
 * a success: the provider is up.
 *
 * Rate: a token bucket of `rpm` requests refilled evenly over a minute; quotas count
 * requests and tokens (in + out) per UTC day. All of it lives in memory, per process: a
 * restart forgets it, and N processes allow N times the configured amounts (documented;
 * a shared limiter would need PostgreSQL or Redis on the hot path).
 *
 * Thread-safety: every function locks the guard's mutex; any thread may call them. */
#ifndef FL_ENGINE_LLM_GUARD_H
#define FL_ENGINE_LLM_GUARD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"

typedef enum fl_llm_admit {
    FL_LLM_ADMIT_OK,
    FL_LLM_ADMIT_BREAKER_OPEN,
    FL_LLM_ADMIT_RATE_LIMITED,   /* rpm */
    FL_LLM_ADMIT_QUOTA_REQUESTS, /* daily_requests */
    FL_LLM_ADMIT_QUOTA_TOKENS,   /* daily_tokens */
} fl_llm_admit;

typedef enum fl_llm_breaker_state {
    FL_LLM_BREAKER_CLOSED,
    FL_LLM_BREAKER_OPEN,
    FL_LLM_BREAKER_HALF_OPEN,
} fl_llm_breaker_state;

typedef struct fl_llm_guard {
    pthread_mutex_t mu;
    int rpm, failures_to_open;
    int64_t cooldown_ms;
    long long daily_requests, daily_tokens;
    /* guarded by mu */
    fl_llm_breaker_state state;
    int failures;       /* consecutive */
    int64_t open_until; /* monotonic ms */
    bool probing;       /* half-open: the probe is in flight */
    double tokens;      /* rate bucket */
    int64_t refilled_at;
    int64_t day; /* UTC day of the counts below */
    long long day_requests, day_tokens;
} fl_llm_guard;

/* Ownership: p is read, not kept. */
void fl_llm_guard_init(fl_llm_guard *g, const fl_config_llm_provider *p);
void fl_llm_guard_deinit(fl_llm_guard *g);

/* Asks to send one attempt at mono_ms (monotonic) / wall_ms (for the UTC day). On OK the
 * attempt is counted (rate and daily requests) and *probe says whether it is the
 * half-open probe, which must be reported back by _success or _failure. */
fl_llm_admit fl_llm_guard_admit(fl_llm_guard *g, int64_t mono_ms, int64_t wall_ms, bool *probe);

/* The attempt got an answer; tokens (in + out) count against the daily quota. */
void fl_llm_guard_success(fl_llm_guard *g, long long tokens, int64_t wall_ms);

/* The attempt failed in a way that counts against the breaker. */
void fl_llm_guard_failure(fl_llm_guard *g, int64_t mono_ms);

/* The breaker's state now (for tests and logs). */
fl_llm_breaker_state fl_llm_guard_state(fl_llm_guard *g, int64_t mono_ms);

/* "breaker_open", "rate_limited", "quota_requests", "quota_tokens". Static. */
const char *fl_llm_admit_name(fl_llm_admit a);

#endif
