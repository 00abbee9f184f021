/* engine/timers.c -- the timer poller: due timers and schedules become events through the
 * outbox (engine/timers.h; ARCHITECTURE.md section 2, "Durable timers live in Postgres").
 *
 * Design: the poller never talks to Kafka and never touches an instance. A pass claims
 * due timer rows with FOR UPDATE SKIP LOCKED, marks them fired and inserts their outbox
 * rows in ONE statement (data-modifying CTEs run in one snapshot and commit together, so
 * this is the "one transaction" without three round trips). Schedules need C between the
 * claim and the write (fl_cron_next), so they run as BEGIN, SELECT ... FOR UPDATE SKIP
 * LOCKED, one UPDATE + INSERT per row, COMMIT on one connection. SKIP LOCKED lets several
 * processes share the work: a row claimed by one is invisible to the others until it
 * commits, and after the commit it no longer matches (fired_at set, next_at moved), so
 * nothing fires twice. A crash before the commit fires the row on a later pass: timers
 * fire late rather than never, and the event ids are deterministic, so the inbox drops
 * a redelivery.
 *
 * An `every` schedule that fell behind (downtime) fires ONCE for the whole backlog and
 * moves to the next multiple of its period after now: a tick means "it is time to run",
 * and replaying a day of missed 2 s ticks would only flood the engine. A cron schedule
 * moves to fl_cron_next(now). A schedule whose next time cannot be computed (an invalid
 * or never-again matching cron) fires its due tick, then parks at 'infinity' with a
 * warning, until its definition is saved again.
 *
 * The poller wakes every timers.interval (200 ms by default; the claim is an index range
 * scan on the partial index timers_due, so an idle pass costs little) and at once again
 * when a pass claimed a full batch. Postgres being down is logged once, then retried with
 * exponential backoff capped at MAX_BACKOFF_MS; it never stops the thread.
 *
 * Thread-safety: see engine/timers.h. `down` and `failures` belong to the poller thread. */
#include "engine/timers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "engine/machine.h"

#define SOURCE         "flowd" /* ce_source of every event flowd produces (the store's too) */
#define MAX_BACKOFF_MS 5000

struct fl_timers {
    const fl_config *cfg;
    fl_pg_pool *pool;
    int exec_timeout_ms; /* client-side bound on one statement */
    pthread_t thread;
    bool started;
    atomic_bool stopping;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* signalled by stop; CLOCK_MONOTONIC (R9.7) */
    bool down;           /* poller thread only: the last pass failed */
    int failures;        /* poller thread only: consecutive failed passes */
};

/* The CloudEvents binary-mode headers of an outbox row, in the shape the store writes
 * (engine/store_batch.c): $1 topic, $2 source, $3 type and $4 ce_time are the same
 * parameters in both statements below. */
#define HEADERS_SQL(id, subject, tenant)                                               \
    "jsonb_build_object('ce_id', " id ", 'ce_source', $2::text, 'ce_type', $3::text, " \
    "'ce_specversion', '1.0', 'ce_time', $4::text, 'ce_subject', " subject             \
    ", 'ce_tenant', " tenant ", 'content-type', 'application/json')"

/* $5: the batch size. Ordered by due time so the oldest timers go first under a backlog,
 * and the outbox rows of one pass are inserted in due order. */
static const char sql_fire_timers[] =
    "WITH due AS (SELECT id FROM timers WHERE fired_at IS NULL AND due_at <= now() "
    "             ORDER BY due_at LIMIT $5::int FOR UPDATE SKIP LOCKED), "
    "fired AS (UPDATE timers t SET fired_at = now() FROM due WHERE t.id = due.id "
    "          RETURNING t.id, t.tenant, t.key, t.due_at, t.workflow), "
    "ins AS (INSERT INTO outbox (id, tenant, aggregatetype, aggregateid, type, payload, headers) "
    "SELECT 'timer:' || id, tenant, $1::text, key, $3::text, jsonb_build_object('timer', "
    "id), " HEADERS_SQL(
        "'timer:' || id", "key",
        "tenant") " FROM fired ORDER BY due_at, id RETURNING seq) "
                  /* one row per fired timer, for flowd_timer_lateness_seconds */
                  "SELECT workflow, extract(epoch FROM now() - due_at)::float8 FROM fired";

