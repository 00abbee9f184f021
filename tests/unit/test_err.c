/* tests/unit/test_err.c -- return codes, error detail and the bounded buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"

static void test_err_http_status_comes_from_the_table(void **state)
{
    (void)state;
    assert_int_equal(fl_rc_http_status(FL_OK), 200);
    assert_int_equal(fl_rc_http_status(FL_ENOTFOUND), 404);
    assert_int_equal(fl_rc_http_status(FL_ETOOBIG), 413);
    assert_int_equal(fl_rc_http_status(FL_EUNAVAIL), 503);
    assert_string_equal(fl_rc_name(FL_ECONFLICT), "FL_ECONFLICT");
}

static void test_err_first_error_wins(void **state)
{
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_err_set(&err, FL_EIO, "could not read \"%s\"", "a"), FL_EIO);
    assert_int_equal(fl_err_set(&err, FL_EINVAL, "later"), FL_EINVAL);
    assert_int_equal(err.code, FL_EIO);
    assert_string_equal(err.msg, "could not read \"a\"");
    fl_err_prefix(&err, "loading %s", "x.yaml");
    assert_string_equal(err.msg, "loading x.yaml: could not read \"a\"");
}

static void test_err_null_err_is_allowed(void **state)
{
    (void)state;
    assert_int_equal(fl_err_set(NULL, FL_EINVAL, "ignored"), FL_EINVAL);
}

static void test_buf_refuses_to_grow_past_its_cap(void **state)
{
    fl_buf b;
    fl_err err = FL_ERR_INIT;

    (void)state;
    fl_buf_init(&b, 8);
    assert_int_equal(fl_buf_append(&b, "12345", 5, &err), FL_OK);
    assert_int_equal(fl_buf_append(&b, "6789", 4, &err), FL_ETOOBIG);
    assert_int_equal(b.len, 5); /* unchanged by the failed append */
    assert_string_equal(b.data, "12345");
    fl_buf_deinit(&b);
}

static void test_buf_appendf_and_steal(void **state)
{
    fl_buf b;
    char *s;

    (void)state;
    fl_buf_init(&b, 1024);
    assert_int_equal(fl_buf_appendf(&b, NULL, "%s=%d", "port", 8080), FL_OK);
    s = fl_buf_steal(&b);
    assert_string_equal(s, "port=8080");
    assert_int_equal(b.len, 0);
    free(s);
}

static void test_buf_read_missing_file_is_not_found(void **state)
{
    fl_buf b;
    fl_err err = FL_ERR_INIT;

    (void)state;
    fl_buf_init(&b, 1024);
    assert_int_equal(fl_buf_read_file(&b, "/nonexistent/flowd.yaml", &err), FL_ENOTFOUND);
    assert_non_null(strstr(err.msg, "could not open file \"/nonexistent/flowd.yaml\""));
    fl_buf_deinit(&b);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_http_status_comes_from_the_table),
        cmocka_unit_test(test_err_first_error_wins),
        cmocka_unit_test(test_err_null_err_is_allowed),
        cmocka_unit_test(test_buf_refuses_to_grow_past_its_cap),
        cmocka_unit_test(test_buf_appendf_and_steal),
        cmocka_unit_test(test_buf_read_missing_file_is_not_found),
    };
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
