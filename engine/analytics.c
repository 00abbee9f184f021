/* engine/analytics.c -- the business.analytics aggregate worker (engine/analytics.h).
 *
 * Design: one statement per pass, so the claim and the outbox rows commit together
 * (data-modifying CTEs share one snapshot and one transaction). The period is computed
 * from Postgres's now(), not this host's clock, so processes with skewed clocks still
 * name the same period and the primary key of analytics_periods makes one of them win.
 * The counters of a tenant are index range probes per tenant (CROSS JOIN LATERAL over
 * `tenants`, a small table): messages_tenant_created, dead_letters_tenant, and
 * instances_tenant_id through the UUIDv7 id range of the period (ids are UUIDv7, see
 * api/routes_analytics.c); finished instances come from instances_finished.
 *
 * The pass runs a short grace after each period boundary, so the period's last
 * transactions have committed. A row committed later than that with an earlier timestamp
 * (a transaction open across the boundary) is not in any event; the analytics endpoints,
 * which read the tables, still count it. Postgres being down is logged once, then
 * retried at the next period.
 *
 * Thread-safety: see engine/analytics.h. `down` belongs to the worker thread. */
#include "engine/analytics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

#define SOURCE       "flowd" /* ce_source of every event flowd produces */
#define MIN_IVL_MS   1000
#define MAX_GRACE_MS 2000

struct fl_analytics {
    const fl_config *cfg;
    fl_pg_pool *pool;
    int64_t interval_ms;
    int exec_timeout_ms;
    pthread_t thread;
    bool started;
    atomic_bool stopping;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* signalled by stop; CLOCK_MONOTONIC (R9.7) */
    bool down;           /* worker thread only: the last pass failed */
};

#define TS(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define UUID7_AT(ts)                                                               \
    "(lpad(to_hex(floor(extract(epoch FROM " ts ") * 1000)::bigint), 12, '0') || " \
    "repeat('0', 20))::uuid"
#define EVENT_ID "'analytics:' || a.tenant || ':' || a.s_ms"

