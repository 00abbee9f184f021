/* tests/unit/test_json.c -- reading what PostgreSQL prints (jsonb's exact big numbers),
 * and the member-name check of strict readers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/json.h"

static void test_json_reads_ordinary_documents_exactly(void **state)
{
    json_t *j = fl_json_from_pg("{\"n\": 3, \"x\": 1.5}", 0, NULL);

    (void)state;
    assert_non_null(j);
    assert_true(json_is_integer(json_object_get(j, "n")));
    assert_int_equal(json_integer_value(json_object_get(j, "n")), 3);
    json_decref(j);
}

/* 1.5e25 as jsonb prints it: valid JSON, too big for a 64-bit integer. */
static void test_json_reads_integers_beyond_64_bits_as_reals(void **state)
{
    json_t *j =
        fl_json_from_pg("{\"m\": {\"big\": -15000000000000000000000000}, \"n\": 3}", 0, NULL);

    (void)state;
    assert_non_null(j);
    assert_true(json_is_real(json_object_get(json_object_get(j, "m"), "big")));
    assert_true(json_real_value(json_object_get(json_object_get(j, "m"), "big")) < -1.4e25);
    json_decref(j);
}

static void test_json_still_refuses_what_is_not_json(void **state)
{
    json_error_t e;

    (void)state;
    assert_null(fl_json_from_pg("{\"a\": }", 0, &e));
    assert_true(e.line > 0);
    assert_null(fl_json_from_pg(NULL, 0, NULL));
}

static void test_json_unknown_member_names_the_first_stranger(void **state)
{
    static const char *const names[] = {"q", "limit", NULL};
    json_t *ok = json_pack("{s:s, s:i}", "q", "x", "limit", 3);
    json_t *typo = json_pack("{s:s, s:i}", "q", "x", "limt", 3);

    (void)state;
    assert_null(fl_json_unknown_member(ok, names));
    assert_string_equal(fl_json_unknown_member(typo, names), "limt");
    assert_null(fl_json_unknown_member(NULL, names)); /* not an object: nothing to name */
    assert_true(fl_json_name_in(names, "limit"));
    assert_false(fl_json_name_in(names, "Limit"));
    assert_false(fl_json_name_in(names, NULL));
    json_decref(ok);
    json_decref(typo);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_reads_ordinary_documents_exactly),
        cmocka_unit_test(test_json_reads_integers_beyond_64_bits_as_reals),
        cmocka_unit_test(test_json_still_refuses_what_is_not_json),
        cmocka_unit_test(test_json_unknown_member_names_the_first_stranger),
    };

    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
