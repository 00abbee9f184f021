/* core/kafka.h -- the Kafka client wrapper: librdkafka configuration, a synchronous and
 * an asynchronous producer, cluster checks, topic creation, and a group consumer with
 * owned messages.
 *
 * This module and the consumer loops are the only code that sees librdkafka; every
 * librdkafka error becomes an fl_rc here (R4.3), and this header includes no librdkafka
 * header. The client configuration is layered: flowd's defaults, then the verbatim
 * `kafka:` map of the configuration file, then the settings flowd's correctness depends
 * on (idempotent producer, range assignment, offsets stored only after the Postgres
 * commit), which always win; a map entry that tries to change one is logged as
 * `kafka.config.overridden`. librdkafka's own logs become `kafka.log` JSON lines.
 *
 * Thread-safety: an fl_kafka_producer may be used by any number of threads at once
 * (fl_kafka_produce_sync, fl_kafka_produce_async, fl_kafka_check, fl_kafka_topics_ensure,
 * fl_kafka_partition_count, fl_kafka_group_lag); only _open and _close must not race with
 * other calls. An fl_kafka_consumer belongs to one thread (its loop), except
 * fl_kafka_consumer_assigned. An fl_kafka_msg may be read by any thread but freed once.
 * fl_kafka_props are immutable after they are built. */
#ifndef FL_CORE_KAFKA_H
#define FL_CORE_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/config.h"
#include "core/err.h"

/* ---- client configuration ---------------------------------------------------------- */

/* The effective librdkafka properties of one client, in the order they are applied.
 * Values may be secrets (sasl.password): never log them. */
typedef struct fl_kafka_props fl_kafka_props;

/* Builds the producer's properties: defaults (bootstrap.servers=127.0.0.1:9092,
 * linger.ms=5, no compression, message.timeout.ms=produce_timeout_ms, no automatic topic
 * creation, topic.metadata.propagation.max.ms=1000), then cfg->props, then
 * enable.idempotence=true, acks=all and partitioner=murmur2_random (the Java client's
 * partition for a key).
 * Ownership: the result is owned by the caller (fl_kafka_props_free). */
fl_kafka_props *fl_kafka_props_producer_new(const fl_config_kafka *cfg);

/* Builds the engine consumer's properties: defaults (auto.offset.reset=earliest,
 * isolation.level=read_committed, session.timeout.ms=30000), then cfg->props, then
 * group.id=engine->group, group.instance.id=engine->instance_id or `host` when that is
 * empty (static membership), partition.assignment.strategy=range,
 * enable.auto.offset.store=false and enable.auto.commit=true (commits stored offsets).
 * `host` is passed in, rather than looked up, so that the function stays pure.
 * Ownership: *out is owned by the caller (fl_kafka_props_free).
 * Errors: FL_EINVAL (no group, or neither an instance id nor a host name). */
fl_rc fl_kafka_props_consumer_new(fl_kafka_props **out, const fl_config_kafka *cfg,
                                  const fl_config_engine *engine, const char *host, fl_err *err);

/* The value `key` will be set to, or NULL. Borrowed until fl_kafka_props_free. */
const char *fl_kafka_props_get(const fl_kafka_props *props, const char *key);

void fl_kafka_props_free(fl_kafka_props *props); /* NULL-safe */

/* ---- producer ---------------------------------------------------------------------- */

typedef struct fl_kafka_producer fl_kafka_producer;

/* One Kafka header. A NULL value is a header without a value. */
typedef struct fl_kafka_header {
    const char *name;
    const void *value;
    size_t len;
} fl_kafka_header;

/* A header whose value is a C string (evaluates `s` twice). */
#define FL_KAFKA_HEADER_STR(n, s) ((fl_kafka_header){.name = (n), .value = (s), .len = strlen(s)})

/* A message to produce; every pointer is borrowed for the duration of the call. A NULL
 * key lets the partitioner pick a random partition; a NULL value is a tombstone. */
typedef struct fl_kafka_record {
    const char *topic;
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    const fl_kafka_header *headers;
    size_t nheaders;
} fl_kafka_record;

/* Where a produced message was written. */
typedef struct fl_kafka_delivery {
    int32_t partition;
    int64_t offset;
} fl_kafka_delivery;

/* Creates the producer and starts its poll thread, which serves delivery reports.
 * Does not wait for a broker: use fl_kafka_check or fl_kafka_topics_ensure for that.
 * Ownership: *out is owned by the caller (fl_kafka_producer_close).
 * Errors: FL_EINVAL (a bad or unknown setting in the `kafka:` map), FL_EINTERNAL. */
fl_rc fl_kafka_producer_open(fl_kafka_producer **out, const fl_config_kafka *cfg, fl_err *err);

