/* api/routes_events_produce.c -- POST /events: every event to Kafka, 202 only after every
 * delivery report confirmed it (issue 5: "202 only after Kafka confirmed delivery").
 *
 * Design: all events are encoded first (nothing is produced when one cannot be), then
 * queued with fl_kafka_produce_async, so a batch costs one round trip rather than one
 * per event, and the handler sleeps on a condition variable until the last delivery
 * report. The reports run on the producer's poll thread and may arrive after the handler
 * gave up (the broker may still confirm later), so the shared state is reference
 * counted: the handler and every outstanding report hold one reference, the last one
 * frees it. The wait is bounded by kafka_client.produce_timeout (librdkafka's
 * message.timeout.ms) plus a grace second, so a report is normally never late.
 *
 * Kafka headers of each record: the binary-mode ce_* headers of engine/cloudevent.h,
 * including ce_traceparent (the request's W3C trace context, unless the event has its
 * own) and ce_requestid (X-Request-Id, unless the event has its own `requestid`), as
 * api/publish.c does for command events; `content-type: application/json` with data.
 *
 * Thread-safety: one request per call; the shared state is guarded by its mutex, its
 * reference count is atomic (the last holder frees it, outside the mutex). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/body.h"
#include "api/routes_events_int.h"
#include "core/log.h"
#include "core/mem.h"

enum { GRACE_MS = 1000 };

typedef struct pending pending;

typedef struct slot {
    pending *pd;
    size_t i;
} slot;

struct pending {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t left;        /* delivery reports still to come */
    atomic_size_t refs; /* the handler + every outstanding report (not under mu) */
    size_t n;
    ev_item *items; /* copies of the outcome fields, in the same block */
    slot *slots;    /* in the same block */
};

/* One allocation: the state, then its n items, then its n slots. */
static pending *pending_new(size_t n)
{
    size_t k = n ? n : 1;
    pending *pd = fl_xcalloc(1, sizeof(*pd) + k * sizeof(ev_item) + k * sizeof(slot));
    pthread_condattr_t ca;

    pthread_mutex_init(&pd->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pd->cv, &ca);
    pthread_condattr_destroy(&ca);
    pd->n = n;
    atomic_init(&pd->refs, 1);
    pd->items = (ev_item *)(pd + 1);
    pd->slots = (slot *)(pd->items + k);
    return pd;
}

/* Drops one reference (mutex not held); the last one frees. */
static void pending_unref(pending *pd)
{
    if (atomic_fetch_sub(&pd->refs, 1) == 1) {
        pthread_mutex_destroy(&pd->mu);
        pthread_cond_destroy(&pd->cv);
        free(pd);
    }
}

/* The delivery report of one event (on the producer's poll thread). */
static void on_delivery(void *arg, const fl_kafka_delivery *d, const fl_err *err)
{
    slot *s = arg;
    pending *pd = s->pd;
    ev_item *it;
    bool wake;

    pthread_mutex_lock(&pd->mu);
    it = &pd->items[s->i];
    it->rc = err->code;
    if (err->code == FL_OK) {
        it->where = *d;
    } else {
        snprintf(it->why, sizeof(it->why), "%s", err->msg);
    }
    wake = --pd->left == 0;
    pthread_mutex_unlock(&pd->mu);
    /* after the unlock, so the woken handler does not block on the mutex straight away
     * (one context switch less per request); this report's reference keeps pd alive */
    if (wake) {
        pthread_cond_broadcast(&pd->cv);
    }
    pending_unref(pd);
}

/* The extensions to send: the event's own, then the request's trace context and id
 * unless the event has them (and there is room under FL_CE_MAX_EXTENSIONS). */
static size_t extras_of(const fl_req *r, const fl_cloudevent *ce, fl_ce_attr *out)
{
    size_t n = 0;

    for (size_t i = 0; i < ce->nexts; i++) {
        out[n++] = (fl_ce_attr){ce->exts[i].name, ce->exts[i].value};
    }
    if (r->traceparent[0] && n < FL_CE_MAX_EXTENSIONS && !fl_cloudevent_traceparent(ce)) {
        out[n++] = (fl_ce_attr){"traceparent", r->traceparent};
    }
    if (r->request_id[0] && n < FL_CE_MAX_EXTENSIONS && !fl_cloudevent_extension(ce, "requestid")) {
        out[n++] = (fl_ce_attr){"requestid", r->request_id};
    }
    return n;
}

