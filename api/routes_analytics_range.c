/* api/routes_analytics_range.c -- the ?from=&to= day range of the analytics routes
 * (api/routes_analytics_int.h). Dates are converted with Howard Hinnant's civil-day
 * algorithms, not timegm(), so the result needs no TZ and no libc state. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "api/routes_analytics_int.h"

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12, d 1..31). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void fl_analytics__format_day(int64_t day, char out[11])
{
    int64_t z = day + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = (int64_t)yoe + era * 400 + (m <= 2);

    snprintf(out, 11, "%04d-%02u-%02u", (int)y, m, d);
}

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

bool fl_analytics__parse_day(const char *s, int64_t *out)
{
    unsigned y, m, d;
    char back[11];

    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4) || !digits(s + 5, 2) ||
        !digits(s + 8, 2)) {
        return false;
    }
    y = (unsigned)((s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0'));
    m = (unsigned)((s[5] - '0') * 10 + (s[6] - '0'));
    d = (unsigned)((s[8] - '0') * 10 + (s[9] - '0'));
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31) {
        return false;
    }
    /* 2023-02-30 converts to March 2nd: only a date that formats back to itself exists */
    *out = days_from_civil(y, m, d);
    fl_analytics__format_day(*out, back);
    return strcmp(back, s) == 0;
}

const char *fl_analytics__range(const char *from, const char *to, int64_t today,
                                fl_analytics_range *out)
{
    int64_t f, t = today;

    if (to && !fl_analytics__parse_day(to, &t)) {
        return "to must be a date YYYY-MM-DD";
    }
    f = t - (FL_ANALYTICS_DEFAULT_DAYS - 1);
    if (from && !fl_analytics__parse_day(from, &f)) {
        return "from must be a date YYYY-MM-DD";
    }
    if (f > t) {
        return "from must not be after to";
    }
    if (t - f + 1 > FL_ANALYTICS_MAX_DAYS) {
        return "the range may span at most 366 days";
    }
    fl_analytics__format_day(f, out->from);
    fl_analytics__format_day(t, out->to);
    out->days = (int)(t - f + 1);
    return NULL;
}
