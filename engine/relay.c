/* engine/relay.c -- the outbox relay: its thread and its passes (pure parts: relay_rows.c).
 *
 * Design: one pass is one transaction on one pooled connection:
 *   BEGIN; pg_try_advisory_xact_lock(RELAY_LOCK)      another relay holds it: pass ends
 *   SELECT the first relay.batch_size unpublished rows ORDER BY seq
 *   produce them asynchronously, in seq order, and wait for every delivery report
 *   UPDATE outbox SET published_at = now() WHERE seq = ANY(the acknowledged rows); COMMIT
 * Several relays (processes) must not interleave one key's rows. FOR UPDATE SKIP LOCKED
 * cannot promise that: a second relay skips the rows the first one holds and takes the
 * next ones, which may belong to the same keys, so two producers would race a key's rows
 * onto its partition (claiming whole keys would need every other claim's key set). One
 * advisory lock per pass makes the relays a hot-standby set instead: one publishes, and
 * when it dies its session, and with it the lock, ends, so another takes over at its
 * next pass without a lease to expire. The price is that one process publishes at a
 * time (its rate is measured in tests/system/test_relay.py; sharding by a hash of the
 * key into N locks is the way out), and that a transaction stays open for a pass (at
 * most about kafka_client.produce_timeout); it holds no lock that inserters wait for.
 *
 * Ordering: same key -> same partition (murmur2), and the idempotent producer writes a
 * partition's messages in produce order. A row whose produce or delivery failed holds
 * back the later rows of its topic and key: they are not produced after a failed
 * enqueue and not marked after a failed delivery, so the next pass starts again at the
 * failed row. Known limit: rows already queued behind a row whose delivery fails may
 * still be written (librdkafka's enable.gapless.guarantee would forbid it by failing the
 * producer for good); the next pass then writes the failed row and them again, so a
 * consumer can see one row of the key early, once. Consumers dedupe by CloudEvent id,
 * as they do for the duplicates of a crash between produce and mark.
 *
 * Delivery reports run on the producer's poll thread and may, after a pass gave up
 * waiting, outlive it: the rows they write to live in a reference-counted `pass`.
 *
 * Thread-safety: as engine/relay.h. */
#include "engine/relay_int.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backoff.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

enum {
    ACQUIRE_MS = 2000,      /* waiting for a pooled connection */
    REPORT_SLACK_MS = 1000, /* past produce_timeout, librdkafka's own bound on a report */
    STOP_GRACE_MS = 1000,   /* how long a stopping relay still waits for reports */
    SLICE_MS = 200,         /* re-check of the stop flag while waiting for reports */
    BACKOFF_MAX_MS = 5000,  /* retry delay cap after a failed pass */
};

/* "flowdrly": the advisory lock that one relay at a time holds for a pass. */
static const char RELAY_LOCK[] = "7380396447930412153";

/* ---- one pass ----------------------------------------------------------------------- */

typedef enum row_state { ROW_HELD, ROW_QUEUED, ROW_ACKED, ROW_FAILED } row_state;

typedef struct pass pass;

typedef struct row {
    pass *owner;
    row_state state; /* guarded by owner->mu */
} row;

struct pass {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC: signalled when the last report is in */
    int refs;          /* guarded by mu: the relay's, plus one per queued message */
    size_t pending;    /* guarded by mu: queued messages still without a report */
    size_t failures;   /* guarded by mu: rows whose produce or delivery failed */
    fl_err first;      /* guarded by mu: the first of those failures */
    row *rows;
    size_t n;
};

static pass *pass_new(size_t n)
{
    pass *ps = fl_xcalloc(1, sizeof(*ps));

    pthread_mutex_init(&ps->mu, NULL);
    fl_clock_cond_init(&ps->cv);
    ps->refs = 1;
    ps->first.code = FL_OK;
    ps->rows = fl_xcalloc(n ? n : 1, sizeof(*ps->rows));
    ps->n = n;
    for (size_t i = 0; i < n; i++) {
        ps->rows[i].owner = ps;
        ps->rows[i].state = ROW_HELD;
    }
    return ps;
}

