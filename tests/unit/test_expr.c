/* tests/unit/test_expr.c -- workflow expressions: templates, the sandbox, its limits and the
 * JSON conversions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "engine/expr.h"

static const char scope_json[] =
    "{\"ctx\": {\"n\": 3, \"name\": \"Ana\", \"list\": [10, 20, 30]},"
    " \"event\": {\"type\": \"a.b\", \"data\": {\"slot\": \"10:00\", \"zero\": 0, \"none\": null}},"
    " \"result\": {\"ok\": true},"
    " \"instance\": {\"id\": \"i-1\", \"usage\": {\"tokens_in\": 7}}}";

typedef struct fixture {
    json_t *doc;
    fl_expr_scope scope;
    fl_expr_vm *vm;
} fixture;

static fixture fix;

static int setup(void **state)
{
    fl_expr_limits lim = FL_EXPR_LIMITS_DEFAULT;

    (void)state;
    fix.doc = json_loads(scope_json, 0, NULL);
    fix.scope.ctx = json_object_get(fix.doc, "ctx");
    fix.scope.event = json_object_get(fix.doc, "event");
    fix.scope.result = json_object_get(fix.doc, "result");
    fix.scope.instance = json_object_get(fix.doc, "instance");
    fix.scope.now = "2026-01-05T10:00:00Z";
    return fl_expr_vm_new(&fix.vm, &lim, NULL) == FL_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    fl_expr_vm_free(fix.vm);
    json_decref(fix.doc);
    return 0;
}

/* Evaluates a template given as a JSON value; returns its compact sorted JSON text or
 * "error: <message>". The caller frees the result. */
static char *eval_value(fl_expr_vm *vm, const json_t *value)
{
    fl_tmpl *t = NULL;
    json_t *out = NULL;
    fl_err err = FL_ERR_INIT;
    char *text;

    if (fl_tmpl_new(value, &t, &err) != FL_OK ||
        fl_expr_eval(vm, t, &fix.scope, &out, &err) != FL_OK) {
        text = fl_xasprintf("error: %s", err.msg);
    } else {
        text = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    }
    json_decref(out);
    fl_tmpl_free(t);
    return text;
}

static void expect_str(const char *tmpl, const char *want)
{
    json_t *v = json_string(tmpl);
    char *got = eval_value(fix.vm, v);

    assert_string_equal(got, want);
    free(got);
    json_decref(v);
}

static void expect_json(const char *tmpl_json, const char *want)
{
    json_t *v = json_loads(tmpl_json, JSON_DECODE_ANY, NULL);
    char *got;

    assert_non_null(v);
    got = eval_value(fix.vm, v);
    assert_string_equal(got, want);
    free(got);
    json_decref(v);
}

static bool guard(const char *tmpl, fl_rc want_rc)
{
    json_t *v = json_string(tmpl);
    fl_tmpl *t = NULL;
    bool b = false;
    fl_err err = FL_ERR_INIT;

    assert_int_equal(fl_tmpl_new(v, &t, &err), FL_OK);
    assert_int_equal(fl_expr_eval_bool(fix.vm, t, &fix.scope, &b, &err), want_rc);
    fl_tmpl_free(t);
    json_decref(v);
    return b;
}

static void check_fails(const char *s, size_t want_offset, const char *want_msg)
{
    size_t offset = 999;
    fl_err err = FL_ERR_INIT;

    assert_int_equal(fl_expr_check(s, &offset, &err), FL_EINVAL);
    assert_string_equal(err.msg, want_msg);
    assert_int_equal(offset, want_offset);
}

static void test_expr_sole_expression_keeps_its_type(void **state)
{
    (void)state;
    expect_str("${ 1 + 1 }", "2");
    expect_str("  ${ 1.5 }\n", "1.5");
    expect_str("${ ctx.n > 2 }", "true");
    expect_str("${ nil }", "null");
    expect_str("${ 'x' }", "\"x\"");
}

static void test_expr_interpolation_uses_tostring(void **state)
{
    (void)state;
    expect_str("a ${ 1 + 1 } b${ nil }c ${ true } ${ 0.5 } ${ 2^1 }", "\"a 2 bc true 0.5 2.0\"");
    expect_str("hi ${ ctx.name }!", "\"hi Ana!\"");
    expect_str("v=${ {b=1, a={2}} }", "\"v={\\\"a\\\":[2],\\\"b\\\":1}\"");
}

