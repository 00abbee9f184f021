/* core/metrics.c -- the family table, the lock-free series store and the exposition.
 *
 * Design: each family has a fixed open-addressing table of atomic series pointers. A
 * series, once published (release store), never moves or goes away, so recording is
 * a hash, a probe with acquire loads and an atomic add. Values are doubles kept as their
 * bit patterns in _Atomic uint64_t and added with a compare-and-swap loop (C11 has no
 * atomic double add); histogram buckets are plain atomic counters, made cumulative only
 * when formatted. The table is twice the family's cap, so probes stay short.
 *
 * Thread-safety: see core/metrics.h; `mu` guards series creation and nseries. */
#include "core/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics_int.h"

#define TABLE 1024 /* slots per family: a power of two, at least twice any cap */

static const double lat_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1,    0.25,  0.5,    1,     2.5,  5,     10};
static const double wide_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                      2.5,   5,    10,    30,   60,  120,  300};
static const double llm_buckets[] = {0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120};

#define LAT    lat_buckets, sizeof(lat_buckets) / sizeof(double)
#define WIDE   wide_buckets, sizeof(wide_buckets) / sizeof(double)
#define LLM    llm_buckets, sizeof(llm_buckets) / sizeof(double)
#define NOB    NULL, 0
#define L(...) {__VA_ARGS__}
#define C      FL_METRIC_COUNTER
#define G      FL_METRIC_GAUGE
#define H      FL_METRIC_HISTOGRAM

/* The caps: HTTP is method x route x code; workflow labels are bounded by the definitions
 * a deployment has, partitions by the topics' partition counts. */
