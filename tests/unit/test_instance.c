/* tests/unit/test_instance.c -- the asynchronous life of an instance in the step
 * function: after:/at: timers, activities (calls, results, failures, stale ones), and
 * the instance's JSON row. The synchronous rules are in test_machine.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/log.h"
#include "tests/unit/machine_harness.h"

/* ---- timers ------------------------------------------------------------------------ */

static void test_machine_after_timer_fires_for_its_entry(void **state)
{
    harness h;

    (void)state;
    load(&h, base_yaml);
    assert_int_equal(start(&h), FL_OK);
    assert_non_null(strstr(h.dump, "\"due_at_ms\":1767780000000")); /* NOW + 48h */
    assert_int_equal(step_at(&h, FL_EVENT_TIMER_FIRED, "{\"timer\":\"i1/1/s2\"}", NOW + H48),
                     FL_OK);
    assert_string_equal(state_of(&h), "end");
    assert_int_equal(h.in->status, FL_STATUS_COMPLETED);
    done(&h);
}

static void test_machine_stale_timer_is_unhandled(void **state)
{
    harness h;

    (void)state;
    load(&h, base_yaml);
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(step(&h, "go", NULL), FL_OK);
    assert_int_equal(step(&h, "back", NULL), FL_OK); /* a again, entry_seq 3 */
    assert_non_null(strstr(h.dump, "\"timer\":\"i1/3/s2\""));
    assert_int_equal(step(&h, FL_EVENT_TIMER_FIRED, "{\"timer\":\"i1/1/s2\"}"), FL_OK);
    assert_string_equal(h.dump, "[{\"event_id\":\"e4\",\"event_type\":\"flowd.timer.fired\","
                                "\"kind\":\"unhandled\",\"reason\":\"stale timer\"}]");
    assert_string_equal(state_of(&h), "a");
    done(&h);
}

static const char at_yaml[] = "workflow: t\nversion: 1\ninitial: a\n"
                              "context: {slot: '2026-01-07T10:00:00+02:00'}\n"
                              "states:\n"
                              "  a:\n"
                              "    transitions:\n"
                              "      - {event: go, to: b}\n"
                              "      - {event: redo, set: {slot: '${ event.data.slot }'}, to: b}\n"
                              "  b:\n"
                              "    transitions:\n"
                              "      - {at: '${ ctx.slot }', offset: -24h, to: c}\n"
                              "  c: {final: true}\n";

static void test_machine_at_timer_uses_template_and_offset(void **state)
{
    harness h;

    (void)state;
    load(&h, at_yaml);
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(step(&h, "go", NULL), FL_OK);
    /* 2026-01-07T08:00:00Z - 24h = 2026-01-06T08:00:00Z */
    assert_non_null(strstr(h.dump, "{\"due_at_ms\":1767686400000,\"entry_seq\":2,\"kind\":"
                                   "\"timer_arm\",\"timer\":\"i1/2/s0\",\"transition\":\"s0\"}"));
    assert_int_equal(step(&h, FL_EVENT_TIMER_FIRED, "{\"timer\":\"i1/2/s0\"}"), FL_OK);
    assert_string_equal(state_of(&h), "c");
    done(&h);
}

static void test_machine_at_in_the_past_is_armed_due_now(void **state)
{
    harness h;

    (void)state;
    load(&h, at_yaml);
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(step(&h, "redo", "{\"slot\":\"2020-01-01T00:00:00.5Z\"}"), FL_OK);
    /* 2019-12-31T00:00:00.500Z: long past, armed as it is; the timer service fires it */
    assert_non_null(strstr(h.dump, "\"due_at_ms\":1577750400500,"));
    done(&h);
}

static void test_machine_at_that_is_not_a_time_fails(void **state)
{
    harness h;
    fl_instance *before;

    (void)state;
    load(&h, at_yaml);
    assert_int_equal(start(&h), FL_OK);
    before = h.in;
    assert_int_equal(step(&h, "redo", "{\"slot\":\"tomorrow\"}"), FL_EINVAL);
    assert_ptr_equal(h.in, before);
    assert_int_equal(h.fx.count, 0);
    assert_string_equal(h.err.msg,
                        "state \"b\": at of the transition at 12:9: at must give an RFC 3339 time");
    done(&h);
}

/* ---- activities -------------------------------------------------------------------- */

static const char call_yaml[] =
    "workflow: t\nversion: 1\ninitial: a\n"
    "states:\n"
    "  a:\n"
    "    entry:\n"
    "      - call: llm\n"
    "        with: {prompt: 'hello ${ event.data.name }'}\n"
    "        into: answer\n"
    "        retry: {attempts: 3, backoff: exponential, delay: 1s, max_delay: 30s}\n"
    "        timeout: 30s\n"
    "      - set: {seen: '${ result and result.text }'}\n"
    "    transitions:\n"
    "      - {event: go, to: b}\n"
    "      - {done: true, if: '${ ctx.seen == \"hi\" }', to: c}\n"
    "      - {error: llm.timeout, to: d}\n"
    "      - {error: http.status, set: {soft: true}}\n"
    "  b:\n"
    "    transitions: [{event: back, to: a}]\n"
    "  c: {final: true}\n"
    "  d: {final: failed}\n";

