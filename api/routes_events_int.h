/* api/routes_events_int.h -- private to api/routes_events*.c: producing a request's
 * CloudEvents and answering with what Kafka confirmed, and the Kafka status routes.
 *
 * Thread-safety: each function serves one request on its worker thread. */
#ifndef FL_API_ROUTES_EVENTS_INT_H
#define FL_API_ROUTES_EVENTS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "api/request.h"
#include "core/kafka.h"
#include "engine/cloudevent.h"

#define EV_TOPIC_MAX 256

/* One event of a POST /events request on its way to Kafka. */
typedef struct ev_item {
    const fl_cloudevent *ce; /* borrowed from the decoded request */
    const char *data_text;   /* the JSON text of ce->data when known (borrowed), or NULL */
    size_t data_text_len;
    char topic[EV_TOPIC_MAX];
    fl_rc rc;                /* FL_OK once Kafka confirmed it */
    bool queued;             /* handed to the producer: it may be written even on failure */
    fl_kafka_delivery where; /* set when rc is FL_OK */
    char why[160];           /* set when rc is not FL_OK */
} ev_item;

/* Encodes every item in binary mode (with the request's traceparent and request id as
 * extensions unless the event carries its own), produces them all with the idempotent
 * producer and waits for every delivery report, bounded by kafka_client.produce_timeout.
 * Answers 202 {accepted, ids, events} when all were confirmed, else 503 (413 for one
 * event over the broker's size limit) naming what may have been delivered. Returns the
 * status sent. `batch` decides the error pointers ("/<i>" or ""). */
int ev_produce_and_answer(fl_req *r, ev_item *items, size_t n, bool batch);

/* GET /api/v1/kafka/health and GET /api/v1/kafka/metrics (routes_events_kafka.c). */
int ev_kafka_health(fl_req *r);
int ev_kafka_metrics(fl_req *r);

#endif
