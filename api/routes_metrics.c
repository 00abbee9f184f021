/* api/routes_metrics.c -- GET /metrics: the Prometheus text exposition (core/metrics.h).
 *
 * Most families are recorded where their facts happen. The ones that describe stored
 * state -- instances by state, timers pending, outbox backlog, active conversations --
 * come from one PostgreSQL query run on scrape, at most once per REFRESH_MS across all
 * scrapers (fl_metrics_refresh_claim), so several Prometheus servers cost one query; a
 * scrape while PostgreSQL is down serves the last values and flowd_ready{check} says so.
 * Pool connections, open streams and readiness are read on every scrape (no I/O).
 *
 * Scope. api.metrics_auth is "none" (default: scrapers usually hold no key) or "read".
 * Route tables are static and registered without the configuration, so the route is
 * registered open and the handler itself requires a read key when the setting says so,
 * answering 401/403/503 as the dispatcher does. Scrapes are not rate limited: a limiter
 * refusing the monitoring system would hide the overload it is there to show.
 *
 * Thread-safety: handlers run on civetweb workers; everything shared is in core/metrics. */
#include <stdlib.h>
#include <string.h>

#include "api/request.h"
#include "api/routes.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"

enum {
    REFRESH_MS = 5000, /* stored-state gauges are at most this old */
    QUERY_MS = 2000,   /* bound on the refresh query; a slow database must not stall scrapes */
    MAX_BYTES = 64 << 20,
};

/* Every stored-state gauge in one round trip: (family, label 1, label 2, value). */
static const char sql_state[] =
    "SELECT 'instances', workflow, state, count(*) FROM instances WHERE status = 'running' "
    "GROUP BY workflow, state "
    "UNION ALL SELECT 'timers', workflow, NULL, count(*) FROM timers WHERE fired_at IS NULL "
    "GROUP BY workflow "
    "UNION ALL SELECT 'outbox', NULL, NULL, count(*) FROM outbox WHERE published_at IS NULL "
    "UNION ALL SELECT 'conversations', COALESCE(context->>'flow_type', 'unknown'), NULL, "
    "count(*) FROM instances WHERE workflow = 'conversation' AND status = 'running' GROUP BY 2";

static void apply_row(const fl_pg_rows *rows, size_t i)
{
    const char *kind = fl_pg_rows_get(rows, i, 0);
    const char *a = fl_pg_rows_get(rows, i, 1);
    const char *b = fl_pg_rows_get(rows, i, 2);
    double n = strtod(fl_pg_rows_get(rows, i, 3), NULL);

    if (strcmp(kind, "instances") == 0) {
        fl_metrics_set(FL_M_WORKFLOW_INSTANCES, FL_LABELS(a, b), n);
    } else if (strcmp(kind, "timers") == 0) {
        fl_metrics_set(FL_M_TIMERS_PENDING, FL_LABELS(a), n);
    } else if (strcmp(kind, "outbox") == 0) {
        fl_metrics_set(FL_M_OUTBOX_BACKLOG, NULL, n);
    } else {
        fl_metrics_set(FL_M_CONVERSATIONS_ACTIVE, FL_LABELS(a), n);
    }
}

static void refresh_stored(fl_req *r)
{
    fl_pg_stmt stmt = {.sql = sql_state, .timeout_ms = QUERY_MS};
    fl_pg_conn *conn = NULL;
    fl_pg_rows *rows = NULL;
    fl_err err = FL_ERR_INIT;
    fl_rc rc = fl_pg_acquire(r->api->pool, QUERY_MS, &conn, &err);

    if (rc == FL_OK) {
        rc = fl_pg_exec(conn, &stmt, &rows, &err);
    }
    fl_pg_release(r->api->pool, conn);
    if (rc != FL_OK) {
        fl_log(FL_WARN, "metrics.refresh_failed", FL_STR("error", err.msg),
               FL_STR("request_id", r->request_id));
        goto out;
    }
    /* a label set the query no longer returns (a state emptied) must read 0, not stay */
    fl_metrics_gauge_zero(FL_M_WORKFLOW_INSTANCES);
    fl_metrics_gauge_zero(FL_M_TIMERS_PENDING);
    fl_metrics_gauge_zero(FL_M_CONVERSATIONS_ACTIVE);
    fl_metrics_set(FL_M_OUTBOX_BACKLOG, NULL, 0);
    for (size_t i = 0; i < fl_pg_rows_count(rows); i++) {
        apply_row(rows, i);
    }
out:
    fl_pg_rows_free(rows);
}

static void refresh_live(fl_req *r)
{
    const char *topics[FL_CONFIG_TOPIC_COUNT];
    size_t ntopics = fl_config_topic_names(&r->api->cfg->kafka.topics, topics);
    fl_pg_stats st;
    json_t *snap = fl_health_snapshot(r->api->health);
    const char *name;
    json_t *check;
    const char *status = json_string_value(json_object_get(snap, "status"));

    fl_metrics_kafka_topics_init(topics, ntopics);
    fl_pg_pool_stats(r->api->pool, &st);
    fl_metrics_set(FL_M_DB_POOL_CONNECTIONS, FL_LABELS("in_use"), st.in_use);
    fl_metrics_set(FL_M_DB_POOL_CONNECTIONS, FL_LABELS("idle"), st.idle);
    fl_metrics_set(FL_M_DB_POOL_CONNECTIONS, FL_LABELS("max"), st.size);
    fl_metrics_set(FL_M_SSE_STREAMS, NULL, atomic_load(&r->api->streams));
    fl_metrics_set(FL_M_READY, FL_LABELS("all"), status && strcmp(status, "ready") == 0);
    json_object_foreach(json_object_get(snap, "checks"), name, check)
    {
        const char *s = json_string_value(json_object_get(check, "status"));
        fl_metrics_set(FL_M_READY, FL_LABELS(name), s && strcmp(s, "up") == 0);
    }
    json_decref(snap);
}

/* With api.metrics_auth = read: a key holding the read scope (not rate limited, so a
 * scraper is never refused). False when answered. */
static bool authorized(fl_req *r)
{
    if (strcmp(r->api->cfg->api.metrics_auth, "read") != 0) {
        return true;
    }
    return fl_req_authorize(r, FL_SCOPE_READ);
}

static int handle_metrics(fl_req *r)
{
    fl_buf text;
    fl_err err = FL_ERR_INIT;
    fl_rc rc;
    int status;

    if (!authorized(r)) {
        return r->status;
    }
    if (fl_metrics_refresh_claim(fl_clock_mono_ms(fl_clock_system()), REFRESH_MS)) {
        refresh_stored(r);
    }
    refresh_live(r);
    fl_buf_init(&text, MAX_BYTES);
    rc = fl_metrics_format(&text, &err);
    status = rc == FL_OK ? fl_req_send(r, 200, FL_METRICS_CONTENT_TYPE, text.data, text.len)
                         : fl_problem_rc(r, rc, &err);
    fl_buf_deinit(&text);
    return status;
}

static const fl_route metrics_routes[] = {
    {"GET", "/metrics", handle_metrics, FL_SCOPE_NONE, 0},
};

void fl_routes_metrics(fl_router *rt)
{
    fl_router_add(rt, metrics_routes, sizeof(metrics_routes) / sizeof(metrics_routes[0]));
}