static void pass_release(pass *ps)
{
    bool last;

    pthread_mutex_lock(&ps->mu);
    last = --ps->refs == 0;
    pthread_mutex_unlock(&ps->mu);
    if (last) {
        pthread_cond_destroy(&ps->cv);
        pthread_mutex_destroy(&ps->mu);
        free(ps->rows);
        free(ps);
    }
}

/* Records a failed row; caller holds ps->mu. */
static void pass_failed_locked(pass *ps, row *rw, const fl_err *err)
{
    rw->state = ROW_FAILED;
    if (ps->failures++ == 0) {
        ps->first = *err;
    }
}

/* The delivery report of one row, on the producer's poll thread. */
static void row_done(void *arg, const fl_kafka_delivery *d, const fl_err *err)
{
    row *rw = arg;
    pass *ps = rw->owner;

    (void)d;
    pthread_mutex_lock(&ps->mu);
    if (err->code == FL_OK) {
        rw->state = ROW_ACKED;
    } else {
        pass_failed_locked(ps, rw, err);
    }
    if (--ps->pending == 0) {
        pthread_cond_signal(&ps->cv);
    }
    pthread_mutex_unlock(&ps->mu);
    pass_release(ps);
}

/* Columns of the claim query. */
enum { COL_SEQ, COL_TOPIC, COL_KEY, COL_PAYLOAD, COL_HEADERS };

struct fl_relay {
    const fl_config *cfg;
    fl_pg_pool *pool;
    fl_kafka_producer *producer;
    pthread_t thread;
    bool started; /* main thread only */
    pthread_mutex_t mu;
    pthread_cond_t cv;    /* CLOCK_MONOTONIC: the idle wait, signalled by stop */
    atomic_bool stopping; /* set under mu, so that the idle wait cannot miss it */
};

/* Queues row i; its report arrives through row_done. */
static fl_rc produce_row(fl_relay *r, pass *ps, const fl_pg_rows *rows, size_t i, fl_err *err)
{
    const char *payload = fl_pg_rows_get(rows, i, COL_PAYLOAD);
    const char *key = fl_pg_rows_get(rows, i, COL_KEY);
    fl_kafka_header *h = NULL;
    size_t nh = 0;
    fl_kafka_record rec;
    fl_rc rc;

    rc = fl_relay_headers_from_json(fl_pg_rows_get(rows, i, COL_HEADERS), payload != NULL, &h, &nh,
                                    err);
    if (rc != FL_OK) {
        goto out;
    }
    rec = (fl_kafka_record){.topic = fl_pg_rows_get(rows, i, COL_TOPIC),
                            .key = key,
                            .key_len = strlen(key),
                            .value = payload ? payload : "", /* empty, not a tombstone */
                            .value_len = payload ? strlen(payload) : 0,
                            .headers = h,
                            .nheaders = nh};
    pthread_mutex_lock(&ps->mu); /* before the produce: the report may come at once */
    ps->refs++;
    ps->pending++;
    ps->rows[i].state = ROW_QUEUED;
    pthread_mutex_unlock(&ps->mu);
    rc = fl_kafka_produce_async(r->producer, &rec, row_done, &ps->rows[i], err);
    if (rc != FL_OK) {
        pthread_mutex_lock(&ps->mu); /* not queued: no report will come */
        ps->refs--;
        ps->pending--;
        pthread_mutex_unlock(&ps->mu);
    }
out:
    fl_relay_headers_free(h, nh);
    return rc;
}

/* Produces the rows in seq order; a row whose key is held back after a failure stays
 * ROW_HELD. */
static void produce_rows(fl_relay *r, pass *ps, const fl_pg_rows *rows)
{
    json_t *held = json_object();

    for (size_t i = 0; i < ps->n; i++) {
        const char *topic = fl_pg_rows_get(rows, i, COL_TOPIC);
        const char *key = fl_pg_rows_get(rows, i, COL_KEY);
        fl_err err = FL_ERR_INIT;

        if (fl_relay__held_has(held, topic, key)) {
            continue;
        }
        if (produce_row(r, ps, rows, i, &err) != FL_OK) {
            fl_relay__held_add(held, topic, key);
            pthread_mutex_lock(&ps->mu);
            pass_failed_locked(ps, &ps->rows[i], &err);
            pthread_mutex_unlock(&ps->mu);
        }
    }
    json_decref(held);
}

