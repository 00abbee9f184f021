/* engine/store_pipe.c -- the store's hot-path SQL and the pipelined transaction that runs
 * a batch.
 *
 * Design: a batch is sent as ONE libpq pipeline (PQenterPipelineMode): the statements
 * (as PQsendQueryPrepared), then one PQpipelineSync, then the results are read. Without
 * BEGIN/COMMIT the statements between two syncs form one implicit transaction that the
 * server commits at the sync, or rolls back entirely when any statement fails -- which is
 * exactly the batch's all-or-nothing rule, and leaves no aborted transaction block to
 * clean up. Guards that must abort the batch (stale row version, an event already in the
 * inbox) therefore raise errors in SQL (flowd_expect_one, 002_engine.sql) instead of
 * reporting "0 rows", which would only be read after the commit.
 *
 * The connection is put in non-blocking mode for the batch: a large pipeline in blocking
 * mode can deadlock when both sides' socket buffers fill (libpq manual, "Pipeline Mode").
 *
 * Thread-safety: the session list is guarded by st->mu; everything else is per call. */
#include "engine/store_int.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

static const char sql_inbox[] =
    "WITH i AS (INSERT INTO inbox (tenant, source, id) VALUES ($1, $2, $3) "
    "ON CONFLICT DO NOTHING RETURNING 1) "
    "SELECT flowd_expect_one((SELECT count(*) FROM i), 'event already processed')";

static const char sql_instance_insert[] =
    "INSERT INTO instances (id, tenant, workflow, version, key, state, status, context, "
    "usage, machine) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

static const char sql_instance_update[] =
    "WITH u AS (UPDATE instances SET state = $3, status = $4, context = $5, usage = $6, "
    "machine = $7, row_version = row_version + 1, updated_at = now(), "
    /* set once, when the instance finishes (006_instances_hot.sql) */
    "finished_at = CASE WHEN $4 = 'running' THEN NULL ELSE coalesce(finished_at, now()) END "
    "WHERE id = $1 AND row_version = $2 RETURNING 1) "
    "SELECT flowd_expect_one((SELECT count(*) FROM u), 'stale row version')";

static const char sql_history[] =
    "INSERT INTO history (instance_id, seq, tenant, event_id, event_type, from_state, "
    "to_state, effects) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/* The next transcript seq is read in the insert: one writer per key (the conversation
 * is the instance key) makes it safe, and the primary key catches a violation. */
static const char sql_message[] =
    "INSERT INTO messages (tenant, conversation, seq, role, content, agent, provider, model, "
    "tokens_in, tokens_out, cost, latency_ms, usage, message_id) "
    "SELECT $1, $2, COALESCE(max(seq), 0) + 1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 "
    "FROM messages WHERE tenant = $1 AND conversation = $2";

static const char sql_outbox[] =
    "INSERT INTO outbox (id, tenant, aggregatetype, aggregateid, type, payload, headers) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)";

static const char sql_timer_arm[] =
    "INSERT INTO timers (id, tenant, instance_id, key, workflow, transition, entry_seq, "
    "due_at) VALUES ($1, $2, $3, $4, $5, $6, $7, to_timestamp($8::bigint / 1000.0))";

static const char sql_timer_cancel[] =
    "DELETE FROM timers WHERE instance_id = $1 AND entry_seq = $2 AND fired_at IS NULL";

static const char sql_activity[] =
    "INSERT INTO activities (id, tenant, instance_id, key, entry_seq, action_ref, call, args, "
    "\"into\", retry, timeout_ms, idempotency_key) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/* pg_notify rather than NOTIFY: NOTIFY takes no parameters. Either is sent at commit. */
static const char sql_notify[] = "SELECT pg_notify('flowd_changes', $1)";

/* The row and its outbox row in one statement, so the pair is atomic even alone. The
 * record's value goes out base64-encoded: it may be neither JSON nor UTF-8. */
static const char sql_dead_letter[] =
    "WITH d AS (INSERT INTO dead_letters (tenant, topic, partition, kafka_offset, key, headers, "
    "payload, reason, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *) "
    "INSERT INTO outbox (id, tenant, aggregatetype, aggregateid, type, payload, headers) "
    "SELECT 'dead:' || d.id, d.tenant, $10, COALESCE(d.key, ''), 'flowd.dead_letter', "
    "jsonb_build_object('dead_letter_id', d.id, 'reason', d.reason, 'detail', d.detail, "
    "'topic', d.topic, 'partition', d.partition, 'offset', d.kafka_offset, 'key', d.key, "
    "'headers', d.headers, 'payload_base64', encode(d.payload, 'base64')), "
    "jsonb_build_object('ce_id', 'dead:' || d.id, 'ce_source', $11::text, 'ce_type', "
    "'flowd.dead_letter', 'ce_specversion', '1.0', 'ce_time', "
    "to_char(d.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
    "'ce_subject', COALESCE(d.key, ''), 'ce_tenant', d.tenant, "
    "'content-type', 'application/json') FROM d";