static const fl_metric_family families[FL_M_COUNT] = {
    [FL_M_BUILD_INFO] = {"flowd_build_info", "flowd's version; the value is always 1", G,
                         L("version", "compiler"), NOB, 4},
    [FL_M_READY] = {"flowd_ready", "1 when the named readiness check passes (see /readyz)", G,
                    L("check"), NOB, 32},
    [FL_M_HTTP_REQUESTS] = {"flowd_http_requests_total",
                            "HTTP requests answered, by method, route pattern and status", C,
                            L("method", "route", "code"), NOB, 500},
    [FL_M_HTTP_DURATION] = {"flowd_http_request_duration_seconds",
                            "time from request to response, by method and route pattern", H,
                            L("method", "route"), LAT, 200},
    [FL_M_SSE_STREAMS] = {"flowd_sse_streams", "open SSE streams and long-polls", G, L(0), NOB, 1},
    [FL_M_EVENTS_RECEIVED] = {"flowd_events_received_total",
                              "events received, by path (http|kafka) and type (types no "
                              "workflow names count as other)",
                              C, L("via", "type"), NOB, 500},
    [FL_M_KAFKA_PRODUCED] = {"flowd_kafka_produced_total",
                             "messages the broker acknowledged, by topic", C, L("topic"), NOB, 100},
    [FL_M_KAFKA_PRODUCE_ERRORS] = {"flowd_kafka_produce_errors_total",
                                   "messages that could not be produced, by topic", C, L("topic"),
                                   NOB, 100},
    [FL_M_KAFKA_LAG] = {"flowd_kafka_consumer_lag",
                        "messages between the group's position and the high watermark "
                        "(librdkafka statistics)",
                        G, L("topic", "partition", "group"), NOB, 500},
    [FL_M_ENGINE_TRANSITIONS] = {"flowd_engine_transitions_total",
                                 "state transitions applied, by workflow, from and to state", C,
                                 L("workflow", "from", "to"), NOB, 500},
    [FL_M_ENGINE_STEP_DURATION] = {"flowd_engine_step_duration_seconds",
                                   "time the step function took for one event", H, L("workflow"),
                                   LAT, 100},
    [FL_M_EVENT_END_TO_END] = {"flowd_event_end_to_end_seconds",
                               "time from an event's CloudEvents time to its step", H,
                               L("workflow"), WIDE, 100},
    [FL_M_WORKFLOW_INSTANCES] = {"flowd_workflow_instances",
                                 "running instances by workflow and state (from PostgreSQL)", G,
                                 L("workflow", "state"), NOB, 500},
    [FL_M_WORKFLOW_COMPLETED] = {"flowd_workflow_completed_total",
                                 "instances that finished, by workflow and outcome", C,
                                 L("workflow", "outcome"), NOB, 200},
    [FL_M_TIMERS_PENDING] = {"flowd_timers_pending",
                             "durable timers not yet fired, by workflow (from PostgreSQL)", G,
                             L("workflow"), NOB, 100},
    [FL_M_TIMER_LATENESS] = {"flowd_timer_lateness_seconds",
                             "how long after its due time a timer fired", H, L("workflow"), WIDE,
                             100},
    [FL_M_OUTBOX_BACKLOG] = {"flowd_outbox_backlog",
                             "outbox rows not yet published (from PostgreSQL)", G, L(0), NOB, 1},
    [FL_M_DEAD_LETTERS] = {"flowd_dead_letters_total", "events dead-lettered, by topic and reason",
                           C, L("topic", "reason"), NOB, 200},
    [FL_M_ACTIVITY_DURATION] = {"flowd_activity_duration_seconds",
                                "time one activity call took, by kind", H, L("kind"), WIDE, 50},
    [FL_M_ACTIVITY_RETRIES] = {"flowd_activity_retries_total",
                               "activity attempts scheduled again, by kind and error type", C,
                               L("kind", "reason"), NOB, 200},
    [FL_M_DB_POOL_CONNECTIONS] = {"flowd_db_pool_connections",
                                  "PostgreSQL pool connections by state (in_use, idle, max)", G,
                                  L("state"), NOB, 8},
    [FL_M_DB_QUERY_DURATION] = {"flowd_db_query_duration_seconds",
                                "PostgreSQL statement time, by operation", H, L("op"), LAT, 50},
    [FL_M_LLM_REQUESTS] = {"flowd_llm_requests_total",
                           "LLM requests by provider, model and outcome", C,
                           L("provider", "model", "outcome"), NOB, 300},
    [FL_M_LLM_DURATION] = {"flowd_llm_request_duration_seconds",
                           "time one LLM request took, by provider and model", H,
                           L("provider", "model"), LLM, 100},
    [FL_M_LLM_TTFT] = {"flowd_llm_time_to_first_token_seconds",
                       "time to the first streamed token, by provider and model", H,
                       L("provider", "model"), LLM, 100},
    [FL_M_LLM_TOKENS] = {"flowd_llm_tokens_total",
                         "LLM tokens by provider, model and direction (input|output)", C,
                         L("provider", "model", "direction"), NOB, 200},
    [FL_M_LLM_COST] = {"flowd_llm_cost_total", "LLM cost in USD, by provider and model", C,
                       L("provider", "model"), NOB, 100},
    [FL_M_LLM_FALLBACKS] = {"flowd_llm_fallbacks_total",
                            "requests passed to the next provider of a fallback chain", C,
                            L("from", "to", "reason"), NOB, 200},
    [FL_M_LLM_CIRCUIT_OPEN] = {"flowd_llm_circuit_open",
                               "1 while the provider's circuit breaker is open", G, L("provider"),
                               NOB, 32},
    [FL_M_CONVERSATIONS_ACTIVE] = {"flowd_conversations_active",
                                   "running conversations by flow type (from PostgreSQL)", G,
                                   L("flow_type"), NOB, 50},
    [FL_M_CONVERSATION_STAGE] = {"flowd_conversation_stage_total",
                                 "conversation stages entered, by stage", C, L("stage"), NOB, 100},
    [FL_M_SERIES_OVERFLOW] = {"flowd_metrics_series_overflow_total",
                              "updates that found their family's label-set cap full", C,
                              L("family"), NOB, FL_M_COUNT},
};

