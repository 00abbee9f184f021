/* engine/activities_deltas.c -- relays the text of a streamed `call: llm` answer to the
 * API's SSE listeners as it arrives: `NOTIFY flowd_deltas` with
 *
 *   {"tenant", "conversation": <instance key>, "reply": <activity id>, "seq", "text"}
 *
 * (seq counts the chunks of one activity from 1; a retried attempt continues the count).
 * When an attempt that had streamed text failed and another streams again, one payload
 * with "restart": true and empty text comes first: listeners drop what they were shown.
 * The API LISTENs (api/notify.c) and sends them as `message.delta` events; the reply the
 * workflow stores later (`reply` action -> transcript) is the `message.completed` a
 * reconnecting client resumes from. Deltas are ephemeral: nothing stores them, a failed
 * NOTIFY is dropped.
 *
 * Design: the provider's deltas arrive on the HTTP client's thread, which must not touch
 * Postgres. It batches them per job (a chunk when BATCH_BYTES are pending or BATCH_MS
 * passed since the last one, and at the end of the attempt) and queues the chunks under
 * fl_activities.mu, waking the worker, which NOTIFYs them in order on one pooled
 * connection outside any transaction (autocommit: each is delivered at once). Only
 * answers in words are relayed: a json-mode answer (a classification) is not chat text.
 *
 * Thread-safety: fl_act_deltas belongs to the job's HTTP callbacks while the job is in
 * flight; the queue is guarded by fl_activities.mu. */
#include "engine/activities_int.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

#define BATCH_BYTES 200
#define BATCH_MS    50
#define CHUNK_MAX   1800 /* bytes of text per NOTIFY (Postgres caps a payload at 8000) */
#define ACQUIRE_MS  1000

struct fl_act_deltas {
    fl_activities *owner;
    const fl_act_job *job;
    fl_buf pending;
    int64_t last_ms; /* monotonic; 0 = nothing sent yet (the first delta goes at once) */
    long long seq;
};

struct fl_act_delta {
    char *payload; /* the NOTIFY payload, JSON */
    fl_act_delta *next;
};

void fl_activities__deltas_free(fl_act_deltas *d)
{
    if (!d) {
        return;
    }
    fl_buf_deinit(&d->pending);
    free(d);
}

/* The length of at most max bytes of s that ends on a UTF-8 character boundary. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    size_t n = len < max ? len : max;

    while (n < len && n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) {
        n--;
    }
    return n;
}

/* Queues one NOTIFY payload for the worker and wakes it (HTTP thread). */
static void queue_payload(fl_act_deltas *d, json_t *p)
{
    fl_activities *a = d->owner;
    fl_act_delta *c = fl_xcalloc(1, sizeof(*c));

    c->payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    pthread_mutex_lock(&a->mu);
    if (a->deltas_tail) {
        a->deltas_tail->next = c;
    } else {
        a->deltas_head = c;
    }
    a->deltas_tail = c;
    a->wake = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

/* Queues the pending text as chunks (HTTP thread). */
static void queue_pending(fl_act_deltas *d)
{
    size_t off = 0;

    while (off < d->pending.len) {
        size_t n = utf8_cut(d->pending.data + off, d->pending.len - off, CHUNK_MAX);

        queue_payload(d, json_pack("{s:s, s:s, s:s, s:I, s:s%}", "tenant", d->job->tenant,
                                   "conversation", d->job->key, "reply", d->job->id, "seq",
                                   (json_int_t)++d->seq, "text", d->pending.data + off, n));
        off += n ? n : d->pending.len - off; /* n == 0 only for bytes that are not UTF-8 */
    }
    d->pending.len = 0;
    d->last_ms = fl_clock_mono_ms(fl_clock_system());
}

/* The attempt that streamed so far failed and another starts over (fl_llm_delta_fn's
 * (NULL, 0)): its unsent text is dropped and the listeners are told to start over. */
static void queue_restart(fl_act_deltas *d)
{
    d->pending.len = 0;
    queue_payload(d, json_pack("{s:s, s:s, s:s, s:I, s:s, s:b}", "tenant", d->job->tenant,
                               "conversation", d->job->key, "reply", d->job->id, "seq",
                               (json_int_t)++d->seq, "text", "", "restart", 1));
}

static fl_rc on_delta(void *arg, const char *text, size_t len)
{
    fl_act_deltas *d = arg;
    int64_t now = fl_clock_mono_ms(fl_clock_system());

    if (!text) {
        queue_restart(d);
        return FL_OK;
    }
    (void)fl_buf_append(&d->pending, text, len, NULL);
    if (d->pending.len >= BATCH_BYTES || d->last_ms == 0 || now - d->last_ms >= BATCH_MS) {
        queue_pending(d);
    }
    return FL_OK;
}

void fl_activities__deltas_attach(fl_activities *a, fl_act_job *job)
{
    fl_act_deltas *d;

    if (!job->llm || json_is_true(json_object_get(job->args, "json"))) {
        return;
    }
    d = fl_xcalloc(1, sizeof(*d));
    d->owner = a;
    d->job = job;
    fl_buf_init(&d->pending, SIZE_MAX);
    job->deltas = d;
    fl_llm_call_set_delta(job->llm, on_delta, d);
}

void fl_activities__deltas_end(fl_act_job *job)
{
    if (job->deltas && job->deltas->pending.len > 0) {
        queue_pending(job->deltas);
    }
}

void fl_activities__deltas_send(fl_activities *a)
{
    fl_act_delta *list;
    fl_pg_conn *conn = NULL;
    fl_err err = FL_ERR_INIT;
    bool failed = false;

    pthread_mutex_lock(&a->mu);
    list = a->deltas_head;
    a->deltas_head = a->deltas_tail = NULL;
    pthread_mutex_unlock(&a->mu);
    if (list && !atomic_load(&a->stopping) &&
        fl_pg_acquire(a->pool, ACQUIRE_MS, &conn, &err) != FL_OK) {
        failed = true;
    }
    while (list) {
        fl_act_delta *c = list;
        const char *p[1] = {c->payload};
        fl_pg_stmt st = {"SELECT pg_notify('flowd_deltas', $1)", 1, p, ACQUIRE_MS};
        fl_pg_rows *rows = NULL;

        list = c->next;
        if (conn && c->payload && fl_pg_exec(conn, &st, &rows, &err) != FL_OK) {
            failed = true;
        }
        fl_pg_rows_free(rows);
        free(c->payload);
        free(c);
    }
    if (conn) {
        fl_pg_release(a->pool, conn);
    }
    if (failed) {
        fl_log(FL_DEBUG, "activity.deltas_dropped", FL_STR("error", err.msg));
    }
}
