/* api/publish.h -- a request's command event to Kafka, and waiting for the engine to
 * apply it (ARCHITECTURE.md section 2: the API never writes instances, it publishes).
 *
 * Every route that changes an instance or a conversation does the same three things:
 *
 *     uint64_t since = fl_publish_since(r);          // BEFORE producing
 *     char id[FL_PUBLISH_ID_SIZE];
 *     fl_publish_cmd cmd = {topic, "flowd.instance.signal", key, data};
 *     if (!fl_publish_req(r, &cmd, id)) {
 *         return r->status;                          // 503/400/500 already answered
 *     }
 *     switch (fl_publish_wait(r, key, since, wait_ms, check, &state)) { ... }
 *
 * The event is a CloudEvent in binary mode (engine/cloudevent.h): a new UUIDv7 id,
 * source FL_PUBLISH_SOURCE, the caller's tenant (never the client's), time = now, the
 * subject = Kafka key = the instance key, `content-type: application/json` when there is
 * data, plus the extensions `traceparent` (the request's W3C trace context) and
 * `requestid` (X-Request-Id), i.e. the Kafka headers ce_traceparent and ce_requestid.
 * It is produced synchronously (acks=all) within kafka_client.produce_timeout, so a
 * success means the event is durable and the engine will apply it.
 *
 * Waiting: the engine NOTIFYs flowd_changes with {tenant, instance_id, workflow, key,
 * seq} on every commit (api/notify.h). fl_publish_wait sleeps on those for the id (an
 * instance id, or a key: a conversation's id is its key) and calls the caller's check,
 * which reads Postgres, after every wake and once more at the deadline (a notification
 * may be lost while the LISTEN connection reconnects, so the last word is a read).
 *
 * Thread-safety: every function may be called from any worker thread, each with its own
 * request. */
#ifndef FL_API_PUBLISH_H
#define FL_API_PUBLISH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/request.h"
#include "core/err.h"

#define FL_PUBLISH_SOURCE  "flowd/api"
#define FL_PUBLISH_ID_SIZE 37 /* a UUIDv7 and its NUL */

/* One command event. Every pointer is borrowed for the call. */
typedef struct fl_publish_cmd {
    const char *topic;   /* NULL = topics.flowd_events */
    const char *type;    /* the CloudEvents type, e.g. "flowd.instance.start" */
    const char *subject; /* the instance key = the Kafka key (required) */
    const json_t *data;  /* the event's data; NULL = none */
} fl_publish_cmd;

/* Writes a new UUIDv7 (lower case) and its NUL into out: event ids, and instance keys
 * the caller did not choose. */
void fl_publish_new_id(fl_req *r, char out[FL_PUBLISH_ID_SIZE]);

/* The notification sequence number now (0 when the process has no LISTEN hub). Take it
 * BEFORE producing, and pass it to fl_publish_wait: a change that lands in between is
 * then seen rather than waited for. */
uint64_t fl_publish_since(fl_req *r);

/* Produces cmd for the caller and writes the new event id into id_out.
 * Errors: FL_EUNAVAIL or FL_ETIMEDOUT (Kafka did not confirm: the event may still be
 * written later), FL_EINVAL (an attribute the envelope refuses, e.g. a subject over
 * FL_CE_MAX_SUBJECT), FL_ETOOBIG (over the broker's message.max.bytes). */
fl_rc fl_publish_send(fl_req *r, const fl_publish_cmd *cmd, char id_out[FL_PUBLISH_ID_SIZE],
                      fl_err *err);

/* fl_publish_send that answers its failure itself: 503 with Retry-After when Kafka did
 * not confirm, 400 for FL_EINVAL, 413 for FL_ETOOBIG. Returns true when produced; false
 * after answering (the handler returns r->status). */
bool fl_publish_req(fl_req *r, const fl_publish_cmd *cmd, char id_out[FL_PUBLISH_ID_SIZE]);

/* What a check found. */
typedef enum fl_wait_check {
    FL_WAIT_NOT_YET,  /* the change is not visible yet: keep waiting */
    FL_WAIT_DONE,     /* it is (the check keeps what it read in its arg) */
    FL_WAIT_ANSWERED, /* the check failed and answered (fl_req_db* did: 503/500) */
} fl_wait_check;

/* Reads Postgres to see whether the awaited change has landed. Called on the request's
 * thread; arg is the caller's. */
typedef fl_wait_check (*fl_wait_check_fn)(fl_req *r, void *arg);

typedef enum fl_wait_result {
    FL_WAITED_DONE,     /* check said FL_WAIT_DONE in time */
    FL_WAITED_TIMEOUT,  /* wait_ms passed (or the hub stopped) without it */
    FL_WAITED_ANSWERED, /* check answered an error: return r->status */
} fl_wait_result;

/* Waits up to wait_ms for check to say FL_WAIT_DONE, checking after every notification
 * about `id` (instance id or key; NULL = any) that came after `since`, and once more at
 * the deadline. It does not count itself against api.max_streams: callers whose wait is
 * a client's ?wait= do (fl_req_stream_enter before publishing). */
fl_wait_result fl_publish_wait(fl_req *r, const char *id, uint64_t since, int wait_ms,
                               fl_wait_check_fn check, void *arg);

#endif