/* Waits up to timeout_ms for queued messages to be delivered, stops the poll thread and
 * destroys the client. Messages still undelivered then are dropped (and logged); their
 * producers were already told FL_ETIMEDOUT or FL_EUNAVAIL. NULL-safe. */
void fl_kafka_producer_close(fl_kafka_producer *p, int timeout_ms);

/* Produces one message and waits up to timeout_ms for the broker's acknowledgement
 * (acks=all). On FL_ETIMEDOUT or FL_EUNAVAIL the message may still be written later:
 * delivery is at least once, and consumers dedupe by CloudEvents id.
 * Ownership: borrows rec. `out` may be NULL.
 * Errors: FL_EUNAVAIL (no broker, local queue full, producer failed), FL_ETIMEDOUT (not
 * acknowledged in time), FL_ETOOBIG (over message.max.bytes), FL_EINVAL (unknown topic). */
fl_rc fl_kafka_produce_sync(fl_kafka_producer *p, const fl_kafka_record *rec, int timeout_ms,
                            fl_kafka_delivery *out, fl_err *err);

/* Called once per fl_kafka_produce_async that returned FL_OK, on the producer's poll
 * thread, with the delivery result: err->code is FL_OK and `d` says where the message
 * was written, or err holds the failure (codes as fl_kafka_produce_sync; a message still
 * queued when the producer closes fails with FL_EUNAVAIL). Keep it short and never call
 * back into the producer from it: every other delivery report waits behind it.
 * Ownership: d and err are borrowed for the call. */
typedef void (*fl_kafka_done_fn)(void *arg, const fl_kafka_delivery *d, const fl_err *err);

/* Queues one message without waiting. The producer is idempotent with acks=all, so the
 * messages queued for one partition are written in the order of these calls (a failed
 * message may leave a gap: the ones after it can still be written). Delivery is bounded
 * by kafka_client.produce_timeout: `done` runs by then.
 * Ownership: borrows rec for the call (everything is copied); `arg` is borrowed until
 * `done` has run, which happens exactly once when FL_OK is returned and never otherwise.
 * Errors: FL_EUNAVAIL (local queue full, producer failed), FL_EINVAL (unknown topic),
 * FL_ETOOBIG. */
fl_rc fl_kafka_produce_async(fl_kafka_producer *p, const fl_kafka_record *rec,
                             fl_kafka_done_fn done, void *arg, fl_err *err);

/* Asks the cluster for metadata: FL_OK when a broker answers within timeout_ms. Does not
 * block longer than about timeout_ms, and succeeds again by itself once a broker is back
 * (readiness calls it every second).
 * Errors: FL_EUNAVAIL. */
fl_rc fl_kafka_check(fl_kafka_producer *p, int timeout_ms, fl_err *err);

/* Waits (retrying) up to wait_ms for the cluster to answer, creates every configured
 * topic that is missing with cfg->topics.partitions and .replication_factor (a topic
 * created concurrently by another process is fine), then verifies that every topic
 * exists with exactly the configured partition count: the engine relies on equal counts.
 * Errors: FL_EUNAVAIL (no broker within wait_ms), FL_EINVAL (a partition count differs,
 * or the cluster refused a topic, e.g. a replication factor above the broker count). */
fl_rc fl_kafka_topics_ensure(fl_kafka_producer *p, const fl_config_kafka *cfg, int wait_ms,
                             fl_err *err);

/* The number of partitions of `topic`. Errors: FL_ENOTFOUND, FL_EUNAVAIL. */
fl_rc fl_kafka_partition_count(fl_kafka_producer *p, const char *topic, int timeout_ms, int *out,
                               fl_err *err);

/* ---- consumer lag (core/kafka_lag.c) ------------------------------------------------ */

/* One partition of a consumer group's lag. */
typedef struct fl_kafka_lag {
    const char *topic; /* borrowed from the query's topics */
    int32_t partition;
    int64_t committed; /* the next offset the group will read; -1 when nothing is committed */
    int64_t low;       /* the log start offset */
    int64_t high;      /* the high watermark: the offset the next message will get */
    int64_t lag;       /* high - committed; high - low when nothing is committed */
} fl_kafka_lag;

/* Which group and topics to measure. Every pointer is borrowed for the call. */
typedef struct fl_kafka_lag_query {
    const char *group;
    const char *const *topics;
    size_t ntopics;
    int timeout_ms; /* the whole call: metadata, committed offsets and watermarks */
} fl_kafka_lag_query;

/* Measures the lag of q->group on every partition of q->topics: committed offsets with
 * the admin API (ListConsumerGroupOffsets), watermarks per partition, on the producer's
 * handle (no group is joined, so the measured group is not disturbed). The items come in
 * the order of q->topics, then by partition.
 * Ownership: *out (an array of *n items) is owned by the caller (free()).
 * Errors: FL_EUNAVAIL (no broker or no answer in time), FL_ENOTFOUND (a topic is missing). */
