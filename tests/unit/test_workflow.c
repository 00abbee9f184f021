/* tests/unit/test_workflow.c -- the workflow loader and validator: one test per rule,
 * each asserting the line and column of the problem, and the model it builds. The
 * data-driven suite and the checks across files are in test_workflow_data.c. */
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

/* A minimal valid definition; tests append to it or replace parts of it. Lines 1-8. */
#define HEAD "workflow: w\nversion: 1\ninitial: a\nstates:\n"
#define BASE                              \
    HEAD "  a:\n"                         \
         "    transitions:\n"             \
         "      - { event: go, to: b }\n" \
         "  b: { final: true }\n"

/* Parses yaml as "t.yaml"; returns every problem, one formatted line each, joined with
 * newlines (caller frees). The model, if any, is freed unless wf_out is given. */
static char *problems_wf(const char *yaml, fl_workflow **wf_out)
{
    fl_diags d;
    fl_buf out;
    fl_workflow *wf = NULL;
    char line[1024];

    fl_diags_init(&d, 1000);
    fl_buf_init(&out, SIZE_MAX);
    fl_workflow_parse(yaml, strlen(yaml), "t.yaml", NULL, &wf, &d);
    for (size_t i = 0; i < d.count; i++) {
        fl_diags_format(&d, i, line, sizeof(line));
        fl_buf_appendf(&out, NULL, "%s\n", line);
    }
    fl_diags_deinit(&d);
    if (wf_out) {
        *wf_out = wf;
    } else {
        fl_workflow_free(wf);
    }
    return out.data ? fl_buf_steal(&out) : fl_xstrdup("");
}

static char *problems(const char *yaml)
{
    return problems_wf(yaml, NULL);
}

/* Asserts that `want` (one "t.yaml:L:C: error: ..." line, or its start) is reported. */
static void expect(const char *yaml, const char *want)
{
    char *got = problems(yaml);

    if (!strstr(got, want)) {
        fail_msg("expected \"%s\" among:\n%s", want, got);
    }
    free(got);
}

static void expect_valid(const char *yaml)
{
    char *got = problems(yaml);

    if (*got) {
        fail_msg("expected no problem, got:\n%s", got);
    }
    free(got);
}

static void test_workflow_base_is_valid(void **state)
{
    (void)state;
    expect_valid(BASE);
}

static void test_workflow_yaml_syntax_error(void **state)
{
    (void)state;
    expect(BASE "  c: [1, 2\n",
           "t.yaml:10:1: error: invalid YAML: did not find expected ',' or ']'");
}

static void test_workflow_missing_required_keys(void **state)
{
    char *got;

    (void)state;
    got = problems("description: nothing else\n");
    assert_string_equal(got, "t.yaml:1:1: error: missing required key \"workflow\"\n"
                             "t.yaml:1:1: error: missing required key \"version\"\n"
                             "t.yaml:1:1: error: missing required key \"initial\"\n"
                             "t.yaml:1:1: error: missing required key \"states\"\n");
    free(got);
}

static void test_workflow_bad_name(void **state)
{
    (void)state;
    expect("workflow: Order_1\nversion: 1\ninitial: a\nstates:\n  a: {final: true}\n",
           "t.yaml:1:11: error: bad workflow name \"Order_1\"");
}

static void test_workflow_version_must_be_positive_integer(void **state)
{
    (void)state;
    expect("workflow: w\nversion: 0\ninitial: a\nstates:\n  a: {final: true}\n",
           "t.yaml:2:10: error: version must be a positive integer");
    expect("workflow: w\nversion: \"1\"\ninitial: a\nstates:\n  a: {final: true}\n",
           "t.yaml:2:10: error: version must be a positive integer");
}

