/* api/publish.c -- command events from requests, and waiting for the engine (api/publish.h).
 *
 * Design: the event goes through engine/cloudevent.c's encoder, the same one the outbox
 * relay uses, so what the API produces decodes exactly like what the engine produces.
 * Event ids come from the server's generator (r->api->ids): UUIDv7, time-ordered.
 *
 * Thread-safety: see the header. */
#include "api/publish.h"

#include <string.h>

#include "api/notify.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/kafka.h"
#include "core/log.h"
#include "core/metrics.h"
#include "engine/cloudevent.h"

uint64_t fl_publish_since(fl_req *r)
{
    return r->api->notify ? fl_notify_now(r->api->notify) : 0;
}

void fl_publish_new_id(fl_req *r, char out[FL_PUBLISH_ID_SIZE])
{
    fl_ids_uuid7(r->api->ids, out);
}

/* The request's correlation attributes, as CloudEvents extensions. */
static size_t extras(const fl_req *r, fl_ce_attr out[2])
{
    size_t n = 0;

    if (r->traceparent[0]) {
        out[n++] = (fl_ce_attr){"traceparent", r->traceparent};
    }
    if (r->request_id[0]) {
        out[n++] = (fl_ce_attr){"requestid", r->request_id};
    }
    return n;
}

static fl_rc produce(fl_req *r, const char *topic, const fl_ce_encoded *enc, fl_err *err)
{
    fl_kafka_header h[sizeof(enc->headers) / sizeof(enc->headers[0])];
    fl_kafka_record rec = {topic,          enc->key, enc->key_len, enc->value,
                           enc->value_len, h,        enc->nheaders};

    for (size_t i = 0; i < enc->nheaders; i++) {
        h[i] = (fl_kafka_header){enc->headers[i].name, enc->headers[i].value, enc->headers[i].len};
    }
    return fl_kafka_produce_sync(r->api->producer, &rec, r->api->cfg->kafka.produce_timeout_ms,
                                 NULL, err);
}

fl_rc fl_publish_send(fl_req *r, const fl_publish_cmd *cmd, char id_out[FL_PUBLISH_ID_SIZE],
                      fl_err *err)
{
    const fl_config *cfg = r->api->cfg;
    char now[32];
    fl_ce_attr extra[2];
    fl_ce_encoded enc;
    fl_rc rc;

    fl_publish_new_id(r, id_out);
    fl_clock_format_rfc3339(fl_clock_now_ms(fl_clock_system()), now, sizeof(now));
    fl_event ev = {id_out,        cmd->type, FL_PUBLISH_SOURCE, cmd->subject,
                   r->who.tenant, now,       cmd->data};
    rc = fl_cloudevent_encode(&ev, extra, extras(r, extra), &enc, err);
    if (rc == FL_OK) {
        rc = produce(r, cmd->topic ? cmd->topic : cfg->kafka.topics.flowd_events, &enc, err);
    }
    if (rc == FL_OK) {
        fl_metrics_event_received("http", cmd->type);
    }
    fl_ce_encoded_deinit(&enc);
    return rc;
}

bool fl_publish_req(fl_req *r, const fl_publish_cmd *cmd, char id_out[FL_PUBLISH_ID_SIZE])
{
    fl_err err = FL_ERR_INIT;
    fl_rc rc = fl_publish_send(r, cmd, id_out, &err);

    switch (rc) {
    case FL_OK:
        return true;
    case FL_EUNAVAIL:
    case FL_ETIMEDOUT:
        fl_log(FL_WARN, "api.publish_failed", FL_STR("request_id", r->request_id),
               FL_STR("type", cmd->type), FL_STR("error", err.msg));
        fl_req_header_add(r, "Retry-After", "1");
        fl_problem(r, 503, "the event could not be confirmed by Kafka; retry");
        return false;
    case FL_EINVAL:
        fl_problem(r, 400, "%s", err.msg);
        return false;
    case FL_ETOOBIG:
        fl_problem(r, 413, "the event is too large for Kafka");
        return false;
    default:
        fl_problem_rc(r, rc, &err);
        return false;
    }
}

fl_wait_result fl_publish_wait(fl_req *r, const char *id, uint64_t since, int wait_ms,
                               fl_wait_check_fn check, void *arg)
{
    int64_t deadline = fl_clock_mono_ms(fl_clock_system()) + wait_ms;
    fl_wait_check c;

    if (wait_ms <= 0) {
        return FL_WAITED_TIMEOUT;
    }
    while (r->api->notify && fl_notify_wait(r->api->notify, id, &since, deadline)) {
        c = check(r, arg);
        if (c != FL_WAIT_NOT_YET) {
            return c == FL_WAIT_DONE ? FL_WAITED_DONE : FL_WAITED_ANSWERED;
        }
    }
    /* the last word is a read: a notification lost in a reconnect must not cost a 202 */
    c = check(r, arg);
    if (c == FL_WAIT_NOT_YET) {
        return FL_WAITED_TIMEOUT;
    }
    return c == FL_WAIT_DONE ? FL_WAITED_DONE : FL_WAITED_ANSWERED;
}