/* Queues one encoded event; on failure the item says why. */
static fl_rc queue_one(fl_req *r, pending *pd, size_t i, const fl_ce_encoded *enc)
{
    fl_kafka_header h[sizeof(enc->headers) / sizeof(enc->headers[0])];
    fl_kafka_record rec = {pd->items[i].topic, enc->key, enc->key_len, enc->value,
                           enc->value_len,     h,        enc->nheaders};
    fl_err err = FL_ERR_INIT;
    fl_rc rc;

    for (size_t k = 0; k < enc->nheaders; k++) {
        h[k] = (fl_kafka_header){enc->headers[k].name, enc->headers[k].value, enc->headers[k].len};
    }
    pd->slots[i] = (slot){pd, i};
    pthread_mutex_lock(&pd->mu);
    atomic_fetch_add(&pd->refs, 1);
    pd->left++;
    pthread_mutex_unlock(&pd->mu);
    rc = fl_kafka_produce_async(r->api->producer, &rec, on_delivery, &pd->slots[i], &err);
    pthread_mutex_lock(&pd->mu);
    if (rc != FL_OK) {
        atomic_fetch_sub(&pd->refs, 1); /* no report will come; the handler's stays */
        pd->left--;
        pd->items[i].rc = rc;
        snprintf(pd->items[i].why, sizeof(pd->items[i].why), "%s", err.msg);
    } else {
        pd->items[i].queued = true;
    }
    pthread_mutex_unlock(&pd->mu);
    return rc;
}

/* Waits until every queued event has its report or the deadline passed. */
static void wait_reports(pending *pd, int timeout_ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&pd->mu);
    while (pd->left > 0) {
        if (pthread_cond_timedwait(&pd->cv, &pd->mu, &ts) != 0 && pd->left > 0) {
            break; /* timed out */
        }
    }
}

/* The error pointer of item i: "/<i>" in a batch, "" (the whole body) otherwise. */
static void item_pointer(char *buf, size_t size, bool batch, size_t i)
{
    if (batch) {
        snprintf(buf, size, "/%zu", i);
    } else {
        buf[0] = '\0';
    }
}

/* Copies the outcomes back into the caller's items (mutex held), unlocks and lets go. */
static void collect(pending *pd, ev_item *items)
{
    for (size_t i = 0; i < pd->n; i++) {
        items[i].queued = pd->items[i].queued;
        items[i].rc = pd->items[i].rc;
        items[i].where = pd->items[i].where;
        snprintf(items[i].why, sizeof(items[i].why), "%s", pd->items[i].why);
    }
    pthread_mutex_unlock(&pd->mu);
    pending_unref(pd);
}

/* Encodes every event; the first that cannot be is answered 400 (nothing is produced). */
static bool encode_all(fl_req *r, const ev_item *items, size_t n, bool batch, fl_ce_encoded *enc)
{
    fl_ce_attr extra[FL_CE_MAX_EXTENSIONS];
    fl_err err = FL_ERR_INIT;
    json_t *errors = NULL;
    char ptr[32];

    for (size_t i = 0; i < n; i++) {
        fl_event ev = fl_cloudevent_event(items[i].ce);
        size_t nx = extras_of(r, items[i].ce, extra);
        if (fl_cloudevent_encode_text(&ev, extra, nx, items[i].data_text, items[i].data_text_len,
                                      &enc[i], &err) != FL_OK) {
            item_pointer(ptr, sizeof(ptr), batch, i);
            fl_body_error(&errors, ptr, "%s", err.msg);
            fl_problem_errors(r, 400, err.msg, errors);
            return false;
        }
    }
    return true;
}