static void test_expr_double_dollar_is_literal(void **state)
{
    json_t *v = json_string("cost $${x}");
    fl_tmpl *t = NULL;

    (void)state;
    expect_str("cost $${x}", "\"cost ${x}\"");
    expect_str("$${a} ${ 1 }", "\"${a} 1\"");
    assert_int_equal(fl_tmpl_new(v, &t, NULL), FL_OK);
    assert_true(fl_tmpl_is_constant(t));
    assert_false(fl_expr_has_template("cost $${x}"));
    fl_tmpl_free(t);
    json_decref(v);
}

static void test_expr_constant_template_is_a_copy(void **state)
{
    json_t *v = json_loads("{\"a\": [1, true, null], \"b\": \"plain $ {x}\"}", 0, NULL);
    fl_tmpl *t = NULL;
    json_t *out = NULL;

    (void)state;
    assert_int_equal(fl_tmpl_new(v, &t, NULL), FL_OK);
    assert_true(fl_tmpl_is_constant(t));
    assert_true(json_equal(fl_tmpl_source(t), v));
    assert_int_equal(fl_expr_eval(fix.vm, t, NULL, &out, NULL), FL_OK);
    assert_true(json_equal(out, v));
    assert_true(out != fl_tmpl_source(t));
    json_decref(out);
    fl_tmpl_free(t);
    json_decref(v);
}

static void test_expr_nested_templates_in_objects_and_arrays(void **state)
{
    (void)state;
    expect_json("{\"x\": [\"${ ctx.n * 2 }\", 1, {\"y\": \"n=${ ctx.n }\"}], \"k\": true}",
                "{\"k\":true,\"x\":[6,1,{\"y\":\"n=3\"}]}");
}

static void test_expr_braces_inside_lua_are_skipped(void **state)
{
    (void)state;
    expect_str("${ {a=1} }", "{\"a\":1}");
    expect_str("${ \"}\" }", "\"}\"");
    expect_str("${ [[}]] .. '{' }", "\"}{\"");
    expect_str("${ 1 -- } comment\n }", "1");
    expect_str("${ #{ {}, {} } }", "2");
}

static void test_expr_sees_all_variables(void **state)
{
    (void)state;
    expect_str("${ ctx.list[2] }", "20");
    expect_str("${ event.data.slot }", "\"10:00\"");
    expect_str("${ result.ok }", "true");
    expect_str("${ instance.usage.tokens_in }", "7");
    expect_str("${ now }", "\"2026-01-05T10:00:00Z\"");
    expect_str("${ event.data }", "{\"none\":null,\"slot\":\"10:00\",\"zero\":0}");
}

static void test_expr_guard_truthiness(void **state)
{
    (void)state;
    assert_true(guard("${ event.data.slot ~= nil }", FL_OK));
    assert_true(guard("${ event.data.zero }", FL_OK));
    assert_true(guard("${ '' }", FL_OK));
    assert_false(guard("${ event.data.none }", FL_OK));
    assert_false(guard("${ false }", FL_OK));
    assert_false(guard("${ event.data.missing }", FL_OK));
    assert_false(guard("${ event.nope.x }", FL_EINVAL));
}

static void test_expr_proxies_are_read_only(void **state)
{
    (void)state;
    expect_str("${ (function() event.data.slot = 1 end)() }",
               "error: lua: attempt to modify a read-only value");
    expect_str("${ (function() ctx = 1 end)() }",
               "error: lua: attempt to modify a read-only value");
    expect_str("${ (function() string.upper = nil end)() }",
               "error: lua: attempt to modify a read-only value");
    expect_str("${ #ctx.list .. ' ' .. #ctx }", "\"3 3\"");
}

static void test_expr_proxies_iterate(void **state)
{
    (void)state;
    expect_str("${ (function() local s = 0 for _, v in ipairs(ctx.list) do s = s + v end "
               "return s end)() }",
               "60");
    expect_str("${ (function() local n = 0 for k in pairs(ctx) do n = n + 1 end return n end)() }",
               "3");
    expect_str("${ tostring(ctx.list) }", "\"[10,20,30]\"");
}

static void test_expr_forbidden_globals_are_nil(void **state)
{
    static const char *const names[] = {
        "io",
        "os",
        "require",
        "load",
        "loadstring",
        "dofile",
        "loadfile",
        "debug",
        "collectgarbage",
        "setmetatable",
        "getmetatable",
        "package",
        "rawset",
        "coroutine",
        "print",
        "_G",
        "string.dump",
        "math.random",
        "math.randomseed",
        "('').dump",
    };
    char tmpl[128];

    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(tmpl, sizeof(tmpl), "${ %s == nil }", names[i]);
        expect_str(tmpl, "true");
    }
    expect_str("${ ('x'):upper() }", "\"X\"");
}

