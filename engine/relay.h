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
 * Thread-safety: _new/_start/_stop/_free from the main thread; the relay owns its thread. */
#ifndef FL_ENGINE_RELAY_H
#define FL_ENGINE_RELAY_H

#include "core/config.h"
#include "core/err.h"
#include "core/kafka.h"
#include "core/pg.h"

typedef struct fl_relay fl_relay;

/* Ownership: cfg, pool and producer are borrowed and must outlive the relay; *out is
 * owned by the caller (fl_relay_free). Errors: FL_EINVAL. */
fl_rc fl_relay_new(fl_relay **out, const fl_config *cfg, fl_pg_pool *pool,
                   fl_kafka_producer *producer, fl_err *err);
fl_rc fl_relay_start(void *relay, fl_err *err); /* fl_app_start_fn */
void fl_relay_stop(void *relay);                /* fl_app_stop_fn; idempotent, joins */
void fl_relay_free(fl_relay *relay);            /* NULL-safe; stops first */

#endif
