/* engine/cron.c -- fl_cron_next: the next time a five-field cron expression matches.
 *
 * Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12), day of week
 * (0-7, 0 and 7 = Sunday), each a comma list of `*`, `a`, `a-b`, with an optional `/n`
 * step (`*` and `a-b` step over their range, `a/n` over a to the field's maximum). No
 * names (JAN, MON) and no macros (@daily): workflows are written by people who can use
 * numbers, and every extension is one more dialect to explain. Times are UTC.
 *
 * Day matching follows Vixie cron: when both day fields are restricted (neither starts
 * with `*`), a day matches if EITHER matches ("0 0 1 * 1" = the 1st and every Monday);
 * otherwise both must. A stepped star in a day field counts as unrestricted, as in Vixie.
 *
 * Design: each field is a bit set. The search walks days, not minutes: a month that is
 * not in the set is skipped whole, a day that does not match costs one test, and inside
 * a matching day the hour and minute come from the bit sets. Five years are at most
 * about 1,830 day steps, so even an expression that never matches costs microseconds.
 *
 * Thread-safety: pure and reentrant. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "engine/timers.h"

#define MS_PER_MIN   60000LL
#define MIN_PER_DAY  1440LL
#define SEARCH_DAYS  (5 * 366) /* "none within five years" */
#define MAX_EXPR_LEN 256

typedef struct cron {
    uint64_t field[5]; /* bit i = value i is allowed: minute, hour, dom, month, dow */
    bool dom_star;     /* the day-of-month field starts with '*' */
    bool dow_star;     /* the day-of-week field starts with '*' */
} cron;

enum { F_MIN, F_HOUR, F_DOM, F_MON, F_DOW };

static const int field_lo[5] = {0, 0, 1, 1, 0};
static const int field_hi[5] = {59, 23, 31, 12, 7};

/* ---- parsing ------------------------------------------------------------------------- */

/* Reads a decimal number of at most 3 digits (no field needs more) at *p. */
static bool parse_num(const char **p, int *out)
{
    int v = 0;
    int n = 0;

    while (**p >= '0' && **p <= '9' && n < 4) {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    *out = v;
    return n > 0 && n <= 3;
}

/* One list item: `*`, `a`, `a-b`, each with an optional `/n`. */
static bool parse_item(const char **p, int f, uint64_t *bits)
{
    int lo = field_lo[f];
    int hi = field_hi[f];
    int step = 1;
    bool range = true;

    if (**p == '*') {
        (*p)++;
    } else {
        if (!parse_num(p, &lo)) {
            return false;
        }
        range = **p == '-';
        hi = lo;
        if (range) {
            (*p)++;
            if (!parse_num(p, &hi)) {
                return false;
            }
        }
    }
    if (**p == '/') {
        (*p)++;
        if (!parse_num(p, &step) || step < 1) {
            return false;
        }
        hi = range ? hi : field_hi[f]; /* "a/n" steps from a to the field's end */
    }
    if (lo < field_lo[f] || hi > field_hi[f] || lo > hi) {
        return false;
    }
    for (int v = lo; v <= hi; v += step) {
        *bits |= 1ULL << v;
    }
    return true;
}

/* One field: items separated by commas, ending at a blank or the end of the text. */
static bool parse_field(const char **p, int f, uint64_t *bits)
{
    if (!parse_item(p, f, bits)) {
        return false;
    }
    while (**p == ',') {
        (*p)++;
        if (!parse_item(p, f, bits)) {
            return false;
        }
    }
    return **p == '\0' || **p == ' ' || **p == '\t';
}

static bool parse(const char *expr, cron *c)
{
    const char *p = expr;

    memset(c, 0, sizeof(*c));
    if (strnlen(expr, MAX_EXPR_LEN + 1) > MAX_EXPR_LEN) {
        return false;
    }
    for (int f = 0; f < 5; f++) {
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        c->dom_star = f == F_DOM ? *p == '*' : c->dom_star;
        c->dow_star = f == F_DOW ? *p == '*' : c->dow_star;
        if (!parse_field(&p, f, &c->field[f])) {
            return false;
        }
    }
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (c->field[F_DOW] & (1ULL << 7)) {
        c->field[F_DOW] |= 1ULL; /* 7 is Sunday too */
    }
    return *p == '\0';
}

/* ---- calendar (proleptic Gregorian, days since 1970-01-01) ---------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Howard Hinnant's days_from_civil: exact for every date, no tables, no libc time zone. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era;
    int64_t yoe;
    int64_t doy;

    y -= m <= 2;
    era = floor_div(y, 400);
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era;
    int64_t doe;
    int64_t yoe;
    int64_t doy;
    int64_t mp;

    z += 719468;
    era = floor_div(z, 146097);
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* ---- search -------------------------------------------------------------------------- */

static bool day_matches(const cron *c, int64_t day, int dom)
{
    int dow = (int)(day + 4 - floor_div(day + 4, 7) * 7); /* 1970-01-01 was a Thursday (4) */
    bool by_dom = (c->field[F_DOM] >> dom) & 1;
    bool by_dow = (c->field[F_DOW] >> dow) & 1;

    if (c->dom_star || c->dow_star) {
        return by_dom && by_dow;
    }
    return by_dom || by_dow;
}

/* The first matching minute of the day at or after minute `from` (0..1439), or -1. */
static int first_minute(const cron *c, int from)
{
    for (int h = from / 60; h < 24; h++) {
        if (!((c->field[F_HOUR] >> h) & 1)) {
            continue;
        }
        for (int m = h == from / 60 ? from % 60 : 0; m < 60; m++) {
            if ((c->field[F_MIN] >> m) & 1) {
                return h * 60 + m;
            }
        }
    }
    return -1;
}

int64_t fl_cron_next(const char *expr, int64_t after_ms)
{
    cron c;
    int64_t start = floor_div(after_ms, MS_PER_MIN) + 1; /* strictly after: the next minute */
    int64_t day = floor_div(start, MIN_PER_DAY);
    int64_t end = day + SEARCH_DAYS;
    int from = (int)(start - day * MIN_PER_DAY);
    int64_t y;
    int mon;
    int dom;
    int minute;

    if (!expr || !parse(expr, &c)) {
        return -1;
    }
    while (day <= end) {
        civil_from_days(day, &y, &mon, &dom);
        if (!((c.field[F_MON] >> mon) & 1)) {
            day = mon == 12 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, mon + 1, 1);
            from = 0;
            continue;
        }
        minute = day_matches(&c, day, dom) ? first_minute(&c, from) : -1;
        if (minute >= 0) {
            return (day * MIN_PER_DAY + minute) * MS_PER_MIN;
        }
        day++;
        from = 0;
    }
    return -1;
}
