/* core/pg.c -- the PostgreSQL connection pool: open/close, connects bounded by a deadline,
 * acquire/release/discard, ping and stats. Running statements on a pooled connection is
 * core/pg_exec.c; what both halves share is in core/pg_int.h.
 *
 * Design: slots are created on demand up to db.pool_size and destroyed when their
 * connection turns out unusable, so a server outage costs nothing but failed connects,
 * and recovery needs no restart. libpq is driven in non-blocking style
 * (PQconnectStartParams/PQconnectPoll) against our own deadline: libpq's connect_timeout
 * is only enforced by its blocking calls.
 *
 * Thread-safety: the pool's lists and counters are guarded by pool->mu; a slot is
 * touched only by the thread that holds it, and I/O happens outside the mutex. */
#include "core/pg.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/pg_int.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fl_pg_pool {
    char **keywords; /* NULL-terminated libpq connection keywords (values may be secret) */
    char **values;
    int size;
    int connect_timeout_ms;
    pthread_mutex_t mu;
    pthread_cond_t freed;     /* signalled when a slot returns; CLOCK_MONOTONIC */
    fl_pg_conn *idle;         /* guarded by mu */
    int nidle;                /* guarded by mu */
    int nbusy;                /* guarded by mu: acquired slots, connected or not */
    long long connects;       /* guarded by mu */
    long long connect_errors; /* guarded by mu */
    long long discards;       /* guarded by mu */
    long long timeouts;       /* guarded by mu */
};

/* ---- time and sockets ----------------------------------------------------------------- */

/* Timeouts follow CLOCK_MONOTONIC, so wall-clock jumps neither expire nor stretch them. */
static long long mono_ms(void)
{
    return fl_clock_mono_ms(fl_clock_system());
}

/* A deadline of 0 means "none"; otherwise an absolute CLOCK_MONOTONIC time in ms. */
long long fl_pg__deadline_in(int timeout_ms)
{
    return timeout_ms > 0 ? mono_ms() + timeout_ms : 0;
}

static long long deadline_min(long long a, long long b)
{
    if (a == 0 || (b != 0 && b < a)) {
        return b;
    }
    return a;
}

/* Waits until the socket of pg is ready for `events`.
 * Returns 1 when ready, 0 at the deadline, -1 when the socket is gone. */
int fl_pg__wait_socket(PGconn *pg, short events, long long deadline)
{
    struct pollfd p = {.fd = PQsocket(pg), .events = events};
    int rc;

    if (p.fd < 0) {
        return -1;
    }
    do {
        long long left = deadline ? deadline - mono_ms() : -1;
        if (deadline && left <= 0) {
            return 0;
        }
        rc = poll(&p, 1, left > 0x7fffffff ? 0x7fffffff : (int)left);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -1 : rc > 0;
}

static bool socket_readable(PGconn *pg)
{
    struct pollfd p = {.fd = PQsocket(pg), .events = POLLIN};

    return p.fd >= 0 && poll(&p, 1, 0) != 0;
}

/* ---- messages ------------------------------------------------------------------------- */

/* "host:port" of the server pg talks to, from libpq's parsed options rather than the
 * connection string, so no secret can slip into a message. */
static void target_format(PGconn *pg, char *out, size_t size)
{
    const char *host = pg ? PQhost(pg) : NULL;
    const char *port = pg ? PQport(pg) : NULL;
    bool v6 = host && strchr(host, ':') != NULL;

    snprintf(out, size, "%s%s%s:%s", v6 ? "[" : "", host && *host ? host : "localhost",
             v6 ? "]" : "", port && *port ? port : "5432");
}

/* libpq prints notices on stderr by default, which would break the JSON log lines. */
static void notice_receiver(void *arg, const PGresult *res)
{
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    bool loud = sev && (strcmp(sev, "WARNING") == 0 || strcmp(sev, "FATAL") == 0);

    (void)arg;
    fl_log(loud ? FL_WARN : FL_DEBUG, "pg.notice", FL_STR("severity", sev ? sev : "NOTICE"),
           FL_STR("msg", msg ? msg : ""));
}

/* ---- connection parameters ------------------------------------------------------------ */

static void params_free(fl_pg_pool *pool)
{
    for (size_t i = 0; pool->keywords && pool->keywords[i]; i++) {
        free(pool->keywords[i]);
        free(pool->values[i]);
    }
    free(pool->keywords);
    free(pool->values);
    pool->keywords = NULL;
    pool->values = NULL;
}

static void params_add(fl_pg_pool *pool, size_t *n, const char *key, const char *val)
{
    pool->keywords[*n] = fl_xstrdup(key);
    pool->values[*n] = fl_xstrdup(val);
    (*n)++;
}

/* The options the user gave (db.url, else PGOPTIONS through libpq's defaults), so that
 * adding our statement_timeout does not drop theirs. Ownership: caller frees. */
static char *user_options(const PQconninfoOption *opts)
{
    PQconninfoOption *defs = NULL;
    char *s = NULL;

    for (const PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "options") == 0 && o->val) {
            return fl_xstrdup(o->val);
        }
    }
    defs = PQconndefaults();
    for (PQconninfoOption *o = defs; o && o->keyword; o++) {
        if (strcmp(o->keyword, "options") == 0 && o->val) {
            s = fl_xstrdup(o->val);
        }
    }
    PQconninfoFree(defs);
    return s ? s : fl_xstrdup("");
}