/* Times as Unix ms, so C computes the next one without parsing timestamps. */
static const char sql_claim_schedules[] =
    "SELECT tenant, workflow, cron, every_ms, "
    "       floor(extract(epoch FROM next_at) * 1000)::bigint, "
    "       floor(extract(epoch FROM now()) * 1000)::bigint "
    "FROM schedules WHERE next_at <= now() ORDER BY next_at LIMIT $1::int "
    "FOR UPDATE SKIP LOCKED";

/* $5 tenant, $6 workflow, $7 event id, $8 the next time in Unix ms (NULL: none, park the
 * schedule), $9 the due time (RFC 3339) of the tick being fired. */
static const char sql_tick_schedule[] =
    "WITH moved AS (UPDATE schedules SET next_at = COALESCE(timestamptz 'epoch' + "
    "               $8::bigint * interval '1 millisecond', 'infinity') "
    "               WHERE tenant = $5 AND workflow = $6 RETURNING tenant, workflow) "
    "INSERT INTO outbox (id, tenant, aggregatetype, aggregateid, type, payload, headers) "
    "SELECT $7::text, tenant, $1::text, workflow, $3::text, "
    "       jsonb_build_object('workflow', workflow, 'due_at', $9::text), " HEADERS_SQL(
        "$7::text", "workflow", "tenant") " FROM moved";

/* ---- one pass --------------------------------------------------------------------------- */

static fl_rc run_sql(fl_timers *t, fl_pg_conn *conn, const char *sql, int n, const char *const *p,
                     fl_pg_rows **out, fl_err *err)
{
    fl_pg_stmt stmt = {.sql = sql, .nparams = n, .params = p, .timeout_ms = t->exec_timeout_ms};

    return fl_pg_exec(conn, &stmt, out, err);
}

/* Fires up to one batch of due timers; *count_out = how many. */
static fl_rc fire_timers(fl_timers *t, fl_pg_conn *conn, const char *now, size_t *count_out,
                         fl_err *err)
{
    char limit[16];
    const char *p[5] = {t->cfg->kafka.topics.internal, SOURCE, FL_EVENT_TIMER_FIRED, now, limit};
    fl_pg_rows *rows = NULL;
    fl_rc rc;

    snprintf(limit, sizeof(limit), "%d", t->cfg->workers.timers_batch_size);
    rc = run_sql(t, conn, sql_fire_timers, 5, p, &rows, err);
    *count_out = rc == FL_OK ? fl_pg_rows_count(rows) : 0;
    for (size_t i = 0; i < *count_out; i++) {
        fl_metrics_timer_fired(fl_pg_rows_get(rows, i, 0),
                               strtod(fl_pg_rows_get(rows, i, 1), NULL));
    }
    fl_pg_rows_free(rows);
    return rc;
}

/* The first time strictly after max(now, due) for a schedule, or -1 when there is none. */
static int64_t schedule_next(const char *cron, const char *every, int64_t due, int64_t now)
{
    int64_t period = every ? strtoll(every, NULL, 10) : 0;
    int64_t base = now > due ? now : due;
    int64_t step;
    int64_t next;

    if (cron) {
        return fl_cron_next(cron, base);
    }
    /* due + k * period for the smallest k with a result > base: one tick for a backlog.
     * A period so large that this overflows has no next time either. */
    if (period <= 0 || __builtin_mul_overflow((base - due) / period + 1, period, &step) ||
        __builtin_add_overflow(due, step, &next)) {
        return -1;
    }
    return next;
}

