/* core/kafka.c -- librdkafka handles and the producer (configuration: core/kafka_props.c).
 *
 * Design: the producer owns one poll thread that serves delivery reports, each of which
 * runs the caller's callback. A synchronous produce is an asynchronous one whose callback
 * completes a heap-allocated, reference-counted completion that the caller waits on, so
 * a caller that stops waiting never leaves the report a dangling pointer.
 *
 * Thread-safety: see core/kafka.h. librdkafka calls log_cb from its own threads, and
 * delivery reports and error callbacks from the producer's poll thread. */
#include "core/kafka_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

enum {
    POLL_MS = 100,        /* poll thread wake-up: bounds the stop latency (R9.3) */
    PURGE_DRAIN_MS = 500, /* serving the delivery reports of purged messages on close */
};

/* ---- librdkafka handles ------------------------------------------------------------ */

static fl_log_level level_from_syslog(int level)
{
    if (level <= 3) {
        return FL_ERROR;
    }
    if (level == 4) {
        return FL_WARN;
    }
    return level <= 6 ? FL_INFO : FL_DEBUG;
}

/* Called from librdkafka's threads, which forbid calling back into librdkafka here. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    fl_log(level_from_syslog(level), "kafka.log", FL_STR("fac", fac), FL_STR("msg", buf));
}

void fl_kafka__log_error(rd_kafka_t *rk, rd_kafka_resp_err_t code, const char *reason)
{
    char why[256];

    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, why, sizeof(why));
        fl_log(FL_ERROR, "kafka.fatal", FL_STR("client", rd_kafka_name(rk)), FL_STR("error", why));
    } else {
        fl_log(FL_WARN, "kafka.error", FL_STR("client", rd_kafka_name(rk)),
               FL_STR("code", rd_kafka_err2name(code)), FL_STR("error", reason));
    }
}

static bool is_secret_key(const char *key)
{
    return strstr(key, "sasl.") || strstr(key, "ssl.") || strstr(key, "password") ||
           strstr(key, "secret");
}

fl_rc fl_kafka__conf_new(const fl_kafka_props *props, void *opaque, rd_kafka_conf_t **out,
                         fl_err *err)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    fl_rc rc = FL_OK;

    *out = NULL;
    for (size_t i = 0; i < props->n && rc == FL_OK; i++) {
        const char *key = props->items[i].key;
        rd_kafka_conf_res_t res =
            rd_kafka_conf_set(conf, key, props->items[i].value, why, sizeof(why));
        if (res == RD_KAFKA_CONF_UNKNOWN) {
            rc = fl_err_set(err, FL_EINVAL, "unknown Kafka setting \"%s\"", key);
        } else if (res != RD_KAFKA_CONF_OK) {
            /* librdkafka's reason quotes the value, which may be a secret */
            rc = fl_err_set(err, FL_EINVAL, "invalid value for Kafka setting \"%s\"%s%s", key,
                            is_secret_key(key) ? "" : ": ", is_secret_key(key) ? "" : why);
        }
    }
    if (rc != FL_OK) {
        goto out;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_opaque(conf, opaque);
    *out = conf;
    conf = NULL;
out:
    if (conf) {
        rd_kafka_conf_destroy(conf);
    }
    return rc;
}

fl_rc fl_kafka__client_new(rd_kafka_type_t type, rd_kafka_conf_t **conf, rd_kafka_t **out,
                           fl_err *err)
{
    char why[512];
    rd_kafka_t *rk = rd_kafka_new(type, *conf, why, sizeof(why));

    if (!rk) {
        return fl_err_set(err, FL_EINVAL, "could not create Kafka %s: %s",
                          type == RD_KAFKA_PRODUCER ? "producer" : "consumer", why);
    }
    *conf = NULL; /* now owned by rk */
    *out = rk;
    return FL_OK;
}

/* ---- producer ---------------------------------------------------------------------- */

static fl_rc rc_from_produce(fl_kafka_producer *p, rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        return FL_ETOOBIG;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return FL_EINVAL;
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        return atomic_load(&p->brokers_down) ? FL_EUNAVAIL : FL_ETIMEDOUT;
    default:
        return FL_EUNAVAIL; /* queue full, no broker, producer fenced or failed */
    }
}

static fl_rc produce_failed(fl_kafka_producer *p, const char *topic, rd_kafka_resp_err_t e,
                            fl_err *err)
{
    fl_rc rc = rc_from_produce(p, e);

    fl_metrics_kafka_produced(topic, false);
    return fl_err_set(err, rc, "%s produce to Kafka topic \"%s\": %s",
                      rc == FL_EINVAL || rc == FL_ETOOBIG ? "cannot" : "could not", topic,
                      rd_kafka_err2str(e));
}

/* What a queued message carries to its delivery report: the caller's callback. */
typedef struct report {
    fl_kafka_done_fn done;
    void *arg;
} report;