static bool option_set(const PQconninfoOption *opts, const char *key)
{
    for (const PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, key) == 0) {
            return o->val != NULL;
        }
    }
    return false;
}

/* Copies the options parsed from db.url, then adds ours. */
static void params_fill(fl_pg_pool *pool, const PQconninfoOption *opts, const fl_config_db *cfg)
{
    size_t n = 0, count = 4; /* options, fallback_application_name, connect_timeout, NULL */
    char *options = user_options(opts);
    char *merged;

    for (const PQconninfoOption *o = opts; o->keyword; o++) {
        count++;
    }
    pool->keywords = fl_xcalloc(count, sizeof(char *));
    pool->values = fl_xcalloc(count, sizeof(char *));
    for (const PQconninfoOption *o = opts; o->keyword; o++) {
        if (o->val && strcmp(o->keyword, "options") != 0) {
            params_add(pool, &n, o->keyword, o->val);
        }
    }
    merged = cfg->statement_timeout_ms > 0
                 ? fl_xasprintf("%s%s-c statement_timeout=%d", options, *options ? " " : "",
                                cfg->statement_timeout_ms)
                 : fl_xstrdup(options);
    if (*merged) {
        params_add(pool, &n, "options", merged);
    }
    if (!option_set(opts, "fallback_application_name")) {
        params_add(pool, &n, "fallback_application_name", "flowd");
    }
    free(merged);
    free(options);
}

/* libpq's connect_timeout is whole seconds (and 1 acts as 2); our own deadline is what
 * bounds connects, but the keyword documents the intent to anything reading the conn. */
static void params_timeout(fl_pg_pool *pool, const PQconninfoOption *opts, int timeout_ms)
{
    size_t n = 0;
    char secs[16];

    if (timeout_ms <= 0 || option_set(opts, "connect_timeout")) {
        return;
    }
    while (pool->keywords[n]) {
        n++;
    }
    snprintf(secs, sizeof(secs), "%d", timeout_ms < 2000 ? 2 : (timeout_ms + 999) / 1000);
    params_add(pool, &n, "connect_timeout", secs);
}

/* libpq's parse errors may quote the connection string (password included), so only a
 * generic reason is reported. */
static fl_rc params_build(fl_pg_pool *pool, const fl_config_db *cfg, fl_err *err)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(cfg->url ? cfg->url : "", &msg);

    PQfreemem(msg);
    if (!opts) {
        return fl_err_set(err, FL_EINVAL,
                          "invalid db.url: not a libpq connection URI or key=value string");
    }
    params_fill(pool, opts, cfg);
    params_timeout(pool, opts, cfg->connect_timeout_ms);
    PQconninfoFree(opts);
    return FL_OK;
}

/* ---- connecting ----------------------------------------------------------------------- */

static fl_rc connect_failed(fl_pg_conn *c, const char *why, fl_err *err)
{
    char reason[FL_PG_REASON_MAX];

    target_format(c->pg, c->target, sizeof(c->target));
    fl_pg__reason_format(why ? why : PQerrorMessage(c->pg), reason, sizeof(reason));
    fl_log(FL_DEBUG, "pg.connect_failed", FL_STR("target", c->target), FL_STR("error", reason));
    return fl_err_set(err, FL_EUNAVAIL, "could not connect to PostgreSQL \"%s\": %s", c->target,
                      reason);
}

