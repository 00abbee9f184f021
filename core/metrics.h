/* core/metrics.h -- the process's Prometheus metrics: counters, gauges and histograms with
 * bounded label sets, and their text exposition (format 0.0.4).
 *
 * Design. Every family flowd exports is declared once, in the table of core/metrics.c
 * (name, type, help, label names, buckets, series cap), indexed by fl_metric_id below, so
 * every family is exposed with # HELP / # TYPE from the first scrape, before it has data.
 * The registry is process-wide, like the logger (R8.1 allows that one sink): metrics are
 * recorded from every module, and threading a registry pointer through every call chain
 * would change dozens of signatures for no gain in testability (tests reset it instead).
 *
 * Label sets are bounded: each family caps its number of series. Past the cap, counters
 * and histograms record into one series whose labels are all "overflow" (totals stay
 * right), gauges drop the update, and either way flowd_metrics_series_overflow_total
 * {family} counts it. Label values longer than FL_METRIC_LABEL_MAX - 1 bytes are cut.
 *
 * Thread-safety: every function may be called from any thread. Recording is lock-free:
 * series are found in an open-addressing table of atomic pointers and updated with atomic
 * adds / compare-and-swap; the registry mutex is taken only to create a series the first
 * time its label set is seen. fl_metrics_format reads the atomics without stopping
 * writers, so a scrape sees each value at some instant during the scrape. */
#ifndef FL_CORE_METRICS_H
#define FL_CORE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include <stdint.h>

#include "core/err.h"
#include "core/mem.h"

#define FL_METRIC_MAX_LABELS 4
#define FL_METRIC_LABEL_MAX  64 /* bytes of a label value, NUL included */

/* The families. The order is the exposition order. */
typedef enum fl_metric_id {
    FL_M_BUILD_INFO,
    FL_M_READY,
    FL_M_HTTP_REQUESTS,
    FL_M_HTTP_DURATION,
    FL_M_SSE_STREAMS,
    FL_M_EVENTS_RECEIVED,
    FL_M_KAFKA_PRODUCED,
    FL_M_KAFKA_PRODUCE_ERRORS,
    FL_M_KAFKA_LAG,
    FL_M_ENGINE_TRANSITIONS,
    FL_M_ENGINE_STEP_DURATION,
    FL_M_EVENT_END_TO_END,
    FL_M_WORKFLOW_INSTANCES,
    FL_M_WORKFLOW_COMPLETED,
    FL_M_TIMERS_PENDING,
    FL_M_TIMER_LATENESS,
    FL_M_OUTBOX_BACKLOG,
    FL_M_DEAD_LETTERS,
    FL_M_ACTIVITY_DURATION,
    FL_M_ACTIVITY_RETRIES,
    FL_M_DB_POOL_CONNECTIONS,
    FL_M_DB_QUERY_DURATION,
    FL_M_LLM_REQUESTS,
    FL_M_LLM_DURATION,
    FL_M_LLM_TTFT,
    FL_M_LLM_TOKENS,
    FL_M_LLM_COST,
    FL_M_LLM_FALLBACKS,
    FL_M_LLM_CIRCUIT_OPEN,
    FL_M_CONVERSATIONS_ACTIVE,
    FL_M_CONVERSATION_STAGE,
    FL_M_SERIES_OVERFLOW,
    FL_M_COUNT
} fl_metric_id;

/* Label values in the family's label order, e.g. FL_LABELS("GET", "/livez", "200").
 * NULL values are recorded as "". */
#define FL_LABELS(...) ((const char *const[]){__VA_ARGS__})

/* ---- generic recording ----------------------------------------------------------------- */

/* Adds v (>= 0) to a counter. Ownership: labels are borrowed for the call (copied once). */
void fl_metrics_add(fl_metric_id id, const char *const *labels, double v);
static inline void fl_metrics_inc(fl_metric_id id, const char *const *labels)
{
    fl_metrics_add(id, labels, 1.0);
}

/* Sets / adds to a gauge. */
void fl_metrics_set(fl_metric_id id, const char *const *labels, double v);
void fl_metrics_gauge_add(fl_metric_id id, const char *const *labels, double v);

/* Sets every existing series of a gauge family to 0: for gauges rebuilt from a query,
 * so that a label set the query no longer returns reads 0 instead of its last value. */
void fl_metrics_gauge_zero(fl_metric_id id);

/* Records one observation of a histogram (in the family's base unit). */
void fl_metrics_observe(fl_metric_id id, const char *const *labels, double v);