/* One synchronous produce. Two references: the waiting caller's and the delivery
 * report's; whichever lets go last frees it. */
typedef struct delivery {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    int refs;          /* guarded by mu */
    bool done;         /* guarded by mu; the fields below are written before it is set */
    fl_err result;
    int32_t partition;
    int64_t offset;
} delivery;

static delivery *delivery_new(void)
{
    delivery *d = fl_xcalloc(1, sizeof(*d));

    pthread_mutex_init(&d->mu, NULL);
    fl_clock_cond_init(&d->cv);
    d->refs = 2;
    return d;
}

static void delivery_release(delivery *d)
{
    bool last;

    pthread_mutex_lock(&d->mu);
    last = --d->refs == 0;
    pthread_mutex_unlock(&d->mu);
    if (last) {
        pthread_cond_destroy(&d->cv);
        pthread_mutex_destroy(&d->mu);
        free(d);
    }
}

/* Returns whether the delivery report arrived within timeout_ms. */
static bool delivery_wait(delivery *d, int timeout_ms)
{
    struct timespec deadline = fl_clock_mono_deadline(timeout_ms);
    bool done;

    pthread_mutex_lock(&d->mu);
    while (!d->done && pthread_cond_timedwait(&d->cv, &d->mu, &deadline) != ETIMEDOUT) {
    }
    done = d->done;
    pthread_mutex_unlock(&d->mu);
    return done;
}

/* The report of a synchronous produce: hands the result to the waiting caller. */
static void sync_done(void *arg, const fl_kafka_delivery *dl, const fl_err *err)
{
    delivery *d = arg;

    pthread_mutex_lock(&d->mu);
    d->result = *err;
    d->partition = dl->partition;
    d->offset = dl->offset;
    d->done = true;
    pthread_mutex_unlock(&d->mu);
    /* after the unlock, so the waiter does not wake into a held mutex; this report's
     * reference keeps d alive until delivery_release */
    pthread_cond_signal(&d->cv);
    delivery_release(d);
}

/* Runs on the poll thread, also for messages purged on close (as FL_EUNAVAIL). */
static void delivery_report_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    fl_kafka_producer *p = opaque;
    report *r = rkm->_private;
    fl_kafka_delivery dl = {.partition = rkm->partition, .offset = rkm->offset};
    fl_err err = FL_ERR_INIT;

    (void)rk;
    if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        atomic_store(&p->brokers_down, false);
        fl_metrics_kafka_produced(rd_kafka_topic_name(rkm->rkt), true);
    } else {
        produce_failed(p, rd_kafka_topic_name(rkm->rkt), rkm->err, &err);
    }
    r->done(r->arg, &dl, &err);
    free(r);
}

static void producer_error_cb(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    fl_kafka_producer *p = opaque;

    if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        atomic_store(&p->brokers_down, true);
    }
    fl_kafka__log_error(rk, (rd_kafka_resp_err_t)code, reason);
}

static void *producer_main(void *arg)
{
    fl_kafka_producer *p = arg;

    while (!atomic_load(&p->stopping)) {
        rd_kafka_poll(p->rk, POLL_MS);
    }
    return NULL;
}

fl_rc fl_kafka_producer_open(fl_kafka_producer **out, const fl_config_kafka *cfg, fl_err *err)
{
    fl_kafka_producer *p = fl_xcalloc(1, sizeof(*p));
    fl_kafka_props *props = fl_kafka_props_producer_new(cfg);
    rd_kafka_conf_t *conf = NULL;
    fl_rc rc;
    int e;

    *out = NULL;
    atomic_init(&p->stopping, false);
    atomic_init(&p->brokers_down, false);
    p->servers = fl_xstrdup(fl_kafka_props_get(props, "bootstrap.servers"));
    rc = fl_kafka__conf_new(props, p, &conf, err);
    if (rc != FL_OK) {
        goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, delivery_report_cb);
    rd_kafka_conf_set_error_cb(conf, producer_error_cb);
    rc = fl_kafka__client_new(RD_KAFKA_PRODUCER, &conf, &p->rk, err);
    if (rc != FL_OK) {
        goto out;
    }
    e = pthread_create(&p->thread, NULL, producer_main, p);
    if (e != 0) {
        rc = fl_err_set(err, FL_EINTERNAL, "could not start the Kafka producer thread: %s",
                        strerror(e));
        goto out;
    }
    p->thread_started = true;
    fl_log(FL_INFO, "kafka.producer.opened", FL_STR("servers", p->servers));
    *out = p;
    p = NULL;
out:
    if (conf) {
        rd_kafka_conf_destroy(conf);
    }
    fl_kafka_props_free(props);
    fl_kafka_producer_close(p, 0);
    return rc;
}

