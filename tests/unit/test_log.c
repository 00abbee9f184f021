/* tests/unit/test_log.c -- JSON-lines logging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

/* Points the logger at a pipe, runs nothing else; read_line() returns what was written. */
static int pipefd[2];

static int setup(void **state)
{
    (void)state;
    if (pipe(pipefd) != 0) {
        return -1;
    }
    fl_log_set_fd(pipefd[1]);
    fl_log_set_level(FL_DEBUG);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fl_log_set_fd(2);
    close(pipefd[0]);
    close(pipefd[1]);
    return 0;
}

static json_t *read_line(void)
{
    char buf[4096];
    ssize_t n = read(pipefd[0], buf, sizeof(buf) - 1);
    json_error_t jerr;

    assert_true(n > 0);
    buf[n] = '\0';
    assert_int_equal(buf[n - 1], '\n');
    assert_ptr_equal(strchr(buf, '\n'), buf + n - 1); /* exactly one line */
    return json_loads(buf, 0, &jerr);
}

static void test_log_writes_one_json_object_per_line(void **state)
{
    json_t *o;

    (void)state;
    fl_log(FL_INFO, "instance.started", FL_STR("workflow", "order"), FL_INT("seq", 42),
           FL_BOOL("new", true));
    o = read_line();
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(o, "event")), "instance.started");
    assert_string_equal(json_string_value(json_object_get(o, "workflow")), "order");
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), 42);
    assert_true(json_is_true(json_object_get(o, "new")));
    assert_int_equal(strlen(json_string_value(json_object_get(o, "ts"))), 24);
    json_decref(o);
}

static void test_log_escapes_quotes_newlines_and_bad_utf8(void **state)
{
    json_t *o;

    (void)state;
    fl_log(FL_WARN, "x", FL_STR("msg", "a \"quoted\"\nline \xff\xfe end"));
    o = read_line();
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "msg")), "a \"quoted\"\nline ?? end");
    json_decref(o);
}

static void test_log_without_fields(void **state)
{
    json_t *o;

    (void)state;
    fl_log(FL_ERROR, "server.stopped");
    o = read_line();
    assert_int_equal(json_object_size(o), 3);
    json_decref(o);
}

static void test_log_drops_lines_below_the_level(void **state)
{
    json_t *o;

    (void)state;
    fl_log_set_level(FL_WARN);
    fl_log(FL_INFO, "dropped");
    fl_log(FL_WARN, "kept");
    fl_log_set_level(FL_DEBUG);
    o = read_line();
    assert_string_equal(json_string_value(json_object_get(o, "event")), "kept");
    json_decref(o);
}

static void test_log_level_names_round_trip(void **state)
{
    fl_log_level level;

    (void)state;
    assert_true(fl_log_level_parse("warn", &level));
    assert_int_equal(level, FL_WARN);
    assert_string_equal(fl_log_level_name(level), "warn");
    assert_false(fl_log_level_parse("verbose", &level));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_writes_one_json_object_per_line),
        cmocka_unit_test(test_log_escapes_quotes_newlines_and_bad_utf8),
        cmocka_unit_test(test_log_without_fields),
        cmocka_unit_test(test_log_drops_lines_below_the_level),
        cmocka_unit_test(test_log_level_names_round_trip),
    };
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, setup, teardown);
}