static void test_machine_call_starts_activity_and_waits(void **state)
{
    harness h;

    (void)state;
    load(&h, call_yaml);
    assert_int_equal(start_at(&h, "t.requested", "{\"name\":\"ada\"}", NOW), FL_OK);
    assert_true(h.in->waiting);
    assert_int_equal(h.in->pc, 0);
    assert_string_equal(h.dump,
                        "[{\"from\":null,\"kind\":\"state_changed\",\"to\":\"a\"},"
                        "{\"action\":0,\"activity\":\"i1/1/0\",\"call\":\"llm\",\"entry_seq\":1,"
                        "\"into\":\"answer\",\"kind\":\"activity_start\",\"retry\":{\"attempts\":3,"
                        "\"backoff\":\"exponential\",\"delay_ms\":1000,\"max_delay_ms\":30000},"
                        "\"timeout_ms\":30000,\"with\":{\"prompt\":\"hello ada\"}},"
                        "{\"event_id\":\"e1\",\"event_type\":\"t.requested\",\"from\":null,"
                        "\"kind\":\"history\",\"seq\":1,\"to\":\"a\"}]");
    done(&h);
}

static void test_machine_result_resumes_list_then_done(void **state)
{
    harness h;
    char *usage;

    (void)state;
    load(&h, call_yaml);
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(step(&h, FL_EVENT_ACTIVITY_COMPLETED,
                          "{\"activity\":\"i1/1/0\",\"result\":{\"text\":\"hi\"},"
                          "\"usage\":{\"tokens_in\":10,\"tokens_out\":5,\"cost\":0.25}}"),
                     FL_OK);
    assert_ctx(&h, "{\"answer\":{\"text\":\"hi\"},\"seen\":\"hi\"}");
    usage = json_dumps(h.in->usage, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(usage, "{\"cost\":0.25,\"tokens_in\":10,\"tokens_out\":5}");
    free(usage);
    assert_string_equal(state_of(&h), "c"); /* done: fired once the list finished */
    assert_string_equal(
        h.dump, "[{\"from\":\"a\",\"kind\":\"state_changed\",\"to\":\"c\"},"
                "{\"kind\":\"finished\",\"status\":\"completed\"},"
                "{\"kind\":\"context\",\"set\":{\"answer\":{\"text\":\"hi\"},\"seen\":\"hi\"}},"
                "{\"event_id\":\"e2\",\"event_type\":\"flowd.activity.completed\",\"from\":"
                "\"a\",\"kind\":\"history\",\"seq\":2,\"to\":\"c\"}]");
    done(&h);
}

static void test_machine_done_guard_false_stays(void **state)
{
    harness h;

    (void)state;
    load(&h, call_yaml);
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(step(&h, FL_EVENT_ACTIVITY_COMPLETED,
                          "{\"activity\":\"i1/1/0\",\"result\":{\"text\":\"no\"}}"),
                     FL_OK);
    assert_string_equal(state_of(&h), "a");
    assert_false(h.in->waiting);
    assert_int_equal(h.in->pc, 2);
    done(&h);
}

static void test_machine_stale_activity_is_unhandled(void **state)
{
    harness h;

    (void)state;
    load(&h, call_yaml);
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(step(&h, "go", NULL), FL_OK);   /* leaves a: the call is abandoned */
    assert_int_equal(step(&h, "back", "{}"), FL_OK); /* a again: i1/3/0 pending */
    assert_true(h.in->waiting);
    assert_int_equal(step(&h, FL_EVENT_ACTIVITY_COMPLETED, "{\"activity\":\"i1/1/0\"}"), FL_OK);
    assert_string_equal(h.dump, "[{\"event_id\":\"e4\",\"event_type\":"
                                "\"flowd.activity.completed\",\"kind\":\"unhandled\","
                                "\"reason\":\"stale activity\"}]");
    assert_int_equal(
        step(&h, FL_EVENT_ACTIVITY_FAILED, "{\"activity\":\"i1/1/0\",\"error\":\"llm.timeout\"}"),
        FL_OK);
    assert_non_null(strstr(h.dump, "stale activity"));
    assert_string_equal(state_of(&h), "a");
    /* the right one resumes; the same result twice is stale */
    assert_int_equal(step(&h, FL_EVENT_ACTIVITY_COMPLETED,
                          "{\"activity\":\"i1/3/0\",\"result\":{\"text\":\"no\"}}"),
                     FL_OK);
    assert_false(h.in->waiting);
    assert_int_equal(step(&h, FL_EVENT_ACTIVITY_COMPLETED, "{\"activity\":\"i1/3/0\"}"), FL_OK);
    assert_non_null(strstr(h.dump, "stale activity"));
    done(&h);
}

static void test_machine_activity_error_matches_error_transition(void **state)
{
    harness h;

    (void)state;
    load(&h, call_yaml);
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(step(&h, FL_EVENT_ACTIVITY_FAILED,
                          "{\"activity\":\"i1/1/0\",\"error\":\"llm.timeout\",\"message\":\"x\"}"),
                     FL_OK);
    assert_string_equal(state_of(&h), "d");
    assert_int_equal(h.in->status, FL_STATUS_FAILED); /* final: failed */
    assert_non_null(strstr(h.dump, "{\"kind\":\"finished\",\"status\":\"failed\"}"));
    done(&h);
}

static void test_machine_internal_error_transition_resumes_list(void **state)
{
    harness h;

    (void)state;
    load(&h, call_yaml);
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(
        step(&h, FL_EVENT_ACTIVITY_FAILED, "{\"activity\":\"i1/1/0\",\"error\":\"http.status\"}"),
        FL_OK);
    assert_string_equal(state_of(&h), "a");
    assert_false(h.in->waiting);
    assert_int_equal(h.in->pc, 2);
    assert_ctx(&h, "{\"seen\":null,\"soft\":true}"); /* the list went on, result null */
    done(&h);
}

static void test_machine_uncaught_activity_error_fails_instance(void **state)
{
    harness h;

    (void)state;
    load(&h, call_yaml);
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(step(&h, FL_EVENT_ACTIVITY_FAILED,
                          "{\"activity\":\"i1/1/0\",\"error\":\"llm.rate_limited\"}"),
                     FL_OK);
    assert_string_equal(state_of(&h), "a");
    assert_int_equal(h.in->status, FL_STATUS_FAILED);
    assert_string_equal(h.dump, "[{\"kind\":\"finished\",\"status\":\"failed\"},"
                                "{\"event_id\":\"e2\",\"event_type\":\"flowd.activity.failed\","
                                "\"from\":\"a\",\"kind\":\"history\",\"seq\":2,\"to\":\"a\"}]");
    done(&h);
}

static void test_machine_error_any_matches_every_error(void **state)
{
    harness h;

    (void)state;
    load(&h, "workflow: t\nversion: 1\ninitial: a\nstates:\n"
             "  a:\n"
             "    entry: [{call: http, with: {method: GET, url: 'http://x'}}]\n"
             "    transitions: [{error: any, to: b}, {done: true, to: c}]\n"
             "  b: {final: failed}\n"
             "  c: {final: true}\n");
    assert_int_equal(start(&h), FL_OK);
    assert_int_equal(
        step(&h, FL_EVENT_ACTIVITY_FAILED, "{\"activity\":\"i1/1/0\",\"error\":\"http.timeout\"}"),
        FL_OK);
    assert_string_equal(state_of(&h), "b");
    done(&h);
}

static void test_machine_instance_json_round_trip(void **state)
{
    harness h;
    fl_instance *back = NULL;
    json_t *j, *j2;
    char *s1, *s2;

    (void)state;
    load(&h, call_yaml);
    assert_int_equal(start(&h), FL_OK);
    j = fl_instance_to_json(h.in, h.wf);
    s1 = json_dumps(j, JSON_SORT_KEYS);
    assert_int_equal(fl_instance_from_json(j, h.wf, &back, &h.err), FL_OK);
    j2 = fl_instance_to_json(back, h.wf);
    s2 = json_dumps(j2, JSON_SORT_KEYS);
    assert_string_equal(s1, s2);
    assert_non_null(strstr(s1, "\"waiting\": true"));
    json_decref(j2);
    free(s2);
    fl_instance_free(back);
    back = NULL;
    /* a row whose state is not in the definition is refused */
    json_object_set_new(j, "state", json_string("nowhere"));
    assert_int_equal(fl_instance_from_json(j, h.wf, &back, &h.err), FL_EINVAL);
    assert_null(back);
    assert_non_null(strstr(h.err.msg, "nowhere"));
    json_decref(j);
    free(s1);
    done(&h);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_machine_after_timer_fires_for_its_entry),
        cmocka_unit_test(test_machine_stale_timer_is_unhandled),
        cmocka_unit_test(test_machine_at_timer_uses_template_and_offset),
        cmocka_unit_test(test_machine_at_in_the_past_is_armed_due_now),
        cmocka_unit_test(test_machine_at_that_is_not_a_time_fails),
        cmocka_unit_test(test_machine_call_starts_activity_and_waits),
        cmocka_unit_test(test_machine_result_resumes_list_then_done),
        cmocka_unit_test(test_machine_done_guard_false_stays),
        cmocka_unit_test(test_machine_stale_activity_is_unhandled),
        cmocka_unit_test(test_machine_activity_error_matches_error_transition),
        cmocka_unit_test(test_machine_internal_error_transition_resumes_list),
        cmocka_unit_test(test_machine_uncaught_activity_error_fails_instance),
        cmocka_unit_test(test_machine_error_any_matches_every_error),
        cmocka_unit_test(test_machine_instance_json_round_trip),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
