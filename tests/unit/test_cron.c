/* tests/unit/test_cron.c -- fl_cron_next: five-field cron in UTC, strictly-after semantics,
 * Vixie's day-of-month/day-of-week OR rule, leap years, month ends, year wrap, never-matching
 * and invalid expressions. Times are written as text and converted here, so each case
 * reads like the calendar it checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/log.h"
#include "engine/timers.h"

/* "YYYY-MM-DDTHH:MM[:SS]" (UTC) -> Unix ms. */
static int64_t at(const char *text)
{
    struct tm tm;
    const char *end;

    memset(&tm, 0, sizeof(tm));
    end = strptime(text, "%Y-%m-%dT%H:%M", &tm);
    assert_non_null(end);
    if (*end == ':') {
        end = strptime(end + 1, "%S", &tm);
        assert_non_null(end);
    }
    return (int64_t)timegm(&tm) * 1000;
}

/* Asserts that the next match of cron after `after` is `expected` (same format as at()). */
static void expect_next(const char *cron, const char *after, const char *expected)
{
    int64_t got = fl_cron_next(cron, at(after));
    char got_text[40] = "-1";
    char want_text[40];

    if (got >= 0) {
        fl_clock_format_rfc3339(got, got_text, sizeof(got_text));
    }
    fl_clock_format_rfc3339(at(expected), want_text, sizeof(want_text));
    if (got != at(expected)) {
        fail_msg("cron \"%s\" after %s: got %s, want %s", cron, after, got_text, want_text);
    }
}

static void test_cron_every_minute(void **state)
{
    (void)state;
    expect_next("* * * * *", "2026-01-05T10:00:30", "2026-01-05T10:01");
    expect_next("* * * * *", "2026-01-05T23:59:59", "2026-01-06T00:00");
}

static void test_cron_strictly_after_a_match(void **state)
{
    (void)state;
    expect_next("* * * * *", "2026-01-05T10:01", "2026-01-05T10:02");
    expect_next("0 3 * * *", "2026-01-05T03:00", "2026-01-06T03:00");
    /* one millisecond after a match is still after it */
    assert_int_equal(fl_cron_next("0 3 * * *", at("2026-01-05T02:59") + 59999),
                     at("2026-01-05T03:00"));
}

static void test_cron_hourly(void **state)
{
    (void)state;
    expect_next("0 * * * *", "2026-01-05T10:15", "2026-01-05T11:00");
    expect_next("0 * * * *", "2026-01-05T23:00", "2026-01-06T00:00");
}

static void test_cron_daily_at_three(void **state)
{
    (void)state;
    expect_next("0 3 * * *", "2026-01-05T02:59:59", "2026-01-05T03:00");
    expect_next("0 3 * * *", "2026-01-05T03:01", "2026-01-06T03:00");
}

static void test_cron_weekday_range(void **state)
{
    (void)state;
    /* 2026-01-09 is a Friday: after its 09:30 the next weekday is Monday the 12th */
    expect_next("30 9 * * 1-5", "2026-01-09T10:00", "2026-01-12T09:30");
    expect_next("30 9 * * 1-5", "2026-01-09T09:00", "2026-01-09T09:30");
    /* 0 and 7 are both Sunday */
    expect_next("0 0 * * 0", "2026-01-05T00:00", "2026-01-11T00:00");
    expect_next("0 0 * * 7", "2026-01-05T00:00", "2026-01-11T00:00");
    expect_next("0 0 * * 5-7", "2026-01-10T12:00", "2026-01-11T00:00");
}

static void test_cron_steps(void **state)
{
    (void)state;
    expect_next("*/15 * * * *", "2026-01-05T10:16", "2026-01-05T10:30");
    expect_next("*/15 * * * *", "2026-01-05T10:45", "2026-01-05T11:00");
    expect_next("0 8-18/4 * * *", "2026-01-05T12:00", "2026-01-05T16:00");
    expect_next("0 8-18/4 * * *", "2026-01-05T16:00", "2026-01-06T08:00");
    expect_next("5/20 * * * *", "2026-01-05T10:26", "2026-01-05T10:45");
    expect_next("1,2,30-31 * * * *", "2026-01-05T10:02", "2026-01-05T10:30");
}