/* Waits for every report, at most produce_timeout (+ slack), and at most STOP_GRACE_MS
 * more once the relay is asked to stop. Rows still without a report count as failed. */
static void wait_reports(fl_relay *r, pass *ps)
{
    const fl_clock *clock = fl_clock_system();
    int64_t now = fl_clock_mono_ms(clock);
    int64_t deadline = now + r->cfg->kafka.produce_timeout_ms + REPORT_SLACK_MS;
    bool capped = false;

    pthread_mutex_lock(&ps->mu);
    while (ps->pending > 0 && now < deadline) {
        struct timespec ts;
        if (!capped && atomic_load(&r->stopping)) {
            capped = true;
            deadline = now + STOP_GRACE_MS < deadline ? now + STOP_GRACE_MS : deadline;
        }
        ts = fl_clock_mono_deadline(deadline - now < SLICE_MS ? deadline - now : SLICE_MS);
        pthread_cond_timedwait(&ps->cv, &ps->mu, &ts);
        now = fl_clock_mono_ms(clock);
    }
    pthread_mutex_unlock(&ps->mu);
}

/* ---- marking ------------------------------------------------------------------------ */

static int sql_timeout_ms(const fl_relay *r)
{
    return r->cfg->db.statement_timeout_ms > 0 ? r->cfg->db.statement_timeout_ms : 30000;
}

static fl_rc sql(const fl_relay *r, fl_pg_conn *conn, const char *text, const char *param,
                 fl_pg_rows **out, fl_err *err)
{
    const char *params[1] = {param};
    fl_pg_stmt stmt = {
        .sql = text, .nparams = param ? 1 : 0, .params = params, .timeout_ms = sql_timeout_ms(r)};

    return fl_pg_exec(conn, &stmt, out, err);
}

/* The marked rows' seqs as a PostgreSQL array literal, "{1,2,3}". */
static char *seq_array(const fl_pg_rows *rows, const bool *mark, size_t n)
{
    char *text = fl_xmalloc(n * 21 + 3); /* a bigint has at most 20 characters */
    size_t len = 0;

    text[len++] = '{';
    for (size_t i = 0; i < n; i++) {
        const char *seq = fl_pg_rows_get(rows, i, COL_SEQ);
        if (mark[i]) {
            size_t l = strlen(seq);
            if (len > 1) {
                text[len++] = ',';
            }
            memcpy(text + len, seq, l);
            len += l;
        }
    }
    text[len++] = '}';
    text[len] = '\0';
    return text;
}

/* Logs `relay.failed` for a pass that left rows unpublished, naming the first one. */
static void log_failed(pass *ps, const fl_pg_rows *rows, const bool *mark, size_t marked)
{
    size_t i = 0;
    fl_err first;

    while (i < ps->n && mark[i]) {
        i++;
    }
    pthread_mutex_lock(&ps->mu);
    first = ps->first;
    pthread_mutex_unlock(&ps->mu);
    if (first.code == FL_OK) {
        fl_err_set(&first, FL_ETIMEDOUT, "no delivery report within the produce timeout");
    }
    fl_log(FL_WARN, "relay.failed", FL_INT("rows", (long long)ps->n),
           FL_INT("unpublished", (long long)(ps->n - marked)),
           FL_STR("seq", fl_pg_rows_get(rows, i, COL_SEQ)),
           FL_STR("topic", fl_pg_rows_get(rows, i, COL_TOPIC)), FL_STR("error", first.msg));
}