fl_rc fl_kafka_group_lag(fl_kafka_producer *p, const fl_kafka_lag_query *q, fl_kafka_lag **out,
                         size_t *n, fl_err *err);

/* ---- consumed messages ------------------------------------------------------------- */

typedef struct fl_kafka_msg fl_kafka_msg;

/* Builds a message without a broker, as if consumed: for link-time fakes and tests.
 * Ownership: copies rec; the result is owned by the caller (fl_kafka_msg_free). */
fl_kafka_msg *fl_kafka_msg_new(const fl_kafka_record *rec, int32_t partition, int64_t offset);

void fl_kafka_msg_free(fl_kafka_msg *m); /* NULL-safe */

/* Accessors. Pointers are borrowed until fl_kafka_msg_free. Keys and values are bytes,
 * not C strings; a missing key or value is NULL with length 0. */
const char *fl_kafka_msg_topic(const fl_kafka_msg *m);
int32_t fl_kafka_msg_partition(const fl_kafka_msg *m);
int64_t fl_kafka_msg_offset(const fl_kafka_msg *m);
int64_t fl_kafka_msg_timestamp_ms(const fl_kafka_msg *m); /* -1 when unknown */
const void *fl_kafka_msg_key(const fl_kafka_msg *m, size_t *len);
const void *fl_kafka_msg_value(const fl_kafka_msg *m, size_t *len);

/* Finds the last header named `name` ("ce_type"). The value is NUL-terminated (it may
 * still contain NUL bytes: use len), or NULL for a header without a value.
 * Returns false when the message has no such header. */
bool fl_kafka_msg_header_get(const fl_kafka_msg *m, const char *name, const char **value,
                             size_t *len);

/* The idx-th header, in wire order, for iterating over all of them.
 * Returns false when idx is past the last header. */
bool fl_kafka_msg_header_at(const fl_kafka_msg *m, size_t idx, const char **name,
                            const char **value, size_t *len);

/* ---- consumer ---------------------------------------------------------------------- */

typedef struct fl_kafka_consumer fl_kafka_consumer;

/* Joins the engine's consumer group and subscribes to `topics` (borrowed for the call).
 * Nothing is fetched until fl_kafka_consumer_poll. The topic list and its count are one
 * argument in two parameters (R12.3 allows five); a struct for them would add a type
 * and help no caller.
 * Ownership: *out is owned by the caller (fl_kafka_consumer_close).
 * Errors: FL_EINVAL (bad setting, empty group), FL_EINTERNAL. */
fl_rc fl_kafka_consumer_open(fl_kafka_consumer **out, const fl_config_kafka *cfg,
                             const fl_config_engine *engine, const char *const *topics,
                             size_t ntopics, fl_err *err);

/* Waits up to timeout_ms for the next message. Rebalances happen inside this call
 * (partitions are assigned and revoked between two messages, never during one).
 * *out is NULL when nothing arrived in time or after a transient error, which is logged
 * as `kafka.consumer.error` (librdkafka recovers from those by itself).
 * Ownership: *out is owned by the caller (fl_kafka_msg_free).
 * Errors: FL_EUNAVAIL (the consumer failed for good, e.g. fenced by another process
 * with the same group.instance.id): stop the loop. */
fl_rc fl_kafka_consumer_poll(fl_kafka_consumer *c, int timeout_ms, fl_kafka_msg **out, fl_err *err);

/* Marks m as processed: its offset + 1 is committed with the next automatic commit (and
 * on close). Call it only after the Postgres transaction that applied m has committed.
 * Errors: FL_ECONFLICT (the partition was revoked since m was polled: another process
 * now owns it and will redeliver m, which the inbox dedupes). */
fl_rc fl_kafka_consumer_store_offset(fl_kafka_consumer *c, const fl_kafka_msg *m, fl_err *err);

/* Partitions currently assigned to this consumer. Unlike the rest of the consumer, this
 * may be called from any thread (the readiness prober). */
int fl_kafka_consumer_assigned(const fl_kafka_consumer *c);

/* Revokes the assignment, commits the stored offsets and destroys the client, waiting
 * at most about timeout_ms (then it gives up on the commit; the next owner redelivers).
 * With static membership the consumer does not leave the group (KIP-345): the broker
 * keeps its partitions for it until session.timeout.ms, so a restart with the same
 * group.instance.id gets them back without a rebalance, while a process that never
 * returns leaves them unconsumed for that long. NULL-safe. */
void fl_kafka_consumer_close(fl_kafka_consumer *c, int timeout_ms);

#endif
