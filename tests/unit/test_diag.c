/* tests/unit/test_diag.c -- the located problem list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/diag.h"

static void test_diag_formats_file_line_col(void **state)
{
    fl_diags d;
    char line[256];

    (void)state;
    fl_diags_init(&d, 10);
    fl_diags_add(&d, "order.yaml", 12, 7, "unknown key \"%s\"", "transitons");
    fl_diags_format(&d, 0, line, sizeof(line));
    assert_string_equal(line, "order.yaml:12:7: error: unknown key \"transitons\"");
    fl_diags_deinit(&d);
}

static void test_diag_without_position(void **state)
{
    fl_diags d;
    char line[256];

    (void)state;
    fl_diags_init(&d, 10);
    fl_diags_add(&d, "gone.yaml", 0, 0, "could not open file");
    fl_diags_format(&d, 0, line, sizeof(line));
    assert_string_equal(line, "gone.yaml: error: could not open file");
    fl_diags_deinit(&d);
}

static void test_diag_sort_is_by_position_and_stable(void **state)
{
    fl_diags d;

    (void)state;
    fl_diags_init(&d, 10);
    fl_diags_add(&d, "b.yaml", 1, 1, "third");
    fl_diags_add(&d, "a.yaml", 9, 1, "second");
    fl_diags_add(&d, "a.yaml", 2, 5, "first");
    fl_diags_add(&d, "a.yaml", 9, 1, "second, again");
    fl_diags_sort(&d);
    assert_string_equal(d.items[0].msg, "first");
    assert_string_equal(d.items[1].msg, "second");
    assert_string_equal(d.items[2].msg, "second, again");
    assert_string_equal(d.items[3].msg, "third");
    fl_diags_deinit(&d);
}

static void test_diag_caps_the_list(void **state)
{
    fl_diags d;

    (void)state;
    fl_diags_init(&d, 2);
    for (int i = 0; i < 5; i++) {
        fl_diags_add(&d, "x.yaml", (unsigned)i + 1, 1, "problem %d", i);
    }
    assert_int_equal(d.count, 2);
    assert_int_equal(d.dropped, 3);
    fl_diags_deinit(&d);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diag_formats_file_line_col),
        cmocka_unit_test(test_diag_without_position),
        cmocka_unit_test(test_diag_sort_is_by_position_and_stable),
        cmocka_unit_test(test_diag_caps_the_list),
    };

    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