static void test_expr_string_dump_absent(void **state)
{
    (void)state;
    expect_str("${ (\"x\").dump }", "null");
    expect_str("${ string.dump }", "null");
    expect_str("${ type(string.format) }", "\"function\"");
}

static void test_expr_instruction_limit(void **state)
{
    (void)state;
    expect_str("${ (function() while true do end end)() }",
               "error: expression exceeded the instruction limit (100000)");
    expect_str("${ (function() while true do pcall(function() while true do end end) end end)() }",
               "error: expression exceeded the instruction limit (100000)");
}

static void test_expr_memory_limit(void **state)
{
    (void)state;
    expect_str("${ ('x'):rep(1e9) }",
               "error: expression exceeded the memory limit (1048576 bytes)");
    expect_str("${ pcall(string.rep, 'x', 1e8) and ('y'):rep(10) }",
               "error: expression exceeded the memory limit (1048576 bytes)");
}

static void test_expr_backtracking_pattern_refused(void **state)
{
    (void)state;
    expect_str("${ string.find(('a'):rep(100000), '.-.-.-.-b') }",
               "error: lua: pattern too complex for a subject of 100000 bytes");
    expect_str("${ ('a'):rep(100000):find('b', 1, true) }", "null");
    expect_str("${ ('a'):rep(100000):gsub('.-.-b', '', 1) }",
               "error: lua: pattern too complex for a subject of 100000 bytes");
    expect_str("${ ('k=v'):match('(%w+)=(%w+)') }", "\"k\"");
    expect_str("${ (('a b c'):gsub(' ', '_')) }", "\"a_b_c\"");
}

static void test_expr_deep_recursion_errors(void **state)
{
    json_t *v = json_string("${ (function() local function f(n) return 1 + f(n + 1) end "
                            "return f(1) end)() }");
    char *got = eval_value(fix.vm, v);

    (void)state;
    assert_true(strncmp(got, "error: ", 7) == 0);
    free(got);
    json_decref(v);
}

static void test_expr_vm_usable_after_errors(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        expect_str("${ (function() while true do end end)() }",
                   "error: expression exceeded the instruction limit (100000)");
        expect_str("${ ('x'):rep(1e9) }",
                   "error: expression exceeded the memory limit (1048576 bytes)");
        expect_str("${ error('boom', 0) }", "error: lua: boom");
        expect_str("${ ('ok'):rep(2) .. ctx.n }", "\"okok3\"");
    }
}

static void test_expr_runtime_error_message(void **state)
{
    (void)state;
    expect_str("${ event.nope.slot }", "error: lua: attempt to index a nil value (field 'nope')");
    expect_str("${ error({}) }", "error: lua: (error object is a table value)");
}

static void test_expr_check_unclosed(void **state)
{
    (void)state;
    check_fails("abc ${ 1 + ", 4, "unclosed ${");
    check_fails("${ 'x }", 0, "unclosed ${");
    check_fails("a ${ } b", 2, "empty expression ${}");
}

static void test_expr_check_bad_lua(void **state)
{
    (void)state;
    check_fails("x ${ a + }", 9, "lua: unexpected symbol near ')'");
    check_fails("${ 1) or (2 }", 4, "unbalanced ')' in expression");
    check_fails("ok ${ 1 }, ${ a\nb }", 16, "lua: ')' expected (to close '(' at line 1) near 'b'");
    assert_int_equal(fl_expr_check("${ a.b + 1 } and $${ not lua", NULL, NULL), FL_OK);
}

static void test_expr_nan_and_inf_rejected(void **state)
{
    (void)state;
    expect_str("${ 0/0 }", "error: cannot convert NaN to JSON");
    expect_str("${ {x = math.huge} }", "error: cannot convert an infinite number to JSON");
}

static void test_expr_table_keys_sorted(void **state)
{
    json_t *v = json_string("${ {b = 1, a = 2, c = {z = 1, y = 2}} }");
    fl_tmpl *t = NULL;
    json_t *out = NULL;
    char *text;

    (void)state;
    assert_int_equal(fl_tmpl_new(v, &t, NULL), FL_OK);
    assert_int_equal(fl_expr_eval(fix.vm, t, &fix.scope, &out, NULL), FL_OK);
    text = json_dumps(out, JSON_COMPACT); /* no JSON_SORT_KEYS: the order is ours */
    assert_string_equal(text, "{\"a\":2,\"b\":1,\"c\":{\"y\":2,\"z\":1}}");
    free(text);
    json_decref(out);
    fl_tmpl_free(t);
    json_decref(v);
}

