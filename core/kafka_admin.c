/* core/kafka_admin.c -- cluster metadata: readiness, partition counts, topic creation.
 *
 * Design: these ask for the metadata of all topics, because a request naming a missing
 * topic can make the broker auto-create it with the broker's default partition count,
 * and the engine needs every input topic to have the configured count. Topics are
 * created with the admin API on the producer's handle; the results come back on a
 * private queue, so the producer's poll thread never sees them.
 *
 * Thread-safety: see core/kafka.h; every call here may run concurrently with produces. */
#include "core/kafka_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"

enum {
    RETRY_MS = 250,        /* pause between metadata attempts while waiting for a broker */
    ADMIN_GRACE_MS = 1000, /* an admin result arrives at most this long after its timeout */
};

static void pause_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Asks for all topics: a request naming a missing topic could make the broker create it
 * with the broker's default partition count. */
static fl_rc metadata_all(fl_kafka_producer *p, int timeout_ms,
                          const struct rd_kafka_metadata **out, fl_err *err)
{
    rd_kafka_resp_err_t e = rd_kafka_metadata(p->rk, 1, NULL, out, timeout_ms > 0 ? timeout_ms : 1);

    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        *out = NULL;
        return fl_err_set(err, FL_EUNAVAIL, "could not get metadata from Kafka \"%s\": %s",
                          p->servers, rd_kafka_err2str(e));
    }
    atomic_store(&p->brokers_down, false);
    return FL_OK;
}

fl_rc fl_kafka_check(fl_kafka_producer *p, int timeout_ms, fl_err *err)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e;
    char why[256];

    if (rd_kafka_fatal_error(p->rk, why, sizeof(why)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return fl_err_set(err, FL_EUNAVAIL, "the Kafka producer failed for good: %s", why);
    }
    /* all_topics=0 asks only for the topics this client uses, which is cheap; a client
   * that has not produced yet knows none, and then only the brokers are listed */
    e = rd_kafka_metadata(p->rk, 0, NULL, &md, timeout_ms > 0 ? timeout_ms : 1);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return fl_err_set(err, FL_EUNAVAIL, "could not reach Kafka \"%s\": %s", p->servers,
                          rd_kafka_err2str(e));
    }
    rd_kafka_metadata_destroy(md);
    atomic_store(&p->brokers_down, false);
    return FL_OK;
}

/* A topic the cluster knows; NULL when it is missing or not yet visible everywhere. */
static const rd_kafka_metadata_topic_t *find_topic(const struct rd_kafka_metadata *md,
                                                   const char *name)
{
    for (int i = 0; i < md->topic_cnt; i++) {
        const rd_kafka_metadata_topic_t *t = &md->topics[i];
        if (strcmp(t->topic, name) == 0) {
            return t->err == RD_KAFKA_RESP_ERR_NO_ERROR || t->partition_cnt > 0 ? t : NULL;
        }
    }
    return NULL;
}

fl_rc fl_kafka_partition_count(fl_kafka_producer *p, const char *topic, int timeout_ms, int *out,
                               fl_err *err)
{
    const struct rd_kafka_metadata *md = NULL;
    const rd_kafka_metadata_topic_t *t;
    fl_rc rc;

    rc = metadata_all(p, timeout_ms, &md, err);
    if (rc != FL_OK) {
        goto out;
    }
    t = find_topic(md, topic);
    if (!t) {
        rc = fl_err_set(err, FL_ENOTFOUND, "Kafka topic \"%s\" does not exist", topic);
        goto out;
    }
    *out = t->partition_cnt;
out:
    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    return rc;
}

/* The shared state of one fl_kafka_topics_ensure call. */
typedef struct ensure_ctx {
    fl_kafka_producer *p;
    const fl_config_kafka *cfg;
    int64_t deadline;
} ensure_ctx;

/* One step's timeout: what is left of the wait, but at least one metadata timeout, so
 * that a step started just before the deadline can still finish. */
