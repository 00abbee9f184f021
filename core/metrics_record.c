/* core/metrics_record.c -- what the modules record: one function per kind of fact, which
 * picks the family, bounds the labels and converts units, so each call site is one line.
 * Also the librdkafka statistics parser behind flowd_kafka_consumer_lag.
 *
 * Design: flowd_events_received_total{type} must stay bounded although event types come
 * from outside, so a type is a label value only once a loaded workflow names it
 * (fl_metrics_event_type_allow, from the definition registry); the allowed set is a
 * fixed open-addressing table of atomic string pointers: lock-free to read, appended
 * under a mutex, never shrunk (definitions are few and change rarely).
 *
 * Thread-safety: see core/metrics.h. */
#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/metrics_int.h"

#define TYPES_MAX  256
#define TYPE_SLOTS 512 /* twice TYPES_MAX, a power of two */

static pthread_mutex_t types_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(char *) types[TYPE_SLOTS];
static int ntypes; /* guarded by types_mu */

static uint32_t str_hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 16777619u;
    }
    return h;
}

/* The slot of `type`, or of the first empty slot on its probe path. */
static size_t type_slot(const char *type, char **found)
{
    size_t idx = str_hash(type) & (TYPE_SLOTS - 1);

    for (size_t i = 0; i < TYPE_SLOTS; i++, idx = (idx + 1) & (TYPE_SLOTS - 1)) {
        char *t = atomic_load_explicit(&types[idx], memory_order_acquire);
        if (!t || strcmp(t, type) == 0) {
            *found = t;
            return idx;
        }
    }
    *found = NULL;
    return TYPE_SLOTS;
}

void fl_metrics_event_type_allow(const char *type)
{
    char *t = NULL;
    size_t idx;

    if (!type || !*type || strlen(type) >= FL_METRIC_LABEL_MAX) {
        return;
    }
    pthread_mutex_lock(&types_mu);
    idx = type_slot(type, &t);
    if (!t && idx < TYPE_SLOTS && ntypes < TYPES_MAX) {
        atomic_store_explicit(&types[idx], fl_xstrdup(type), memory_order_release);
        ntypes++;
    }
    pthread_mutex_unlock(&types_mu);
}

void fl_metrics_event_received(const char *via, const char *type)
{
    char *t = NULL;

    if (type && *type) {
        type_slot(type, &t);
    }
    fl_metrics_inc(FL_M_EVENTS_RECEIVED, FL_LABELS(via, t ? t : "other"));
}

double fl_metrics_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void fl_metrics_http_request(const char *method, const char *route, int status, double seconds)
{
    char code[16];

    snprintf(code, sizeof(code), "%d", status);
    fl_metrics_inc(FL_M_HTTP_REQUESTS, FL_LABELS(method, route, code));
    fl_metrics_observe(FL_M_HTTP_DURATION, FL_LABELS(method, route), seconds);
}

void fl_metrics_kafka_produced(const char *topic, bool ok)
{
    fl_metrics_inc(ok ? FL_M_KAFKA_PRODUCED : FL_M_KAFKA_PRODUCE_ERRORS, FL_LABELS(topic));
}

static void stats_topic(const char *topic, const json_t *parts, const char *group)
{
    const char *key;
    json_t *p;

    json_object_foreach((json_t *)parts, key, p)
    {
        json_int_t lag = json_integer_value(json_object_get(p, "consumer_lag"));
        if (strcmp(key, "-1") == 0 || !json_is_integer(json_object_get(p, "consumer_lag"))) {
            continue; /* -1 is librdkafka's "unassigned partition" bookkeeping entry */
        }
        /* -1 = unknown (not assigned here, nothing fetched yet): another member reports it */
        fl_metrics_set(FL_M_KAFKA_LAG, FL_LABELS(topic, key, group), lag > 0 ? (double)lag : 0);
    }
}

void fl_metrics_kafka_stats(const char *json, size_t len, const char *group)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    const char *topic;
    json_t *t;

    if (root && json_is_object(json_object_get(root, "topics"))) {
        json_object_foreach(json_object_get(root, "topics"), topic, t)
        {
            stats_topic(topic, json_object_get(t, "partitions"), group ? group : "");
        }
    }
    json_decref(root);
}

void fl_metrics_engine_step(const char *workflow, double seconds)
{
    fl_metrics_observe(FL_M_ENGINE_STEP_DURATION, FL_LABELS(workflow), seconds);
}

/* RFC 3339 ("2026-01-05T10:00:00.123Z", "...+02:00") to epoch ms; false when malformed. */
static bool parse_time(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    const char *p = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    int64_t frac = 0, scale = 1000, off = 0;

    if (!p) {
        return false;
    }
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++) {
            scale /= 10;
            frac += scale ? (*p - '0') * scale : 0;
        }
    }
    if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        off = ((p[1] - '0') * 600 + (p[2] - '0') * 60 + (p[4] - '0') * 10 + (p[5] - '0')) * 60;
        off = *p == '-' ? -off : off;
    } else if (strcmp(p, "Z") != 0 && strcmp(p, "z") != 0) {
        return false;
    }
    *ms = ((int64_t)timegm(&tm) - off) * 1000 + frac;
    return true;
}

