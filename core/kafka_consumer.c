/* core/kafka_consumer.c -- the engine's group consumer and the messages it hands out.
 *
 * Design: librdkafka's queues are merged into the consumer queue, so one poll on the
 * loop's thread serves messages, errors and rebalances alike, and a rebalance can only
 * happen between two messages. Offsets are stored by hand, only after the Postgres
 * commit, and committed by librdkafka's auto-commit and on close. A message handed out
 * owns its rd_kafka_message_t; fl_kafka_msg_new builds the same object without a broker
 * for tests and fakes.
 *
 * Thread-safety: see core/kafka.h. rebalance_cb and the error callback run inside
 * fl_kafka_consumer_poll and fl_kafka_consumer_close, on the loop's thread. */
#include "core/kafka_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"

enum {
    POLL_MS = 100, /* wake-up while closing, to check the deadline */
};

/* ---- consumed messages ------------------------------------------------------------- */

struct fl_kafka_msg {
    rd_kafka_message_t *rkm;     /* the consumed message, or NULL for fl_kafka_msg_new */
    rd_kafka_headers_t *headers; /* borrowed from rkm, or owned when rkm is NULL; or NULL */
    const char *topic;
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    char *own_topic; /* fl_kafka_msg_new's copies */
    char *own_key;
    char *own_value;
};

static fl_kafka_msg *msg_wrap(rd_kafka_message_t *rkm)
{
    fl_kafka_msg *m = fl_xcalloc(1, sizeof(*m));
    rd_kafka_timestamp_type_t tstype;
    rd_kafka_resp_err_t e;

    m->rkm = rkm;
    m->topic = rd_kafka_topic_name(rkm->rkt);
    m->key = rkm->key;
    m->key_len = rkm->key ? rkm->key_len : 0;
    m->value = rkm->payload;
    m->value_len = rkm->payload ? rkm->len : 0;
    m->partition = rkm->partition;
    m->offset = rkm->offset;
    m->timestamp_ms = rd_kafka_message_timestamp(rkm, &tstype);
    e = rd_kafka_message_headers(rkm, &m->headers);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        m->headers = NULL;
    }
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NOENT) {
        fl_log(FL_WARN, "kafka.headers.invalid", FL_STR("topic", m->topic),
               FL_INT("partition", m->partition), FL_INT("offset", m->offset),
               FL_STR("error", rd_kafka_err2str(e)));
    }
    return m;
}

static char *copy_bytes(const void *p, size_t n)
{
    return p ? fl_xstrndup(p, n) : NULL; /* NUL-terminated, but callers must use n */
}

fl_kafka_msg *fl_kafka_msg_new(const fl_kafka_record *rec, int32_t partition, int64_t offset)
{
    fl_kafka_msg *m = fl_xcalloc(1, sizeof(*m));

    m->topic = m->own_topic = fl_xstrdup(rec->topic);
    m->key = m->own_key = copy_bytes(rec->key, rec->key_len);
    m->key_len = rec->key ? rec->key_len : 0;
    m->value = m->own_value = copy_bytes(rec->value, rec->value_len);
    m->value_len = rec->value ? rec->value_len : 0;
    m->partition = partition;
    m->offset = offset;
    m->timestamp_ms = -1;
    if (rec->nheaders > 0) {
        m->headers = rd_kafka_headers_new(rec->nheaders);
    }
    for (size_t i = 0; i < rec->nheaders; i++) {
        const fl_kafka_header *h = &rec->headers[i];
        rd_kafka_header_add(m->headers, h->name, -1, h->value, h->value ? (ssize_t)h->len : 0);
    }
    return m;
}

void fl_kafka_msg_free(fl_kafka_msg *m)
{
    if (!m) {
        return;
    }
    if (m->rkm) {
        rd_kafka_message_destroy(m->rkm); /* also frees the headers it lent us */
    } else if (m->headers) {
        rd_kafka_headers_destroy(m->headers);
    }
    free(m->own_topic);
    free(m->own_key);
    free(m->own_value);
    free(m);
}

const char *fl_kafka_msg_topic(const fl_kafka_msg *m)
{
    return m->topic;
}

int32_t fl_kafka_msg_partition(const fl_kafka_msg *m)
{
    return m->partition;
}

int64_t fl_kafka_msg_offset(const fl_kafka_msg *m)
{
    return m->offset;
}

int64_t fl_kafka_msg_timestamp_ms(const fl_kafka_msg *m)
{
    return m->timestamp_ms;
}

const void *fl_kafka_msg_key(const fl_kafka_msg *m, size_t *len)
{
    *len = m->key_len;
    return m->key;
}

const void *fl_kafka_msg_value(const fl_kafka_msg *m, size_t *len)
{
    *len = m->value_len;
    return m->value;
}