/* $1 interval ms, $2 topic, $3 source, $4 type. Returns one row per tenant emitted. */
static const char sql_pass[] =
    "WITH w AS (SELECT (floor(extract(epoch FROM now()) * 1000)::bigint / $1::bigint) "
    "* $1::bigint AS e_ms), "
    "claim AS (INSERT INTO analytics_periods (period_start, period_end) "
    "SELECT timestamptz 'epoch' + (e_ms - $1::bigint) * interval '1 millisecond', "
    "timestamptz 'epoch' + e_ms * interval '1 millisecond' FROM w "
    "ON CONFLICT DO NOTHING RETURNING period_start AS s, period_end AS e), "
    "gone AS (DELETE FROM analytics_periods WHERE period_start < now() - interval '7 days'), "
    "fin AS (SELECT i.tenant, count(*) FILTER (WHERE i.status = 'completed') AS completed, "
    "count(*) FILTER (WHERE i.status = 'failed') AS failed, "
    "count(*) FILTER (WHERE i.status = 'cancelled') AS cancelled "
    "FROM claim, instances i WHERE i.finished_at >= claim.s AND i.finished_at < claim.e "
    "GROUP BY i.tenant), "
    "a AS (SELECT t.id AS tenant, claim.s, claim.e, "
    "floor(extract(epoch FROM claim.s) * 1000)::bigint AS s_ms, si.*, sm.*, sd.*, "
    "COALESCE(fin.completed, 0) AS completed, COALESCE(fin.failed, 0) AS failed, "
    "COALESCE(fin.cancelled, 0) AS cancelled FROM claim CROSS JOIN tenants t "
    "CROSS JOIN LATERAL (SELECT count(*) AS started, count(*) FILTER (WHERE i.workflow = "
    "'conversation') AS conversations_started FROM instances i WHERE i.tenant = t.id "
    "AND i.id >= " UUID7_AT("claim.s - interval '1 hour'") " AND i.id < " UUID7_AT(
        "claim.e + interval '1 hour'") " AND i.created_at >= claim.s AND i.created_at < "
                                       "claim.e) si "
                                       "CROSS JOIN LATERAL (SELECT count(*) AS messages, count(*) "
                                       "FILTER (WHERE m.role = 'user') "
                                       "AS user_messages, count(*) FILTER (WHERE m.role = "
                                       "'assistant') AS assistant_messages, "
                                       "COALESCE(sum(m.tokens_in), 0) AS tokens_in, "
                                       "COALESCE(sum(m.tokens_out), 0) AS tokens_out, "
                                       "COALESCE(sum(m.cost), 0)::float8 AS cost FROM messages m "
                                       "WHERE "
                                       "m.tenant = t.id "
                                       "AND m.created_at >= claim.s AND m.created_at < claim.e) sm "
                                       "CROSS JOIN LATERAL (SELECT count(*) AS dead_letters FROM "
                                       "dead_letters d "
                                       "WHERE d.tenant = t.id AND d.created_at >= claim.s AND "
                                       "d.created_at < claim.e) sd "
                                       "LEFT JOIN fin ON fin.tenant = t.id) "
                                       "INSERT INTO outbox (id, tenant, aggregatetype, "
                                       "aggregateid, type, payload, headers) "
                                       "SELECT " EVENT_ID ", a.tenant, $2::text, a.tenant, "
                                       "$4::text, jsonb_build_object("
                                       "'tenant', a.tenant, 'period_start', " TS(
                                           "a.s") ", 'period_end', " TS("a.e") ", "
                                                                               "'interval_seconds',"
                                                                               " $1::bigint / "
                                                                               "1000.0, "
                                                                               "'instances_started'"
                                                                               ", a.started, "
                                                                               "'instances_"
                                                                               "completed', "
                                                                               "a.completed, "
                                                                               "'instances_failed',"
                                                                               " a.failed, "
                                                                               "'instances_"
                                                                               "cancelled', "
                                                                               "a.cancelled, "
                                                                               "'conversations_"
                                                                               "started', "
                                                                               "a.conversations_"
                                                                               "started, "
                                                                               "'messages', "
                                                                               "a.messages, "
                                                                               "'user_messages', "
                                                                               "a.user_messages, "
                                                                               "'assistant_"
                                                                               "messages', "
                                                                               "a.assistant_"
                                                                               "messages, "
                                                                               "'tokens_in', "
                                                                               "a.tokens_in, "
                                                                               "'tokens_out', "
                                                                               "a.tokens_out, "
                                                                               "'cost', a.cost, "
                                                                               "'dead_letters', "
                                                                               "a.dead_letters), "
                                                                               "jsonb_build_object("
                                                                               "'ce_id', " EVENT_ID
                                                                               ", 'ce_source', "
                                                                               "$3::text, "
                                                                               "'ce_type', "
                                                                               "$4::text, "
                                                                               "'ce_specversion', "
                                                                               "'1.0', "
                                                                               "'ce_time', " TS(
                                                                                   "a.e") ", "
                                                                                          "'ce_"
                                                                                          "subject'"
                                                                                          ", "
                                                                                          "a."
                                                                                          "tenant, "
                                                                                          "'ce_"
                                                                                          "tenant',"
                                                                                          " a."
                                                                                          "tenant, "
                                                                                          "'content"
                                                                                          "-type', "
                                                                                          "'applica"
                                                                                          "tion/"
                                                                                          "json') "
                                                                                          "FROM a "
                                                                                          "WHERE "
                                                                                          "a."
                                                                                          "started "
                                                                                          "+ "
                                                                                          "a."
                                                                                          "complete"
                                                                                          "d + "
                                                                                          "a."
                                                                                          "failed "
                                                                                          "+ "
                                                                                          "a."
                                                                                          "cancelle"
                                                                                          "d + "
                                                                                          "a."
                                                                                          "messages"
                                                                                          " + "
                                                                                          "a.dead_"
                                                                                          "letters "
                                                                                          "> 0 "
                                                                                          "ORDER "
                                                                                          "BY "
                                                                                          "a."
                                                                                          "tenant "
                                                                                          "RETURNIN"
                                                                                          "G "
                                                                                          "tenant";

int64_t fl_analytics_next_delay(int64_t now_ms, int64_t interval_ms)
{
    int64_t grace = interval_ms / 10 < MAX_GRACE_MS ? interval_ms / 10 : MAX_GRACE_MS;
    int64_t rest = interval_ms - (now_ms % interval_ms);

    return rest + grace;
}

fl_rc fl_analytics_pass(fl_analytics *a, int *emitted_out, fl_err *err)
{
    char ivl[24];
    const char *p[4] = {ivl, a->cfg->kafka.topics.business_analytics, SOURCE,
                        FL_EVENT_ANALYTICS_AGGREGATE};
    fl_pg_stmt stmt = {
        .sql = sql_pass, .nparams = 4, .params = p, .timeout_ms = a->exec_timeout_ms};
    fl_pg_conn *conn = NULL;
    fl_pg_rows *rows = NULL;
    fl_rc rc;

    *emitted_out = 0;
    snprintf(ivl, sizeof(ivl), "%lld", (long long)a->interval_ms);
    rc = fl_pg_acquire(a->pool, a->cfg->db.connect_timeout_ms, &conn, err);
    if (rc == FL_OK) {
        rc = fl_pg_exec(conn, &stmt, &rows, err);
    }
    fl_pg_release(a->pool, conn);
    if (rc == FL_OK) {
        *emitted_out = (int)fl_pg_rows_count(rows);
    }
    fl_pg_rows_free(rows);
    return rc;
}

