/* tests/unit/test_ids.c -- UUIDv7 layout and ordering, on an injected clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/ids.h"

static int64_t fake_ms;

static int64_t fake_now(void *arg)
{
    (void)arg;
    return fake_ms;
}

static const fl_clock fake_clock = {fake_now, fake_now, NULL};

static void test_ids_uuid7_has_version_variant_and_time(void **state)
{
    fl_ids *ids = fl_ids_new(&fake_clock);
    char id[FL_UUID_STRLEN + 1];

    (void)state;
    fake_ms = 0x0123456789abLL;
    fl_ids_uuid7(ids, id);
    assert_int_equal(strlen(id), 36);
    assert_memory_equal(id, "01234567-89ab-7", 15);
    assert_non_null(strchr("89ab", id[19]));
    assert_true(id[8] == '-' && id[13] == '-' && id[18] == '-' && id[23] == '-');
    fl_ids_free(ids);
}

static void test_ids_increase_within_one_millisecond(void **state)
{
    fl_ids *ids = fl_ids_new(&fake_clock);
    char prev[FL_UUID_STRLEN + 1], next[FL_UUID_STRLEN + 1];

    (void)state;
    fake_ms = 1700000000000LL;
    fl_ids_uuid7(ids, prev);
    for (int i = 0; i < 10000; i++) { /* more than the 12-bit counter holds */
        fl_ids_uuid7(ids, next);
        assert_true(strcmp(prev, next) < 0);
        memcpy(prev, next, sizeof(prev));
    }
    fl_ids_free(ids);
}

static void test_ids_never_go_back_when_the_clock_does(void **state)
{
    fl_ids *ids = fl_ids_new(&fake_clock);
    char before[FL_UUID_STRLEN + 1], after[FL_UUID_STRLEN + 1];

    (void)state;
    fake_ms = 1700000000000LL;
    fl_ids_uuid7(ids, before);
    fake_ms -= 5000;
    fl_ids_uuid7(ids, after);
    assert_true(strcmp(before, after) < 0);
    fl_ids_free(ids);
}

/* Random bytes come from a per-thread pool of 256: a draw larger than the pool, and
 * draws across its refill, are all filled, and no two draws repeat. */
static void test_ids_random_bytes_span_the_pool(void **state)
{
    uint8_t a[300], b[300], zero[300];
    size_t same = 0;

    (void)state;
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    memset(zero, 0, sizeof(zero));
    fl_random_bytes(a, 7); /* leaves the pool part-used */
    fl_random_bytes(a, sizeof(a));
    fl_random_bytes(b, sizeof(b));
    assert_memory_not_equal(a, zero, sizeof(a));
    assert_memory_not_equal(a, b, sizeof(a));
    for (size_t i = 0; i < sizeof(a); i++) {
        same += a[i] == b[i];
    }
    assert_true(same < 20); /* about 300/256 expected by chance */
    fl_random_bytes(b, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_uuid7_has_version_variant_and_time),
        cmocka_unit_test(test_ids_increase_within_one_millisecond),
        cmocka_unit_test(test_ids_never_go_back_when_the_clock_does),
        cmocka_unit_test(test_ids_random_bytes_span_the_pool),
    };
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
