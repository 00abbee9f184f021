/* tests/unit/test_machine.c -- the pure step function, one test per rule of its
 * semantics (engine/machine.c, docs/workflows.md). Definitions are small YAML strings
 * loaded with fl_workflow_parse; assertions compare the effects JSON (sorted keys,
 * compact) and instance fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/log.h"
#include "core/mem.h"
#include "tests/unit/machine_harness.h"

/* ---- start ------------------------------------------------------------------------- */

static void test_machine_start_enters_initial(void **state)
{
    harness h;
    char *usage;

    (void)state;
    load(&h, base_yaml);
    assert_int_equal(start(&h), FL_OK);
    assert_string_equal(state_of(&h), "a");
    assert_int_equal(h.in->status, FL_STATUS_RUNNING);
    assert_string_equal(h.in->id, "i1");
    assert_string_equal(h.in->key, "k1");
    assert_string_equal(h.in->tenant, "t1");
    assert_string_equal(h.in->workflow, "t");
    assert_int_equal(h.in->version, 1);
    assert_ctx(&h, "{\"n\":1}");
    assert_true(h.in->ctx != h.wf->context); /* a copy, not the definition's */
    usage = json_dumps(h.in->usage, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(usage, "{\"cost\":0.0,\"tokens_in\":0,\"tokens_out\":0}");
    free(usage);
    assert_int_equal(h.in->entry_seq, 1);
    assert_int_equal(h.in->entered_at_ms, NOW);
    assert_int_equal(h.in->seq, 1);
    assert_int_equal(h.in->pc, 1);
    assert_false(h.in->waiting);
    assert_string_equal(h.dump,
                        "[{\"from\":null,\"kind\":\"state_changed\",\"to\":\"a\"},"
                        "{\"due_at_ms\":1767780000000,\"entry_seq\":1,\"kind\":\"timer_arm\","
                        "\"timer\":\"i1/1/s2\",\"transition\":\"s2\"},"
                        "{\"kind\":\"log\",\"level\":\"info\",\"message\":\"in a\"},"
                        "{\"event_id\":\"e1\",\"event_type\":\"t.requested\",\"from\":null,"
                        "\"kind\":\"history\",\"seq\":1,\"to\":\"a\"}]");
    done(&h);
}

static void test_machine_start_binds_event_and_does_not_match_it(void **state)
{
    harness h;

    (void)state;
    load(&h, "workflow: t\nversion: 1\ninitial: a\nstates:\n"
             "  a:\n"
             "    entry: [{set: {who: '${ event.data.name }', typ: '${ event.type }'}}]\n"
             "    transitions: [{event: t.requested, to: b}]\n"
             "  b: {final: true}\n");
    assert_int_equal(start_at(&h, "t.requested", "{\"name\":\"ada\"}", NOW), FL_OK);
    assert_string_equal(state_of(&h), "a"); /* not matched against its own transition */
    assert_ctx(&h, "{\"typ\":\"t.requested\",\"who\":\"ada\"}");
    assert_non_null(strstr(h.dump, "{\"kind\":\"context\",\"set\":{\"typ\":\"t.requested\","
                                   "\"who\":\"ada\"}}"));
    done(&h);
}

/* ---- ended and cancelled ----------------------------------------------------------- */

static void test_machine_ended_instance_is_unhandled(void **state)
{
    harness h;

    (void)state;
    load(&h, base_yaml);
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(step(&h, "go", NULL), FL_OK);
    assert_int_equal(step(&h, "finish", NULL), FL_OK);
    assert_int_equal(h.in->status, FL_STATUS_COMPLETED);
    assert_int_equal(step(&h, "back", NULL), FL_OK);
    assert_string_equal(h.dump, "[{\"event_id\":\"e4\",\"event_type\":\"back\",\"kind\":"
                                "\"unhandled\",\"reason\":\"instance ended\"}]");
    assert_int_equal(h.in->seq, 3); /* unhandled: no history entry */
    assert_int_equal(step(&h, FL_EVENT_INSTANCE_CANCEL, NULL), FL_OK);
    assert_non_null(strstr(h.dump, "instance ended"));
    assert_int_equal(h.in->status, FL_STATUS_COMPLETED);
    done(&h);
}

static void test_machine_cancel_skips_exit_and_cancels_timers(void **state)
{
    harness h;

    (void)state;
    load(&h, base_yaml);
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(step(&h, FL_EVENT_INSTANCE_CANCEL, NULL), FL_OK);
    assert_int_equal(h.in->status, FL_STATUS_CANCELLED);
    assert_string_equal(state_of(&h), "a");
    assert_string_equal(h.dump, "[{\"entry_seq\":1,\"kind\":\"timer_cancel\"},"
                                "{\"kind\":\"finished\",\"status\":\"cancelled\"},"
                                "{\"event_id\":\"e2\",\"event_type\":\"flowd.instance.cancel\","
                                "\"from\":\"a\",\"kind\":\"history\",\"seq\":2,\"to\":\"a\"}]");
    done(&h);
}

/* ---- matching ---------------------------------------------------------------------- */

static void test_machine_external_transition_order_of_effects(void **state)
{
    harness h;

    (void)state;
    load(&h, base_yaml);
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(step(&h, "go", NULL), FL_OK);
    assert_string_equal(h.dump, "[{\"kind\":\"log\",\"level\":\"info\",\"message\":\"out a\"},"
                                "{\"kind\":\"log\",\"level\":\"info\",\"message\":\"do\"},"
                                "{\"entry_seq\":1,\"kind\":\"timer_cancel\"},"
                                "{\"from\":\"a\",\"kind\":\"state_changed\",\"to\":\"b\"},"
                                "{\"kind\":\"log\",\"level\":\"info\",\"message\":\"in b\"},"
                                "{\"kind\":\"context\",\"set\":{\"n\":2}},"
                                "{\"event_id\":\"e2\",\"event_type\":\"go\",\"from\":\"a\","
                                "\"kind\":\"history\",\"seq\":2,\"to\":\"b\"}]");
    assert_string_equal(state_of(&h), "b");
    assert_int_equal(h.in->entry_seq, 2);
    assert_int_equal(h.in->entered_at_ms, NOW + 1000);
    assert_int_equal(h.in->pc, 1);
    assert_ctx(&h, "{\"n\":2}");
    /* b has no timers: leaving it cancels nothing */
    assert_int_equal(step(&h, "back", NULL), FL_OK);
    assert_null(strstr(h.dump, "timer_cancel"));
    assert_int_equal(h.in->entry_seq, 3);
    done(&h);
}

static void test_machine_internal_transition_keeps_state_and_timers(void **state)
{
    harness h;

    (void)state;
    load(&h, base_yaml);
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(step(&h, "poke", NULL), FL_OK);
    assert_string_equal(h.dump, "[{\"kind\":\"context\",\"set\":{\"poked\":true}},"
                                "{\"event_id\":\"e2\",\"event_type\":\"poke\",\"from\":\"a\","
                                "\"kind\":\"history\",\"seq\":2,\"to\":\"a\"}]");
    assert_int_equal(h.in->entry_seq, 1);
    assert_int_equal(h.in->entered_at_ms, NOW);
    /* the timer of the entry is still current */
    assert_int_equal(step(&h, FL_EVENT_TIMER_FIRED, "{\"timer\":\"i1/1/s2\"}"), FL_OK);
    assert_int_equal(h.in->status, FL_STATUS_COMPLETED);
    done(&h);
}

static const char order_yaml[] = "workflow: t\nversion: 1\ninitial: a\ncontext: {ok: false}\n"
                                 "any_state:\n"
                                 "  - {event: go, to: c}\n"
                                 "  - {event: stop, to: d}\n"
                                 "states:\n"
                                 "  a:\n"
                                 "    transitions:\n"
                                 "      - {event: go, if: '${ ctx.ok }', to: b}\n"
                                 "      - {event: go, if: '${ event.data.x == 2 }', to: b}\n"
                                 "      - {event: flip, set: {ok: true}}\n"
                                 "  b: {final: true}\n"
                                 "  c: {final: true}\n"
                                 "  d: {final: true}\n";

static void test_machine_first_matching_transition_in_file_order(void **state)
{
    harness h;

    (void)state;
    load(&h, order_yaml);
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(step(&h, "go", "{\"x\":2}"), FL_OK); /* first guard false, second true */
    assert_string_equal(state_of(&h), "b");
    done(&h);
    load(&h, order_yaml);
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(step(&h, "flip", NULL), FL_OK);
    assert_int_equal(step(&h, "go", "{\"x\":2}"), FL_OK); /* both true: the first wins */
    assert_string_equal(state_of(&h), "b");
    done(&h);
}

static void test_machine_any_state_after_the_state_own(void **state)
{
    harness h;

    (void)state;
    load(&h, order_yaml);
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(step(&h, "go", "{\"x\":1}"), FL_OK); /* own guards false: any_state */
    assert_string_equal(state_of(&h), "c");
    done(&h);
    load(&h, order_yaml);
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(step(&h, "stop", NULL), FL_OK);
    assert_string_equal(state_of(&h), "d");
    done(&h);
}

static void test_machine_no_match_is_unhandled(void **state)
{
    harness h;
    char *before, *after;
    json_t *j;

    (void)state;
    load(&h, base_yaml);
    assert_int_equal(start(&h), FL_OK);
    j = fl_instance_to_json(h.in, h.wf);
    before = json_dumps(j, JSON_SORT_KEYS);
    json_decref(j);
    assert_int_equal(step(&h, "nobody.listens", NULL), FL_OK);
    assert_string_equal(h.dump, "[{\"event_id\":\"e2\",\"event_type\":\"nobody.listens\","
                                "\"kind\":\"unhandled\",\"reason\":\"no transition matched\"}]");
    j = fl_instance_to_json(h.in, h.wf);
    after = json_dumps(j, JSON_SORT_KEYS);
    json_decref(j);
    assert_string_equal(before, after);
    free(before);
    free(after);
    done(&h);
}

static void test_machine_guard_scope(void **state)
{
    harness h;

    (void)state;
    load(&h, "workflow: t\nversion: 1\ninitial: a\ncontext: {n: 1}\nstates:\n"
             "  a:\n"
             "    transitions:\n"
             "      - event: go\n"
             "        if: >-\n"
             "          ${ ctx.n == 1 and event.data.x == 2 and event.id == 'e3'\n"
             "             and event.type == 'go' and event.subject == 'k1'\n"
             "             and instance.id == 'i1' and instance.key == 'k1'\n"
             "             and instance.workflow == 't' and instance.version == 1\n"
             "             and instance.state == 'a' and instance.tenant == 't1'\n"
             "             and instance.usage.tokens_in == 0\n"
             "             and now == '2026-01-05T10:00:01.000Z' and result == nil }\n"
             "        to: b\n"
             "  b: {final: true}\n");
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(step(&h, "go", "{\"x\":3}"), FL_OK);
    assert_string_equal(state_of(&h), "a");
    assert_int_equal(step(&h, "go", "{\"x\":2}"), FL_OK);
    assert_string_equal(state_of(&h), "b");
    done(&h);
}

/* Variables are bound when read, however the name is spelt. */
static void test_machine_guard_scope_by_env_index(void **state)
{
    harness h;

    (void)state;
    load(&h, "workflow: t\nversion: 1\ninitial: a\nstates:\n"
             "  a:\n"
             "    transitions:\n"
             "      - event: go\n"
             "        if: >-\n"
             "          ${ _ENV['inst' .. 'ance'].key == 'k1' and _ENV['ev' .. 'ent'].data.x == 2\n"
             "             and _ENV['n' .. 'ow'] == '2026-01-05T10:00:01.000Z' }\n"
             "        to: b\n"
             "  b: {final: true}\n");
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(step(&h, "go", "{\"x\":3}"), FL_OK);
    assert_string_equal(state_of(&h), "a");
    assert_int_equal(step(&h, "go", "{\"x\":2}"), FL_OK);
    assert_string_equal(state_of(&h), "b");
    done(&h);
}

/* An event without data reads as `event.data == {}`: a guard on one of its fields is
 * false, not an error that would dead-letter the event. */
static void test_machine_event_without_data_reads_empty_data(void **state)
{
    harness h;

    (void)state;
    load(&h, "workflow: t\nversion: 1\ninitial: a\nstates:\n"
             "  a:\n"
             "    transitions:\n"
             "      - {event: go, if: '${ event.data.slot ~= nil }', to: b}\n"
             "  b: {final: true}\n");
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(step(&h, "go", NULL), FL_OK);
    assert_string_equal(state_of(&h), "a");
    assert_non_null(strstr(h.dump, "no transition matched"));
    assert_int_equal(step(&h, "go", "{\"slot\":\"10:00\"}"), FL_OK);
    assert_string_equal(state_of(&h), "b");
    done(&h);
}

/* ---- done and final ---------------------------------------------------------------- */

static void test_machine_done_fires_on_entry_without_calls(void **state)
{
    harness h;

    (void)state;
    load(&h, "workflow: t\nversion: 1\ninitial: a\nstates:\n"
             "  a:\n"
             "    entry: [{set: {x: 1}}]\n"
             "    transitions: [{done: true, to: b}]\n"
             "  b:\n"
             "    entry: [{emit: {type: t.b}}]\n"
             "    transitions: [{done: true, to: c}]\n"
             "  c: {final: true, entry: [{log: {message: bye, level: warn}}]}\n");
    assert_int_equal(start(&h), FL_OK);
    assert_string_equal(state_of(&h), "c");
    assert_int_equal(h.in->status, FL_STATUS_COMPLETED);
    assert_int_equal(h.in->entry_seq, 3);
    assert_string_equal(h.dump,
                        "[{\"from\":null,\"kind\":\"state_changed\",\"to\":\"a\"},"
                        "{\"from\":\"a\",\"kind\":\"state_changed\",\"to\":\"b\"},"
                        "{\"data\":null,\"kind\":\"emit\",\"subject\":\"k1\",\"type\":\"t.b\"},"
                        "{\"from\":\"b\",\"kind\":\"state_changed\",\"to\":\"c\"},"
                        "{\"kind\":\"log\",\"level\":\"warn\",\"message\":\"bye\"},"
                        "{\"kind\":\"finished\",\"status\":\"completed\"},"
                        "{\"kind\":\"context\",\"set\":{\"x\":1}},"
                        "{\"event_id\":\"e1\",\"event_type\":\"t.requested\",\"from\":null,"
                        "\"kind\":\"history\",\"seq\":1,\"to\":\"c\"}]");
    done(&h);
}

static void test_machine_done_loop_is_an_error(void **state)
{
    harness h;
    fl_instance *before;

    (void)state;
    load(&h, "workflow: t\nversion: 1\ninitial: s\nstates:\n"
             "  s:\n"
             "    transitions: [{event: go, to: a}, {event: stop, to: z}]\n"
             "  a:\n"
             "    transitions: [{done: true, to: b}, {event: stop, to: z}]\n"
             "  b:\n"
             "    transitions: [{done: true, to: a}]\n"
             "  z: {final: true}\n");
    assert_int_equal(start(&h), FL_OK);
    before = h.in;
    fl_effects_clear(&h.fx);
    fl_effects_add_take(&h.fx, FL_EFFECT_LOG, json_object()); /* something already there */
    assert_int_equal(fl_machine_step(h.m, h.wf, h.in, &(fl_event){.id = "x", .type = "go"}, NOW,
                                     &h.in, &h.fx, &h.err),
                     FL_EINVAL);
    assert_ptr_equal(h.in, before);
    assert_int_equal(h.fx.count, 1);
    assert_string_equal(h.err.msg, "done: transitions loop through \"a\" -> \"b\" -> \"a\" -> "
                                   "\"b\" -> \"a\" -> \"b\" -> \"a\" -> \"b\" ... without "
                                   "settling after 100 transitions");
    done(&h);
}

static void test_machine_final_target_finishes(void **state)
{
    harness h;

    (void)state;
    load(&h, "workflow: t\nversion: 1\ninitial: a\nstates:\n"
             "  a:\n"
             "    transitions: [{event: ok, to: good}, {event: ko, to: bad}]\n"
             "  good: {final: true}\n"
             "  bad: {final: failed, entry: [{log: {message: lost}}]}\n");
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(step(&h, "ko", NULL), FL_OK);
    assert_int_equal(h.in->status, FL_STATUS_FAILED);
    assert_string_equal(h.dump, "[{\"from\":\"a\",\"kind\":\"state_changed\",\"to\":\"bad\"},"
                                "{\"kind\":\"log\",\"level\":\"info\",\"message\":\"lost\"},"
                                "{\"kind\":\"finished\",\"status\":\"failed\"},"
                                "{\"event_id\":\"e2\",\"event_type\":\"ko\",\"from\":\"a\","
                                "\"kind\":\"history\",\"seq\":2,\"to\":\"bad\"}]");
    done(&h);
}

/* ---- immediate actions ------------------------------------------------------------- */

static void test_machine_immediate_actions_and_defaults(void **state)
{
    harness h;

    (void)state;
    load(&h, "workflow: t\nversion: 1\ninitial: a\nstates:\n"
             "  a:\n"
             "    entry:\n"
             "      - emit: {type: t.x, topic: order.events, subject: s9, data: {n: 1}}\n"
             "      - start: {workflow: child}\n"
             "      - start: {workflow: child, key: other, input: {a: '${ event.id }'}}\n"
             "      - log: {message: 'hi ${ instance.key }'}\n"
             "      - reply: {content: hello, agent: bot}\n"
             "    transitions: [{event: go, to: b}]\n"
             "  b: {final: true}\n");
    assert_int_equal(start(&h), FL_OK);
    assert_string_equal(
        h.dump, "[{\"from\":null,\"kind\":\"state_changed\",\"to\":\"a\"},"
                "{\"data\":{\"n\":1},\"kind\":\"emit\",\"subject\":\"s9\",\"topic\":"
                "\"order.events\",\"type\":\"t.x\"},"
                "{\"input\":{},\"key\":\"k1\",\"kind\":\"child_start\",\"workflow\":\"child\"},"
                "{\"input\":{\"a\":\"e1\"},\"key\":\"other\",\"kind\":\"child_start\","
                "\"workflow\":\"child\"},"
                "{\"kind\":\"log\",\"level\":\"info\",\"message\":\"hi k1\"},"
                "{\"agent\":\"bot\",\"content\":\"hello\",\"kind\":\"reply\"},"
                "{\"event_id\":\"e1\",\"event_type\":\"t.requested\",\"from\":null,"
                "\"kind\":\"history\",\"seq\":1,\"to\":\"a\"}]");
    done(&h);
}

/* ---- errors, history, determinism, JSON -------------------------------------------- */

static void test_machine_expression_error_leaves_caller_untouched(void **state)
{
    harness h;
    fl_instance *before;

    (void)state;
    load(&h, "workflow: t\nversion: 1\ninitial: a\nstates:\n"
             "  a:\n"
             "    transitions:\n"
             "      - {event: go, if: '${ event.data.x.y == 1 }', to: b}\n"
             "  b: {final: true}\n");
    assert_int_equal(start(&h), FL_OK);
    before = h.in;
    assert_int_equal(step(&h, "go", "{}"), FL_EINVAL);
    assert_ptr_equal(h.in, before);
    assert_int_equal(h.fx.count, 0);
    assert_non_null(strstr(h.err.msg, "state \"a\": if of the transition at 7:9: "));
    assert_int_equal(h.in->seq, 1);
    done(&h);
}

static void test_machine_history_and_context_per_step(void **state)
{
    harness h;

    (void)state;
    load(&h, base_yaml);
    assert_int_equal(start(&h), FL_OK);
    assert_null(strstr(h.dump, "\"context\"")); /* nothing written: no CONTEXT */
    assert_int_equal(step(&h, "poke", NULL), FL_OK);
    assert_int_equal(step(&h, "go", NULL), FL_OK);
    assert_int_equal(h.in->seq, 3);
    assert_non_null(strstr(h.dump, "\"seq\":3"));
    assert_non_null(strstr(h.dump, "{\"kind\":\"context\",\"set\":{\"n\":2}}"));
    done(&h);
}

/* Runs a fixed script and returns effects + instance JSON of every step, concatenated. */
static char *script(void)
{
    static const char *const events[] = {"poke", "go", "back", "nobody", "go", "finish"};
    harness h;
    fl_buf all;
    char *inst;
    json_t *j;

    fl_buf_init(&all, 1 << 20);
    load(&h, base_yaml);
    assert_int_equal(start(&h), FL_OK);
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        assert_int_equal(step(&h, events[i], "{\"v\":[1,2.5,\"x\"]}"), FL_OK);
        j = fl_instance_to_json(h.in, h.wf);
        inst = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
        json_decref(j);
        assert_int_equal(fl_buf_appendf(&all, NULL, "%s%s", h.dump, inst), FL_OK);
        free(inst);
    }
    done(&h);
    return fl_buf_steal(&all);
}