typedef struct series {
    char labels[FL_METRIC_MAX_LABELS][FL_METRIC_LABEL_MAX];
    uint32_t hash;
    _Atomic uint64_t value;    /* double bits: counter/gauge value, histogram sum */
    _Atomic uint64_t counts[]; /* histogram: per bucket, then +Inf (not cumulative) */
} series;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(series *) slots[FL_M_COUNT][TABLE];
static int nseries[FL_M_COUNT]; /* guarded by mu */

const fl_metric_family *fl_metrics__family(fl_metric_id id)
{
    return &families[id];
}

size_t fl_metrics__nlabels(const fl_metric_family *f)
{
    size_t n = 0;

    while (n < FL_METRIC_MAX_LABELS && f->labels[n]) {
        n++;
    }
    return n;
}

static double bits_double(uint64_t b)
{
    double d;

    memcpy(&d, &b, sizeof(d));
    return d;
}

static uint64_t double_bits(double d)
{
    uint64_t b;

    memcpy(&b, &d, sizeof(b));
    return b;
}

static void atomic_add_double(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);

    while (!atomic_compare_exchange_weak_explicit(p, &old, double_bits(bits_double(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed)) {
        /* old was reloaded by the failed exchange: retry with the fresh value */
    }
}

/* Copies a label value, cut at a UTF-8 character boundary so the exposition stays valid. */
static void label_copy(char *dst, const char *src)
{
    size_t n = src ? strlen(src) : 0;

    if (n > FL_METRIC_LABEL_MAX - 1) {
        n = FL_METRIC_LABEL_MAX - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) {
            n--;
        }
    }
    if (n) {
        memcpy(dst, src, n);
    }
    dst[n] = '\0';
}

/* FNV-1a over the (already cut) values. */
static uint32_t labels_hash(char lv[][FL_METRIC_LABEL_MAX], size_t n)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < n; i++) {
        for (const char *p = lv[i]; *p; p++) {
            h = (h ^ (unsigned char)*p) * 16777619u;
        }
        h = (h ^ 0xFFu) * 16777619u; /* separator: ("ab","") != ("a","b") */
    }
    return h;
}

static bool same(const series *s, uint32_t h, char lv[][FL_METRIC_LABEL_MAX], size_t n)
{
    if (s->hash != h) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s->labels[i], lv[i]) != 0) {
            return false;
        }
    }
    return true;
}

/* The slot index holding (h, lv), or of the first empty slot on its probe path. */
static size_t probe(fl_metric_id id, uint32_t h, char lv[][FL_METRIC_LABEL_MAX], size_t n,
                    series **found)
{
    size_t idx = h & (TABLE - 1);

    for (size_t i = 0; i < TABLE; i++, idx = (idx + 1) & (TABLE - 1)) {
        series *s = atomic_load_explicit(&slots[id][idx], memory_order_acquire);
        if (!s || same(s, h, lv, n)) {
            *found = s;
            return idx;
        }
    }
    *found = NULL; /* unreachable: caps keep the table at most half full */
    return TABLE;
}

static series *series_new(const fl_metric_family *f, uint32_t h, char lv[][FL_METRIC_LABEL_MAX])
{
    size_t nb = f->type == FL_METRIC_HISTOGRAM ? f->nbuckets + 1 : 0;
    series *s = fl_xcalloc(1, sizeof(*s) + nb * sizeof(s->counts[0]));

    memcpy(s->labels, lv, sizeof(s->labels));
    s->hash = h;
    atomic_init(&s->value, double_bits(0.0));
    for (size_t i = 0; i < nb; i++) {
        atomic_init(&s->counts[i], 0);
    }
    return s;
}

static void count_overflow(fl_metric_id id);