void fl_kafka_producer_close(fl_kafka_producer *p, int timeout_ms)
{
    if (!p) {
        return;
    }
    if (p->thread_started) {
        atomic_store(&p->stopping, true);
        pthread_join(p->thread, NULL);
    }
    if (p->rk) {
        if (rd_kafka_flush(p->rk, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fl_log(FL_WARN, "kafka.producer.undelivered",
                   FL_INT("messages", rd_kafka_outq_len(p->rk)), FL_INT("timeout_ms", timeout_ms));
        }
        /* Purged messages get a delivery report; serving those releases the
     * completions that abandoned waiters still share with them. */
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(p->rk, PURGE_DRAIN_MS);
        rd_kafka_destroy(p->rk);
    }
    free(p->servers);
    free(p);
}

static rd_kafka_vu_t *vu_next(rd_kafka_vu_t *vu, size_t *n, rd_kafka_vtype_t type)
{
    vu[*n].vtype = type;
    return &vu[(*n)++];
}

/* Headers go in as one list (RD_KAFKA_VTYPE_HEADERS), ours again if the produce fails:
 * with per-header RD_KAFKA_VTYPE_HEADER entries librdkafka 2.0 frees its list twice when a
 * produce fails after the message was built, e.g. unknown topic (librdkafka#4627). */
static rd_kafka_headers_t *headers_new(const fl_kafka_record *rec)
{
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(rec->nheaders);

    for (size_t i = 0; i < rec->nheaders; i++) {
        const fl_kafka_header *h = &rec->headers[i];
        rd_kafka_header_add(hdrs, h->name, -1, h->value, h->value ? (ssize_t)h->len : 0);
    }
    return hdrs;
}

static rd_kafka_error_t *produce_async(fl_kafka_producer *p, const fl_kafka_record *rec, report *r)
{
    rd_kafka_headers_t *hdrs = rec->nheaders ? headers_new(rec) : NULL;
    rd_kafka_vu_t vu[6];
    rd_kafka_vu_t *v;
    rd_kafka_error_t *e;
    size_t n = 0;

    vu_next(vu, &n, RD_KAFKA_VTYPE_TOPIC)->u.cstr = rec->topic;
    v = vu_next(vu, &n, RD_KAFKA_VTYPE_KEY);
    v->u.mem.ptr = (void *)rec->key; /* copied by librdkafka */
    v->u.mem.size = rec->key ? rec->key_len : 0;
    v = vu_next(vu, &n, RD_KAFKA_VTYPE_VALUE);
    v->u.mem.ptr = (void *)rec->value; /* copied: RD_KAFKA_MSG_F_COPY */
    v->u.mem.size = rec->value ? rec->value_len : 0;
    vu_next(vu, &n, RD_KAFKA_VTYPE_MSGFLAGS)->u.i = RD_KAFKA_MSG_F_COPY;
    vu_next(vu, &n, RD_KAFKA_VTYPE_OPAQUE)->u.ptr = r;
    if (hdrs) {
        vu_next(vu, &n, RD_KAFKA_VTYPE_HEADERS)->u.headers = hdrs;
    }
    e = rd_kafka_produceva(p->rk, vu, n);
    if (e && hdrs) {
        rd_kafka_headers_destroy(hdrs); /* still ours: the produce failed */
    }
    return e;
}

fl_rc fl_kafka_produce_async(fl_kafka_producer *p, const fl_kafka_record *rec,
                             fl_kafka_done_fn done, void *arg, fl_err *err)
{
    report *r = fl_xmalloc(sizeof(*r));
    rd_kafka_error_t *e;
    fl_rc rc = FL_OK;

    fl_assert(p && rec && rec->topic && done);
    *r = (report){.done = done, .arg = arg};
    e = produce_async(p, rec, r);
    if (e) {
        rc = produce_failed(p, rec->topic, rd_kafka_error_code(e), err);
        rd_kafka_error_destroy(e);
        free(r); /* not queued: no delivery report will come */
    }
    return rc;
}

fl_rc fl_kafka_produce_sync(fl_kafka_producer *p, const fl_kafka_record *rec, int timeout_ms,
                            fl_kafka_delivery *out, fl_err *err)
{
    delivery *d = delivery_new();
    fl_rc rc;

    fl_assert(p && rec && rec->topic);
    rc = fl_kafka_produce_async(p, rec, sync_done, d, err);
    if (rc != FL_OK) {
        delivery_release(d); /* not queued: no delivery report will come */
        goto out;
    }
    if (!delivery_wait(d, timeout_ms)) {
        bool down = atomic_load(&p->brokers_down);
        rc = fl_err_set(err, down ? FL_EUNAVAIL : FL_ETIMEDOUT,
                        "could not confirm delivery to Kafka topic \"%s\" within %d ms%s",
                        rec->topic, timeout_ms, down ? ": no broker is reachable" : "");
        goto out;
    }
    if (d->result.code != FL_OK) {
        rc = fl_err_set(err, d->result.code, "%s", d->result.msg);
        goto out;
    }
    if (out) {
        out->partition = d->partition;
        out->offset = d->offset;
    }
out:
    delivery_release(d);
    return rc;
}
