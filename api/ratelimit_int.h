/* api/ratelimit_int.h -- private to api/ratelimit.c and its unit test: a limiter on an
 * injected clock, so the test drives time instead of sleeping (R10.1).
 *
 * Thread-safety: as api/ratelimit.h. */
#ifndef FL_API_RATELIMIT_INT_H
#define FL_API_RATELIMIT_INT_H

#include "api/ratelimit.h"
#include "core/clock.h"

/* As fl_ratelimit_new, on `clock`'s monotonic time (borrowed; must outlive the limiter). */
fl_ratelimit *fl_ratelimit__new_clock(int rate_per_s, int burst, const fl_clock *clock);

#endif