/* The value of a counter or gauge series (a histogram's count), 0 when it does not exist:
 * for tests and for callers that need to read back what they recorded. */
double fl_metrics_value(fl_metric_id id, const char *const *labels);

/* CLOCK_MONOTONIC in seconds: durations are fl_metrics_now() - start. */
double fl_metrics_now(void);

/* ---- exposition ------------------------------------------------------------------------ */

#define FL_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Appends the text exposition of every family (HELP and TYPE even without samples).
 * Errors: FL_ETOOBIG (out's cap). */
fl_rc fl_metrics_format(fl_buf *out, fl_err *err);

/* True at most once per ttl_ms across all threads: whoever gets true refreshes the gauges
 * that come from a query (on scrape, with a cache, so many scrapers cost one query). */
bool fl_metrics_refresh_claim(int64_t now_ms, int ttl_ms);

/* Forgets every series (tests only: not safe while other threads record). */
void fl_metrics_reset(void);

/* ---- what the modules record (one call per site; labels are bounded here) ------------- */

/* An event type becomes a label value of flowd_events_received_total only once some
 * workflow names it (trigger or transition); others count as "other". Capped at 256. */
void fl_metrics_event_type_allow(const char *type);
/* via: "http" | "kafka". */
void fl_metrics_event_received(const char *via, const char *type);

void fl_metrics_http_request(const char *method, const char *route, int status, double seconds);

/* One produce's outcome (delivery report, or a produce refused at once). */
void fl_metrics_kafka_produced(const char *topic, bool ok);

/* Parses one librdkafka statistics document (statistics.interval.ms, stats_cb) and sets
 * flowd_kafka_consumer_lag{topic,partition,group} for every partition it reports a lag of.
 * Ownership: json is borrowed for the call. Malformed input is ignored. */
void fl_metrics_kafka_stats(const char *json, size_t len, const char *group);

/* A step of `workflow` took `seconds` in the step function (start or event). */
void fl_metrics_engine_step(const char *workflow, double seconds);

/* A transition from -> to (from is NULL or "" for a start) was queued, caused by an event
 * whose CloudEvents time is event_time (RFC 3339, may be NULL), at now_ms (epoch ms):
 * counts the transition, observes end-to-end latency and, for the conversation workflow,
 * the stage entered. */
void fl_metrics_engine_transition(const char *workflow, const char *from, const char *to,
                                  const char *event_time, int64_t now_ms);

/* outcome: completed | failed | cancelled. */
void fl_metrics_workflow_completed(const char *workflow, const char *outcome);

void fl_metrics_timer_fired(const char *workflow, double lateness_seconds);
void fl_metrics_dead_letter(const char *topic, const char *reason);

/* kind: http | llm | flowd.<op>. */
void fl_metrics_activity(const char *kind, double seconds);
void fl_metrics_activity_retry(const char *kind, const char *reason);

/* op: a short fixed name (select, insert, engine_batch, ...). */
void fl_metrics_db_query(const char *op, double seconds);
/* The op name of a SQL text: its first keyword (select, insert, update, delete, with,
 * begin, commit, ...) or "other". Returns a static string. */
const char *fl_metrics_sql_op(const char *sql);

/* ---- LLM (engine/llm/ calls these) ------------------------------------------------------ */

/* One request to a provider. outcome: ok | error | timeout | rate_limited | circuit_open. */
void fl_metrics_llm_request(const char *provider, const char *model, const char *outcome,
                            double seconds);
void fl_metrics_llm_ttft(const char *provider, const char *model, double seconds);
void fl_metrics_llm_tokens(const char *provider, const char *model, long long input,
                           long long output);
/* Tokens and cost from a usage object {tokens_in, tokens_out, cost} (absent fields: 0).
 * Ownership: usage is borrowed; NULL records nothing. */
void fl_metrics_llm_usage(const char *provider, const char *model, const json_t *usage);
/* Cost in the providers' currency unit (USD). */
void fl_metrics_llm_cost(const char *provider, const char *model, double cost);
void fl_metrics_llm_fallback(const char *from, const char *to, const char *reason);
void fl_metrics_llm_circuit(const char *provider, bool open);

/* Counters of known label values start at 0 (Prometheus' advice: rate() then works from
 * the first increment, and a dashboard shows 0 rather than "no data"): produced and
 * produce errors for each configured topic. Ownership: topics borrowed for the call. */
void fl_metrics_kafka_topics_init(const char *const *topics, size_t n);

/* Open conversations per flow type are a query result: see api/routes_metrics.c. */

#endif
