/* tests/unit/test_backoff.c -- the retry policy: delays, caps, jitter, Retry-After and the
 * retryable-outcome classifier. No clock and no sleeps: now and the jitter are injected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/backoff.h"
#include "core/log.h"

/* 2015-10-21T07:28:00Z, the date in RFC 9110's example. */
#define OCT21_MS INT64_C(1445412480000)

static fl_backoff_policy policy(fl_backoff_kind kind, int64_t delay, int64_t max)
{
    fl_backoff_policy p = FL_BACKOFF_POLICY_INIT;

    p.kind = kind;
    p.delay_ms = delay;
    p.max_delay_ms = max;
    p.max_retry_after_ms = 0;
    p.jitter = 0.0;
    return p;
}

static uint64_t all_ones(void *arg)
{
    (void)arg;
    return UINT64_MAX;
}

static void test_backoff_fixed_is_constant(void **state)
{
    fl_backoff_policy p = policy(FL_BACKOFF_FIXED, 250, 10000);

    (void)state;
    assert_int_equal(fl_backoff_delay_ms(&p, 1, NULL, NULL, -1), 250);
    assert_int_equal(fl_backoff_delay_ms(&p, 2, NULL, NULL, -1), 250);
    assert_int_equal(fl_backoff_delay_ms(&p, 9, NULL, NULL, -1), 250);
}

static void test_backoff_exponential_doubles(void **state)
{
    fl_backoff_policy p = policy(FL_BACKOFF_EXPONENTIAL, 100, 0);

    (void)state;
    assert_int_equal(fl_backoff_delay_ms(&p, 1, NULL, NULL, -1), 100);
    assert_int_equal(fl_backoff_delay_ms(&p, 2, NULL, NULL, -1), 200);
    assert_int_equal(fl_backoff_delay_ms(&p, 3, NULL, NULL, -1), 400);
    assert_int_equal(fl_backoff_delay_ms(&p, 6, NULL, NULL, -1), 3200);
}

static void test_backoff_max_delay_caps(void **state)
{
    fl_backoff_policy p = policy(FL_BACKOFF_EXPONENTIAL, 100, 1000);
    fl_backoff_policy big = policy(FL_BACKOFF_FIXED, 5000, 1000);

    (void)state;
    assert_int_equal(fl_backoff_delay_ms(&p, 4, NULL, NULL, -1), 800);
    assert_int_equal(fl_backoff_delay_ms(&p, 5, NULL, NULL, -1), 1000);
    assert_int_equal(fl_backoff_delay_ms(&p, 30, NULL, NULL, -1), 1000);
    assert_int_equal(fl_backoff_delay_ms(&big, 1, NULL, NULL, -1), 1000);
}

static void test_backoff_large_attempts_do_not_overflow(void **state)
{
    fl_backoff_policy capped = policy(FL_BACKOFF_EXPONENTIAL, 1000, 60000);
    fl_backoff_policy uncapped = policy(FL_BACKOFF_EXPONENTIAL, 1000, 0);
    fl_backoff_policy huge = policy(FL_BACKOFF_EXPONENTIAL, INT64_MAX / 3, 0);

    (void)state;
    assert_int_equal(fl_backoff_delay_ms(&capped, 64, NULL, NULL, -1), 60000);
    assert_int_equal(fl_backoff_delay_ms(&capped, INT32_MAX, NULL, NULL, -1), 60000);
    assert_int_equal(fl_backoff_delay_ms(&uncapped, 200, NULL, NULL, -1), INT64_MAX);
    assert_int_equal(fl_backoff_delay_ms(&huge, 3, NULL, NULL, -1), INT64_MAX);
    assert_true(fl_backoff_delay_ms(&uncapped, 63, NULL, NULL, -1) > 0);
}

static void test_backoff_jitter_stays_in_bounds(void **state)
{
    fl_backoff_policy p = policy(FL_BACKOFF_EXPONENTIAL, 1000, 8000);
    uint64_t seed = 42;
    int64_t lo = INT64_MAX;
    int64_t hi = 0;

    (void)state;
    p.jitter = 0.5;
    for (int i = 0; i < 10000; i++) {
        int64_t d = fl_backoff_delay_ms(&p, 3, fl_backoff_splitmix64, &seed, -1);
        assert_true(d > 2000 && d <= 4000);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_true(lo < 2100); /* the whole range is used, not one value */
    assert_true(hi > 3900);
    p.jitter = 1.0; /* full jitter never reaches 0 nor exceeds the cap */
    assert_int_equal(fl_backoff_delay_ms(&p, 10, all_ones, NULL, -1), 1);
}

static void test_backoff_jitter_is_deterministic_for_a_seed(void **state)
{
    fl_backoff_policy p = policy(FL_BACKOFF_EXPONENTIAL, 1000, 0);
    uint64_t a = 7;
    uint64_t b = 7;

    (void)state;
    p.jitter = 0.3;
    for (int i = 1; i < 20; i++) {
        assert_int_equal(fl_backoff_delay_ms(&p, i, fl_backoff_splitmix64, &a, -1),
                         fl_backoff_delay_ms(&p, i, fl_backoff_splitmix64, &b, -1));
    }
}

static void test_backoff_retry_after_wins_when_larger(void **state)
{
    fl_backoff_policy p = policy(FL_BACKOFF_EXPONENTIAL, 100, 1000);

    (void)state;
    p.max_retry_after_ms = 120000;
    assert_int_equal(fl_backoff_delay_ms(&p, 1, NULL, NULL, 1000), 1000);
    assert_int_equal(fl_backoff_delay_ms(&p, 1, NULL, NULL, 5000), 5000);
    assert_int_equal(fl_backoff_delay_ms(&p, 4, NULL, NULL, 0), 800);
    assert_int_equal(fl_backoff_delay_ms(&p, 1, NULL, NULL, 999999), 120000);
    p.max_retry_after_ms = 0; /* falls back to max_delay_ms */
    assert_int_equal(fl_backoff_delay_ms(&p, 1, NULL, NULL, 5000), 1000);
}

static void test_backoff_retry_after_seconds(void **state)
{
    int64_t ms = 0;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_backoff_parse_retry_after("1", 0, &ms, &err), FL_OK);
    assert_int_equal(ms, 1000);
    assert_int_equal(fl_backoff_parse_retry_after(" 120 ", 0, &ms, &err), FL_OK);
    assert_int_equal(ms, 120000);
    assert_int_equal(fl_backoff_parse_retry_after("0", 0, &ms, &err), FL_OK);
    assert_int_equal(ms, 0);
    assert_int_equal(fl_backoff_parse_retry_after("99999999999999999999999", 0, &ms, &err), FL_OK);
    assert_true(ms > INT64_C(1000000000000));
}