static void test_workflow_unknown_keys(void **state)
{
    (void)state;
    expect(BASE "on: go\n", "t.yaml:9:1: error: unknown key \"on\" in the workflow\n");
    expect(HEAD "  a:\n    transitons: []\n  b: {final: true}\n",
           "t.yaml:6:5: error: unknown key \"transitons\" in a state (did you mean "
           "\"transitions\"?)");
    expect(HEAD "  a:\n    transitions:\n      - { event: go, to: b, on: x }\n  b: {final: true}\n",
           "t.yaml:7:29: error: unknown key \"on\" in a transition");
}

static void test_workflow_duplicate_keys(void **state)
{
    (void)state;
    expect(BASE "version: 2\n", "t.yaml:9:1: error: duplicate key \"version\"");
    expect(HEAD "  a:\n    transitions:\n      - { event: go, to: b, to: a }\n  b: {final: true}\n",
           "t.yaml:7:29: error: duplicate key \"to\"");
}

static void test_workflow_initial_names_unknown_state(void **state)
{
    (void)state;
    expect("workflow: w\nversion: 1\ninitial: start\nstates:\n  a: {final: true}\n",
           "t.yaml:3:10: error: initial state \"start\" is not a state");
}

static void test_workflow_target_names_unknown_state(void **state)
{
    (void)state;
    expect(HEAD "  a:\n    transitions:\n      - { event: go, to: c }\n  b: {final: true}\n",
           "t.yaml:7:26: error: transition target \"c\" is not a state");
}

static void test_workflow_unreachable_state(void **state)
{
    (void)state;
    expect(BASE "  lost: {final: true}\n",
           "t.yaml:9:3: error: state \"lost\" is unreachable from the initial state \"a\"");
}

static void test_workflow_state_without_way_out(void **state)
{
    (void)state;
    expect(HEAD
           "  a:\n    transitions:\n      - { event: go, to: b }\n      - { event: x, to: c }\n"
           "  b: {final: true}\n  c:\n    transitions:\n      - { event: again, to: c }\n",
           "t.yaml:10:3: error: state \"c\" is not final and no transition leaves it");
    /* an any_state transition that leaves is a way out of every other state */
    expect_valid(HEAD "  a:\n    transitions:\n      - { event: x, to: c }\n  b: {final: true}\n"
                      "  c: {}\nany_state:\n  - { event: cancel, to: b }\n");
}

static void test_workflow_no_final_state_reachable(void **state)
{
    static const char loop[] = HEAD "  a:\n    transitions:\n      - { event: go, to: b }\n"
                                    "  b:\n    transitions:\n      - { event: back, to: a }\n";

    (void)state;
    expect(loop, "t.yaml:3:10: error: no final state is reachable from the initial state \"a\"");
    expect_valid("schedule: {every: 1h}\n" HEAD "  a:\n    transitions:\n"
                 "      - { event: go, to: b }\n  b:\n    transitions:\n"
                 "      - { event: back, to: a }\n");
}

static void test_workflow_final_state_with_transitions(void **state)
{
    (void)state;
    expect(BASE "  c:\n    final: true\n    transitions: [ {event: x, to: a} ]\n",
           "t.yaml:11:5: error: final state \"c\" cannot have transitions");
}

static void test_workflow_final_must_be_true_or_failed(void **state)
{
    (void)state;
    expect(HEAD "  a:\n    transitions:\n      - { event: go, to: b }\n  b: { final: yes }\n",
           "t.yaml:8:15: error: final must be true or failed");
    expect_valid(HEAD
                 "  a:\n    transitions:\n      - { event: go, to: b }\n  b: { final: failed }\n");
}

static void test_workflow_transition_trigger_count(void **state)
{
    (void)state;
    expect(HEAD "  a:\n    transitions:\n      - { to: b }\n  b: {final: true}\n",
           "t.yaml:7:9: error: a transition needs a trigger");
    expect(HEAD
           "  a:\n    transitions:\n      - { event: go, after: 5s, to: b }\n  b: {final: true}\n",
           "t.yaml:7:22: error: a transition has exactly one trigger, but \"event\" and \"after\"");
}