static void test_machine_is_deterministic(void **state)
{
    char *a = script(), *b = script();

    (void)state;
    assert_string_equal(a, b);
    free(a);
    free(b);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_machine_start_enters_initial),
        cmocka_unit_test(test_machine_start_binds_event_and_does_not_match_it),
        cmocka_unit_test(test_machine_ended_instance_is_unhandled),
        cmocka_unit_test(test_machine_cancel_skips_exit_and_cancels_timers),
        cmocka_unit_test(test_machine_external_transition_order_of_effects),
        cmocka_unit_test(test_machine_internal_transition_keeps_state_and_timers),
        cmocka_unit_test(test_machine_first_matching_transition_in_file_order),
        cmocka_unit_test(test_machine_any_state_after_the_state_own),
        cmocka_unit_test(test_machine_no_match_is_unhandled),
        cmocka_unit_test(test_machine_guard_scope),
        cmocka_unit_test(test_machine_guard_scope_by_env_index),
        cmocka_unit_test(test_machine_event_without_data_reads_empty_data),
        cmocka_unit_test(test_machine_done_fires_on_entry_without_calls),
        cmocka_unit_test(test_machine_done_loop_is_an_error),
        cmocka_unit_test(test_machine_final_target_finishes),
        cmocka_unit_test(test_machine_immediate_actions_and_defaults),
        cmocka_unit_test(test_machine_expression_error_leaves_caller_untouched),
        cmocka_unit_test(test_machine_history_and_context_per_step),
        cmocka_unit_test(test_machine_is_deterministic),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
