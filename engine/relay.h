/* engine/relay.h -- the outbox relay: publishes outbox rows to Kafka and marks them
 * published (ARCHITECTURE.md section 2: nothing that writes Postgres produces directly).
 *
 * One thread reads unpublished rows in `seq` order, produces each with the idempotent
 * producer in CloudEvents binary mode (the row's headers; key = aggregateid = subject)
 * and marks the rows published once their delivery reports are in. Rows of one key are
 * never reordered: a row is produced only after every earlier row of its key was
 * acknowledged or is in flight ahead of it on the same partition. A crash between
 * produce and mark re-publishes: consumers dedupe by CloudEvent id (the inbox).
 *
 * Several relays (processes) may run: each pass holds one PostgreSQL advisory lock, so
 * one relay publishes at a time and the others stand by (engine/relay.c explains why not
 * FOR UPDATE SKIP LOCKED). A row whose delivery failed holds back the later rows of its
 * topic and key until a later pass delivers it. Logs: `relay.published` (debug, per pass
 * with rows), `relay.failed` (warn).
 *
 * Thread-safety: _new/_start/_stop/_free from the main thread; the relay owns its thread. */
#ifndef FL_ENGINE_RELAY_H
#define FL_ENGINE_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "core/err.h"
#include "core/kafka.h"
#include "core/pg.h"

typedef struct fl_relay fl_relay;

/* Ownership: cfg, pool and producer are borrowed and must outlive the relay; *out is
 * owned by the caller (fl_relay_free). Errors: FL_EINVAL. */
/* ---- the pure parts, for tests ------------------------------------------------------ */

/* Turns an outbox row's `headers` column (a JSON object, ce_* names) into the Kafka
 * headers of the record whose value is the row's payload. String values are sent as
 * they are, null as a header without a value, anything else as its compact JSON text.
 * content-type is application/json when the row has a payload (a content-type of the
 * row's own wins) and left out when it has none (the value is then empty).
 * Ownership: *out is owned by the caller (fl_relay_headers_free with *count).
 * Errors: FL_EINVAL (not a JSON object). */
fl_rc fl_relay_headers_from_json(const char *json, bool has_payload, fl_kafka_header **out,
                                 size_t *count, fl_err *err);
void fl_relay_headers_free(fl_kafka_header *headers, size_t count); /* NULL-safe */

/* The delivery outcome of one row of a pass; a pass lists its rows in seq order. */
typedef struct fl_relay_outcome {
    const char *topic;
    const char *key;
    bool delivered;
} fl_relay_outcome;

/* Decides which rows of a pass are marked published: the delivered ones, except every
 * row after an undelivered row of the same topic and key (marking it would let the next
 * pass publish the failed row after it). Sets mark[i] for each of the n rows.
 * Returns the number of rows marked. Ownership: borrows rows; mark has n entries. */
size_t fl_relay_marks(const fl_relay_outcome *rows, size_t n, bool *mark);

/* ---- the relay --------------------------------------------------------------------- */

fl_rc fl_relay_new(fl_relay **out, const fl_config *cfg, fl_pg_pool *pool,
                   fl_kafka_producer *producer, fl_err *err);
fl_rc fl_relay_start(void *relay, fl_err *err); /* fl_app_start_fn */
void fl_relay_stop(void *relay);                /* fl_app_stop_fn; idempotent, joins */
void fl_relay_free(fl_relay *relay);            /* NULL-safe; stops first */

#endif