static void test_workflow_offset_needs_at(void **state)
{
    (void)state;
    expect(HEAD "  a:\n    transitions:\n      - { after: 1h, offset: -5m, to: b }\n"
                "  b: {final: true}\n",
           "t.yaml:7:22: error: offset is only allowed with at");
    expect_valid(HEAD "  a:\n    transitions:\n      - { at: \"${ ctx.t }\", offset: -5m, to: b }\n"
                      "  b: {final: true}\n");
}

static void test_workflow_bad_durations(void **state)
{
    (void)state;
    expect(HEAD "  a:\n    transitions:\n      - { after: 5 minutes, to: b }\n  b: {final: true}\n",
           "t.yaml:7:18: error: after: bad duration \"5 minutes\"");
    expect(HEAD "  a:\n    transitions:\n      - { after: -5m, to: b }\n  b: {final: true}\n",
           "t.yaml:7:18: error: after cannot be negative");
}

static void test_workflow_parse_duration(void **state)
{
    static const struct {
        const char *s;
        bool neg, ok;
        int64_t ms;
    } cases[] = {
        {"500ms", false, true, 500},
        {"30s", false, true, 30000},
        {"15m", false, true, 900000},
        {"48h", false, true, 172800000},
        {"7d", false, true, 604800000},
        {"1h30m", false, true, 5400000},
        {"PT48H", false, true, 172800000},
        {"P1DT2H", false, true, 93600000},
        {"PT0.5S", false, true, 500},
        {"P2W", false, true, 1209600000},
        {"-24h", true, true, -86400000},
        {"-24h", false, false, 0},
        {"", false, false, 0},
        {"5", false, false, 0},
        {"5x", false, false, 0},
        {"P", false, false, 0},
        {"PT", false, false, 0},
        {"P1Y", false, false, 0},
        {"PT0.0001S", false, false, 0},
        {"P1H", false, false, 0},
        {"PT1H1D", false, false, 0},
        {"99999999999999999999d", false, false, 0},
        {"1.5h", false, false, 0},
        {"PT1.5M", false, false, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = 0;
        bool ok = fl_workflow_parse_duration(cases[i].s, cases[i].neg, &ms);
        if (ok != cases[i].ok || (ok && ms != cases[i].ms)) {
            fail_msg("duration \"%s\": ok=%d ms=%lld", cases[i].s, ok, (long long)ms);
        }
    }
}

#define CALL_HEAD HEAD "  a:\n    entry:\n"
#define CALL_TAIL                     \
    "    transitions:\n"              \
    "      - { done: true, to: b }\n" \
    "  b: {final: true}\n"

static void test_workflow_bad_retry(void **state)
{
    (void)state;
    expect(CALL_HEAD "      - call: llm\n        retry: { attempts: 0 }\n" CALL_TAIL,
           "t.yaml:8:28: error: retry attempts must be an integer of at least 1");
    expect(CALL_HEAD "      - call: llm\n        retry: { backoff: linear }\n" CALL_TAIL,
           "t.yaml:8:27: error: retry backoff must be fixed or exponential");
    expect(CALL_HEAD "      - call: llm\n        retry: { delay: 10s, max_delay: 1s }\n" CALL_TAIL,
           "t.yaml:8:41: error: retry max_delay must not be shorter than delay");
    expect(CALL_HEAD "      - call: llm\n        retry: { delay: soon }\n" CALL_TAIL,
           "t.yaml:8:25: error: retry delay: bad duration \"soon\"");
    expect(CALL_HEAD "      - call: llm\n        retry: { tries: 2 }\n" CALL_TAIL,
           "t.yaml:8:18: error: unknown key \"tries\" in retry");
}

static void test_workflow_unknown_action_kind_or_field(void **state)
{
    (void)state;
    expect(CALL_HEAD "      - { send: {type: x} }\n" CALL_TAIL,
           "t.yaml:7:9: error: an action needs a kind");
    expect(CALL_HEAD "      - { send: {type: x} }\n" CALL_TAIL,
           "t.yaml:7:11: error: unknown key \"send\" in an action");
    expect(CALL_HEAD "      - { emit: {type: x, body: y} }\n" CALL_TAIL,
           "t.yaml:7:27: error: unknown key \"body\" in emit");
    expect(CALL_HEAD "      - { emit: {type: x}, log: {message: y} }\n" CALL_TAIL,
           "t.yaml:7:28: error: an action has exactly one kind, but \"emit\" and \"log\"");
    expect(CALL_HEAD "      - { emit: {type: x}, into: y }\n" CALL_TAIL,
           "t.yaml:7:28: error: \"into\" is only allowed on a call action");
    expect(CALL_HEAD "      - emit\n" CALL_TAIL, "t.yaml:7:9: error: an action must be a mapping");
}

static void test_workflow_activity_only_in_entry(void **state)
{
    (void)state;
    expect(HEAD
           "  a:\n    exit:\n      - call: llm\n    transitions:\n      - { event: go, to: b }\n"
           "  b: {final: true}\n",
           "t.yaml:7:9: error: an activity (call) is allowed only in entry actions");
    expect(HEAD
           "  a:\n    transitions:\n      - event: go\n        to: b\n        do: [ {call: llm} ]\n"
           "  b: {final: true}\n",
           "t.yaml:9:15: error: an activity (call) is allowed only in entry actions");
    expect(BASE "  c:\n    final: true\n    entry: [ {call: llm} ]\n",
           "t.yaml:11:14: error: a final state cannot run an activity (call)");
}

static void test_workflow_action_required_fields(void **state)
{
    (void)state;
    expect(CALL_HEAD "      - { emit: {topic: t} }\n" CALL_TAIL,
           "t.yaml:7:17: error: emit needs \"type\"");
    expect(CALL_HEAD "      - { start: {key: k} }\n" CALL_TAIL,
           "t.yaml:7:18: error: start needs \"workflow\"");
    expect(CALL_HEAD "      - { log: {level: info} }\n" CALL_TAIL,
           "t.yaml:7:16: error: log needs \"message\"");
    expect(CALL_HEAD "      - { reply: {agent: a} }\n" CALL_TAIL,
           "t.yaml:7:18: error: reply needs \"content\"");
}

static void test_workflow_log_level(void **state)
{
    (void)state;
    expect(CALL_HEAD "      - { log: {message: m, level: loud} }\n" CALL_TAIL,
           "t.yaml:7:36: error: log level must be debug, info, warn or error");
}

static void test_workflow_into_must_be_identifier(void **state)
{
    (void)state;
    expect(CALL_HEAD "      - { call: llm, into: ctx.x }\n" CALL_TAIL,
           "t.yaml:7:28: error: into must be a context field name");
}

static void test_workflow_calls_table(void **state)
{
    (void)state;
    expect(CALL_HEAD "      - { call: smtp }\n" CALL_TAIL,
           "t.yaml:7:17: error: unknown call \"smtp\"");
    expect(CALL_HEAD "      - { call: http, with: {url: u} }\n" CALL_TAIL,
           "t.yaml:7:29: error: call http needs with.method");
    expect(CALL_HEAD "      - { call: llm, with: {prompt: p, temp: 1} }\n" CALL_TAIL,
           "t.yaml:7:40: error: unknown key \"temp\" in the with of call llm");
    expect(CALL_HEAD "      - { call: flowd.purge, with: {inbox_older_than: old} }\n" CALL_TAIL,
           "t.yaml:7:55: error: inbox_older_than: bad duration \"old\"");
    expect_valid(CALL_HEAD "      - { call: flowd.purge, with: {inbox_older_than: 7d} }\n"
                           "      - { call: http, with: {method: GET, url: \"http://x\"}, "
                           "timeout: 5s }\n" CALL_TAIL);
}

static void test_workflow_schedule(void **state)
{
    (void)state;
    expect("schedule: { cron: \"0 3 * * *\", every: 1h }\n" BASE,
           "t.yaml:1:11: error: schedule must have exactly one of cron or every");
    expect("schedule: { cron: \"0 24 * * *\" }\n" BASE,
           "t.yaml:1:22: error: bad cron expression \"0 24 * * *\": bad hour field");
    expect("schedule: { cron: \"0 3 * *\" }\n" BASE,
           "t.yaml:1:27: error: bad cron expression \"0 3 * *\": expected 5 fields");
    expect("schedule: { every: 0s }\n" BASE, "t.yaml:1:20: error: every must be longer than zero");
    expect_valid("schedule: { cron: \"*/15 0-6,22 1,15 */2 1-5\" }\n" BASE);
}

static void test_workflow_triggers_list(void **state)
{
    (void)state;
    expect("triggers: order.placed\n" BASE,
           "t.yaml:1:11: error: triggers must be a list of event types");
    expect("triggers: [order.placed, {a: b}]\n" BASE,
           "t.yaml:1:26: error: a trigger (an event type) must be a non-empty string");
}

static void test_workflow_done_and_error_triggers(void **state)
{
    (void)state;
    expect(CALL_HEAD "      - { call: llm }\n    transitions:\n      - { done: false, to: b }\n"
                     "  b: {final: true}\n",
           "t.yaml:9:17: error: done must be true");
    expect(CALL_HEAD "      - { call: llm }\n    transitions:\n      - { error: [x], to: b }\n"
                     "  b: {final: true}\n",
           "t.yaml:9:18: error: error (an error type or any) must be a non-empty string");
}

static void test_workflow_lua_compile_error_position(void **state)
{
    (void)state;
    /* plain scalar: the column of the scalar plus the offset of the problem inside it
     * (the `}` that ends the expression too early) */
    expect(HEAD "  a:\n    transitions:\n      - event: go\n        if: ${ ctx.x == }\n"
                "        to: b\n  b: {final: true}\n",
           "t.yaml:8:25: error: invalid expression: ");
    /* double-quoted without escapes: one more column for the quote */
    expect(HEAD "  a:\n    transitions:\n      - { event: go, if: \"${ ctx.x == }\", to: b }\n"
                "  b: {final: true}\n",
           "t.yaml:7:39: error: invalid expression: ");
    expect(CALL_HEAD "      - log: { message: \"x ${ ctx.name\" }\n" CALL_TAIL,
           "t.yaml:7:28: error: invalid expression: unclosed ${");
    expect(HEAD "  a:\n    transitions:\n      - { event: go, if: x > 1, to: b }\n"
                "  b: {final: true}\n",
           "t.yaml:7:26: error: if must be an expression: ${ ... }");
}

static void test_workflow_lua_error_column_inside_scalar(void **state)
{
    char *got;
    unsigned line = 0, col = 0;

    (void)state;
    got = problems(CALL_HEAD "      - log: { message: \"abc ${ ) }\" }\n" CALL_TAIL);
    assert_int_equal(sscanf(got, "t.yaml:%u:%u:", &line, &col), 2);
    assert_int_equal(line, 7);
    /* the scalar's text starts at column 25; the problem is at or after its `${` */
    assert_true(col >= 29 && col <= 34);
    free(got);
}

static void test_workflow_caps(void **state)
{
    fl_buf deep;
    char *got;

    (void)state;
    fl_buf_init(&deep, SIZE_MAX);
    fl_buf_appendf(&deep, NULL, BASE "context: ");
    for (int i = 0; i < 40; i++) {
        fl_buf_appendf(&deep, NULL, "[");
    }
    got = problems(deep.data);
    assert_non_null(strstr(got, "t.yaml:9:41: error: YAML nesting deeper than 32 levels"));
    free(got);
    fl_buf_deinit(&deep);
    expect(BASE "context:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n  b: &b [*a, *a, *a, *a, *a, "
                "*a, *a, *a, *a, *a]\n"
                "  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n  d: &d [*c, *c, *c, *c, *c, "
                "*c, *c, *c, *c, *c]\n"
                "  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
           "error: too many YAML nodes (aliases expanded): more than 100000");
}

static void test_workflow_too_big(void **state)
{
    fl_workflow_limits lim = FL_WORKFLOW_LIMITS_DEFAULT;
    fl_workflow *wf = NULL;
    fl_diags d;

    (void)state;
    lim.max_bytes = 10;
    fl_diags_init(&d, 10);
    assert_int_equal(fl_workflow_parse(BASE, strlen(BASE), "t.yaml", &lim, &wf, &d), FL_ETOOBIG);
    assert_null(wf);
    assert_int_equal(d.count, 1);
    fl_diags_deinit(&d);
}

static void test_workflow_one_document_and_mapping_root(void **state)
{
    (void)state;
    expect(BASE "---\nworkflow: v\n", "t.yaml:9:1: error: only one YAML document is allowed");
    expect("- a\n- b\n", "t.yaml:1:1: error: a workflow definition must be a mapping");
    expect("", "t.yaml:1:1: error: the file is empty");
}

static void test_workflow_set_map_names(void **state)
{
    (void)state;
    expect(HEAD "  a:\n    transitions:\n      - { event: go, set: { \"a.b\": 1 }, to: b }\n"
                "  b: {final: true}\n",
           "t.yaml:7:29: error: set: \"a.b\" is not a context field name");
}

static void test_workflow_model(void **state)
{
    static const char yaml[] =
        "workflow: shop.order-2\nversion: 3\ntriggers: [order.placed]\n"
        "context: { n: 0, f: 1.5, t: true, z: ~, s: \"7\", list: [a, 0x1F] }\n"
        "initial: placed\nany_state:\n  - { event: order.cancelled, to: cancelled }\n"
        "states:\n"
        "  placed:\n"
        "    entry:\n"
        "      - call: http\n"
        "        with: { method: POST, url: \"http://x/${ ctx.n }\" }\n"
        "        into: reply\n"
        "        retry: { attempts: 3, backoff: exponential, delay: 1s, max_delay: 30s }\n"
        "        timeout: 30s\n"
        "    transitions:\n"
        "      - { done: true, to: paid }\n"
        "      - { event: ping }\n"
        "  paid:\n"
        "    transitions:\n"
        "      - { at: \"${ ctx.due }\", offset: -PT1H, to: cancelled }\n"
        "  cancelled: { final: failed }\n";
    fl_workflow *wf = NULL;
    char *got = problems_wf(yaml, &wf);
    const fl_state *placed;

    (void)state;
    assert_string_equal(got, "");
    free(got);
    assert_non_null(wf);
    assert_string_equal(wf->name, "shop.order-2");
    assert_int_equal(wf->version, 3);
    assert_int_equal(wf->initial, 0);
    assert_int_equal(wf->nstates, 3);
    assert_true(fl_workflow_is_triggered_by(wf, "order.placed"));
    assert_int_equal(fl_workflow_state_index(wf, "cancelled"), 2);
    got = json_dumps(wf->context, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(
        got, "{\"f\":1.5,\"list\":[\"a\",31],\"n\":0,\"s\":\"7\",\"t\":true,\"z\":null}");
    free(got);
    placed = &wf->states[0];
    assert_int_equal(placed->entry.count, 1);
    assert_int_equal(placed->entry.items[0].kind, FL_ACTION_CALL);
    assert_string_equal(placed->entry.items[0].call, "http");
    assert_string_equal(placed->entry.items[0].into, "reply");
    assert_int_equal(placed->entry.items[0].retry.attempts, 3);
    assert_int_equal(placed->entry.items[0].retry.backoff, FL_BACKOFF_EXPONENTIAL);
    assert_int_equal(placed->entry.items[0].retry.max_delay_ms, 30000);
    assert_int_equal(placed->entry.items[0].timeout_ms, 30000);
    assert_int_equal(placed->transitions.items[0].trigger, FL_TRIGGER_DONE);
    assert_int_equal(placed->transitions.items[0].target, 1);
    assert_int_equal(placed->transitions.items[1].target, -1); /* internal */
    assert_int_equal(wf->states[1].transitions.items[0].offset_ms, -3600000);
    assert_int_equal(wf->any_state.items[0].target, 2);
    assert_int_equal(wf->states[2].final, FL_FINAL_FAILED);
    assert_int_equal(wf->pos.line, 1);
    assert_int_equal(wf->pos.col, 11);
    fl_workflow_free(wf);
}

static void test_workflow_defaults(void **state)
{
    fl_workflow *wf = NULL;
    char *got = problems_wf(CALL_HEAD "      - { call: llm }\n" CALL_TAIL, &wf);

    (void)state;
    assert_string_equal(got, "");
    free(got);
    assert_true(json_is_object(wf->context) && json_object_size(wf->context) == 0);
    assert_int_equal(wf->schedule.kind, FL_SCHEDULE_NONE);
    assert_int_equal(wf->states[0].entry.items[0].retry.attempts, 1);
    assert_int_equal(wf->states[0].entry.items[0].timeout_ms, 0);
    assert_null(wf->states[0].entry.items[0].args);
    fl_workflow_free(wf);
}

static void test_workflow_reports_every_problem(void **state)
{
    char *got;
    size_t lines = 0;

    (void)state;
    got = problems("workflow: W\nversion: -1\ninitial: a\nstates:\n  a:\n    transitons: []\n"
                   "    entry: [ {log: {}} ]\n  b: {final: nope}\non: 1\n");
    for (const char *p = got; *p; p++) {
        lines += *p == '\n';
    }
    assert_true(lines >= 6);
    free(got);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workflow_base_is_valid),
        cmocka_unit_test(test_workflow_yaml_syntax_error),
        cmocka_unit_test(test_workflow_missing_required_keys),
        cmocka_unit_test(test_workflow_bad_name),
        cmocka_unit_test(test_workflow_version_must_be_positive_integer),
        cmocka_unit_test(test_workflow_unknown_keys),
        cmocka_unit_test(test_workflow_duplicate_keys),
        cmocka_unit_test(test_workflow_initial_names_unknown_state),
        cmocka_unit_test(test_workflow_target_names_unknown_state),
        cmocka_unit_test(test_workflow_unreachable_state),
        cmocka_unit_test(test_workflow_state_without_way_out),
        cmocka_unit_test(test_workflow_no_final_state_reachable),
        cmocka_unit_test(test_workflow_final_state_with_transitions),
        cmocka_unit_test(test_workflow_final_must_be_true_or_failed),
        cmocka_unit_test(test_workflow_transition_trigger_count),
        cmocka_unit_test(test_workflow_offset_needs_at),
        cmocka_unit_test(test_workflow_bad_durations),
        cmocka_unit_test(test_workflow_parse_duration),
        cmocka_unit_test(test_workflow_bad_retry),
        cmocka_unit_test(test_workflow_unknown_action_kind_or_field),
        cmocka_unit_test(test_workflow_activity_only_in_entry),
        cmocka_unit_test(test_workflow_action_required_fields),
        cmocka_unit_test(test_workflow_log_level),
        cmocka_unit_test(test_workflow_into_must_be_identifier),
        cmocka_unit_test(test_workflow_calls_table),
        cmocka_unit_test(test_workflow_schedule),
        cmocka_unit_test(test_workflow_triggers_list),
        cmocka_unit_test(test_workflow_done_and_error_triggers),
        cmocka_unit_test(test_workflow_lua_compile_error_position),
        cmocka_unit_test(test_workflow_lua_error_column_inside_scalar),
        cmocka_unit_test(test_workflow_caps),
        cmocka_unit_test(test_workflow_too_big),
        cmocka_unit_test(test_workflow_one_document_and_mapping_root),
        cmocka_unit_test(test_workflow_set_map_names),
        cmocka_unit_test(test_workflow_model),
        cmocka_unit_test(test_workflow_defaults),
        cmocka_unit_test(test_workflow_reports_every_problem),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