bool fl_kafka_msg_header_get(const fl_kafka_msg *m, const char *name, const char **value,
                             size_t *len)
{
    const void *v = NULL;
    size_t n = 0;
    bool found = m->headers &&
                 rd_kafka_header_get_last(m->headers, name, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR;

    *value = found ? v : NULL;
    *len = found ? n : 0;
    return found;
}

bool fl_kafka_msg_header_at(const fl_kafka_msg *m, size_t idx, const char **name,
                            const char **value, size_t *len)
{
    const void *v = NULL;
    size_t n = 0;
    bool found = m->headers && rd_kafka_header_get_all(m->headers, idx, name, &v, &n) ==
                                   RD_KAFKA_RESP_ERR_NO_ERROR;

    *value = found ? v : NULL;
    *len = found ? n : 0;
    if (!found) {
        *name = NULL;
    }
    return found;
}

/* ---- consumer ---------------------------------------------------------------------- */

struct fl_kafka_consumer {
    rd_kafka_t *rk;
    atomic_int assigned; /* partitions currently assigned; set by rebalance_cb */
};

static void format_partitions(const rd_kafka_topic_partition_list_t *parts, char *buf, size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (int i = 0; i < parts->cnt && len < size; i++) {
        int w = snprintf(buf + len, size - len, "%s%s[%d]", i ? " " : "", parts->elems[i].topic,
                         (int)parts->elems[i].partition);
        len += w > 0 ? (size_t)w : 0;
    }
}

/* Runs inside fl_kafka_consumer_poll (and close). */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t why,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    fl_kafka_consumer *c = opaque;
    bool assign = why == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    rd_kafka_resp_err_t e;
    char list[512];

    /* range is an eager protocol: the whole assignment is replaced. Unassigning
   * commits the stored offsets of the revoked partitions (enable.auto.commit). */
    e = rd_kafka_assign(rk, assign ? parts : NULL);
    atomic_store(&c->assigned, assign && e == RD_KAFKA_RESP_ERR_NO_ERROR ? parts->cnt : 0);
    format_partitions(parts, list, sizeof(list));
    fl_log(FL_INFO, "kafka.rebalance", FL_STR("action", assign ? "assign" : "revoke"),
           FL_INT("count", parts->cnt), FL_STR("partitions", list));
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fl_log(FL_ERROR, "kafka.rebalance.failed", FL_STR("error", rd_kafka_err2str(e)));
    }
}

static void consumer_error_cb(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    (void)opaque;
    fl_kafka__log_error(rk, (rd_kafka_resp_err_t)code, reason);
}

static void host_name(char *buf, size_t size)
{
    if (gethostname(buf, size) != 0) {
        buf[0] = '\0';
    }
    buf[size - 1] = '\0'; /* gethostname need not terminate a truncated name */
}

static fl_rc subscribe(rd_kafka_t *rk, const char *const *topics, size_t ntopics, fl_err *err)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)ntopics);
    rd_kafka_resp_err_t e;

    for (size_t i = 0; i < ntopics; i++) {
        rd_kafka_topic_partition_list_add(list, topics[i], RD_KAFKA_PARTITION_UA);
    }
    e = rd_kafka_subscribe(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return fl_err_set(err, FL_EINVAL, "could not subscribe to Kafka topics: %s",
                          rd_kafka_err2str(e));
    }
    return FL_OK;
}

/* librdkafka's statistics (statistics.interval.ms) carry each partition's consumer lag:
 * flowd_kafka_consumer_lag reads it from there instead of asking the broker. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    char group[256] = "";
    size_t size = sizeof(group);

    (void)opaque;
    rd_kafka_conf_get(rd_kafka_conf(rk), "group.id", group, &size);
    fl_metrics_kafka_stats(json, len, group);
    return 0; /* librdkafka frees json */
}

/* Creates the client; its rebalance and error callbacks get c as their opaque. */
static fl_rc consumer_client(fl_kafka_consumer *c, const fl_kafka_props *props, fl_err *err)
{
    rd_kafka_conf_t *conf = NULL;
    fl_rc rc = fl_kafka__conf_new(props, c, &conf, err);

    if (rc != FL_OK) {
        goto out;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, consumer_error_cb);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    if (!fl_kafka_props_get(props, "statistics.interval.ms")) { /* the kafka: map may set it */
        rd_kafka_conf_set(conf, "statistics.interval.ms", "5000", NULL, 0);
    }
    rc = fl_kafka__client_new(RD_KAFKA_CONSUMER, &conf, &c->rk, err);
    if (rc != FL_OK) {
        goto out;
    }
    /* one queue: errors, rebalances and messages are all served by the loop's poll */
    rd_kafka_poll_set_consumer(c->rk);
out:
    if (conf) {
        rd_kafka_conf_destroy(conf);
    }
    return rc;
}

