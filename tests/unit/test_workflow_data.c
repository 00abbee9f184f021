/* tests/unit/test_workflow_data.c -- the workflow loader's data-driven suite: every
 * tests/data/workflows/invalid/<case>/input.yaml must give exactly the lines of its
 * `expected` file, and every tests/data/workflows/valid/ file must load, alone and as one
 * set (so a `start:` may name a sibling). Also the checks across a set of files.
 * Run from the repository root (make unit does). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "engine/workflow.h"

#define BASE                                         \
    "workflow: w\nversion: 1\ninitial: a\nstates:\n" \
    "  a:\n"                                         \
    "    transitions:\n"                             \
    "      - { event: go, to: b }\n"                 \
    "  b: { final: true }\n"

static fl_workflow *must_parse(const char *yaml, const char *path)
{
    fl_workflow *wf = NULL;
    fl_diags d;

    fl_diags_init(&d, 10);
    assert_int_equal(fl_workflow_parse(yaml, strlen(yaml), path, NULL, &wf, &d), FL_OK);
    fl_diags_deinit(&d);
    return wf;
}

static void test_workflow_check_set(void **state)
{
    fl_workflow *wfs[3];
    fl_diags d;
    char line[512];

    (void)state;
    wfs[0] = must_parse(BASE, "one.yaml");
    wfs[1] = must_parse(BASE, "two.yaml");
    wfs[2] = must_parse("workflow: p\nversion: 1\ninitial: a\nstates:\n  a:\n    entry:\n"
                        "      - start: { workflow: w }\n      - start: { workflow: nobody }\n"
                        "      - start: { workflow: \"${ ctx.w }\" }\n"
                        "    transitions: [ {done: true, to: b} ]\n  b: {final: true}\n",
                        "p.yaml");
    fl_diags_init(&d, 10);
    assert_int_equal(fl_workflow_check_set(wfs, 3, &d), FL_EINVAL);
    assert_int_equal(d.count, 2);
    fl_diags_format(&d, 0, line, sizeof(line));
    assert_string_equal(line, "p.yaml:8:9: error: start: workflow \"nobody\" is not among the "
                              "definitions loaded with this one");
    fl_diags_format(&d, 1, line, sizeof(line));
    assert_string_equal(line, "two.yaml:1:11: error: workflow \"w\" version 1 is also defined in "
                              "one.yaml:1:11");
    fl_diags_deinit(&d);
    for (int i = 0; i < 3; i++) {
        fl_workflow_free(wfs[i]);
    }
}

/* ---- the data-driven suite: tests/data/workflows/{valid,invalid} -------------------- */

#define DATA "tests/data/workflows"

static char *read_text(const char *path)
{
    fl_buf b;
    fl_err err = FL_ERR_INIT;

    fl_buf_init(&b, 1 << 22);
    if (fl_buf_read_file(&b, path, &err) != FL_OK) {
        fail_msg("%s", err.msg);
    }
    return b.data ? fl_buf_steal(&b) : fl_xstrdup("");
}

/* An expected line ending in "..." matches any line that starts with the rest: Lua's
 * own wording of a syntax error is not ours to pin down. */
static bool line_matches(const char *want, size_t wlen, const char *got, size_t glen)
{
    if (wlen >= 3 && !memcmp(want + wlen - 3, "...", 3)) {
        return glen >= wlen - 3 && !memcmp(want, got, wlen - 3);
    }
    return wlen == glen && !memcmp(want, got, wlen);
}

static bool all_lines_match(const char *want, const char *got)
{
    while (*want && *got) {
        const char *we = strchr(want, '\n'), *ge = strchr(got, '\n');
        size_t wl = we ? (size_t)(we - want) : strlen(want);
        size_t gl = ge ? (size_t)(ge - got) : strlen(got);
        if (!line_matches(want, wl, got, gl)) {
            return false;
        }
        want += wl + (we != NULL);
        got += gl + (ge != NULL);
    }
    return !*want && !*got;
}

static void run_invalid_case(const char *name, size_t *ncases)
{
    char path[512];
    char *text, *want, *got;
    fl_workflow *wf = NULL;
    fl_diags d;
    fl_buf out;
    char line[1024];

    snprintf(path, sizeof(path), DATA "/invalid/%s/input.yaml", name);
    text = read_text(path);
    snprintf(path, sizeof(path), DATA "/invalid/%s/expected", name);
    want = read_text(path);
    fl_diags_init(&d, 1000);
    fl_buf_init(&out, SIZE_MAX);
    assert_int_not_equal(fl_workflow_parse(text, strlen(text), "input.yaml", NULL, &wf, &d), FL_OK);
    for (size_t i = 0; i < d.count; i++) {
        fl_diags_format(&d, i, line, sizeof(line));
        fl_buf_appendf(&out, NULL, "%s\n", line);
    }
    got = out.data ? out.data : "";
    if (!all_lines_match(want, got)) {
        fail_msg("invalid/%s: expected\n%sgot\n%s", name, want, got);
    }
    (*ncases)++;
    fl_buf_deinit(&out);
    fl_diags_deinit(&d);
    free(text);
    free(want);
}

static void test_workflow_data_invalid(void **state)
{
    DIR *dir = opendir(DATA "/invalid");
    struct dirent *e;
    size_t n = 0;

    (void)state;
    assert_non_null(dir);
    for (e = readdir(dir); e; e = readdir(dir)) {
        if (e->d_name[0] != '.') {
            run_invalid_case(e->d_name, &n);
        }
    }
    closedir(dir);
    assert_true(n >= 25);
}

/* Every valid file alone, then all of them as one set. */
static void test_workflow_data_valid(void **state)
{
    DIR *dir = opendir(DATA "/valid");
    struct dirent *e;
    fl_workflow *wfs[64];
    size_t n = 0;
    fl_diags d;
    char path[512], line[1024];

    (void)state;
    assert_non_null(dir);
    fl_diags_init(&d, 100);
    for (e = readdir(dir); e && n < 64; e = readdir(dir)) {
        if (!strstr(e->d_name, ".yaml")) {
            continue;
        }
        snprintf(path, sizeof(path), DATA "/valid/%s", e->d_name);
        if (fl_workflow_load(path, NULL, &wfs[n], &d) == FL_OK) {
            n++;
        }
    }
    closedir(dir);
    fl_workflow_check_set(wfs, n, &d);
    for (size_t i = 0; i < d.count; i++) {
        fl_diags_format(&d, i, line, sizeof(line));
        print_error("%s\n", line);
    }
    assert_int_equal(d.count, 0);
    assert_true(n >= 3);
    for (size_t i = 0; i < n; i++) {
        fl_workflow_free(wfs[i]);
    }
    fl_diags_deinit(&d);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workflow_check_set),
        cmocka_unit_test(test_workflow_data_invalid),
        cmocka_unit_test(test_workflow_data_valid),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
