/* tests/unit/fake_clock.h -- a clock the test moves by hand: fake_ms milliseconds since
 * a fixed wall-clock epoch (2023-11-14), the same value as the monotonic reading. For
 * unit tests of code that takes an fl_clock (the LLM chain's backoff, breakers, quotas). */
#ifndef FL_TESTS_FAKE_CLOCK_H
#define FL_TESTS_FAKE_CLOCK_H

#include <stdint.h>

#include "core/clock.h"

static int64_t fake_ms;

static int64_t fake_now(void *arg)
{
    (void)arg;
    return 1700000000000LL + fake_ms;
}

static int64_t fake_mono(void *arg)
{
    (void)arg;
    return fake_ms;
}

static const fl_clock fake_clock = {fake_now, fake_mono, NULL};

#endif
