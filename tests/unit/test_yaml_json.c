/* tests/unit/test_yaml_json.c -- YAML -> JSON: the core schema's scalars, structure,
 * duplicate keys, aliases, the caps, and "line:col: message" errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/yaml_json.h"

/* Parses text and compares the compact, key-sorted JSON with `want`. */
static void expect_json(const char *text, const char *want)
{
    fl_err err = FL_ERR_INIT;
    json_t *v = NULL;
    char *got;

    if (fl_yaml_json_parse(text, strlen(text), NULL, &v, &err) != FL_OK) {
        fail_msg("%s: unexpected error %s", text, err.msg);
    }
    got = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (strcmp(got, want) != 0) {
        fail_msg("%s: got %s, want %s", text, got, want);
    }
    free(got);
    json_decref(v);
}

/* Parses text with lim and expects failure rc with a message starting with want. */
static void expect_error_lim(const char *text, const fl_yaml_json_limits *lim, fl_rc rc,
                             const char *want)
{
    fl_err err = FL_ERR_INIT;
    json_t *v = (json_t *)1;

    assert_int_equal(fl_yaml_json_parse(text, strlen(text), lim, &v, &err), rc);
    if (rc == FL_OK) {
        json_decref(v);
        return;
    }
    assert_null(v);
    if (strncmp(err.msg, want, strlen(want)) != 0) {
        fail_msg("%s: message \"%s\" does not start with \"%s\"", text, err.msg, want);
    }
}

static void expect_error(const char *text, const char *want)
{
    expect_error_lim(text, NULL, FL_EINVAL, want);
}

static void test_yaml_json_nulls_and_booleans(void **state)
{
    (void)state;
    expect_json("[~, null, Null, NULL, nul, nULL]", "[null,null,null,null,\"nul\",\"nULL\"]");
    expect_json("- \n- ~\n", "[null,null]");
    expect_json("a:\n", "{\"a\":null}");
    expect_json("[true, True, TRUE, false, False, FALSE]", "[true,true,true,false,false,false]");
    /* YAML 1.1's yes/no/on/off are strings in the core schema */
    expect_json("[yes, no, on, off, tRuE]", "[\"yes\",\"no\",\"on\",\"off\",\"tRuE\"]");
}

static void test_yaml_json_numbers(void **state)
{
    (void)state;
    expect_json("[0, 12, -3, +4, 0o17, 0x1F, 007]", "[0,12,-3,4,15,31,7]");
    expect_json("[1.5, -0.25, .5, 1e3, 2.E-2, 3.]", "[1.5,-0.25,0.5,1000.0,0.02,3.0]");
    expect_json("[1_000, 0b101, 1.2.3, 0x, 0o8, 1e, '12', \"3\"]",
                "[\"1_000\",\"0b101\",\"1.2.3\",\"0x\",\"0o8\",\"1e\",\"12\",\"3\"]");
    expect_json("9223372036854775807", "9223372036854775807");
    expect_json("'200': x", "{\"200\":\"x\"}");
    expect_json("200: x", "{\"200\":\"x\"}"); /* keys are strings whatever they look like */
}

static void test_yaml_json_strings_and_styles(void **state)
{
    (void)state;
    expect_json("a: 'true'\nb: \"null\"\nc: |\n  x\n  y\nd: >\n  p\n  q\n",
                "{\"a\":\"true\",\"b\":\"null\",\"c\":\"x\\ny\\n\",\"d\":\"p q\\n\"}");
    expect_json("!!str 12", "\"12\"");
    expect_json("\"caf\\u00e9 \\0 end\"", "\"café \\u0000 end\"");
    expect_json("application/problem+json: {}", "{\"application/problem+json\":{}}");
}

static void test_yaml_json_structure(void **state)
{
    (void)state;
    expect_json("a:\n  b: [1, {c: d}]\n  e: []\nf: {}\n",
                "{\"a\":{\"b\":[1,{\"c\":\"d\"}],\"e\":[]},\"f\":{}}");
    expect_json("- - - x\n", "[[[\"x\"]]]");
    expect_json("", "null");
    expect_json("---\n", "null");
    expect_json("--- 5\n...\n", "5");
    expect_json("&a x", "\"x\""); /* an anchor alone is harmless */
}

