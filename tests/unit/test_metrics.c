/* tests/unit/test_metrics.c -- the metrics registry: recording, label caps, histograms,
 * the text exposition and exact totals under concurrent writers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"

static int reset(void **state)
{
    (void)state;
    fl_metrics_reset();
    return 0;
}

/* The exposition as one string. Ownership: caller frees. */
static char *scrape(void)
{
    fl_buf b;
    fl_err err = FL_ERR_INIT;

    fl_buf_init(&b, 16u << 20);
    assert_int_equal(fl_metrics_format(&b, &err), FL_OK);
    return fl_buf_steal(&b);
}

static void test_metrics_every_family_has_help_and_type_before_data(void **state)
{
    static const char *const want[] = {"flowd_build_info gauge",
                                       "flowd_http_requests_total counter",
                                       "flowd_http_request_duration_seconds histogram",
                                       "flowd_sse_streams gauge",
                                       "flowd_events_received_total counter",
                                       "flowd_kafka_consumer_lag gauge",
                                       "flowd_engine_transitions_total counter",
                                       "flowd_llm_fallbacks_total counter",
                                       "flowd_llm_time_to_first_token_seconds histogram",
                                       "flowd_conversation_stage_total counter",
                                       "flowd_conversations_active gauge",
                                       "flowd_outbox_backlog gauge"};
    char *text = scrape();
    char line[160];

    (void)state;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        snprintf(line, sizeof(line), "# TYPE %s\n", want[i]);
        assert_non_null(strstr(text, line));
    }
    assert_non_null(strstr(text, "# HELP flowd_http_requests_total HTTP requests"));
    assert_non_null(strstr(text, "\nflowd_outbox_backlog 0\n"));
    assert_non_null(strstr(text, "\nflowd_build_info{version=\""));
    free(text);
}

static void test_metrics_counter_exposition_line(void **state)
{
    char *text;

    (void)state;
    fl_metrics_http_request("GET", "/livez", 200, 0.003);
    fl_metrics_http_request("GET", "/livez", 200, 0.004);
    text = scrape();
    assert_non_null(strstr(
        text, "\nflowd_http_requests_total{method=\"GET\",route=\"/livez\",code=\"200\"} 2\n"));
    free(text);
}

static void test_metrics_histogram_buckets_are_cumulative(void **state)
{
    char *text;

    (void)state;
    fl_metrics_observe(FL_M_ENGINE_STEP_DURATION, FL_LABELS("order"), 0.0004);
    fl_metrics_observe(FL_M_ENGINE_STEP_DURATION, FL_LABELS("order"), 0.003);
    fl_metrics_observe(FL_M_ENGINE_STEP_DURATION, FL_LABELS("order"), 99);
    text = scrape();
    assert_non_null(strstr(
        text, "flowd_engine_step_duration_seconds_bucket{workflow=\"order\",le=\"0.0005\"} 1\n"));
    assert_non_null(strstr(
        text, "flowd_engine_step_duration_seconds_bucket{workflow=\"order\",le=\"0.005\"} 2\n"));
    assert_non_null(strstr(
        text, "flowd_engine_step_duration_seconds_bucket{workflow=\"order\",le=\"10\"} 2\n"));
    assert_non_null(strstr(
        text, "flowd_engine_step_duration_seconds_bucket{workflow=\"order\",le=\"+Inf\"} 3\n"));
    assert_non_null(
        strstr(text, "flowd_engine_step_duration_seconds_count{workflow=\"order\"} 3\n"));
    assert_non_null(
        strstr(text, "flowd_engine_step_duration_seconds_sum{workflow=\"order\"} 99.0034"));
    free(text);
}

static void test_metrics_label_values_are_escaped(void **state)
{
    char *text;

    (void)state;
    fl_metrics_dead_letter("t", "bad \"x\"\\y\nz");
    text = scrape();
    assert_non_null(strstr(text, "reason=\"bad \\\"x\\\"\\\\y\\nz\"} 1\n"));
    free(text);
}