/* Marks the acknowledged rows of the pass published; returns how many. */
static fl_rc mark_rows(fl_relay *r, fl_pg_conn *conn, pass *ps, const fl_pg_rows *rows,
                       size_t *marked, fl_err *err)
{
    fl_relay_outcome *oc = fl_xcalloc(ps->n, sizeof(*oc));
    bool *mark = fl_xcalloc(ps->n, sizeof(*mark));
    char *seqs = NULL;
    fl_rc rc = FL_OK;

    pthread_mutex_lock(&ps->mu);
    for (size_t i = 0; i < ps->n; i++) {
        oc[i].topic = fl_pg_rows_get(rows, i, COL_TOPIC);
        oc[i].key = fl_pg_rows_get(rows, i, COL_KEY);
        oc[i].delivered = ps->rows[i].state == ROW_ACKED;
    }
    pthread_mutex_unlock(&ps->mu);
    *marked = fl_relay_marks(oc, ps->n, mark);
    if (*marked < ps->n) {
        log_failed(ps, rows, mark, *marked);
    }
    if (*marked > 0) {
        seqs = seq_array(rows, mark, ps->n);
        rc = sql(r, conn, "UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])",
                 seqs, NULL, err);
    }
    free(seqs);
    free(mark);
    free(oc);
    return rc;
}

/* ---- the pass ------------------------------------------------------------------------ */

typedef struct pass_stats {
    bool standby; /* another relay holds the lock */
    size_t fetched;
    size_t published;
} pass_stats;

/* Takes the relay lock and reads the pass's rows; *out stays NULL on standby. */
static fl_rc claim(fl_relay *r, fl_pg_conn *conn, fl_pg_rows **out, bool *standby, fl_err *err)
{
    char limit[24];
    fl_pg_rows *lock = NULL;
    fl_rc rc;

    *out = NULL;
    rc = sql(r, conn, "SELECT pg_try_advisory_xact_lock($1::bigint)", RELAY_LOCK, &lock, err);
    if (rc != FL_OK) {
        goto out;
    }
    *standby = strcmp(fl_pg_rows_get(lock, 0, 0), "t") != 0;
    if (*standby) {
        goto out;
    }
    snprintf(limit, sizeof(limit), "%d", r->cfg->workers.relay_batch_size);
    rc = sql(r, conn,
             "SELECT seq, aggregatetype, aggregateid, payload::text, headers::text FROM outbox "
             "WHERE published_at IS NULL ORDER BY seq LIMIT $1::int",
             limit, out, err);
out:
    fl_pg_rows_free(lock);
    return rc;
}

/* Produces the claimed rows, waits for their reports and marks the acknowledged ones. */
static fl_rc publish(fl_relay *r, fl_pg_conn *conn, const fl_pg_rows *rows, pass_stats *st,
                     fl_err *err)
{
    pass *ps = pass_new(fl_pg_rows_count(rows));
    int64_t start = fl_clock_mono_ms(fl_clock_system());
    fl_rc rc;

    produce_rows(r, ps, rows);
    wait_reports(r, ps);
    rc = mark_rows(r, conn, ps, rows, &st->published, err);
    if (rc == FL_OK) {
        fl_log(FL_DEBUG, "relay.published", FL_INT("rows", (long long)ps->n),
               FL_INT("published", (long long)st->published),
               FL_INT("ms", (long long)(fl_clock_mono_ms(fl_clock_system()) - start)));
    }
    pass_release(ps);
    return rc;
}

static fl_rc relay_pass(fl_relay *r, pass_stats *st, fl_err *err)
{
    fl_pg_conn *conn = NULL;
    fl_pg_rows *rows = NULL;
    bool in_tx = false;
    fl_rc rc;

    memset(st, 0, sizeof(*st));
    rc = fl_pg_acquire(r->pool, ACQUIRE_MS, &conn, err);
    if (rc != FL_OK) {
        goto out;
    }
    rc = sql(r, conn, "BEGIN", NULL, NULL, err);
    if (rc != FL_OK) {
        goto out;
    }
    in_tx = true;
    rc = claim(r, conn, &rows, &st->standby, err);
    if (rc != FL_OK || !rows) {
        goto out;
    }
    st->fetched = fl_pg_rows_count(rows);
    if (st->fetched > 0) {
        rc = publish(r, conn, rows, st, err);
        if (rc != FL_OK) {
            goto out;
        }
    }
    rc = sql(r, conn, "COMMIT", NULL, NULL, err);
    in_tx = false; /* after a failed COMMIT the session is gone or the transaction is over */
out:
    if (in_tx) {
        /* keeps the connection pooled; the pool closes it if this fails too */
        sql(r, conn, "ROLLBACK", NULL, NULL, NULL);
    }
    fl_pg_rows_free(rows);
    fl_pg_release(r->pool, conn);
    return rc;
}

