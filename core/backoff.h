/* core/backoff.h -- the retry policy shared by activities and LLM calls: how long to wait
 * before the next attempt, and which outcomes are worth another attempt at all.
 *
 * Pure: no clock, no I/O, no globals. The jitter comes from an injected source so tests
 * are deterministic; "now" is passed in for HTTP-date Retry-After values.
 *
 * Thread-safety: every function is reentrant; a jitter source's state belongs to its
 * caller (one per thread, or guarded by the caller). */
#ifndef FL_CORE_BACKOFF_H
#define FL_CORE_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

typedef enum fl_backoff_kind { FL_BACKOFF_FIXED, FL_BACKOFF_EXPONENTIAL } fl_backoff_kind;

typedef struct fl_backoff_policy {
    fl_backoff_kind kind;
    int64_t delay_ms;           /* fixed delay, or the first exponential delay */
    int64_t max_delay_ms;       /* cap of the policy delay; 0 = no cap */
    int64_t max_retry_after_ms; /* cap of a server's Retry-After; 0 = max_delay_ms */
    double jitter; /* 0..1: the delay is drawn from (d * (1 - jitter), d]; 1 = full jitter */
} fl_backoff_policy;

#define FL_BACKOFF_POLICY_INIT       \
    {.kind = FL_BACKOFF_EXPONENTIAL, \
     .delay_ms = 500,                \
     .max_delay_ms = 30000,          \
     .max_retry_after_ms = 120000,   \
     .jitter = 0.5}

/* Returns 64 uniformly distributed bits. */
typedef uint64_t (*fl_backoff_rand_fn)(void *arg);

/* A ready-made source: splitmix64 over the uint64_t that arg points to (the seed). */
uint64_t fl_backoff_splitmix64(void *arg);

/* The delay before the attempt after `attempt` (1 = the first attempt just failed).
 * Fixed: delay_ms. Exponential: delay_ms * 2^(attempt-1), saturating, never overflowing.
 * The policy delay is capped by max_delay_ms, then jittered (rnd may be NULL: no jitter);
 * a server's retry_after_ms (< 0: none) wins when larger, capped by max_retry_after_ms. */
int64_t fl_backoff_delay_ms(const fl_backoff_policy *p, int attempt, fl_backoff_rand_fn rnd,
                            void *rnd_arg, int64_t retry_after_ms);

/* Parses a Retry-After header value (RFC 9110 §10.2.3): delta-seconds ("120") or an
 * IMF-fixdate ("Wed, 21 Oct 2015 07:28:00 GMT", compared with now_ms; a past date is 0).
 * Ownership: borrows value. Errors: FL_EINVAL (anything else: ignore the header). */
fl_rc fl_backoff_parse_retry_after(const char *value, int64_t now_ms, int64_t *out_ms, fl_err *err);

/* HTTP statuses worth retrying: 408, 425, 429, 500, 502, 503, 504. Other 4xx are not. */
bool fl_backoff_status_is_retryable(long status);

/* Transport outcomes worth retrying: FL_ETIMEDOUT and FL_EUNAVAIL (connect, DNS, reset).
 * FL_ETOOBIG, FL_EINVAL and the rest would fail the same way again. */
bool fl_backoff_rc_is_retryable(fl_rc rc);

/* The classifier for one attempt: rc is the transport outcome, status the HTTP status when
 * rc is FL_OK. A 2xx or other final status is not retryable. */
bool fl_backoff_is_retryable(fl_rc rc, long status);

#endif