static void test_expr_array_versus_object(void **state)
{
    (void)state;
    expect_str("${ {1, 2, 'x'} }", "[1,2,\"x\"]");
    expect_str("${ {} }", "{}");
    expect_str("${ {[1] = 1, [3] = 3} }",
               "error: cannot convert a table with a number key to JSON");
    expect_str("${ {1, x = 2} }", "error: cannot convert a table with a number key to JSON");
    expect_str("${ {f = type} }", "error: cannot convert a function value to JSON");
    expect_str("${ '\\xff' }", "error: string is not valid UTF-8");
}

static void test_expr_deep_nesting_error(void **state)
{
    (void)state;
    expect_str("${ (function() local t = 1 for i = 1, 64 do t = {t} end return #{t} end)() }", "1");
    expect_str("${ (function() local t = {} for i = 1, 64 do t = {t} end return t end)() }",
               "error: value nests deeper than 64 levels");
    expect_str("${ (function() local t = {} t.t = t return t end)() }",
               "error: value nests deeper than 64 levels");
}

static void test_expr_deterministic(void **state)
{
    json_t *v = json_loads("{\"a\": \"${ {z = ctx.list, y = {n = ctx.n, s = now}} }\","
                           " \"b\": \"x ${ ctx } ${ 1/3 }\"}",
                           0, NULL);
    fl_expr_vm *other = NULL;
    char *one, *two;

    (void)state;
    assert_int_equal(fl_expr_vm_new(&other, NULL, NULL), FL_OK);
    one = eval_value(fix.vm, v);
    two = eval_value(other, v);
    assert_string_equal(one, two);
    assert_null(strstr(one, "error"));
    free(one);
    free(two);
    fl_expr_vm_free(other);
    json_decref(v);
}

static void test_expr_cache_survives_reused_templates(void **state)
{
    (void)state;
    for (int i = 0; i < 50; i++) {
        char tmpl[64], want[32];
        snprintf(tmpl, sizeof(tmpl), "${ %d + 1 }", i);
        snprintf(want, sizeof(want), "%d", i + 1);
        expect_str(tmpl, want); /* a freed template's address may be reused at once */
    }
}

/* Evaluates tmpl in a fresh VM and in fix.vm; both must give want. */
static void expect_two_vms(const char *tmpl, const char *want)
{
    json_t *v = json_string(tmpl);
    fl_expr_vm *other = NULL;
    char *two;

    assert_int_equal(fl_expr_vm_new(&other, NULL, NULL), FL_OK);
    two = eval_value(other, v);
    assert_string_equal(two, want);
    expect_str(tmpl, want);
    free(two);
    fl_expr_vm_free(other);
    json_decref(v);
}

static void test_expr_tostring_has_no_address(void **state)
{
    (void)state;
    expect_two_vms("${ tostring({}) .. tostring(string.len) .. tostring(string) }",
                   "\"tablefunctiontable\"");
    expect_two_vms("${ string.format('%s|%s|%5.3s', {}, type, ctx.list) }",
                   "\"table|function|  [10\"");
    expect_str("${ tostring(ctx.list) .. tostring(1.5) .. tostring(nil) }", "\"[10,20,30]1.5nil\"");
}

static void test_expr_format_p_rejected(void **state)
{
    (void)state;
    expect_str("${ string.format('%p', {}) }", "error: lua: %p is not allowed in string.format");
    expect_str("${ ('%-8p'):format(1) }", "error: lua: %p is not allowed in string.format");
    expect_str("${ string.format('%%p %d', 1) }", "\"%p 1\"");
}

static void test_expr_pairs_sorted(void **state)
{
    static const char walk[] = "${ (function() local s = '' for k, v in pairs(%s) do "
                               "s = s .. tostring(k) .. '=' .. tostring(v) .. ',' end "
                               "return s end)() }";
    char tmpl[512], many[256] = "{", want[512] = "\"";

    (void)state;
    snprintf(tmpl, sizeof(tmpl), walk, "{b=1,a=2,[2]=0,[1]=0}");
    expect_two_vms(tmpl, "\"1=0,2=0,a=2,b=1,\"");
    snprintf(tmpl, sizeof(tmpl), walk, "{[true]=1,x=2,[false]=3,[1.5]=4,[-1]=5,[10]=6,y2=7}");
    expect_two_vms(tmpl, "\"-1=5,1.5=4,10=6,x=2,y2=7,false=3,true=1,\"");
    for (int i = 20; i > 0; i--) {
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "k%02d=%d,", i, i);
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "k%02d=%d,", 21 - i, 21 - i);
    }
    strcat(many, "}");
    strcat(want, "\"");
    snprintf(tmpl, sizeof(tmpl), walk, many);
    expect_two_vms(tmpl, want);
    expect_str("${ (function() local n = 0 for k in pairs(ctx) do n = n + 1 end return n end)() }",
               "3"); /* proxies keep their own pairs */
    expect_str("${ next }", "null");
}