typedef struct stmt_def {
    const char *name;
    const char *sql;
} stmt_def;

static const stmt_def stmts[FL_STORE_NSTMTS] = {
    [FL_STORE_INBOX] = {"flowd_inbox", sql_inbox},
    [FL_STORE_INSTANCE_INSERT] = {"flowd_instance_insert", sql_instance_insert},
    [FL_STORE_INSTANCE_UPDATE] = {"flowd_instance_update", sql_instance_update},
    [FL_STORE_HISTORY] = {"flowd_history", sql_history},
    [FL_STORE_MESSAGE] = {"flowd_message", sql_message},
    [FL_STORE_OUTBOX] = {"flowd_outbox", sql_outbox},
    [FL_STORE_TIMER_ARM] = {"flowd_timer_arm", sql_timer_arm},
    [FL_STORE_TIMER_CANCEL] = {"flowd_timer_cancel", sql_timer_cancel},
    [FL_STORE_ACTIVITY] = {"flowd_activity", sql_activity},
    [FL_STORE_NOTIFY] = {"flowd_notify", sql_notify},
    [FL_STORE_DEAD_LETTER] = {"flowd_dead_letter", sql_dead_letter},
};

const char *fl_store__sql(fl_store_stmt stmt)
{
    fl_assert((unsigned)stmt < FL_STORE_NSTMTS);
    return stmts[stmt].sql;
}

/* ---- sessions with prepared statements ------------------------------------------------ */

static bool session_known(fl_store *st, PGconn *pg)
{
    bool known = false;
    int pid = PQbackendPID(pg);

    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < st->nsessions && !known; i++) {
        known = st->sessions[i].pg == pg && st->sessions[i].pid == pid;
    }
    pthread_mutex_unlock(&st->mu);
    return known;
}

/* Remembers (add) or forgets (!add) a session; a full list evicts round-robin, which
 * costs the evicted session one failed batch and a new prepare. */
static void session_mark(fl_store *st, PGconn *pg, bool add)
{
    int pid = PQbackendPID(pg);

    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < st->nsessions; i++) {
        if (st->sessions[i].pg == pg) {
            st->sessions[i] = st->sessions[--st->nsessions];
            break;
        }
    }
    if (add && st->nsessions < FL_STORE_MAX_SESSIONS) {
        st->sessions[st->nsessions++] = (fl_store_session){pg, pid};
    } else if (add) {
        st->sessions[st->next_evict] = (fl_store_session){pg, pid};
        st->next_evict = (st->next_evict + 1) % FL_STORE_MAX_SESSIONS;
    }
    pthread_mutex_unlock(&st->mu);
}

/* ---- non-blocking I/O ----------------------------------------------------------------- */

static long long deadline_in(int timeout_ms)
{
    return timeout_ms > 0 ? fl_clock_mono_ms(fl_clock_system()) + timeout_ms : 0;
}

/* Waits for the socket. Returns 1 ready, 0 at the deadline, -1 when gone. */
static int wait_socket(PGconn *pg, short events, long long deadline)
{
    struct pollfd p = {.fd = PQsocket(pg), .events = events};
    int rc;

    if (p.fd < 0) {
        return -1;
    }
    do {
        long long left = deadline ? deadline - fl_clock_mono_ms(fl_clock_system()) : -1;
        if (deadline && left <= 0) {
            return 0;
        }
        rc = poll(&p, 1, left > 0x7fffffff ? 0x7fffffff : (int)left);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -1 : rc > 0;
}

static fl_rc lost(PGconn *pg, const char *why, fl_err *err)
{
    const char *msg = why ? why : PQerrorMessage(pg);
    size_t len = strcspn(msg, "\n");

    return fl_err_set(err, FL_EUNAVAIL, "could not write to PostgreSQL: %.*s", (int)len, msg);
}

/* Flushes what is queued and reads until a result is ready without blocking. */
static fl_rc wait_ready(PGconn *pg, long long deadline, fl_err *err)
{
    for (;;) {
        int unsent = PQflush(pg);
        int ready;
        if (unsent < 0) {
            return lost(pg, NULL, err);
        }
        if (!unsent && !PQisBusy(pg)) {
            return FL_OK;
        }
        ready = wait_socket(pg, unsent ? POLLIN | POLLOUT : POLLIN, deadline);
        if (ready == 0) {
            return lost(pg, "timeout expired", err);
        }
        if (ready < 0 || !PQconsumeInput(pg)) {
            return lost(pg, NULL, err);
        }
    }
}

/* ---- one pipelined transaction -------------------------------------------------------- */

/* Only the primary message and SQLSTATE: DETAIL may quote row values (user data). */
static fl_rc result_error(PGconn *pg, const PGresult *res, char state_out[6], fl_err *err)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

    if (!state || !primary || PQstatus(pg) != CONNECTION_OK) {
        return lost(pg, PQresultErrorMessage(res), err);
    }
    memcpy(state_out, state, strnlen(state, 5));
    state_out[5] = '\0';
    return fl_err_set(err, fl_pg_sqlstate_rc(state), "could not write batch: %s (SQLSTATE %s)",
                      primary, state);
}

