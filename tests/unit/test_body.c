/* tests/unit/test_body.c -- strict JSON request bodies: depth on the tree, duplicate keys,
 * RFC 6901 pointers, invalid UTF-8, trailing garbage, and the errors array. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/body.h"
#include "core/json_arena.h"
#include "core/log.h"

/* Decodes s with max_depth; returns the value (or NULL) and leaves errors in *errs. */
static json_t *decode(const char *s, size_t n, int depth, json_t **errs)
{
    json_t *v = (json_t *)1;
    bool ok = fl_body_decode(s, n, depth, &v, errs);

    assert_int_equal(ok, v != NULL);
    assert_int_equal(ok, *errs == NULL);
    return v;
}

#define DECODE(s, depth, errs) decode((s), strlen(s), (depth), (errs))

/* The only error's pointer and detail. */
static void assert_one_error(json_t *errs, const char *pointer, const char *detail_part)
{
    json_t *e;

    assert_non_null(errs);
    assert_int_equal(json_array_size(errs), 1);
    e = json_array_get(errs, 0);
    assert_string_equal(json_string_value(json_object_get(e, "pointer")), pointer);
    assert_non_null(strstr(json_string_value(json_object_get(e, "detail")), detail_part));
    assert_int_equal(json_object_size(e), 2);
}

static void test_body_object_happy_path(void **state)
{
    json_t *errs;
    json_t *v = DECODE("{\"a\": [1, {\"b\": null}], \"c\": \"\\u00e9\"}", 3, &errs);

    (void)state;
    assert_true(json_is_object(v));
    assert_string_equal(json_string_value(json_object_get(v, "c")), "\xc3\xa9");
    json_decref(v);
}

static void test_body_scalar_is_depth_zero(void **state)
{
    json_t *errs;
    json_t *v = DECODE("42", 0, &errs);

    (void)state;
    assert_true(json_is_integer(v));
    json_decref(v);
    assert_null(DECODE("[]", 0, &errs));
    assert_one_error(errs, "", "nested deeper than 0");
    json_decref(errs);
}

static void test_body_depth_limit_is_inclusive(void **state)
{
    json_t *errs;
    json_t *v = DECODE("{\"a\":{\"b\":[1]}}", 3, &errs);

    (void)state;
    assert_non_null(v);
    json_decref(v);
    assert_null(DECODE("{\"a\":{\"b\":[[1]]}}", 3, &errs));
    assert_one_error(errs, "/a/b/0", "nested deeper than 3 levels");
    json_decref(errs);
}

static void test_body_depth_pointer_in_arrays(void **state)
{
    json_t *errs;

    (void)state;
    assert_null(DECODE("[1, 2, {\"x\": 1}, [[3]]]", 2, &errs));
    assert_one_error(errs, "/3/0", "deeper");
    json_decref(errs);
}

static void test_body_pointer_escapes_tilde_and_slash(void **state)
{
    json_t *errs;

    (void)state;
    assert_null(DECODE("{\"a/b\": {\"m~n\": {\"\": [1]}}}", 3, &errs));
    assert_one_error(errs, "/a~1b/m~0n/", "deeper");
    json_decref(errs);
}

static void test_body_very_deep_input_is_rejected(void **state)
{
    char buf[4100];
    json_t *errs;

    (void)state;
    memset(buf, '[', 2000);
    memset(buf + 2000, ']', 2000);
    buf[4000] = '\0';
    assert_null(DECODE(buf, 32, &errs));
    assert_non_null(errs);
    json_decref(errs);
}

static void test_body_duplicate_keys_are_rejected(void **state)
{
    json_t *errs;

    (void)state;
    assert_null(DECODE("{\"a\": 1, \"b\": {\"x\": 1, \"x\": 2}}", 10, &errs));
    assert_one_error(errs, "", "duplicate");
    json_decref(errs);
}

static void test_body_syntax_error_names_line_and_column(void **state)
{
    json_t *errs;

    (void)state;
    assert_null(DECODE("{\n  \"a\": 1,\n  \"b\" 2\n}", 10, &errs));
    assert_one_error(errs, "", "line 3 column");
    json_decref(errs);
}

static void test_body_trailing_garbage_is_rejected(void **state)
{
    json_t *errs;

    (void)state;
    assert_null(DECODE("{\"a\": 1} x", 10, &errs));
    assert_one_error(errs, "", "invalid JSON");
    json_decref(errs);
    assert_null(DECODE("{} {}", 10, &errs));
    json_decref(errs);
}

static void test_body_trailing_whitespace_is_fine(void **state)
{
    json_t *errs;
    json_t *v = DECODE("{\"a\": 1}\r\n\t ", 10, &errs);

    (void)state;
    assert_non_null(v);
    json_decref(v);
}