/* table.sort is stable: records that compare equal keep their order, in every VM; the
 * default order and errors from the comparison behave as Lua's. */
static void test_expr_sort_is_stable(void **state)
{
    (void)state;
    expect_two_vms("${ (function() local t = {} for i = 1, 300 do t[i] = {k = i % 3, i = i} end "
                   "table.sort(t, function(a, b) return a.k < b.k end) local s = '' "
                   "for n = 1, 4 do s = s .. t[n].i .. ',' end "
                   "for n = 101, 103 do s = s .. t[n].i .. ',' end return s end)() }",
                   "\"3,6,9,12,1,4,7,\"");
    expect_str("${ (function() local t = {5, 3, 9, 1, 3} table.sort(t) "
               "return table.concat(t, ' ') end)() }",
               "\"1 3 3 5 9\"");
    expect_str("${ (function() local t = {'b', 'a'} table.sort(t, function(a, b) return a > b end) "
               "return table.concat(t) end)() }",
               "\"ba\"");
    expect_str("${ (function() local t = {1, 'x'} table.sort(t) return 1 end)() }",
               "error: lua: attempt to compare string with number");
}

static int provide_calls;

/* Counts its calls; answers from the fixture's document (which has no "now"). */
static const json_t *count_provide(void *arg, const char *name)
{
    provide_calls++;
    return json_object_get(arg, name);
}

static void expect_lazy(const char *tmpl, const char *want, int want_calls)
{
    fl_expr_scope saved = fix.scope;

    fix.scope = (fl_expr_scope){.ctx = saved.ctx, .provide = count_provide, .provide_arg = fix.doc};
    provide_calls = 0;
    expect_str(tmpl, want);
    assert_int_equal(provide_calls, want_calls);
    fix.scope = saved;
}

static void test_expr_provider_builds_only_what_is_read(void **state)
{
    (void)state;
    expect_lazy("${ _ENV['inst' .. 'ance'].id }", "\"i-1\"", 1);
    expect_lazy("${ ctx.n }", "3", 0);
    expect_lazy("${ unknown }", "null", 0);
    expect_lazy("${ event.type .. _ENV['event'].type }", "\"a.ba.b\"", 1);
    expect_lazy("${ event.type } ${ event.data.slot } ${ result.ok }", "\"a.b 10:00 true\"", 2);
    expect_lazy("${ now or now }", "null", 1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expr_sole_expression_keeps_its_type),
        cmocka_unit_test(test_expr_interpolation_uses_tostring),
        cmocka_unit_test(test_expr_double_dollar_is_literal),
        cmocka_unit_test(test_expr_constant_template_is_a_copy),
        cmocka_unit_test(test_expr_nested_templates_in_objects_and_arrays),
        cmocka_unit_test(test_expr_braces_inside_lua_are_skipped),
        cmocka_unit_test(test_expr_sees_all_variables),
        cmocka_unit_test(test_expr_guard_truthiness),
        cmocka_unit_test(test_expr_proxies_are_read_only),
        cmocka_unit_test(test_expr_proxies_iterate),
        cmocka_unit_test(test_expr_forbidden_globals_are_nil),
        cmocka_unit_test(test_expr_string_dump_absent),
        cmocka_unit_test(test_expr_instruction_limit),
        cmocka_unit_test(test_expr_memory_limit),
        cmocka_unit_test(test_expr_backtracking_pattern_refused),
        cmocka_unit_test(test_expr_deep_recursion_errors),
        cmocka_unit_test(test_expr_vm_usable_after_errors),
        cmocka_unit_test(test_expr_runtime_error_message),
        cmocka_unit_test(test_expr_check_unclosed),
        cmocka_unit_test(test_expr_check_bad_lua),
        cmocka_unit_test(test_expr_nan_and_inf_rejected),
        cmocka_unit_test(test_expr_table_keys_sorted),
        cmocka_unit_test(test_expr_array_versus_object),
        cmocka_unit_test(test_expr_deep_nesting_error),
        cmocka_unit_test(test_expr_deterministic),
        cmocka_unit_test(test_expr_cache_survives_reused_templates),
        cmocka_unit_test(test_expr_tostring_has_no_address),
        cmocka_unit_test(test_expr_format_p_rejected),
        cmocka_unit_test(test_expr_pairs_sorted),
        cmocka_unit_test(test_expr_sort_is_stable),
        cmocka_unit_test(test_expr_provider_builds_only_what_is_read),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, setup, teardown);
}