/* Drives PQconnectPoll until the connection is up or the deadline passes. */
static fl_rc connect_poll(fl_pg_conn *c, long long deadline, fl_err *err)
{
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;

    while (st != PGRES_POLLING_OK) {
        int ready = 1;
        if (st == PGRES_POLLING_FAILED) {
            return connect_failed(c, NULL, err);
        }
        if (st == PGRES_POLLING_READING || st == PGRES_POLLING_WRITING) {
            ready =
                fl_pg__wait_socket(c->pg, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
        }
        if (ready == 0) {
            return connect_failed(c, "timeout expired", err);
        }
        if (ready < 0) {
            return connect_failed(c, NULL, err);
        }
        st = PQconnectPoll(c->pg);
    }
    return FL_OK;
}

static fl_rc connect_slot(fl_pg_pool *pool, fl_pg_conn *c, long long deadline, fl_err *err)
{
    fl_rc rc;

    deadline = deadline_min(deadline, fl_pg__deadline_in(pool->connect_timeout_ms));
    c->pg = PQconnectStartParams((const char *const *)pool->keywords,
                                 (const char *const *)pool->values, 0);
    if (!c->pg) {
        rc = connect_failed(c, "out of memory", err);
        goto out;
    }
    PQsetNoticeReceiver(c->pg, notice_receiver, NULL);
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        rc = connect_failed(c, NULL, err);
        goto out;
    }
    rc = connect_poll(c, deadline, err);
    if (rc != FL_OK) {
        goto out;
    }
    target_format(c->pg, c->target, sizeof(c->target));
    fl_log(FL_DEBUG, "pg.connected", FL_STR("target", c->target));
out:
    pthread_mutex_lock(&pool->mu);
    if (rc == FL_OK) {
        pool->connects++;
    } else {
        pool->connect_errors++;
    }
    pthread_mutex_unlock(&pool->mu);
    return rc;
}

/* ---- slots ---------------------------------------------------------------------------- */

/* An idle connection has nothing to say, so a readable socket means the server sent a
 * goodbye (restart, idle_session_timeout, pg_terminate_backend) and closed it. Reading
 * lets libpq log the reason and notice the close; a few reads bound a chatty peer. */
static bool conn_is_alive(PGconn *pg)
{
    for (int i = 0; i < 4 && socket_readable(pg); i++) {
        if (!PQconsumeInput(pg)) {
            break;
        }
    }
    return PQstatus(pg) == CONNECTION_OK && !PQisBusy(pg) &&
           PQtransactionStatus(pg) == PQTRANS_IDLE && !socket_readable(pg);
}

/* Why conn must not go back to the pool, or NULL when it may. */
static const char *unusable_reason(const fl_pg_conn *c)
{
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
        return "connection lost";
    }
    if (c->broken) {
        return "abandoned after a timeout";
    }
    if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        return "returned inside a transaction or query";
    }
    if (PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF) {
        return "returned in pipeline mode";
    }
    return NULL;
}

/* Gives up a slot and its connection; another acquirer may open a new one. */
static void slot_drop(fl_pg_pool *pool, fl_pg_conn *c, const char *reason)
{
    if (reason) {
        fl_log(FL_INFO, "pg.conn_discarded", FL_STR("target", c->target), FL_STR("reason", reason));
    }
    PQfinish(c->pg);
    free(c);
    pthread_mutex_lock(&pool->mu);
    pool->nbusy--;
    if (reason) {
        pool->discards++;
    }
    pthread_cond_signal(&pool->freed);
    pthread_mutex_unlock(&pool->mu);
}

/* Waits on the freed condvar until deadline (0 = forever). Returns false on timeout. */
static bool wait_freed(fl_pg_pool *pool, long long deadline)
{
    struct timespec ts;

    if (deadline == 0) {
        pthread_cond_wait(&pool->freed, &pool->mu);
        return true;
    }
    if (mono_ms() >= deadline) {
        return false;
    }
    ts = fl_clock_mono_deadline(deadline - mono_ms());
    pthread_cond_timedwait(&pool->freed, &pool->mu, &ts);
    return true;
}

/* Takes an idle slot or room for a new one (c->pg == NULL), under the mutex. */
static fl_rc slot_take(fl_pg_pool *pool, long long deadline, fl_pg_conn **out, fl_err *err)
{
    fl_rc rc = FL_OK;

    pthread_mutex_lock(&pool->mu);
    while (!pool->idle && pool->nbusy + pool->nidle >= pool->size) {
        if (!wait_freed(pool, deadline)) {
            pool->timeouts++;
            rc = fl_err_set(err, FL_ETIMEDOUT,
                            "could not acquire a PostgreSQL connection: all %d pooled "
                            "connections are in use",
                            pool->size);
            goto out;
        }
    }
    if (pool->idle) {
        *out = pool->idle;
        pool->idle = pool->idle->next;
        pool->nidle--;
    } else {
        *out = fl_xcalloc(1, sizeof(fl_pg_conn));
    }
    (*out)->next = NULL;
    pool->nbusy++;
out:
    pthread_mutex_unlock(&pool->mu);
    return rc;
}

/* ---- the pool ------------------------------------------------------------------------- */

