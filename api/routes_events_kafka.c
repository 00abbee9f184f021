/* api/routes_events_kafka.c -- GET /api/v1/kafka/health and GET /api/v1/kafka/metrics.
 *
 * health: a broker answers (fl_kafka_check) and every configured topic exists, with the
 * engine's input topics at one partition count (the co-partitioning rule of
 * ARCHITECTURE.md section 2). 200 {status: "ok", topics: [{name, partitions,
 * engine_input}]}; 503 problem naming what is wrong.
 *
 * metrics: the lag of the engine's consumer group (engine.group) on every partition of
 * the topics it consumes, from committed offsets and high watermarks
 * (fl_kafka_group_lag, core/kafka_lag.c, so no librdkafka header here). 200 {groups:
 * [{group, total_lag, partitions: [{topic, partition, committed_offset (null when the
 * group never committed), log_start_offset, high_watermark, lag}]}]}; 503 when Kafka
 * cannot answer.
 *
 * Thread-safety: one request per call; the producer is thread-safe. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/routes_events_int.h"
#include "core/log.h"

/* The topics the engine consumes, as consumers/engine.c subscribes to them. */
static size_t engine_topics(const fl_config *cfg, const char *out[5])
{
    const fl_config_topics *t = &cfg->kafka.topics;

    out[0] = t->conversation_events;
    out[1] = t->flowd_events;
    out[2] = t->appointment_events;
    out[3] = t->order_events;
    out[4] = t->internal;
    return 5;
}

/* What the health check has found so far. */
typedef struct health {
    fl_req *r;
    int first_input; /* the partition count of the first engine input topic */
    char bad[512];   /* what is wrong, "; "-separated */
} health;

static void health_bad(health *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void health_bad(health *h, const char *fmt, ...)
{
    size_t used = strlen(h->bad);
    va_list ap;

    if (used > 0 && used + 2 < sizeof(h->bad)) {
        memcpy(h->bad + used, "; ", 3);
        used += 2;
    }
    va_start(ap, fmt);
    vsnprintf(h->bad + used, sizeof(h->bad) - used, fmt, ap);
    va_end(ap);
}

/* One topic's entry: its partition count, or why it has none. */
static json_t *topic_entry(health *h, const char *name, bool input)
{
    fl_api *api = h->r->api;
    fl_err err = FL_ERR_INIT;
    int count = 0;

    if (fl_kafka_partition_count(api->producer, name, api->cfg->kafka.metadata_timeout_ms, &count,
                                 &err) != FL_OK) {
        health_bad(h, "%s", err.msg);
        return json_pack("{s:s, s:b, s:s}", "name", name, "engine_input", input, "error", err.msg);
    }
    if (input && h->first_input == 0) {
        h->first_input = count;
    } else if (input && count != h->first_input) {
        health_bad(h, "engine input topic \"%s\" has %d partitions, the others %d", name, count,
                   h->first_input);
    }
    return json_pack("{s:s, s:i, s:b}", "name", name, "partitions", count, "engine_input", input);
}

int ev_kafka_health(fl_req *r)
{
    const fl_config *cfg = r->api->cfg;
    const char *names[FL_CONFIG_TOPIC_COUNT];
    size_t n = fl_config_topic_names(&cfg->kafka.topics, names);
    fl_err err = FL_ERR_INIT;
    health h = {.r = r};
    json_t *topics;

    if (r->api->producer == NULL) {
        return fl_problem(r, 503, "this process has no Kafka client");
    }
    if (fl_kafka_check(r->api->producer, cfg->kafka.metadata_timeout_ms, &err) != FL_OK) {
        fl_req_header_add(r, "Retry-After", "1");
        return fl_problem(r, 503, "%s", err.msg);
    }
    topics = json_array();
    for (size_t i = 0; i < n; i++) {
        bool input = i < FL_CONFIG_ENGINE_TOPIC_COUNT || names[i] == cfg->kafka.topics.internal;
        json_array_append_new(topics, topic_entry(&h, names[i], input));
    }
    if (h.bad[0] != '\0') {
        json_decref(topics);
        return fl_problem(r, 503, "Kafka answers, but: %s", h.bad);
    }
    return fl_reply(r, 200, json_pack("{s:s, s:o}", "status", "ok", "topics", topics));
}

static json_t *lag_json(const char *group, const fl_kafka_lag *lag, size_t n)
{
    json_t *parts = json_array();
    long long total = 0;

    for (size_t i = 0; i < n; i++) {
        json_t *committed =
            lag[i].committed >= 0 ? json_integer((json_int_t)lag[i].committed) : json_null();
        json_array_append_new(
            parts, json_pack("{s:s, s:i, s:o, s:I, s:I, s:I}", "topic", lag[i].topic, "partition",
                             (int)lag[i].partition, "committed_offset", committed,
                             "log_start_offset", (json_int_t)lag[i].low, "high_watermark",
                             (json_int_t)lag[i].high, "lag", (json_int_t)lag[i].lag));
        total += lag[i].lag;
    }
    return json_pack("{s:s, s:I, s:o}", "group", group, "total_lag", (json_int_t)total,
                     "partitions", parts);
}

int ev_kafka_metrics(fl_req *r)
{
    const fl_config *cfg = r->api->cfg;
    const char *topics[5];
    fl_kafka_lag_query q = {.group = cfg->engine.group,
                            .topics = topics,
                            .ntopics = engine_topics(cfg, topics),
                            .timeout_ms = 2 * cfg->kafka.metadata_timeout_ms};
    fl_kafka_lag *lag = NULL;
    size_t n = 0;
    fl_err err = FL_ERR_INIT;
    json_t *group;

    if (r->api->producer == NULL) {
        return fl_problem(r, 503, "this process has no Kafka client");
    }
    if (fl_kafka_group_lag(r->api->producer, &q, &lag, &n, &err) != FL_OK) {
        fl_log(FL_WARN, "api.kafka_metrics_failed", FL_STR("request_id", r->request_id),
               FL_STR("error", err.msg));
        fl_req_header_add(r, "Retry-After", "1");
        return fl_problem(r, 503, "%s", err.msg);
    }
    group = lag_json(cfg->engine.group, lag, n);
    free(lag);
    return fl_reply(r, 200, json_pack("{s:[o]}", "groups", group));
}
