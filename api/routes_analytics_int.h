/* api/routes_analytics_int.h -- private to the analytics routes (api/routes_analytics*.c):
 * the ?from=&to= date range they share, parsed without I/O so unit tests can reach it.
 *
 * Thread-safety: pure functions. */
#ifndef FL_API_ROUTES_ANALYTICS_INT_H
#define FL_API_ROUTES_ANALYTICS_INT_H

#include <stdbool.h>
#include <stdint.h>

#define FL_ANALYTICS_DEFAULT_DAYS 30  /* no ?from=: the 30 days ending with `to` */
#define FL_ANALYTICS_MAX_DAYS     366 /* a longer range is a 400 */

/* An inclusive range of UTC days, both ends as "YYYY-MM-DD". */
typedef struct fl_analytics_range {
    char from[11];
    char to[11];
    int days; /* to - from + 1 */
} fl_analytics_range;

/* Days since 1970-01-01 of "YYYY-MM-DD" (years 1970..9999, a real calendar date, nothing
 * else in the string) in *out; false when malformed. */
bool fl_analytics__parse_day(const char *s, int64_t *out);

/* "YYYY-MM-DD" of a day number; out holds at least 11 bytes. */
void fl_analytics__format_day(int64_t day, char out[11]);

/* Resolves ?from= and ?to= (NULL when absent) against today (the current UTC day
 * number): `to` defaults to today, `from` to FL_ANALYTICS_DEFAULT_DAYS days ending with
 * `to`. Returns NULL with *out set, or a static message for a 400 (a malformed date,
 * from after to, or more than FL_ANALYTICS_MAX_DAYS days). */
const char *fl_analytics__range(const char *from, const char *to, int64_t today,
                                fl_analytics_range *out);

#endif