fl_rc fl_pg_pool_open(fl_pg_pool **out, const fl_config_db *cfg, fl_err *err)
{
    fl_rc rc;
    fl_pg_pool *pool = NULL;

    *out = NULL;
    if (cfg->pool_size < 1) {
        rc = fl_err_set(err, FL_EINVAL, "invalid db.pool_size %d: must be at least 1",
                        cfg->pool_size);
        goto out;
    }
    pool = fl_xcalloc(1, sizeof(*pool));
    pool->size = cfg->pool_size;
    pool->connect_timeout_ms = cfg->connect_timeout_ms;
    pthread_mutex_init(&pool->mu, NULL);
    fl_clock_cond_init(&pool->freed); /* acquire timeouts ignore wall-clock jumps */
    rc = params_build(pool, cfg, err);
    if (rc != FL_OK) {
        goto out;
    }
    *out = pool;
    pool = NULL;
out:
    fl_pg_pool_close(pool);
    return rc;
}

void fl_pg_pool_close(fl_pg_pool *pool)
{
    if (!pool) {
        return;
    }
    fl_assert(pool->nbusy == 0);
    while (pool->idle) {
        fl_pg_conn *c = pool->idle;
        pool->idle = c->next;
        PQfinish(c->pg);
        free(c);
    }
    params_free(pool);
    pthread_cond_destroy(&pool->freed);
    pthread_mutex_destroy(&pool->mu);
    free(pool);
}

fl_rc fl_pg_acquire(fl_pg_pool *pool, int timeout_ms, fl_pg_conn **out, fl_err *err)
{
    fl_rc rc;
    fl_pg_conn *c = NULL;
    long long deadline = timeout_ms < 0 ? 0 : mono_ms() + timeout_ms;

    *out = NULL;
    rc = slot_take(pool, deadline, &c, err);
    if (rc != FL_OK) {
        goto out;
    }
    if (c->pg && !conn_is_alive(c->pg)) {
        fl_log(FL_INFO, "pg.conn_discarded", FL_STR("target", c->target),
               FL_STR("reason", "closed by the server while idle"));
        PQfinish(c->pg);
        c->pg = NULL;
        pthread_mutex_lock(&pool->mu);
        pool->discards++;
        pthread_mutex_unlock(&pool->mu);
    }
    if (!c->pg) {
        /* an unbounded acquire still gets a bounded connect (connect_timeout_ms) */
        rc = connect_slot(pool, c, deadline, err);
    }
    if (rc != FL_OK) {
        goto out;
    }
    *out = c;
    c = NULL;
out:
    if (c) {
        slot_drop(pool, c, NULL);
    }
    return rc;
}

void fl_pg_release(fl_pg_pool *pool, fl_pg_conn *conn)
{
    const char *reason;

    if (!conn) {
        return;
    }
    reason = unusable_reason(conn);
    if (reason) {
        slot_drop(pool, conn, reason);
        return;
    }
    pthread_mutex_lock(&pool->mu);
    conn->next = pool->idle;
    pool->idle = conn;
    pool->nidle++;
    pool->nbusy--;
    pthread_cond_signal(&pool->freed);
    pthread_mutex_unlock(&pool->mu);
}

void fl_pg_discard(fl_pg_pool *pool, fl_pg_conn *conn)
{
    if (conn) {
        slot_drop(pool, conn, NULL);
    }
}

struct pg_conn *fl_pg_conn_get(fl_pg_conn *conn)
{
    return conn->pg;
}

const char *fl_pg_conn_target(const fl_pg_conn *conn)
{
    return conn->target;
}

void fl_pg_pool_stats(fl_pg_pool *pool, fl_pg_stats *out)
{
    pthread_mutex_lock(&pool->mu);
    out->size = pool->size;
    out->in_use = pool->nbusy;
    out->idle = pool->nidle;
    out->connects_total = pool->connects;
    out->connect_errors_total = pool->connect_errors;
    out->discards_total = pool->discards;
    out->acquire_timeouts_total = pool->timeouts;
    pthread_mutex_unlock(&pool->mu);
}

fl_rc fl_pg_ping(fl_pg_pool *pool, int timeout_ms, fl_err *err)
{
    fl_rc rc;
    fl_pg_conn *c = NULL;
    long long deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 1);
    fl_pg_stmt stmt = {.sql = "SELECT 1"};

    rc = fl_pg_acquire(pool, timeout_ms > 0 ? timeout_ms : 1, &c, err);
    if (rc != FL_OK) {
        goto out;
    }
    stmt.timeout_ms = (int)(deadline - mono_ms());
    if (stmt.timeout_ms < 1) {
        stmt.timeout_ms = 1;
    }
    rc = fl_pg_exec(c, &stmt, NULL, err);
out:
    fl_pg_release(pool, c);
    return rc;
}
