/* tests/unit/test_engine_batch.c -- the pure bookkeeping of an engine batch: grouping
 * events by (tenant, key) in first-seen order, finding events given twice, and when a
 * batch stops filling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "consumers/engine_int.h"
#include "core/log.h"

static void test_engine_group_keeps_first_seen_order(void **state)
{
    const fl_store_key in[] = {{"A", "k2"}, {"A", "k1"}, {"B", "k2"}, {"A", "k2"}, {"A", "k1"}};
    size_t group[5];
    fl_store_key keys[5];
    size_t n = fl_engine__group(in, 5, group, keys);

    (void)state;
    assert_int_equal(n, 3);
    assert_string_equal(keys[0].key, "k2");
    assert_string_equal(keys[0].tenant, "A");
    assert_string_equal(keys[1].key, "k1");
    assert_string_equal(keys[2].tenant, "B");
    assert_int_equal(group[0], 0);
    assert_int_equal(group[1], 1);
    assert_int_equal(group[2], 2);
    assert_int_equal(group[3], 0);
    assert_int_equal(group[4], 1);
}

static void test_engine_group_skips_null_keys(void **state)
{
    const fl_store_key in[] = {{NULL, NULL}, {"A", "k"}, {NULL, NULL}};
    size_t group[3];
    fl_store_key keys[3];

    (void)state;
    assert_int_equal(fl_engine__group(in, 3, group, keys), 1);
    assert_int_equal(group[0], SIZE_MAX);
    assert_int_equal(group[1], 0);
    assert_int_equal(group[2], SIZE_MAX);
}

static void test_engine_group_of_nothing(void **state)
{
    size_t group[1];
    fl_store_key keys[1];

    (void)state;
    assert_int_equal(fl_engine__group(NULL, 0, group, keys), 0);
}

static void test_engine_dedupe_marks_later_copies(void **state)
{
    const fl_store_event_ref refs[] = {{"A", "s", "1"}, {"A", "s", "2"}, {"A", "s", "1"},
                                       {"B", "s", "1"}, {"A", "t", "1"}, {"A", "s", "1"}};
    bool dup[6];

    (void)state;
    fl_engine__dedupe(refs, 6, dup);
    assert_false(dup[0]);
    assert_false(dup[1]);
    assert_true(dup[2]);
    assert_false(dup[3]);
    assert_false(dup[4]);
    assert_true(dup[5]);
}

static void test_engine_dedupe_ignores_dead_letters(void **state)
{
    const fl_store_event_ref refs[] = {{"", "", NULL}, {"", "", NULL}};
    bool dup[2];

    (void)state;
    fl_engine__dedupe(refs, 2, dup);
    assert_false(dup[0]);
    assert_false(dup[1]);
}

/* An empty batch waits for its first record; a started one never waits for more. */
static void test_engine_fill_waits_only_for_the_first(void **state)
{
    (void)state;
    assert_int_equal(fl_engine__fill_wait(0, 500, 1000, 0, 100), 100);
    assert_int_equal(fl_engine__fill_wait(1, 500, 1000, 1005, 100), 0);
    assert_int_equal(fl_engine__fill_wait(499, 500, 1004, 1005, 100), 0);
}

static void test_engine_fill_closes_full_or_late(void **state)
{
    (void)state;
    assert_int_equal(fl_engine__fill_wait(500, 500, 1000, 1005, 100), -1);
    assert_int_equal(fl_engine__fill_wait(3, 500, 1005, 1005, 100), -1);
    assert_int_equal(fl_engine__fill_wait(3, 500, 1009, 1005, 100), -1);
    /* batch_wait 0: the deadline is the first record's own time, one record a batch */
    assert_int_equal(fl_engine__fill_wait(1, 500, 1000, 1000, 100), -1);
    assert_int_equal(fl_engine__fill_wait(1, 1, 1000, 1005, 100), -1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_group_keeps_first_seen_order),
        cmocka_unit_test(test_engine_group_skips_null_keys),
        cmocka_unit_test(test_engine_group_of_nothing),
        cmocka_unit_test(test_engine_dedupe_marks_later_copies),
        cmocka_unit_test(test_engine_dedupe_ignores_dead_letters),
        cmocka_unit_test(test_engine_fill_waits_only_for_the_first),
        cmocka_unit_test(test_engine_fill_closes_full_or_late),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
