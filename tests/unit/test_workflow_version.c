/* tests/unit/test_workflow_version.c -- rewriting a definition's `version:` in place
 * (engine/workflow_version.c): only the one scalar changes, wherever it sits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/log.h"
#include "engine/workflow.h"

static char *rewrite(const char *text, int version)
{
    char *out = NULL;
    fl_err err = FL_ERR_INIT;

    assert_int_equal(fl_workflow_set_version(text, strlen(text), version, &out, &err), FL_OK);
    return out;
}

static void test_version_plain(void **state)
{
    char *out = rewrite("workflow: a\nversion: 1\ninitial: s\n", 12);

    (void)state;
    assert_string_equal(out, "workflow: a\nversion: 12\ninitial: s\n");
    free(out);
}

static void test_version_keeps_comments_and_layout(void **state)
{
    char *out = rewrite("# héllo wörld\nworkflow: a   # the name\nversion:   7 # bump me\n", 8);

    (void)state;
    assert_string_equal(out, "# héllo wörld\nworkflow: a   # the name\nversion:   8 # bump me\n");
    free(out);
}

static void test_version_after_multibyte_on_same_line(void **state)
{
    char *out = rewrite("{description: \"ünïcödé\", version: 3, workflow: a}\n", 40);

    (void)state;
    assert_string_equal(out, "{description: \"ünïcödé\", version: 40, workflow: a}\n");
    free(out);
}

static void test_version_nested_key_is_not_it(void **state)
{
    char *out = rewrite("context:\n  version: 99\nworkflow: a\nversion: 2\n", 3);

    (void)state;
    assert_string_equal(out, "context:\n  version: 99\nworkflow: a\nversion: 3\n");
    free(out);
}

static void test_version_missing_is_einval(void **state)
{
    char *out = (char *)1;
    fl_err err = FL_ERR_INIT;
    const char *t = "workflow: a\ncontext: {version: 1}\n";

    (void)state;
    assert_int_equal(fl_workflow_set_version(t, strlen(t), 2, &out, &err), FL_EINVAL);
    assert_null(out);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_plain),
        cmocka_unit_test(test_version_keeps_comments_and_layout),
        cmocka_unit_test(test_version_after_multibyte_on_same_line),
        cmocka_unit_test(test_version_nested_key_is_not_it),
        cmocka_unit_test(test_version_missing_is_einval),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
