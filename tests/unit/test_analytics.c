/* tests/unit/test_analytics.c -- the pure parts of analytics: the ?from=&to= day range of
 * the analytics routes (api/routes_analytics_range.c) and when the aggregate worker wakes
 * (engine/analytics.c). The SQL is proven by tests/system/test_api_analytics.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/routes_analytics_int.h"
#include "engine/analytics.h"

/* 2026-11-22 as a day number (days since 1970-01-01). */
#define TODAY 20779

static void test_parse_day(void **state)
{
    int64_t d = -1;
    char out[11];

    (void)state;
    assert_true(fl_analytics__parse_day("1970-01-01", &d));
    assert_int_equal(d, 0);
    assert_true(fl_analytics__parse_day("2026-11-22", &d));
    assert_int_equal(d, TODAY);
    assert_true(fl_analytics__parse_day("2024-02-29", &d)); /* leap day */
    fl_analytics__format_day(d, out);
    assert_string_equal(out, "2024-02-29");
    fl_analytics__format_day(d + 1, out);
    assert_string_equal(out, "2024-03-01");
    assert_true(fl_analytics__parse_day("9999-12-31", &d));
}

static void test_parse_day_rejects(void **state)
{
    static const char *const bad[] = {
        "",           "2026-1-22",   "2026-11-2",  "2026/11/22", "2026-11-22T00:00:00Z",
        "2023-02-29", "2026-02-30",  "2026-13-01", "2026-00-10", "2026-11-00",
        "1969-12-31", " 2026-11-22", "2026-11-2x", "+026-11-22", "2026-11-22 ",
    };
    int64_t d;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(fl_analytics__parse_day(bad[i], &d));
    }
    assert_false(fl_analytics__parse_day(NULL, &d));
}

static void test_range_defaults(void **state)
{
    fl_analytics_range r;

    (void)state;
    assert_null(fl_analytics__range(NULL, NULL, TODAY, &r));
    assert_string_equal(r.to, "2026-11-22");
    assert_string_equal(r.from, "2026-10-24");
    assert_int_equal(r.days, 30);
    assert_null(fl_analytics__range(NULL, "2026-01-10", TODAY, &r));
    assert_string_equal(r.from, "2025-12-12");
    assert_null(fl_analytics__range("2026-11-01", NULL, TODAY, &r));
    assert_string_equal(r.from, "2026-11-01");
    assert_string_equal(r.to, "2026-11-22");
    assert_int_equal(r.days, 22);
}

static void test_range_limits(void **state)
{
    fl_analytics_range r;

    (void)state;
    assert_null(fl_analytics__range("2026-11-22", "2026-11-22", TODAY, &r));
    assert_int_equal(r.days, 1);
    assert_null(fl_analytics__range("2024-01-01", "2024-12-31", TODAY, &r)); /* 366 days */
    assert_int_equal(r.days, 366);
    assert_null(fl_analytics__range("2023-01-01", "2024-01-01", TODAY, &r));     /* 366 */
    assert_non_null(fl_analytics__range("2022-12-31", "2024-01-01", TODAY, &r)); /* 367 */
    assert_non_null(fl_analytics__range("2025-01-01", "2026-01-02", TODAY, &r));
    assert_non_null(fl_analytics__range("2026-11-23", "2026-11-22", TODAY, &r));
    assert_non_null(fl_analytics__range("2026-11-40", NULL, TODAY, &r));
    assert_non_null(fl_analytics__range(NULL, "yesterday", TODAY, &r));
}

static void test_next_delay(void **state)
{
    (void)state;
    /* 1 s periods: 100 ms of grace after the boundary */
    assert_int_equal(fl_analytics_next_delay(10250, 1000), 750 + 100);
    assert_int_equal(fl_analytics_next_delay(10000, 1000), 1000 + 100);
    /* 5 min periods: the grace is capped at 2 s */
    assert_int_equal(fl_analytics_next_delay(300000 * 7 + 1000, 300000), 299000 + 2000);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_day),      cmocka_unit_test(test_parse_day_rejects),
        cmocka_unit_test(test_range_defaults), cmocka_unit_test(test_range_limits),
        cmocka_unit_test(test_next_delay),
    };

    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