/* Fires schedule row i of the claimed rows and moves its next_at. */
static fl_rc tick_schedule(fl_timers *t, fl_pg_conn *conn, const fl_pg_rows *rows, size_t i,
                           const char *now, fl_err *err)
{
    const char *tenant = fl_pg_rows_get(rows, i, 0);
    const char *workflow = fl_pg_rows_get(rows, i, 1);
    int64_t due = strtoll(fl_pg_rows_get(rows, i, 4), NULL, 10);
    int64_t db_now = strtoll(fl_pg_rows_get(rows, i, 5), NULL, 10);
    int64_t next =
        schedule_next(fl_pg_rows_get(rows, i, 2), fl_pg_rows_get(rows, i, 3), due, db_now);
    char due_at[40];
    char next_ms[24];
    char *id = fl_xasprintf("schedule:%s/%s/%lld", tenant, workflow, (long long)due);
    const char *p[9] = {
        t->cfg->kafka.topics.internal, SOURCE, FL_EVENT_SCHEDULE_TICK, now, tenant, workflow, id,
        next >= 0 ? next_ms : NULL,    due_at};
    fl_rc rc;

    fl_clock_format_rfc3339(due, due_at, sizeof(due_at));
    snprintf(next_ms, sizeof(next_ms), "%lld", (long long)next);
    if (next < 0) {
        fl_log(FL_WARN, "timers.schedule_parked", FL_STR("tenant", tenant),
               FL_STR("workflow", workflow), FL_STR("reason", "no next time can be computed"));
    }
    rc = run_sql(t, conn, sql_tick_schedule, 9, p, NULL, err);
    free(id);
    return rc;
}

/* Fires up to one batch of due schedules in one transaction; *count_out = how many. A
 * failure leaves the transaction open: fl_pg_release closes such a connection, which
 * rolls it back. */
static fl_rc tick_schedules(fl_timers *t, fl_pg_conn *conn, const char *now, size_t *count_out,
                            fl_err *err)
{
    char limit[16];
    const char *p[1] = {limit};
    fl_pg_rows *rows = NULL;
    size_t n = 0;
    fl_rc rc;

    *count_out = 0;
    snprintf(limit, sizeof(limit), "%d", t->cfg->workers.timers_batch_size);
    rc = run_sql(t, conn, "BEGIN", 0, NULL, NULL, err);
    if (rc == FL_OK) {
        rc = run_sql(t, conn, sql_claim_schedules, 1, p, &rows, err);
    }
    n = rc == FL_OK ? fl_pg_rows_count(rows) : 0;
    for (size_t i = 0; i < n && rc == FL_OK; i++) {
        rc = tick_schedule(t, conn, rows, i, now, err);
    }
    if (rc == FL_OK) {
        rc = run_sql(t, conn, "COMMIT", 0, NULL, NULL, err);
    }
    *count_out = rc == FL_OK ? n : 0;
    fl_pg_rows_free(rows);
    return rc;
}

/* One pass over timers and schedules; *more_out = a batch was full, go again at once. */
static fl_rc pass(fl_timers *t, bool *more_out, fl_err *err)
{
    fl_pg_conn *conn = NULL;
    size_t timers = 0;
    size_t schedules = 0;
    char now[40];
    fl_rc rc;

    *more_out = false;
    fl_clock_format_rfc3339(fl_clock_now_ms(fl_clock_system()), now, sizeof(now));
    rc = fl_pg_acquire(t->pool, t->cfg->db.connect_timeout_ms, &conn, err);
    if (rc == FL_OK) {
        rc = fire_timers(t, conn, now, &timers, err);
    }
    if (rc == FL_OK) {
        rc = tick_schedules(t, conn, now, &schedules, err);
    }
    fl_pg_release(t->pool, conn);
    if (timers > 0 || schedules > 0) {
        fl_log(FL_DEBUG, "timers.fired", FL_INT("timers", (long long)timers),
               FL_INT("schedules", (long long)schedules));
    }
    *more_out = rc == FL_OK && (timers >= (size_t)t->cfg->workers.timers_batch_size ||
                                schedules >= (size_t)t->cfg->workers.timers_batch_size);
    return rc;
}

/* ---- the thread ------------------------------------------------------------------------- */

/* Logs only on a change of state, so an outage is one line, not one per pass; returns
 * how long to wait before the next pass. */
