/* core/clock.c -- the system clocks behind fl_clock. */
#include "core/clock.h"

#include <stdio.h>
#include <time.h>

static int64_t read_clock(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t system_now_ms(void *arg)
{
    (void)arg;
    return read_clock(CLOCK_REALTIME);
}

static int64_t system_mono_ms(void *arg)
{
    (void)arg;
    return read_clock(CLOCK_MONOTONIC);
}

const fl_clock *fl_clock_system(void)
{
    static const fl_clock sys = {system_now_ms, system_mono_ms, NULL};
    return &sys;
}

void fl_clock_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t attr;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
}

struct timespec fl_clock_mono_deadline(int64_t ms_from_now)
{
    int64_t at = read_clock(CLOCK_MONOTONIC) + ms_from_now;

    return (struct timespec){.tv_sec = (time_t)(at / 1000),
                             .tv_nsec = (long)(at % 1000) * 1000000L};
}

void fl_clock_format_rfc3339(int64_t ms, char *out, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}