static void test_body_bad_utf8_is_rejected(void **state)
{
    json_t *errs;

    (void)state;
    assert_null(DECODE("{\"a\": \"\xc3\x28\"}", 10, &errs));
    assert_one_error(errs, "", "invalid JSON");
    json_decref(errs);
    assert_null(DECODE("{\"a\": \"\xed\xa0\x80\"}", 10, &errs)); /* a UTF-16 surrogate */
    json_decref(errs);
}

static void test_body_nul_is_rejected(void **state)
{
    json_t *errs;

    (void)state;
    assert_null(DECODE("{\"a\": \"x\\u0000y\"}", 10, &errs));
    json_decref(errs);
    assert_null(decode("{\"a\": 1}\0", 9, 10, &errs)); /* a raw NUL after the value */
    json_decref(errs);
}

static void test_body_empty_is_rejected(void **state)
{
    json_t *errs;

    (void)state;
    assert_null(decode(NULL, 0, 10, &errs));
    assert_one_error(errs, "", "invalid JSON");
    json_decref(errs);
    assert_null(DECODE("   ", 10, &errs));
    json_decref(errs);
}

static void test_body_error_appends(void **state)
{
    json_t *errs = NULL;

    (void)state;
    fl_body_error(&errs, "/flow_type", "must be one of %s", "a, b");
    fl_body_error(&errs, NULL, "whole");
    assert_int_equal(json_array_size(errs), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errs, 0), "detail")),
                        "must be one of a, b");
    assert_string_equal(json_string_value(json_object_get(json_array_get(errs, 1), "pointer")), "");
    json_decref(errs);
}

/* A body nested as deep as jansson goes, decoded on a thread whose stack is as small as a
 * civetweb worker's (Debian's USE_STACK_SIZE=102400): the parse and the freeing of the
 * rejected tree happen on the large stack (core/bigstack.h), so this is a 400, not a
 * stack overflow. Also one nesting past jansson's own limit (its error, same stack). */
typedef struct deep_case {
    size_t levels;
    bool ok;
    json_t *errs;
} deep_case;

static void *decode_deep_on_small_stack(void *arg)
{
    deep_case *c = arg;
    char *s = malloc(2 * c->levels + 1);
    json_t *v = NULL;

    memset(s, '[', c->levels);
    memset(s + c->levels, ']', c->levels);
    s[2 * c->levels] = '\0';
    c->ok = fl_body_decode(s, 2 * c->levels, 32, &v, &c->errs);
    json_decref(v);
    free(s);
    return NULL;
}

static void test_body_deep_nesting_on_a_small_stack(void **state)
{
    static const size_t levels[] = {2000, 5000};
    pthread_attr_t attr;

    (void)state;
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstacksize(&attr, 102400), 0);
    for (size_t i = 0; i < 2; i++) {
        deep_case c = {levels[i], true, NULL};
        pthread_t t;

        assert_int_equal(pthread_create(&t, &attr, decode_deep_on_small_stack, &c), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_false(c.ok);
        assert_non_null(c.errs);
        assert_non_null(
            strstr(json_string_value(json_object_get(json_array_get(c.errs, 0), "detail")),
                   i == 0 ? "nested deeper than 32 levels" : "invalid JSON"));
        json_decref(c.errs);
    }
    pthread_attr_destroy(&attr);
}

/* Every tree a test parsed on this thread was freed: the arena's count is back to 0. */
static int no_arena_leak(void **state)
{
    (void)state;
    assert_int_equal(fl_json_arena_live(), 0);
    return 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_body_object_happy_path, no_arena_leak),
        cmocka_unit_test_teardown(test_body_deep_nesting_on_a_small_stack, no_arena_leak),
        cmocka_unit_test_teardown(test_body_scalar_is_depth_zero, no_arena_leak),
        cmocka_unit_test_teardown(test_body_depth_limit_is_inclusive, no_arena_leak),
        cmocka_unit_test_teardown(test_body_depth_pointer_in_arrays, no_arena_leak),
        cmocka_unit_test_teardown(test_body_pointer_escapes_tilde_and_slash, no_arena_leak),
        cmocka_unit_test_teardown(test_body_very_deep_input_is_rejected, no_arena_leak),
        cmocka_unit_test_teardown(test_body_duplicate_keys_are_rejected, no_arena_leak),
        cmocka_unit_test_teardown(test_body_syntax_error_names_line_and_column, no_arena_leak),
        cmocka_unit_test_teardown(test_body_trailing_garbage_is_rejected, no_arena_leak),
        cmocka_unit_test_teardown(test_body_trailing_whitespace_is_fine, no_arena_leak),
        cmocka_unit_test_teardown(test_body_bad_utf8_is_rejected, no_arena_leak),
        cmocka_unit_test_teardown(test_body_nul_is_rejected, no_arena_leak),
        cmocka_unit_test_teardown(test_body_empty_is_rejected, no_arena_leak),
        cmocka_unit_test_teardown(test_body_error_appends, no_arena_leak),
    };

    fl_log_set_level(FL_ERROR);
    fl_json_arena_install(); /* as flowd's main does: bodies parse in the arena */
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