static int64_t after_pass(fl_timers *t, fl_rc rc, const fl_err *err)
{
    int64_t delay = t->cfg->workers.timers_interval_ms;
    int64_t cap = delay > MAX_BACKOFF_MS ? delay : MAX_BACKOFF_MS;

    if (rc == FL_OK) {
        if (t->down) {
            fl_log(FL_INFO, "timers.recovered", FL_INT("failed_passes", t->failures));
        }
        t->down = false;
        t->failures = 0;
        return t->cfg->workers.timers_interval_ms;
    }
    if (!t->down) {
        fl_log(FL_WARN, "timers.unavailable", FL_STR("rc", fl_rc_name(rc)),
               FL_STR("error", err->msg));
    }
    t->down = true;
    t->failures++;
    /* doubling from the interval: the first retry is as prompt as a normal pass */
    for (int i = 1; i < t->failures && delay < cap; i++) {
        delay *= 2;
    }
    return delay < cap ? delay : cap;
}

/* Waits wait_ms or until stop signals. */
static void sleep_until_woken(fl_timers *t, int64_t wait_ms)
{
    struct timespec until = fl_clock_mono_deadline(wait_ms);

    pthread_mutex_lock(&t->mu);
    while (!atomic_load(&t->stopping) && pthread_cond_timedwait(&t->wake, &t->mu, &until) == 0) {
        /* a spurious wake-up: wait on for the rest of the time */
    }
    pthread_mutex_unlock(&t->mu);
}

static void *timers_main(void *arg)
{
    fl_timers *t = arg;
    fl_err err = FL_ERR_INIT;
    bool more = false;
    int64_t wait_ms;
    fl_rc rc;

    while (!atomic_load(&t->stopping)) {
        fl_err_clear(&err);
        rc = pass(t, &more, &err);
        wait_ms = after_pass(t, rc, &err);
        if (!more) {
            sleep_until_woken(t, wait_ms);
        }
    }
    return NULL;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

fl_rc fl_timers_new(fl_timers **out, const fl_config *cfg, fl_pg_pool *pool, fl_err *err)
{
    fl_timers *t;

    if (!cfg || !pool || cfg->workers.timers_batch_size < 1 ||
        cfg->workers.timers_interval_ms < 1) {
        return fl_err_set(err, FL_EINVAL, "cannot create the timer poller: bad settings");
    }
    t = fl_xcalloc(1, sizeof(*t));
    t->cfg = cfg;
    t->pool = pool;
    /* the server's statement_timeout ends a slow statement; this bounds a hung server */
    t->exec_timeout_ms =
        cfg->db.statement_timeout_ms > 0 ? cfg->db.statement_timeout_ms + 1000 : 30000;
    pthread_mutex_init(&t->mu, NULL);
    fl_clock_cond_init(&t->wake);
    *out = t;
    return FL_OK;
}

fl_rc fl_timers_start(void *timers, fl_err *err)
{
    fl_timers *t = timers;

    if (t->started) {
        return FL_OK;
    }
    atomic_store(&t->stopping, false);
    if (pthread_create(&t->thread, NULL, timers_main, t) != 0) {
        return fl_err_set(err, FL_EINTERNAL, "could not start the timer poller thread");
    }
    t->started = true;
    fl_log(FL_INFO, "timers.started", FL_INT("interval_ms", t->cfg->workers.timers_interval_ms),
           FL_INT("batch_size", t->cfg->workers.timers_batch_size));
    return FL_OK;
}

void fl_timers_stop(void *timers)
{
    fl_timers *t = timers;

    if (!t || !t->started) {
        return;
    }
    pthread_mutex_lock(&t->mu);
    atomic_store(&t->stopping, true);
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    t->started = false;
    fl_log(FL_INFO, "timers.stopped");
}

void fl_timers_free(fl_timers *timers)
{
    if (!timers) {
        return;
    }
    fl_timers_stop(timers);
    pthread_cond_destroy(&timers->wake);
    pthread_mutex_destroy(&timers->mu);
    free(timers);
}