static void test_backoff_retry_after_date(void **state)
{
    int64_t ms = 0;
    fl_err err = FL_ERR_INIT;
    const char *date = "Wed, 21 Oct 2015 07:28:00 GMT";

    (void)state;
    assert_int_equal(fl_backoff_parse_retry_after(date, OCT21_MS - 3000, &ms, &err), FL_OK);
    assert_int_equal(ms, 3000);
    assert_int_equal(fl_backoff_parse_retry_after(date, OCT21_MS + 5000, &ms, &err), FL_OK);
    assert_int_equal(ms, 0); /* in the past: retry now */
}

static void test_backoff_retry_after_rejects_garbage(void **state)
{
    static const char *bad[] = {"",
                                "-1",
                                "1.5",
                                "12s",
                                "soon",
                                "+3",
                                "Wed, 21 Oct 2015 07:28:00 UTC",
                                "Wed, 21 Oct 2015 07:28:00 GMT junk",
                                "Wednesday, 21-Oct-15 07:28:00 GMT",
                                "Wed, 21 Oct 2015 25:28:00 GMT",
                                "Wed, 21 Foo 2015 07:28:00 GMT"};
    int64_t ms = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fl_err err = FL_ERR_INIT;
        assert_int_equal(fl_backoff_parse_retry_after(bad[i], 0, &ms, &err), FL_EINVAL);
        assert_int_equal(ms, -1);
        assert_string_equal(err.msg,
                            "invalid Retry-After value: expected delta-seconds or an IMF-fixdate");
    }
    assert_int_equal(fl_backoff_parse_retry_after(NULL, 0, &ms, NULL), FL_EINVAL);
}

static void test_backoff_classifier_table(void **state)
{
    static const struct {
        fl_rc rc;
        long status;
        bool retry;
    } rows[] = {
        {FL_OK, 200, false},    {FL_OK, 201, false},      {FL_OK, 204, false},
        {FL_OK, 301, false},    {FL_OK, 400, false},      {FL_OK, 401, false},
        {FL_OK, 403, false},    {FL_OK, 404, false},      {FL_OK, 409, false},
        {FL_OK, 413, false},    {FL_OK, 422, false},      {FL_OK, 408, true},
        {FL_OK, 425, true},     {FL_OK, 429, true},       {FL_OK, 500, true},
        {FL_OK, 501, false},    {FL_OK, 502, true},       {FL_OK, 503, true},
        {FL_OK, 504, true},     {FL_OK, 505, false},      {FL_ETIMEDOUT, 0, true},
        {FL_EUNAVAIL, 0, true}, {FL_ETOOBIG, 0, false},   {FL_EIO, 0, false},
        {FL_EINVAL, 0, false},  {FL_EINTERNAL, 0, false},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (fl_backoff_is_retryable(rows[i].rc, rows[i].status) != rows[i].retry) {
            fail_msg("row %zu: %s status %ld should%s be retryable", i, fl_rc_name(rows[i].rc),
                     rows[i].status, rows[i].retry ? "" : " not");
        }
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_fixed_is_constant),
        cmocka_unit_test(test_backoff_exponential_doubles),
        cmocka_unit_test(test_backoff_max_delay_caps),
        cmocka_unit_test(test_backoff_large_attempts_do_not_overflow),
        cmocka_unit_test(test_backoff_jitter_stays_in_bounds),
        cmocka_unit_test(test_backoff_jitter_is_deterministic_for_a_seed),
        cmocka_unit_test(test_backoff_retry_after_wins_when_larger),
        cmocka_unit_test(test_backoff_retry_after_seconds),
        cmocka_unit_test(test_backoff_retry_after_date),
        cmocka_unit_test(test_backoff_retry_after_rejects_garbage),
        cmocka_unit_test(test_backoff_classifier_table),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