/* Creates the series under mu; past the cap, the overflow series or NULL (gauges). */
static series *create(fl_metric_id id, uint32_t h, char lv[][FL_METRIC_LABEL_MAX], size_t n)
{
    const fl_metric_family *f = &families[id];
    series *s = NULL;
    size_t idx;
    bool over = false;

    pthread_mutex_lock(&mu);
    idx = probe(id, h, lv, n, &s);
    if (!s && nseries[id] >= f->max_series) {
        over = true;
        if (f->type != FL_METRIC_GAUGE) {
            for (size_t i = 0; i < n; i++) {
                label_copy(lv[i], "overflow");
            }
            h = labels_hash(lv, n);
            idx = probe(id, h, lv, n, &s); /* the overflow series is allowed past the cap */
        } else {
            idx = TABLE;
        }
    }
    if (!s && idx < TABLE) {
        s = series_new(f, h, lv);
        atomic_store_explicit(&slots[id][idx], s, memory_order_release);
        nseries[id]++;
    }
    pthread_mutex_unlock(&mu);
    if (over) {
        count_overflow(id);
    }
    return s;
}

/* The series of a label set; created when `make` (NULL past a gauge's cap). */
static series *find(fl_metric_id id, const char *const *labels, bool make)
{
    char lv[FL_METRIC_MAX_LABELS][FL_METRIC_LABEL_MAX] = {{0}};
    size_t n = fl_metrics__nlabels(&families[id]);
    series *s = NULL;
    uint32_t h;

    for (size_t i = 0; i < n; i++) {
        label_copy(lv[i], labels ? labels[i] : NULL);
    }
    h = labels_hash(lv, n);
    probe(id, h, lv, n, &s);
    return s || !make ? s : create(id, h, lv, n);
}

static series *lookup(fl_metric_id id, const char *const *labels)
{
    return find(id, labels, true);
}

static void count_overflow(fl_metric_id id)
{
    if (id != FL_M_SERIES_OVERFLOW) {
        fl_metrics_inc(FL_M_SERIES_OVERFLOW, FL_LABELS(families[id].name));
    }
}

void fl_metrics_add(fl_metric_id id, const char *const *labels, double v)
{
    series *s = lookup(id, labels);

    if (s && v > 0) {
        atomic_add_double(&s->value, v);
    }
}

void fl_metrics_set(fl_metric_id id, const char *const *labels, double v)
{
    series *s = lookup(id, labels);

    if (s) {
        atomic_store_explicit(&s->value, double_bits(v), memory_order_relaxed);
    }
}

void fl_metrics_gauge_add(fl_metric_id id, const char *const *labels, double v)
{
    series *s = lookup(id, labels);

    if (s) {
        atomic_add_double(&s->value, v);
    }
}

void fl_metrics_gauge_zero(fl_metric_id id)
{
    for (size_t i = 0; i < TABLE; i++) {
        series *s = atomic_load_explicit(&slots[id][i], memory_order_acquire);
        if (s) {
            atomic_store_explicit(&s->value, double_bits(0.0), memory_order_relaxed);
        }
    }
}

void fl_metrics_observe(fl_metric_id id, const char *const *labels, double v)
{
    const fl_metric_family *f = &families[id];
    series *s = lookup(id, labels);
    size_t b = 0;

    if (!s || isnan(v)) {
        return;
    }
    while (b < f->nbuckets && v > f->buckets[b]) {
        b++;
    }
    atomic_fetch_add_explicit(&s->counts[b], 1, memory_order_relaxed);
    atomic_add_double(&s->value, v);
}

static uint64_t hist_count(const fl_metric_family *f, series *s)
{
    uint64_t n = 0;

    for (size_t b = 0; b <= f->nbuckets; b++) {
        n += atomic_load_explicit(&s->counts[b], memory_order_relaxed);
    }
    return n;
}