/* Queues every event (stopping at the first the producer refuses) and waits. */
static void produce_all(fl_req *r, ev_item *items, size_t n, const fl_ce_encoded *enc,
                        int timeout_ms)
{
    pending *pd = pending_new(n);
    fl_rc rc = FL_OK;
    size_t i;

    for (i = 0; i < n; i++) {
        memcpy(pd->items[i].topic, items[i].topic, sizeof(items[i].topic));
        pd->items[i].rc = FL_ETIMEDOUT;
        snprintf(pd->items[i].why, sizeof(pd->items[i].why),
                 "no delivery report within %d ms; it may still be delivered", timeout_ms);
    }
    for (i = 0; i < n && rc == FL_OK; i++) {
        rc = queue_one(r, pd, i, &enc[i]);
    }
    pthread_mutex_lock(&pd->mu);
    for (; i < n; i++) {
        pd->items[i].rc = FL_EUNAVAIL;
        snprintf(pd->items[i].why, sizeof(pd->items[i].why),
                 "not sent: an earlier event could not be queued");
    }
    pthread_mutex_unlock(&pd->mu);
    wait_reports(pd, timeout_ms);
    collect(pd, items);
}

static int answer_ok(fl_req *r, const ev_item *items, size_t n)
{
    json_t *ids = json_array();
    json_t *events = json_array();

    for (size_t i = 0; i < n; i++) {
        json_array_append_new(ids, json_string(items[i].ce->id));
        json_array_append_new(events,
                              json_pack("{s:s, s:s, s:i, s:I}", "id", items[i].ce->id, "topic",
                                        items[i].topic, "partition", (int)items[i].where.partition,
                                        "offset", (json_int_t)items[i].where.offset));
    }
    return fl_reply(
        r, 202,
        json_pack("{s:I, s:o, s:o}", "accepted", (json_int_t)n, "ids", ids, "events", events));
}

/* 503 (or 413): which events were delivered, which may have been, which were not sent. */
static int answer_failed(fl_req *r, const ev_item *items, size_t n, bool batch)
{
    json_t *errors = NULL;
    size_t failed = 0, too_big = 0;
    char ptr[32];

    for (size_t i = 0; i < n; i++) {
        if (items[i].rc == FL_OK) {
            continue;
        }
        failed++;
        too_big += items[i].rc == FL_ETOOBIG;
        item_pointer(ptr, sizeof(ptr), batch, i);
        fl_body_error(&errors, ptr, "event \"%s\" %s: %s", items[i].ce->id,
                      items[i].queued && items[i].rc != FL_ETOOBIG ? "may have been delivered"
                                                                   : "was not delivered",
                      items[i].why);
    }
    fl_log(
        FL_WARN, "api.events.unconfirmed", FL_STR("request_id", r->request_id),
        FL_INT("events", (long long)n), FL_INT("unconfirmed", (long long)failed),
        FL_STR("error", json_string_value(json_object_get(json_array_get(errors, 0), "detail"))));
    if (too_big == failed && n == 1) {
        return fl_problem_errors(r, 413, "the event is over the broker's message size limit",
                                 errors);
    }
    fl_req_header_add(r, "Retry-After", "1");
    char detail[256];
    snprintf(detail, sizeof(detail),
             "Kafka did not confirm %zu of %zu events; the others were delivered, the ones "
             "listed as \"may have been delivered\" can still appear (a retry with the same "
             "ids is deduplicated by the engine)",
             failed, n);
    return fl_problem_errors(r, 503, detail, errors);
}

int ev_produce_and_answer(fl_req *r, ev_item *items, size_t n, bool batch)
{
    int timeout = r->api->cfg->kafka.produce_timeout_ms + GRACE_MS;
    fl_ce_encoded one; /* the usual single event: no heap block of its ~1 KB */
    fl_ce_encoded *enc = &one;
    bool ok = true;
    int status;

    if (r->api->producer == NULL) {
        return fl_problem(r, 503, "this process has no Kafka producer");
    }
    memset(&one, 0, sizeof(one));
    if (n > 1) {
        enc = fl_xcalloc(n, sizeof(*enc));
    }
    if (!encode_all(r, items, n, batch, enc)) {
        status = r->status;
        goto out;
    }
    if (n > 0) {
        produce_all(r, items, n, enc, timeout);
    }
    for (size_t i = 0; i < n; i++) {
        ok = ok && items[i].rc == FL_OK;
    }
    status = ok ? answer_ok(r, items, n) : answer_failed(r, items, n, batch);
out:
    for (size_t i = 0; i < n; i++) {
        fl_ce_encoded_deinit(&enc[i]);
    }
    if (enc != &one) {
        free(enc);
    }
    return status;
}
