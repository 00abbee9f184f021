/* core/kafka_lag.c -- consumer-group lag: committed offsets against high watermarks.
 *
 * Design: everything runs on the producer's handle, so measuring never joins (and so
 * never rebalances) the measured group: the partitions come from the cluster metadata
 * (all topics, for the reason kafka_admin.c gives), the committed offsets from the admin
 * API's ListConsumerGroupOffsets (librdkafka >= 2.0) on a private queue, and the
 * watermarks from one ListOffsets request per partition. A partition the group has never
 * committed counts its whole retained log as lag, since the engine reads from the
 * earliest offset (auto.offset.reset=earliest).
 *
 * Thread-safety: see core/kafka.h; may run concurrently with produces. */
#include "core/kafka_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

enum { ADMIN_GRACE_MS = 1000 }; /* an admin result arrives at most this long after its timeout */

/* The partitions of the query's topics, as fl_kafka_lag items with only topic and
 * partition set. */
static fl_rc list_partitions(fl_kafka_producer *p, const fl_kafka_lag_query *q, int64_t deadline,
                             fl_kafka_lag **out, size_t *n, fl_err *err)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e =
        rd_kafka_metadata(p->rk, 1, NULL, &md, fl_kafka__remaining_ms(deadline));
    fl_rc rc = FL_OK;

    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return fl_err_set(err, FL_EUNAVAIL, "could not get metadata from Kafka \"%s\": %s",
                          p->servers, rd_kafka_err2str(e));
    }
    for (size_t i = 0; i < q->ntopics && rc == FL_OK; i++) {
        const rd_kafka_metadata_topic_t *t = NULL;
        for (int k = 0; k < md->topic_cnt && t == NULL; k++) {
            t = strcmp(md->topics[k].topic, q->topics[i]) == 0 ? &md->topics[k] : NULL;
        }
        if (t == NULL || t->partition_cnt == 0) {
            rc = fl_err_set(err, FL_ENOTFOUND, "Kafka topic \"%s\" does not exist", q->topics[i]);
            break;
        }
        *out = fl_xrealloc(*out, (*n + (size_t)t->partition_cnt) * sizeof(**out));
        for (int k = 0; k < t->partition_cnt; k++) {
            (*out)[(*n)++] = (fl_kafka_lag){
                .topic = q->topics[i], .partition = k, .committed = -1, .low = -1, .high = -1};
        }
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

/* Copies the committed offsets of one ListConsumerGroupOffsets result into items. */
static fl_rc take_committed(rd_kafka_event_t *ev, fl_kafka_lag *items, size_t n, fl_err *err)
{
    const rd_kafka_group_result_t **groups;
    const rd_kafka_topic_partition_list_t *parts;
    const rd_kafka_error_t *ge;
    size_t ngroups = 0;

    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return fl_err_set(err, FL_EUNAVAIL, "could not list committed offsets: %s",
                          rd_kafka_event_error_string(ev));
    }
    groups = rd_kafka_ListConsumerGroupOffsets_result_groups(
        rd_kafka_event_ListConsumerGroupOffsets_result(ev), &ngroups);
    if (ngroups != 1) {
        return fl_err_set(err, FL_EUNAVAIL, "could not list committed offsets: no group result");
    }
    ge = rd_kafka_group_result_error(groups[0]);
    if (ge != NULL) {
        return fl_err_set(err, FL_EUNAVAIL, "could not list committed offsets: %s",
                          rd_kafka_error_string(ge));
    }
    parts = rd_kafka_group_result_partitions(groups[0]);
    for (int i = 0; parts != NULL && i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        for (size_t k = 0; k < n; k++) {
            if (items[k].partition == tp->partition && strcmp(items[k].topic, tp->topic) == 0 &&
                tp->err == RD_KAFKA_RESP_ERR_NO_ERROR && tp->offset >= 0) {
                items[k].committed = tp->offset;
            }
        }
    }
    return FL_OK;
}

static fl_rc list_committed(fl_kafka_producer *p, const char *group, int64_t deadline,
                            fl_kafka_lag *items, size_t n, fl_err *err)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new((int)n);
    rd_kafka_AdminOptions_t *opts =
        rd_kafka_AdminOptions_new(p->rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_queue_t *q = rd_kafka_queue_new(p->rk);
    rd_kafka_ListConsumerGroupOffsets_t *req;
    rd_kafka_event_t *ev;
    int timeout = fl_kafka__remaining_ms(deadline);
    char why[256];
    fl_rc rc;

    for (size_t i = 0; i < n; i++) {
        rd_kafka_topic_partition_list_add(parts, items[i].topic, items[i].partition);
    }
    req = rd_kafka_ListConsumerGroupOffsets_new(group, parts);
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout > 0 ? timeout : 1, why, sizeof(why));
    rd_kafka_ListConsumerGroupOffsets(p->rk, &req, 1, opts, q);
    ev = rd_kafka_queue_poll(q, timeout + ADMIN_GRACE_MS);
    if (ev == NULL) {
        rc = fl_err_set(err, FL_EUNAVAIL, "could not list committed offsets: no answer from \"%s\"",
                        p->servers);
    } else {
        rc = take_committed(ev, items, n, err);
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

static fl_rc query_watermarks(fl_kafka_producer *p, int64_t deadline, fl_kafka_lag *items, size_t n,
                              fl_err *err)
{
    rd_kafka_resp_err_t e;

    for (size_t i = 0; i < n; i++) {
        fl_kafka_lag *it = &items[i];
        int left = fl_kafka__remaining_ms(deadline);
        e = rd_kafka_query_watermark_offsets(p->rk, it->topic, it->partition, &it->low, &it->high,
                                             left > 0 ? left : 1);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            return fl_err_set(err, FL_EUNAVAIL, "could not read the offsets of %s [%d]: %s",
                              it->topic, (int)it->partition, rd_kafka_err2str(e));
        }
        it->lag = it->high - (it->committed >= 0 ? it->committed : it->low);
        if (it->lag < 0) {
            it->lag = 0; /* a commit past the watermark (a truncated log) is not negative lag */
        }
    }
    return FL_OK;
}

fl_rc fl_kafka_group_lag(fl_kafka_producer *p, const fl_kafka_lag_query *q, fl_kafka_lag **out,
                         size_t *n, fl_err *err)
{
    int64_t deadline =
        fl_clock_mono_ms(fl_clock_system()) + (q->timeout_ms > 0 ? q->timeout_ms : 1);
    fl_rc rc;

    *out = NULL;
    *n = 0;
    rc = list_partitions(p, q, deadline, out, n, err);
    if (rc == FL_OK && *n > 0) {
        rc = list_committed(p, q->group, deadline, *out, *n, err);
    }
    if (rc == FL_OK) {
        rc = query_watermarks(p, deadline, *out, *n, err);
    }
    if (rc != FL_OK) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}