/* Logs only on a change of state, so an outage is one line, not one per period. */
static void after_pass(fl_analytics *a, fl_rc rc, int emitted, const fl_err *err)
{
    if (rc != FL_OK) {
        if (!a->down) {
            fl_log(FL_WARN, "analytics.unavailable", FL_STR("rc", fl_rc_name(rc)),
                   FL_STR("error", err->msg));
        }
        a->down = true;
        return;
    }
    if (a->down) {
        fl_log(FL_INFO, "analytics.recovered");
    }
    a->down = false;
    if (emitted > 0) {
        fl_log(FL_DEBUG, "analytics.emitted", FL_INT("tenants", emitted));
    }
}

/* Waits wait_ms or until stop signals. */
static void sleep_until_woken(fl_analytics *a, int64_t wait_ms)
{
    struct timespec until = fl_clock_mono_deadline(wait_ms);

    pthread_mutex_lock(&a->mu);
    while (!atomic_load(&a->stopping) && pthread_cond_timedwait(&a->wake, &a->mu, &until) == 0) {
        /* a spurious wake-up: wait on for the rest of the time */
    }
    pthread_mutex_unlock(&a->mu);
}

static void *analytics_main(void *arg)
{
    fl_analytics *a = arg;
    fl_err err = FL_ERR_INIT;
    int emitted = 0;
    fl_rc rc;

    sleep_until_woken(a,
                      fl_analytics_next_delay(fl_clock_now_ms(fl_clock_system()), a->interval_ms));
    while (!atomic_load(&a->stopping)) {
        fl_err_clear(&err);
        rc = fl_analytics_pass(a, &emitted, &err);
        after_pass(a, rc, emitted, &err);
        sleep_until_woken(
            a, fl_analytics_next_delay(fl_clock_now_ms(fl_clock_system()), a->interval_ms));
    }
    return NULL;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

fl_rc fl_analytics_new(fl_analytics **out, const fl_config *cfg, fl_pg_pool *pool, fl_err *err)
{
    fl_analytics *a;

    if (!cfg || !pool || cfg->workers.analytics_interval_ms < 0) {
        return fl_err_set(err, FL_EINVAL, "cannot create the analytics worker: bad settings");
    }
    a = fl_xcalloc(1, sizeof(*a));
    a->cfg = cfg;
    a->pool = pool;
    a->interval_ms = cfg->workers.analytics_interval_ms;
    if (a->interval_ms > 0 && a->interval_ms < MIN_IVL_MS) {
        a->interval_ms = MIN_IVL_MS; /* a tighter loop would only load Postgres */
    }
    a->exec_timeout_ms =
        cfg->db.statement_timeout_ms > 0 ? cfg->db.statement_timeout_ms + 1000 : 30000;
    pthread_mutex_init(&a->mu, NULL);
    fl_clock_cond_init(&a->wake);
    *out = a;
    return FL_OK;
}

fl_rc fl_analytics_start(void *analytics, fl_err *err)
{
    fl_analytics *a = analytics;

    if (a->started) {
        return FL_OK;
    }
    if (a->interval_ms == 0) {
        fl_log(FL_INFO, "analytics.disabled", FL_STR("reason", "analytics.interval is 0"));
        return FL_OK;
    }
    atomic_store(&a->stopping, false);
    if (pthread_create(&a->thread, NULL, analytics_main, a) != 0) {
        return fl_err_set(err, FL_EINTERNAL, "could not start the analytics thread");
    }
    a->started = true;
    fl_log(FL_INFO, "analytics.started", FL_INT("interval_ms", (long long)a->interval_ms));
    return FL_OK;
}

void fl_analytics_stop(void *analytics)
{
    fl_analytics *a = analytics;

    if (!a || !a->started) {
        return;
    }
    pthread_mutex_lock(&a->mu);
    atomic_store(&a->stopping, true);
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->thread, NULL);
    a->started = false;
    fl_log(FL_INFO, "analytics.stopped");
}

void fl_analytics_free(fl_analytics *analytics)
{
    if (!analytics) {
        return;
    }
    fl_analytics_stop(analytics);
    pthread_cond_destroy(&analytics->wake);
    pthread_mutex_destroy(&analytics->mu);
    free(analytics);
}
