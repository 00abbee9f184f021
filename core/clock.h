/* core/clock.h -- time, injectable so tests need no sleeps (R10.1).
 *
 * Thread-safety: fl_clock values are immutable; the system clock is thread-safe. */
#ifndef FL_CORE_CLOCK_H
#define FL_CORE_CLOCK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct fl_clock {
    int64_t (*now_ms)(void *arg);  /* wall clock, ms since the Unix epoch */
    int64_t (*mono_ms)(void *arg); /* monotonic, for timeouts and durations */
    void *arg;
} fl_clock;

/* The real clocks (CLOCK_REALTIME, CLOCK_MONOTONIC). Borrowed, static. */
const fl_clock *fl_clock_system(void);

static inline int64_t fl_clock_now_ms(const fl_clock *c)
{
    return c->now_ms(c->arg);
}
static inline int64_t fl_clock_mono_ms(const fl_clock *c)
{
    return c->mono_ms(c->arg);
}

/* CLOCK_MONOTONIC in nanoseconds, for durations finer than a millisecond (latency
 * metrics). */
static inline int64_t fl_clock_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Initializes cv to wait on CLOCK_MONOTONIC (R9.7), so wall-clock jumps neither fire nor
 * stall a pthread_cond_timedwait on it. */
void fl_clock_cond_init(pthread_cond_t *cv);

/* The absolute CLOCK_MONOTONIC time `ms_from_now` ahead, for pthread_cond_timedwait on a
 * condvar made by fl_clock_cond_init. */
struct timespec fl_clock_mono_deadline(int64_t ms_from_now);

/* RFC 3339 UTC with milliseconds: "2026-01-05T10:00:00.123Z" (needs 25 bytes). */
void fl_clock_format_rfc3339(int64_t ms, char *out, size_t size);

#endif