static int step_ms(const ensure_ctx *x)
{
    int left = fl_kafka__remaining_ms(x->deadline);

    return left > x->cfg->metadata_timeout_ms ? left : x->cfg->metadata_timeout_ms;
}

/* Retries until the cluster answers or the deadline passes. */
static fl_rc metadata_wait(const ensure_ctx *x, const struct rd_kafka_metadata **out, fl_err *err)
{
    fl_err last = FL_ERR_INIT;
    int attempts = 0;
    fl_rc rc;

    for (;;) {
        int left = fl_kafka__remaining_ms(x->deadline);
        int timeout = left < x->cfg->metadata_timeout_ms ? left : x->cfg->metadata_timeout_ms;
        fl_err_clear(&last);
        rc = metadata_all(x->p, timeout, out, &last);
        if (rc == FL_OK || fl_kafka__remaining_ms(x->deadline) == 0) {
            break;
        }
        if (attempts++ == 0) {
            fl_log(FL_INFO, "kafka.waiting", FL_STR("servers", x->p->servers),
                   FL_STR("error", last.msg));
        }
        left = fl_kafka__remaining_ms(x->deadline);
        pause_ms(left < RETRY_MS ? left : RETRY_MS);
    }
    if (rc != FL_OK) {
        fl_err_set(err, rc, "%s", last.msg);
    }
    return rc;
}

/* The configured topics the cluster lacks, each once (two settings may name one topic). */
static size_t missing_topics(const struct rd_kafka_metadata *md, const char *const *names, size_t n,
                             const char **missing)
{
    size_t nmissing = 0;

    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < nmissing && !seen; j++) {
            seen = strcmp(missing[j], names[i]) == 0;
        }
        if (!seen && !find_topic(md, names[i])) {
            missing[nmissing++] = names[i];
        }
    }
    return nmissing;
}

static fl_rc rc_from_admin(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICA_ASSIGNMENT:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        return FL_EINVAL;
    default:
        return FL_EUNAVAIL;
    }
}

static fl_rc create_results(const ensure_ctx *x, rd_kafka_event_t *ev, fl_err *err)
{
    const rd_kafka_CreateTopics_result_t *res;
    const rd_kafka_topic_result_t **tr;
    size_t n = 0;
    fl_rc rc = FL_OK;

    if (!ev) {
        return fl_err_set(err, FL_EUNAVAIL, "could not create Kafka topics: no answer from \"%s\"",
                          x->p->servers);
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return fl_err_set(err, rc_from_admin(rd_kafka_event_error(ev)),
                          "could not create Kafka topics: %s", rd_kafka_event_error_string(ev));
    }
    res = rd_kafka_event_CreateTopics_result(ev);
    tr = rd_kafka_CreateTopics_result_topics(res, &n);
    for (size_t i = 0; i < n; i++) {
        const char *name = rd_kafka_topic_result_name(tr[i]);
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            fl_log(FL_INFO, "kafka.topic.created", FL_STR("topic", name),
                   FL_INT("partitions", x->cfg->topics.partitions),
                   FL_INT("replication_factor", x->cfg->topics.replication_factor));
        } else if (e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS && rc == FL_OK) {
            /* another process creating the same topic at the same time is fine */
            const char *why = rd_kafka_topic_result_error_string(tr[i]);
            rc = fl_err_set(err, rc_from_admin(e), "could not create Kafka topic \"%s\": %s", name,
                            why ? why : rd_kafka_err2str(e));
        }
    }
    return rc;
}

