/* engine/workflow_time.c -- durations and cron expressions as definitions write them.
 *
 * Durations come in two spellings: a short one (500ms, 30s, 15m, 48h, 7d, and sums such
 * as 1h30m) and ISO 8601 (PT48H, P1DT2H, PT0.5S, P2W). Years and months are refused:
 * their length depends on the calendar, and a timer must mean a fixed number of
 * milliseconds. Sub-millisecond fractions are refused rather than rounded.
 *
 * Thread-safety: pure functions. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "engine/workflow_int.h"

#define MS_S 1000LL
#define MS_M (60 * MS_S)
#define MS_H (60 * MS_M)
#define MS_D (24 * MS_H)

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* total += v * unit, refusing overflow. */
static bool add_ms(int64_t *total, int64_t v, int64_t unit)
{
    if (v > (INT64_MAX - *total) / unit) {
        return false;
    }
    *total += v * unit;
    return true;
}

static bool read_int(const char **s, int64_t *v)
{
    const char *start = *s;

    *v = 0;
    for (; is_digit(**s); (*s)++) {
        if (*v > (INT64_MAX - 9) / 10) {
            return false;
        }
        *v = *v * 10 + (**s - '0');
    }
    return *s != start;
}

static int64_t short_unit(const char **s)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", MS_S}, {"m", MS_M}, {"h", MS_H}, {"d", MS_D}};

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        size_t n = strlen(units[i].name);
        if (!strncmp(*s, units[i].name, n)) {
            *s += n;
            return units[i].ms;
        }
    }
    return 0;
}

static bool parse_short(const char *s, int64_t *ms)
{
    int64_t total = 0, v, unit;

    if (!*s) {
        return false;
    }
    while (*s) {
        if (!read_int(&s, &v)) {
            return false;
        }
        unit = short_unit(&s);
        if (!unit || !add_ms(&total, v, unit)) {
            return false;
        }
    }
    *ms = total;
    return true;
}

/* ".5" after the seconds of PT0.5S, as whole milliseconds. */
static bool read_fraction(const char **s, int64_t *frac)
{
    int64_t scale = 100;

    *frac = 0;
    if (**s != '.') {
        return true;
    }
    (*s)++;
    if (!is_digit(**s)) {
        return false;
    }
    for (; is_digit(**s); (*s)++) {
        if (scale == 0 && **s != '0') {
            return false; /* finer than a millisecond */
        }
        *frac += (**s - '0') * scale;
        scale /= 10;
    }
    return true;
}

static bool parse_iso(const char *s, int64_t *ms)
{
    static const struct {
        char designator;
        bool time;
        int64_t ms;
    } parts[] = {{'W', false, 7 * MS_D},
                 {'D', false, MS_D},
                 {'H', true, MS_H},
                 {'M', true, MS_M},
                 {'S', true, MS_S}};
    size_t next = 0, nparts = sizeof(parts) / sizeof(parts[0]);
    int64_t total = 0, v, frac;
    bool in_time = false, any = false;

    while (*s) {
        if (*s == 'T' && !in_time) {
            in_time = true;
            s++;
            any = false; /* PT alone is not a duration */
            continue;
        }
        if (!read_int(&s, &v) || !read_fraction(&s, &frac)) {
            return false;
        }
        while (next < nparts && (parts[next].designator != *s || parts[next].time != in_time)) {
            next++;
        }
        if (next == nparts || (frac && parts[next].designator != 'S') ||
            !add_ms(&total, v, parts[next].ms) || !add_ms(&total, frac, 1)) {
            return false;
        }
        next++;
        s++;
        any = true;
    }
    *ms = total;
    return any;
}

bool fl_workflow_parse_duration(const char *s, bool allow_negative, int64_t *ms)
{
    bool neg = false;
    int64_t v = 0;
    bool ok;

    if (!s) {
        return false;
    }
    if (*s == '-' && allow_negative) {
        neg = true;
        s++;
    }
    ok = *s == 'P' ? parse_iso(s + 1, &v) : parse_short(s, &v);
    if (ok) {
        *ms = neg ? -v : v;
    }
    return ok;
}

/* ---- cron ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    int lo, hi;
} cron_fields[5] = {
    {"minute", 0, 59},
    {"hour", 0, 23},
    {"day-of-month", 1, 31},
    {"month", 1, 12},
    {"day-of-week", 0, 7} /* 0 and 7 are both Sunday, as in Vixie cron */
};

static bool cron_number(const char **s, int lo, int hi, int *out)
{
    int64_t v;

    if (!read_int(s, &v) || v < lo || v > hi) {
        return false;
    }
    *out = (int)v;
    return true;
}

/* One list item: `*`, `N` or `N-M`, optionally `/STEP`. */
static bool cron_item(const char **s, int lo, int hi)
{
    int a = lo, b = hi, step;

    if (**s == '*') {
        (*s)++;
    } else if (!cron_number(s, lo, hi, &a)) {
        return false;
    } else if (**s == '-') {
        (*s)++;
        if (!cron_number(s, lo, hi, &b) || b < a) {
            return false;
        }
    }
    if (**s == '/') {
        (*s)++;
        if (!cron_number(s, 1, hi - lo + 1, &step)) {
            return false;
        }
    }
    return **s == ',' || **s == ' ' || **s == '\t' || **s == '\0';
}

static bool cron_field(const char **s, int lo, int hi)
{
    for (;;) {
        if (!cron_item(s, lo, hi)) {
            return false;
        }
        if (**s != ',') {
            return true;
        }
        (*s)++;
    }
}

bool fl_wf__cron_valid(const char *s, size_t *bad_off, char *why, size_t why_size)
{
    const char *p = s;

    for (int f = 0; f < 5; f++) {
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        *bad_off = (size_t)(p - s);
        if (!*p) {
            snprintf(why, why_size,
                     "expected 5 fields (minute hour day-of-month month "
                     "day-of-week), found %d",
                     f);
            return false;
        }
        if (!cron_field(&p, cron_fields[f].lo, cron_fields[f].hi)) {
            snprintf(why, why_size,
                     "bad %s field: expected *, N, N-M, lists with `,` and steps with `/`, "
                     "within %d-%d",
                     cron_fields[f].name, cron_fields[f].lo, cron_fields[f].hi);
            return false;
        }
    }
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    *bad_off = (size_t)(p - s);
    if (*p) {
        snprintf(why, why_size, "expected 5 fields, found more");
        return false;
    }
    return true;
}
