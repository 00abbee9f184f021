/* tests/unit/test_ratelimit.c -- the per-key token bucket, on an injected clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "api/ratelimit_int.h"

static int64_t fake_ms;

static int64_t fake_now(void *arg)
{
    (void)arg;
    return fake_ms;
}

static const fl_clock fake_clock = {fake_now, fake_now, NULL};

static int take_n(fl_ratelimit *rl, const char *key, int n)
{
    int ok = 0;

    for (int i = 0; i < n; i++) {
        ok += fl_ratelimit_take(rl, key, NULL);
    }
    return ok;
}

static void test_ratelimit_burst_then_empty_with_retry_after(void **state)
{
    fl_ratelimit *rl = fl_ratelimit__new_clock(2, 5, &fake_clock);
    int retry = 0;

    (void)state;
    fake_ms = 1000000;
    assert_int_equal(take_n(rl, "k1", 5), 5);
    assert_false(fl_ratelimit_take(rl, "k1", &retry));
    assert_int_equal(retry, 1); /* 2/s: the next token is 500 ms away, rounded up */
    fl_ratelimit_free(rl);
}

static void test_ratelimit_refills_at_the_rate(void **state)
{
    fl_ratelimit *rl = fl_ratelimit__new_clock(10, 10, &fake_clock);

    (void)state;
    fake_ms = 5000;
    assert_int_equal(take_n(rl, "k", 10), 10);
    assert_false(fl_ratelimit_take(rl, "k", NULL));
    fake_ms += 99; /* 0.99 tokens */
    assert_false(fl_ratelimit_take(rl, "k", NULL));
    fake_ms += 1; /* 1 token */
    assert_true(fl_ratelimit_take(rl, "k", NULL));
    assert_false(fl_ratelimit_take(rl, "k", NULL));
    fake_ms += 350; /* 3.5 tokens */
    assert_int_equal(take_n(rl, "k", 10), 3);
    fake_ms += 3600 * 1000; /* idle for an hour: full, never more than the burst */
    assert_int_equal(take_n(rl, "k", 20), 10);
    fl_ratelimit_free(rl);
}

static void test_ratelimit_retry_after_in_whole_seconds(void **state)
{
    fl_ratelimit *rl = fl_ratelimit__new_clock(1, 1, &fake_clock);
    fl_ratelimit *slow;
    int retry = 0;

    (void)state;
    fake_ms = 0;
    assert_true(fl_ratelimit_take(rl, "k", &retry));
    assert_false(fl_ratelimit_take(rl, "k", &retry));
    assert_int_equal(retry, 1);
    fake_ms += 400;
    assert_false(fl_ratelimit_take(rl, "k", &retry));
    assert_int_equal(retry, 1); /* 600 ms: at least one second */
    fl_ratelimit_free(rl);

    /* a rate below one per second cannot be configured; a tiny one still rounds up */
    slow = fl_ratelimit__new_clock(1, 3, &fake_clock);
    assert_int_equal(take_n(slow, "s", 3), 3);
    assert_false(fl_ratelimit_take(slow, "s", &retry));
    assert_int_equal(retry, 1);
    fl_ratelimit_free(slow);
}

static void test_ratelimit_keys_are_independent(void **state)
{
    fl_ratelimit *rl = fl_ratelimit__new_clock(1, 2, &fake_clock);

    (void)state;
    fake_ms = 10;
    assert_int_equal(take_n(rl, "a", 5), 2);
    assert_int_equal(take_n(rl, "b", 5), 2);
    assert_int_equal(take_n(rl, "a", 1), 0);
    fl_ratelimit_free(rl);
}

static void test_ratelimit_zero_rate_is_unlimited(void **state)
{
    fl_ratelimit *rl = fl_ratelimit__new_clock(0, 1, &fake_clock);

    (void)state;
    assert_int_equal(take_n(rl, "k", 10000), 10000);
    fl_ratelimit_free(rl);
    fl_ratelimit_free(NULL);
}

/* Many more keys than slots: memory stays fixed and every new key gets a bucket. When a
 * busy key's bucket is taken by another key it comes back full, which only errs on the
 * lenient side; a key whose bucket survived stays as empty as it was. */
static void test_ratelimit_many_keys_stay_bounded(void **state)
{
    fl_ratelimit *rl = fl_ratelimit__new_clock(1, 3, &fake_clock);
    char key[32];

    (void)state;
    fake_ms = 1;
    assert_int_equal(take_n(rl, "busy", 3), 3);
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        assert_true(fl_ratelimit_take(rl, key, NULL));
    }
    assert_true(take_n(rl, "busy", 5) <= 3);
    fake_ms += 1000;
    assert_true(fl_ratelimit_take(rl, "key-99999", NULL));
    fl_ratelimit_free(rl);
}

static void test_ratelimit_long_keys_are_cut_not_overflowed(void **state)
{
    fl_ratelimit *rl = fl_ratelimit__new_clock(1, 1, &fake_clock);
    char key[200];

    (void)state;
    memset(key, 'x', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    assert_true(fl_ratelimit_take(rl, key, NULL));
    assert_false(fl_ratelimit_take(rl, key, NULL));
    fl_ratelimit_free(rl);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ratelimit_burst_then_empty_with_retry_after),
        cmocka_unit_test(test_ratelimit_refills_at_the_rate),
        cmocka_unit_test(test_ratelimit_retry_after_in_whole_seconds),
        cmocka_unit_test(test_ratelimit_keys_are_independent),
        cmocka_unit_test(test_ratelimit_zero_rate_is_unlimited),
        cmocka_unit_test(test_ratelimit_many_keys_stay_bounded),
        cmocka_unit_test(test_ratelimit_long_keys_are_cut_not_overflowed),
    };

    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