static fl_rc create_topics(const ensure_ctx *x, const char **names, size_t n, fl_err *err)
{
    rd_kafka_NewTopic_t **nt = fl_xcalloc(n, sizeof(*nt));
    rd_kafka_AdminOptions_t *opts =
        rd_kafka_AdminOptions_new(x->p->rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_queue_t *q = rd_kafka_queue_new(x->p->rk);
    rd_kafka_event_t *ev = NULL;
    int timeout = step_ms(x);
    char why[512];
    fl_rc rc = FL_OK;

    for (size_t i = 0; i < n && rc == FL_OK; i++) {
        nt[i] = rd_kafka_NewTopic_new(names[i], x->cfg->topics.partitions,
                                      x->cfg->topics.replication_factor, why, sizeof(why));
        if (!nt[i]) {
            rc = fl_err_set(err, FL_EINVAL, "cannot create Kafka topic \"%s\": %s", names[i], why);
        }
    }
    if (rc != FL_OK) {
        goto out;
    }
    /* the operation timeout makes the controller answer once the topics exist */
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout, why, sizeof(why));
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout, why, sizeof(why));
    rd_kafka_CreateTopics(x->p->rk, nt, n, opts, q);
    ev = rd_kafka_queue_poll(q, timeout + ADMIN_GRACE_MS);
    rc = create_results(x, ev, err);
out:
    if (ev) {
        rd_kafka_event_destroy(ev);
    }
    for (size_t i = 0; i < n; i++) {
        if (nt[i]) {
            rd_kafka_NewTopic_destroy(nt[i]);
        }
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(opts);
    free(nt);
    return rc;
}

/* FL_ENOTFOUND means "not visible yet": the caller retries. */
static fl_rc check_partitions(const ensure_ctx *x, const struct rd_kafka_metadata *md,
                              const char *const *names, size_t n, fl_err *err)
{
    int want = x->cfg->topics.partitions;

    for (size_t i = 0; i < n; i++) {
        const rd_kafka_metadata_topic_t *t = find_topic(md, names[i]);
        if (!t) {
            return fl_err_set(err, FL_ENOTFOUND, "Kafka topic \"%s\" does not exist", names[i]);
        }
        if (t->partition_cnt != want) {
            return fl_err_set(err, FL_EINVAL,
                              "cannot use Kafka topic \"%s\": it has %d partitions, but "
                              "topics.partitions is %d (the engine needs equal counts)",
                              names[i], t->partition_cnt, want);
        }
    }
    return FL_OK;
}

static fl_rc verify_topics(const ensure_ctx *x, const char *const *names, size_t n, fl_err *err)
{
    /* a topic just created takes a moment to appear in every broker's metadata */
    int64_t deadline = fl_clock_mono_ms(fl_clock_system()) + step_ms(x);
    fl_err last = FL_ERR_INIT;
    fl_rc rc;

    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        fl_err_clear(&last);
        rc = metadata_all(x->p, x->cfg->metadata_timeout_ms, &md, &last);
        if (rc == FL_OK) {
            rc = check_partitions(x, md, names, n, &last);
            rd_kafka_metadata_destroy(md);
        }
        if (rc == FL_OK || rc == FL_EINVAL || fl_kafka__remaining_ms(deadline) == 0) {
            break;
        }
        pause_ms(RETRY_MS);
    }
    if (rc != FL_OK) {
        fl_err_set(err, rc == FL_ENOTFOUND ? FL_EUNAVAIL : rc, "%s", last.msg);
    }
    return rc == FL_ENOTFOUND ? FL_EUNAVAIL : rc;
}

fl_rc fl_kafka_topics_ensure(fl_kafka_producer *p, const fl_config_kafka *cfg, int wait_ms,
                             fl_err *err)
{
    const char *names[FL_CONFIG_TOPIC_COUNT];
    const char *missing[FL_CONFIG_TOPIC_COUNT];
    const struct rd_kafka_metadata *md = NULL;
    ensure_ctx x = {.p = p, .cfg = cfg, .deadline = fl_clock_mono_ms(fl_clock_system()) + wait_ms};
    size_t n = fl_config_topic_names(&cfg->topics, names);
    size_t nmissing;
    fl_rc rc;

    rc = metadata_wait(&x, &md, err);
    if (rc != FL_OK) {
        goto out;
    }
    nmissing = missing_topics(md, names, n, missing);
    if (nmissing > 0) {
        rc = create_topics(&x, missing, nmissing, err);
        if (rc != FL_OK) {
            goto out;
        }
    }
    rc = verify_topics(&x, names, n, err);
out:
    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    return rc;
}