double fl_metrics_value(fl_metric_id id, const char *const *labels)
{
    const fl_metric_family *f = &families[id];
    series *s = find(id, labels, false);

    if (!s) {
        return 0;
    }
    if (f->type == FL_METRIC_HISTOGRAM) {
        return (double)hist_count(f, s);
    }
    return bits_double(atomic_load_explicit(&s->value, memory_order_relaxed));
}

bool fl_metrics_refresh_claim(int64_t now_ms, int ttl_ms)
{
    static _Atomic int64_t last = INT64_MIN / 2;
    int64_t seen = atomic_load(&last);

    if (now_ms - seen < ttl_ms) {
        return false;
    }
    return atomic_compare_exchange_strong(&last, &seen, now_ms);
}

void fl_metrics_reset(void)
{
    pthread_mutex_lock(&mu);
    for (size_t id = 0; id < FL_M_COUNT; id++) {
        for (size_t i = 0; i < TABLE; i++) {
            free(atomic_exchange(&slots[id][i], NULL));
        }
        nseries[id] = 0;
    }
    pthread_mutex_unlock(&mu);
}

/* ---- exposition ------------------------------------------------------------------------ */

void fl_metrics__format_double(double v, char *out, size_t size)
{
    if (isnan(v)) {
        snprintf(out, size, "NaN");
    } else if (isinf(v)) {
        snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
    } else {
        /* the shortest of %.15g..%.17g that reads back exactly: "0.0005", not
         * "0.00050000000000000001" */
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(out, size, "%.*g", prec, v);
            if (strtod(out, NULL) == v) {
                break;
            }
        }
    }
}

static fl_rc format_series(fl_buf *out, const fl_metric_family *f, series *s, fl_err *err)
{
    char lv[FL_METRIC_MAX_LABELS][FL_METRIC_LABEL_MAX];
    char num[32];
    fl_rc rc = FL_OK;
    uint64_t cum = 0;

    memcpy(lv, s->labels, sizeof(lv));
    if (f->type != FL_METRIC_HISTOGRAM) {
        fl_metrics__format_double(bits_double(atomic_load(&s->value)), num, sizeof(num));
        return fl_metrics__sample(out, f, "", lv, NULL, num, err);
    }
    for (size_t b = 0; b <= f->nbuckets && rc == FL_OK; b++) {
        char le[32];
        cum += atomic_load_explicit(&s->counts[b], memory_order_relaxed);
        if (b < f->nbuckets) {
            fl_metrics__format_double(f->buckets[b], le, sizeof(le));
        } else {
            snprintf(le, sizeof(le), "+Inf");
        }
        snprintf(num, sizeof(num), "%llu", (unsigned long long)cum);
        rc = fl_metrics__sample(out, f, "_bucket", lv, le, num, err);
    }
    fl_metrics__format_double(bits_double(atomic_load(&s->value)), num, sizeof(num));
    if (rc == FL_OK) {
        rc = fl_metrics__sample(out, f, "_sum", lv, NULL, num, err);
    }
    snprintf(num, sizeof(num), "%llu", (unsigned long long)cum);
    return rc == FL_OK ? fl_metrics__sample(out, f, "_count", lv, NULL, num, err) : rc;
}

static fl_rc format_family(fl_buf *out, fl_metric_id id, fl_err *err)
{
    const fl_metric_family *f = &families[id];
    fl_rc rc = fl_metrics__header(out, f, err);

    for (size_t i = 0; i < TABLE && rc == FL_OK; i++) {
        series *s = atomic_load_explicit(&slots[id][i], memory_order_acquire);
        if (s) {
            rc = format_series(out, f, s, err);
        }
    }
    return rc;
}

fl_rc fl_metrics_format(fl_buf *out, fl_err *err)
{
    fl_rc rc = FL_OK;

    fl_metrics__builtin();
    for (size_t id = 0; id < FL_M_COUNT && rc == FL_OK; id++) {
        rc = format_family(out, (fl_metric_id)id, err);
    }
    return rc;
}