static void test_yaml_json_duplicate_keys(void **state)
{
    (void)state;
    expect_error("a: 1\nb: 2\na: 3\n", "3:1: duplicate key \"a\"");
    expect_error("x:\n  k: 1\n  k: 2\n", "3:3: duplicate key \"k\"");
    expect_json("x: {k: 1}\ny: {k: 2}\n", "{\"x\":{\"k\":1},\"y\":{\"k\":2}}");
}

static void test_yaml_json_refusals(void **state)
{
    (void)state;
    expect_error("a: &x [1]\nb: *x\n", "2:4: YAML aliases are not allowed");
    expect_error("a: &x 1\n*x : 2\n", "2:1: YAML aliases are not allowed");
    expect_error("? [a]\n: b\n", "1:3: mapping keys must be scalars");
    expect_error("a: !!int 3\n", "1:4: unsupported YAML tag");
    expect_error("a: !custom x\n", "1:4: unsupported YAML tag");
    expect_error("[.inf]", "1:2: .inf has no JSON representation");
    expect_error(".NaN", "1:1: .NaN has no JSON representation");
    expect_json("[-.NaN, .infinity]", "[\"-.NaN\",\".infinity\"]");
    expect_error("a: 99999999999999999999\n", "1:4: integer out of range");
    expect_error("a: 1e999\n", "1:4: number out of range");
    expect_error("a\n---\nb\n", "2:1: expected a single YAML document");
}

static void test_yaml_json_syntax_errors(void **state)
{
    (void)state;
    expect_error("a: [1, 2\n", "2:1: invalid YAML: ");
    expect_error("a: b: c\n", "1:5: invalid YAML: mapping values are not allowed");
    expect_error("a:\n\tb: 1\n", "2:1: invalid YAML: ");
    expect_error("\"\\x\"", "1:4: invalid YAML: ");
}

static void test_yaml_json_caps(void **state)
{
    fl_yaml_json_limits depth = {.max_depth = 3};
    fl_yaml_json_limits nodes = {.max_nodes = 5};
    fl_yaml_json_limits bytes = {.max_bytes = 8};
    char deep[512] = "";

    (void)state;
    expect_error_lim("[[[1]]]", &depth, FL_OK, ""); /* 3 levels: fine */
    expect_error_lim("[[[[1]]]]", &depth, FL_EINVAL, "1:4: YAML nesting deeper than 3 levels");
    expect_error_lim("{a: {b: {c: {d: 1}}}}", &depth, FL_EINVAL,
                     "1:13: YAML nesting deeper than 3 levels");
    expect_error_lim("[1, 2, 3, 4]", &nodes, FL_OK, "");
    expect_error_lim("[1, 2, 3, 4, 5]", &nodes, FL_EINVAL, "1:14: more than 5 YAML nodes");
    expect_error_lim("{a: 1, b: 2, c: 3}", &nodes, FL_EINVAL, "1:14: more than 5 YAML nodes");
    expect_error_lim("a: 123456", &bytes, FL_ETOOBIG, "1:1: YAML text of 9 bytes exceeds 8");
    for (int i = 0; i < 200; i++) {
        strcat(deep, "[");
    }
    expect_error(deep, "1:65: YAML nesting deeper than 64 levels");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_json_nulls_and_booleans),
        cmocka_unit_test(test_yaml_json_numbers),
        cmocka_unit_test(test_yaml_json_strings_and_styles),
        cmocka_unit_test(test_yaml_json_structure),
        cmocka_unit_test(test_yaml_json_duplicate_keys),
        cmocka_unit_test(test_yaml_json_refusals),
        cmocka_unit_test(test_yaml_json_syntax_errors),
        cmocka_unit_test(test_yaml_json_caps),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