/* ---- the thread ----------------------------------------------------------------------- */

/* Sleeps ms, or until the relay is asked to stop. */
static void relay_sleep(fl_relay *r, int64_t ms)
{
    struct timespec deadline = fl_clock_mono_deadline(ms);

    pthread_mutex_lock(&r->mu);
    while (!atomic_load(&r->stopping) &&
           pthread_cond_timedwait(&r->cv, &r->mu, &deadline) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&r->mu);
}

/* How long to wait after a pass: none while a full batch says more rows are waiting,
 * the interval when idle or on standby, a growing delay after failures. */
static int64_t next_wait_ms(const fl_relay *r, fl_rc rc, const pass_stats *st, int *failures)
{
    fl_backoff_policy policy = {.kind = FL_BACKOFF_EXPONENTIAL,
                                .delay_ms = r->cfg->workers.relay_interval_ms,
                                .max_delay_ms = BACKOFF_MAX_MS};

    if (rc != FL_OK || st->published < st->fetched) {
        *failures += 1;
        return fl_backoff_delay_ms(&policy, *failures, NULL, NULL, -1);
    }
    *failures = 0;
    if (!st->standby && st->fetched == (size_t)r->cfg->workers.relay_batch_size) {
        return 0;
    }
    return r->cfg->workers.relay_interval_ms;
}

static void *relay_main(void *arg)
{
    fl_relay *r = arg;
    int failures = 0;

    fl_log(FL_INFO, "relay.started", FL_INT("batch_size", r->cfg->workers.relay_batch_size));
    while (!atomic_load(&r->stopping)) {
        pass_stats st;
        fl_err err = FL_ERR_INIT;
        fl_rc rc = relay_pass(r, &st, &err);
        int64_t wait;

        if (rc != FL_OK) {
            fl_log(FL_WARN, "relay.failed", FL_STR("code", fl_rc_name(rc)),
                   FL_STR("error", err.msg));
        }
        wait = next_wait_ms(r, rc, &st, &failures);
        if (wait > 0) {
            relay_sleep(r, wait);
        }
    }
    fl_log(FL_INFO, "relay.stopped");
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

fl_rc fl_relay_new(fl_relay **out, const fl_config *cfg, fl_pg_pool *pool,
                   fl_kafka_producer *producer, fl_err *err)
{
    fl_relay *r;

    *out = NULL;
    if (!cfg || !pool || !producer || cfg->workers.relay_batch_size < 1 ||
        cfg->workers.relay_interval_ms < 1) {
        return fl_err_set(err, FL_EINVAL,
                          "cannot create the outbox relay: it needs a pool, a "
                          "producer, a batch size and an interval of at least 1");
    }
    r = fl_xcalloc(1, sizeof(*r));
    r->cfg = cfg;
    r->pool = pool;
    r->producer = producer;
    pthread_mutex_init(&r->mu, NULL);
    fl_clock_cond_init(&r->cv);
    atomic_init(&r->stopping, false);
    *out = r;
    return FL_OK;
}

fl_rc fl_relay_start(void *relay, fl_err *err)
{
    fl_relay *r = relay;
    int e;

    fl_assert(r && !r->started);
    atomic_store(&r->stopping, false);
    e = pthread_create(&r->thread, NULL, relay_main, r);
    if (e != 0) {
        return fl_err_set(err, FL_EINTERNAL, "could not start the outbox relay thread: %s",
                          strerror(e));
    }
    r->started = true;
    return FL_OK;
}

void fl_relay_stop(void *relay)
{
    fl_relay *r = relay;

    if (!r || !r->started) {
        return;
    }
    pthread_mutex_lock(&r->mu);
    atomic_store(&r->stopping, true);
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    r->started = false;
}

void fl_relay_free(fl_relay *relay)
{
    if (!relay) {
        return;
    }
    fl_relay_stop(relay);
    pthread_cond_destroy(&relay->cv);
    pthread_mutex_destroy(&relay->mu);
    free(relay);
}