void fl_metrics_engine_transition(const char *workflow, const char *from, const char *to,
                                  const char *event_time, int64_t now_ms)
{
    int64_t t;

    fl_metrics_inc(FL_M_ENGINE_TRANSITIONS, FL_LABELS(workflow, from ? from : "", to));
    if (parse_time(event_time, &t) && now_ms >= t) {
        fl_metrics_observe(FL_M_EVENT_END_TO_END, FL_LABELS(workflow), (double)(now_ms - t) / 1e3);
    }
    /* the shipped conversation workflow's states are its stages (the funnel panel) */
    if (workflow && strcmp(workflow, "conversation") == 0 && to) {
        fl_metrics_inc(FL_M_CONVERSATION_STAGE, FL_LABELS(to));
    }
}

void fl_metrics_workflow_completed(const char *workflow, const char *outcome)
{
    fl_metrics_inc(FL_M_WORKFLOW_COMPLETED, FL_LABELS(workflow, outcome));
}

void fl_metrics_timer_fired(const char *workflow, double lateness_seconds)
{
    fl_metrics_observe(FL_M_TIMER_LATENESS, FL_LABELS(workflow),
                       lateness_seconds > 0 ? lateness_seconds : 0);
}

void fl_metrics_dead_letter(const char *topic, const char *reason)
{
    fl_metrics_inc(FL_M_DEAD_LETTERS, FL_LABELS(topic, reason));
}

void fl_metrics_activity(const char *kind, double seconds)
{
    fl_metrics_observe(FL_M_ACTIVITY_DURATION, FL_LABELS(kind), seconds);
}

void fl_metrics_activity_retry(const char *kind, const char *reason)
{
    fl_metrics_inc(FL_M_ACTIVITY_RETRIES, FL_LABELS(kind, reason));
}

void fl_metrics_db_query(const char *op, double seconds)
{
    fl_metrics_observe(FL_M_DB_QUERY_DURATION, FL_LABELS(op), seconds);
}

const char *fl_metrics_sql_op(const char *sql)
{
    static const char *const ops[] = {"select", "insert", "update",   "delete", "with",
                                      "begin",  "commit", "rollback", "listen", "notify",
                                      "lock",   "set",    "create",   "alter",  "copy"};
    char word[16];
    size_t n = 0;

    while (sql && isspace((unsigned char)*sql)) {
        sql++;
    }
    while (sql && n < sizeof(word) - 1 && isalpha((unsigned char)sql[n])) {
        word[n] = (char)tolower((unsigned char)sql[n]);
        n++;
    }
    word[n] = '\0';
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(word, ops[i]) == 0) {
            return ops[i];
        }
    }
    return "other";
}

/* ---- LLM ------------------------------------------------------------------------------ */

void fl_metrics_llm_request(const char *provider, const char *model, const char *outcome,
                            double seconds)
{
    fl_metrics_inc(FL_M_LLM_REQUESTS, FL_LABELS(provider, model, outcome));
    fl_metrics_observe(FL_M_LLM_DURATION, FL_LABELS(provider, model), seconds);
}

void fl_metrics_llm_ttft(const char *provider, const char *model, double seconds)
{
    fl_metrics_observe(FL_M_LLM_TTFT, FL_LABELS(provider, model), seconds);
}

void fl_metrics_llm_tokens(const char *provider, const char *model, long long input,
                           long long output)
{
    fl_metrics_add(FL_M_LLM_TOKENS, FL_LABELS(provider, model, "input"), (double)input);
    fl_metrics_add(FL_M_LLM_TOKENS, FL_LABELS(provider, model, "output"), (double)output);
}

void fl_metrics_llm_cost(const char *provider, const char *model, double cost)
{
    fl_metrics_add(FL_M_LLM_COST, FL_LABELS(provider, model), cost);
}

void fl_metrics_llm_usage(const char *provider, const char *model, const json_t *usage)
{
    if (!usage) {
        return;
    }
    fl_metrics_llm_tokens(provider, model, json_integer_value(json_object_get(usage, "tokens_in")),
                          json_integer_value(json_object_get(usage, "tokens_out")));
    fl_metrics_llm_cost(provider, model, json_number_value(json_object_get(usage, "cost")));
}

void fl_metrics_kafka_topics_init(const char *const *topics, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fl_metrics_add(FL_M_KAFKA_PRODUCED, FL_LABELS(topics[i]), 0);
        fl_metrics_add(FL_M_KAFKA_PRODUCE_ERRORS, FL_LABELS(topics[i]), 0);
    }
}

void fl_metrics_llm_fallback(const char *from, const char *to, const char *reason)
{
    fl_metrics_inc(FL_M_LLM_FALLBACKS, FL_LABELS(from, to, reason));
}

void fl_metrics_llm_circuit(const char *provider, bool open)
{
    fl_metrics_set(FL_M_LLM_CIRCUIT_OPEN, FL_LABELS(provider), open ? 1 : 0);
}