fl_rc fl_kafka_consumer_open(fl_kafka_consumer **out, const fl_config_kafka *cfg,
                             const fl_config_engine *engine, const char *const *topics,
                             size_t ntopics, fl_err *err)
{
    fl_kafka_consumer *c = fl_xcalloc(1, sizeof(*c));
    fl_kafka_props *props = NULL;
    char host[256];
    fl_rc rc;

    *out = NULL;
    atomic_init(&c->assigned, 0);
    host_name(host, sizeof(host));
    rc = fl_kafka_props_consumer_new(&props, cfg, engine, host, err);
    if (rc == FL_OK) {
        rc = consumer_client(c, props, err);
    }
    if (rc == FL_OK) {
        rc = subscribe(c->rk, topics, ntopics, err);
    }
    if (rc != FL_OK) {
        goto out;
    }
    fl_log(FL_INFO, "kafka.consumer.opened", FL_STR("group", fl_kafka_props_get(props, "group.id")),
           FL_STR("instance_id", fl_kafka_props_get(props, "group.instance.id")),
           FL_INT("topics", (long long)ntopics));
    *out = c;
    c = NULL;
out:
    fl_kafka_props_free(props);
    fl_kafka_consumer_close(c, 0);
    return rc;
}

static void log_consumer_error(const rd_kafka_message_t *rkm)
{
    fl_log(rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ? FL_DEBUG : FL_WARN,
           "kafka.consumer.error", FL_STR("topic", rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : NULL),
           FL_INT("partition", rkm->partition), FL_STR("code", rd_kafka_err2name(rkm->err)),
           FL_STR("error", rd_kafka_message_errstr(rkm)));
}

fl_rc fl_kafka_consumer_poll(fl_kafka_consumer *c, int timeout_ms, fl_kafka_msg **out, fl_err *err)
{
    rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, timeout_ms);
    char why[256];
    fl_rc rc = FL_OK;

    *out = NULL;
    if (rd_kafka_fatal_error(c->rk, why, sizeof(why)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = fl_err_set(err, FL_EUNAVAIL, "the Kafka consumer failed for good: %s", why);
        goto out;
    }
    if (rkm && rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_consumer_error(rkm); /* informational: librdkafka retries by itself */
        goto out;
    }
    if (rkm) {
        *out = msg_wrap(rkm);
        rkm = NULL; /* now owned by *out */
    }
out:
    if (rkm) {
        rd_kafka_message_destroy(rkm);
    }
    return rc;
}

fl_rc fl_kafka_consumer_store_offset(fl_kafka_consumer *c, const fl_kafka_msg *m, fl_err *err)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *tp =
        rd_kafka_topic_partition_list_add(list, m->topic, m->partition);
    rd_kafka_resp_err_t e;
    fl_rc rc = FL_OK;

    tp->offset = m->offset + 1; /* Kafka commits the next offset to read */
    e = rd_kafka_offsets_store(c->rk, list);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        e = tp->err;
    }
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        bool revoked = e == RD_KAFKA_RESP_ERR__STATE || e == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
        rc = fl_err_set(err, revoked ? FL_ECONFLICT : FL_EINTERNAL,
                        "could not store offset %lld of Kafka topic \"%s\" [%d]: %s",
                        (long long)m->offset, m->topic, (int)m->partition, rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

int fl_kafka_consumer_assigned(const fl_kafka_consumer *c)
{
    return atomic_load(&c->assigned);
}

/* Closes through the consumer queue so that the wait is bounded; rd_kafka_consumer_close
 * could block for up to session.timeout.ms. Returns whether the close completed. */
static bool close_bounded(rd_kafka_t *rk, int timeout_ms)
{
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    int64_t deadline = fl_clock_mono_ms(fl_clock_system()) + timeout_ms;
    rd_kafka_error_t *e = q ? rd_kafka_consumer_close_queue(rk, q) : NULL;
    bool closed = false;

    if (!q || e) {
        goto out;
    }
    closed = rd_kafka_consumer_closed(rk);
    while (!closed && fl_kafka__remaining_ms(deadline) > 0) {
        /* serves the revoke callback; messages fetched now were never processed, so
     * their offsets are not stored and the next owner gets them */
        rd_kafka_message_t *rkm = rd_kafka_consume_queue(q, POLL_MS);
        if (rkm) {
            rd_kafka_message_destroy(rkm);
        }
        closed = rd_kafka_consumer_closed(rk);
    }
out:
    if (e) {
        fl_log(FL_WARN, "kafka.consumer.close_failed", FL_STR("error", rd_kafka_error_string(e)));
        rd_kafka_error_destroy(e);
    } else if (!closed && timeout_ms > 0) {
        fl_log(FL_WARN, "kafka.consumer.close_timeout", FL_INT("timeout_ms", timeout_ms));
    }
    if (q) {
        rd_kafka_queue_destroy(q);
    }
    return closed;
}

void fl_kafka_consumer_close(fl_kafka_consumer *c, int timeout_ms)
{
    if (!c) {
        return;
    }
    if (c->rk && close_bounded(c->rk, timeout_ms)) {
        rd_kafka_destroy(c->rk);
    } else if (c->rk) {
        /* without this flag, destroy would close again, this time without a bound */
        rd_kafka_destroy_flags(c->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    free(c);
}