static void test_cron_dom_or_dow_when_both_restricted(void **state)
{
    (void)state;
    /* the 13th OR any Friday */
    expect_next("0 0 13 * 5", "2026-01-05T00:00", "2026-01-09T00:00");
    expect_next("0 0 13 * 5", "2026-01-10T00:00", "2026-01-13T00:00");
    /* one day field starts with a star: both must match, so the other alone decides */
    expect_next("0 0 13 * *", "2026-01-10T00:00", "2026-01-13T00:00");
    expect_next("0 0 */10 * 1", "2026-01-01T00:00", "2026-05-11T00:00");
}

static void test_cron_feb_29_only_in_leap_years(void **state)
{
    (void)state;
    expect_next("0 0 29 2 *", "2026-01-01T00:00", "2028-02-29T00:00");
    /* 2100 is not a leap year (divisible by 100, not by 400) */
    expect_next("0 0 29 2 *", "2099-03-01T00:00", "2104-02-29T00:00");
    expect_next("0 0 29 2 *", "1999-03-01T00:00", "2000-02-29T00:00");
}

static void test_cron_month_ends(void **state)
{
    (void)state;
    expect_next("0 0 31 * *", "2026-01-31T00:00", "2026-03-31T00:00");
    expect_next("0 12 30 * *", "2026-01-30T12:00", "2026-03-30T12:00");
    expect_next("59 23 28-31 2 *", "2026-02-28T23:59", "2027-02-28T23:59");
}

static void test_cron_year_wrap(void **state)
{
    (void)state;
    expect_next("0 0 1 1 *", "2026-12-31T23:59", "2027-01-01T00:00");
    expect_next("59 23 31 12 *", "2026-12-31T23:59", "2027-12-31T23:59");
    expect_next("* * * * *", "2026-12-31T23:59:59", "2027-01-01T00:00");
    /* before the epoch (negative ms) the arithmetic floors, it does not truncate */
    expect_next("0 0 * * *", "1969-12-31T23:59:30", "1970-01-01T00:00");
}

static void test_cron_never_matching_is_minus_one(void **state)
{
    (void)state;
    assert_int_equal(fl_cron_next("0 0 30 2 *", at("2026-01-01T00:00")), -1);
    assert_int_equal(fl_cron_next("0 0 31 4,6,9,11 *", at("2026-01-01T00:00")), -1);
}

static void test_cron_invalid_is_minus_one(void **state)
{
    static const char *const bad[] = {
        "",
        "* * * *",
        "* * * * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "* * * 0 *",
        "* * * * 8",
        "*/0 * * * *",
        "5-1 * * * *",
        "a * * * *",
        "1,,2 * * * *",
        "1- * * * *",
        "-1 * * * *",
        "1/ * * * *",
        "*5 * * * *",
        "0001 * * * *",
        "* * * * MON",
    };
    int64_t now = at("2026-01-05T10:00");

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (fl_cron_next(bad[i], now) != -1) {
            fail_msg("\"%s\" was accepted", bad[i]);
        }
    }
    assert_int_equal(fl_cron_next(NULL, now), -1);
}

static void test_cron_blanks_between_fields_are_free(void **state)
{
    (void)state;
    expect_next("  0\t3  * *   * ", "2026-01-05T03:00", "2026-01-06T03:00");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cron_every_minute),
        cmocka_unit_test(test_cron_strictly_after_a_match),
        cmocka_unit_test(test_cron_hourly),
        cmocka_unit_test(test_cron_daily_at_three),
        cmocka_unit_test(test_cron_weekday_range),
        cmocka_unit_test(test_cron_steps),
        cmocka_unit_test(test_cron_dom_or_dow_when_both_restricted),
        cmocka_unit_test(test_cron_feb_29_only_in_leap_years),
        cmocka_unit_test(test_cron_month_ends),
        cmocka_unit_test(test_cron_year_wrap),
        cmocka_unit_test(test_cron_never_matching_is_minus_one),
        cmocka_unit_test(test_cron_invalid_is_minus_one),
        cmocka_unit_test(test_cron_blanks_between_fields_are_free),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