static void test_metrics_long_label_values_are_cut(void **state)
{
    char longv[200];

    (void)state;
    memset(longv, 'a', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    fl_metrics_inc(FL_M_DEAD_LETTERS, FL_LABELS("t", longv));
    longv[FL_METRIC_LABEL_MAX - 1] = '\0';
    assert_true(fl_metrics_value(FL_M_DEAD_LETTERS, FL_LABELS("t", longv)) == 1);
}

static void test_metrics_counter_cap_clips_into_overflow(void **state)
{
    char v[32];

    (void)state;
    for (int i = 0; i < 150; i++) { /* the topic family caps at 100 series */
        snprintf(v, sizeof(v), "topic-%d", i);
        fl_metrics_kafka_produced(v, true);
    }
    assert_true(fl_metrics_value(FL_M_KAFKA_PRODUCED, FL_LABELS("topic-99")) == 1);
    assert_true(fl_metrics_value(FL_M_KAFKA_PRODUCED, FL_LABELS("topic-100")) == 0);
    assert_true(fl_metrics_value(FL_M_KAFKA_PRODUCED, FL_LABELS("overflow")) == 50);
    assert_true(fl_metrics_value(FL_M_SERIES_OVERFLOW, FL_LABELS("flowd_kafka_produced_total")) ==
                50);
}

static void test_metrics_gauge_cap_refuses(void **state)
{
    char v[32];

    (void)state;
    for (int i = 0; i < 40; i++) { /* circuit gauges cap at 32 */
        snprintf(v, sizeof(v), "p%d", i);
        fl_metrics_llm_circuit(v, true);
    }
    assert_true(fl_metrics_value(FL_M_LLM_CIRCUIT_OPEN, FL_LABELS("p31")) == 1);
    assert_true(fl_metrics_value(FL_M_LLM_CIRCUIT_OPEN, FL_LABELS("p32")) == 0);
    assert_true(fl_metrics_value(FL_M_SERIES_OVERFLOW, FL_LABELS("flowd_llm_circuit_open")) == 8);
}

static void test_metrics_gauge_zero_keeps_series(void **state)
{
    (void)state;
    fl_metrics_set(FL_M_WORKFLOW_INSTANCES, FL_LABELS("order", "paid"), 7);
    fl_metrics_gauge_zero(FL_M_WORKFLOW_INSTANCES);
    fl_metrics_set(FL_M_WORKFLOW_INSTANCES, FL_LABELS("order", "new"), 2);
    assert_true(fl_metrics_value(FL_M_WORKFLOW_INSTANCES, FL_LABELS("order", "paid")) == 0);
    assert_true(fl_metrics_value(FL_M_WORKFLOW_INSTANCES, FL_LABELS("order", "new")) == 2);
}

static void test_metrics_event_type_bounded_by_allow_list(void **state)
{
    (void)state;
    fl_metrics_event_type_allow("order.paid");
    fl_metrics_event_received("kafka", "order.paid");
    fl_metrics_event_received("kafka", "random.thing");
    fl_metrics_event_received("http", NULL);
    assert_true(fl_metrics_value(FL_M_EVENTS_RECEIVED, FL_LABELS("kafka", "order.paid")) == 1);
    assert_true(fl_metrics_value(FL_M_EVENTS_RECEIVED, FL_LABELS("kafka", "other")) == 1);
    assert_true(fl_metrics_value(FL_M_EVENTS_RECEIVED, FL_LABELS("http", "other")) == 1);
}

static void test_metrics_transition_counts_latency_and_stage(void **state)
{
    /* 2026-01-05T10:00:00.250Z = 1767607200250 ms */
    (void)state;
    fl_metrics_engine_transition("conversation", "greeting", "booking", "2026-01-05T10:00:00.250Z",
                                 1767607201250);
    fl_metrics_engine_transition("conversation", NULL, "greeting", "2026-01-05T11:00:00+01:00",
                                 1767607200000);
    assert_true(fl_metrics_value(FL_M_ENGINE_TRANSITIONS,
                                 FL_LABELS("conversation", "greeting", "booking")) == 1);
    assert_true(fl_metrics_value(FL_M_CONVERSATION_STAGE, FL_LABELS("booking")) == 1);
    assert_true(fl_metrics_value(FL_M_EVENT_END_TO_END, FL_LABELS("conversation")) == 2);
}

static void test_metrics_kafka_stats_set_lag(void **state)
{
    static const char js[] =
        "{\"type\":\"consumer\",\"topics\":{\"flowd.events\":{\"partitions\":{"
        "\"0\":{\"consumer_lag\":12},\"1\":{\"consumer_lag\":-1},\"-1\":{\"consumer_lag\":5}}}}}";

    (void)state;
    fl_metrics_kafka_stats(js, sizeof(js) - 1, "flowd-engine");
    fl_metrics_kafka_stats("not json", 8, "g"); /* ignored */
    assert_true(fl_metrics_value(FL_M_KAFKA_LAG, FL_LABELS("flowd.events", "0", "flowd-engine")) ==
                12);
    assert_true(fl_metrics_value(FL_M_KAFKA_LAG, FL_LABELS("flowd.events", "1", "flowd-engine")) ==
                0);
    assert_true(fl_metrics_value(FL_M_KAFKA_LAG, FL_LABELS("flowd.events", "-1", "flowd-engine")) ==
                0);
}

static void test_metrics_sql_op_names_first_keyword(void **state)
{
    (void)state;
    assert_string_equal(fl_metrics_sql_op("  SELECT 1"), "select");
    assert_string_equal(fl_metrics_sql_op("insert into x"), "insert");
    assert_string_equal(fl_metrics_sql_op("VACUUM"), "other");
    assert_string_equal(fl_metrics_sql_op(NULL), "other");
}

static void test_metrics_refresh_claim_once_per_ttl(void **state)
{
    (void)state;
    assert_true(fl_metrics_refresh_claim(1000000, 5000));
    assert_false(fl_metrics_refresh_claim(1001000, 5000));
    assert_true(fl_metrics_refresh_claim(1006000, 5000));
}

enum { THREADS = 8, ROUNDS = 50000 };

static void *hammer(void *arg)
{
    const char *route = arg;

    for (int i = 0; i < ROUNDS; i++) {
        fl_metrics_inc(FL_M_HTTP_REQUESTS, FL_LABELS("GET", route, "200"));
        fl_metrics_observe(FL_M_HTTP_DURATION, FL_LABELS("GET", "/shared"), 0.001);
        fl_metrics_add(FL_M_LLM_COST, FL_LABELS("p", "m"), 0.5);
    }
    return NULL;
}

static void test_metrics_concurrent_totals_are_exact(void **state)
{
    static const char *routes[] = {"/a", "/b", "/shared", "/a"};
    pthread_t t[THREADS];

    (void)state;
    for (int i = 0; i < THREADS; i++) {
        pthread_create(&t[i], NULL, hammer, (void *)routes[i % 4]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    assert_true(fl_metrics_value(FL_M_HTTP_REQUESTS, FL_LABELS("GET", "/a", "200")) ==
                4.0 * ROUNDS);
    assert_true(fl_metrics_value(FL_M_HTTP_REQUESTS, FL_LABELS("GET", "/shared", "200")) ==
                2.0 * ROUNDS);
    assert_true(fl_metrics_value(FL_M_HTTP_DURATION, FL_LABELS("GET", "/shared")) ==
                (double)THREADS * ROUNDS);
    assert_true(fl_metrics_value(FL_M_LLM_COST, FL_LABELS("p", "m")) == 0.5 * THREADS * ROUNDS);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_metrics_every_family_has_help_and_type_before_data, reset),
        cmocka_unit_test_setup(test_metrics_counter_exposition_line, reset),
        cmocka_unit_test_setup(test_metrics_histogram_buckets_are_cumulative, reset),
        cmocka_unit_test_setup(test_metrics_label_values_are_escaped, reset),
        cmocka_unit_test_setup(test_metrics_long_label_values_are_cut, reset),
        cmocka_unit_test_setup(test_metrics_counter_cap_clips_into_overflow, reset),
        cmocka_unit_test_setup(test_metrics_gauge_cap_refuses, reset),
        cmocka_unit_test_setup(test_metrics_gauge_zero_keeps_series, reset),
        cmocka_unit_test_setup(test_metrics_event_type_bounded_by_allow_list, reset),
        cmocka_unit_test_setup(test_metrics_transition_counts_latency_and_stage, reset),
        cmocka_unit_test_setup(test_metrics_kafka_stats_set_lag, reset),
        cmocka_unit_test_setup(test_metrics_sql_op_names_first_keyword, reset),
        cmocka_unit_test_setup(test_metrics_refresh_claim_once_per_ttl, reset),
        cmocka_unit_test_setup(test_metrics_concurrent_totals_are_exact, reset),
    };

    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