static fl_rc send_all(PGconn *pg, const fl_store_batch *b, bool prepare, fl_err *err)
{
    for (int i = 0; prepare && i < FL_STORE_NSTMTS; i++) {
        if (!PQsendPrepare(pg, stmts[i].name, stmts[i].sql, 0, NULL)) {
            return lost(pg, NULL, err);
        }
    }
    for (size_t i = 0; i < b->count; i++) {
        const fl_store_op *op = &b->ops[i];
        if (!PQsendQueryPrepared(pg, stmts[op->stmt].name, op->nparams,
                                 (const char *const *)op->params, NULL, NULL, 0)) {
            return lost(pg, NULL, err);
        }
    }
    if (!PQpipelineSync(pg)) {
        return lost(pg, NULL, err);
    }
    return FL_OK;
}

/* Reads every result up to the sync; reports the first error (the rest are "aborted"). */
static fl_rc collect(PGconn *pg, long long deadline, char state[6], fl_err *err)
{
    fl_rc rc = FL_OK;

    for (;;) {
        PGresult *res;
        ExecStatusType s;
        fl_rc wrc = wait_ready(pg, deadline, err);
        if (wrc != FL_OK) {
            return wrc;
        }
        res = PQgetResult(pg);
        if (!res) {
            continue; /* the end of one statement's results */
        }
        s = PQresultStatus(res);
        if (s == PGRES_FATAL_ERROR && rc == FL_OK) {
            rc = result_error(pg, res, state, err);
        }
        PQclear(res);
        if (s == PGRES_PIPELINE_SYNC) {
            return rc;
        }
    }
}

static fl_rc run_once(PGconn *pg, const fl_store_batch *b, bool prepare, int timeout_ms,
                      char state[6], fl_err *err)
{
    fl_rc rc;

    if (PQsetnonblocking(pg, 1) != 0 || !PQenterPipelineMode(pg)) {
        rc = lost(pg, NULL, err);
        goto out;
    }
    rc = send_all(pg, b, prepare, err);
    if (rc != FL_OK) {
        goto out;
    }
    rc = collect(pg, deadline_in(timeout_ms), state, err);
out:
    if (PQpipelineStatus(pg) != PQ_PIPELINE_OFF && !PQexitPipelineMode(pg) && rc == FL_OK) {
        rc = lost(pg, NULL, err);
    }
    PQsetnonblocking(pg, 0);
    return rc;
}

/* Runs the batch, preparing the statements on sessions that have not seen them. A
 * session we misremember costs one retry: 26000 (not prepared) or 42P05 (already). */
static fl_rc run_prepared(fl_store *st, PGconn *pg, const fl_store_batch *b, fl_err *err)
{
    fl_err e = FL_ERR_INIT;
    fl_rc rc = FL_EINTERNAL;

    for (int attempt = 0; attempt < 3; attempt++) {
        bool prepare = !session_known(st, pg);
        char state[6] = "";
        fl_err_clear(&e);
        rc = run_once(pg, b, prepare, st->timeout_ms, state, &e);
        if (rc == FL_OK && prepare) {
            session_mark(st, pg, true);
        }
        if (strcmp(state, "26000") != 0 && strcmp(state, "42P05") != 0) {
            break;
        }
        session_mark(st, pg, strcmp(state, "42P05") == 0);
    }
    if (rc != FL_OK) {
        fl_err_set(err, rc, "%s", e.msg);
    }
    return rc;
}

fl_rc fl_store__run(fl_store *st, const fl_store_batch *b, fl_err *err)
{
    fl_pg_conn *conn = NULL;
    PGconn *pg;
    fl_rc rc;

    rc = fl_pg_acquire(st->pool, st->acquire_timeout_ms, &conn, err);
    if (rc != FL_OK) {
        goto out;
    }
    pg = fl_pg_conn_get(conn);
    rc = run_prepared(st, pg, b, err);
    if (rc == FL_EUNAVAIL || rc == FL_ETIMEDOUT) {
        /* mid-pipeline state is unknown: start over on a fresh connection */
        session_mark(st, pg, false);
        fl_pg_discard(st->pool, conn);
        conn = NULL;
    }
out:
    fl_pg_release(st->pool, conn);
    return rc;
}
