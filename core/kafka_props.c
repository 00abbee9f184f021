/* core/kafka_props.c -- client configuration: a pure function (fl_kafka_props_*) from the
 * config structs to an ordered list of librdkafka properties, so its layering (defaults <
 * the `kafka:` map < what flowd forces) is unit-tested without a broker.
 *
 * Thread-safety: see core/kafka.h. */
#include "core/kafka_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/mem.h"

/* ---- properties -------------------------------------------------------------------- */

/* librdkafka accepts several names for some settings; the last one applied wins. */
static const char *const aliases[][2] = {
    {"bootstrap.servers", "metadata.broker.list"}, {"acks", "request.required.acks"},
    {"message.timeout.ms", "delivery.timeout.ms"}, {"linger.ms", "queue.buffering.max.ms"},
    {"compression.codec", "compression.type"},
};

static bool same_setting(const char *a, const char *b)
{
    bool same = strcmp(a, b) == 0;

    for (size_t i = 0; !same && i < sizeof(aliases) / sizeof(aliases[0]); i++) {
        same = (strcmp(a, aliases[i][0]) == 0 && strcmp(b, aliases[i][1]) == 0) ||
               (strcmp(a, aliases[i][1]) == 0 && strcmp(b, aliases[i][0]) == 0);
    }
    return same;
}

/* Removes every earlier value of the setting (under any of its names) and appends the
 * new one, so that the list holds each setting once, in a well-defined order. */
static void props_set(fl_kafka_props *props, const char *key, const char *value)
{
    size_t i = 0;

    while (i < props->n) {
        if (same_setting(props->items[i].key, key)) {
            free(props->items[i].key);
            free(props->items[i].value);
            memmove(&props->items[i], &props->items[i + 1],
                    (props->n - i - 1) * sizeof(props->items[0]));
            props->n--;
        } else {
            i++;
        }
    }
    if (props->n == props->cap) {
        props->cap = props->cap ? props->cap * 2 : 16;
        props->items = fl_xrealloc(props->items, props->cap * sizeof(props->items[0]));
    }
    props->items[props->n].key = fl_xstrdup(key);
    props->items[props->n].value = fl_xstrdup(value);
    props->n++;
}

const char *fl_kafka_props_get(const fl_kafka_props *props, const char *key)
{
    for (size_t i = 0; i < props->n; i++) {
        if (same_setting(props->items[i].key, key)) {
            return props->items[i].value;
        }
    }
    return NULL;
}

void fl_kafka_props_free(fl_kafka_props *props)
{
    if (!props) {
        return;
    }
    for (size_t i = 0; i < props->n; i++) {
        free(props->items[i].key);
        free(props->items[i].value);
    }
    free(props->items);
    free(props);
}

static bool same_value(const char *key, const char *a, const char *b)
{
    if (strcasecmp(a, b) == 0) {
        return true;
    }
    /* "-1" is librdkafka's own spelling of acks=all */
    return same_setting(key, "acks") && (strcmp(a, "-1") == 0 || strcmp(b, "-1") == 0) &&
           (strcasecmp(a, "all") == 0 || strcasecmp(b, "all") == 0);
}

/* Sets a value flowd's correctness depends on. The map's value is not logged: it could
 * be anything the operator typed, and only flowd's own value is known not to be secret. */
static void props_force(fl_kafka_props *props, const char *client, const char *key,
                        const char *value)
{
    const char *was = fl_kafka_props_get(props, key);

    if (was && !same_value(key, was, value)) {
        fl_log(FL_WARN, "kafka.config.overridden", FL_STR("client", client), FL_STR("key", key),
               FL_STR("value", value));
    }
    props_set(props, key, value);
}

static fl_kafka_props *props_with_map(const fl_config_kafka *cfg, const char *const (*defs)[2],
                                      size_t ndefs)
{
    fl_kafka_props *props = fl_xcalloc(1, sizeof(*props));

    props_set(props, "bootstrap.servers", "127.0.0.1:9092");
    props_set(props, "client.id", "flowd");
    /* librdkafka backs off up to 10 s between reconnects; 1 s lets readiness, probed
   * every second, recover about as soon as the broker is back */
    props_set(props, "reconnect.backoff.max.ms", "1000");
    for (size_t i = 0; i < ndefs; i++) {
        props_set(props, defs[i][0], defs[i][1]);
    }
    for (size_t i = 0; i < cfg->nprops; i++) {
        props_set(props, cfg->props[i].key, cfg->props[i].value);
    }
    return props;
}

fl_kafka_props *fl_kafka_props_producer_new(const fl_config_kafka *cfg)
{
    char timeout[32];
    const char *const defs[][2] = {
        /* a request waits for its delivery report (202 only after it), so each
         * millisecond here is latency at low load; but librdkafka sends one partition
         * per ProduceRequest, and with 0 a busy API sent requests of one or two
         * messages: the broker spent 55-78 us of CPU per event, against 15-20 us with 1
         * ms, and POST /events ran 11K/s against 20K/s (docs/benchmarks.md, S1).
         * librdkafka's own default is 5 ms; `kafka: {linger.ms: 0}` for the lowest
         * latency */
        {"linger.ms", "1"},
        {"compression.codec", "none"},
        /* a message that cannot be delivered while its caller waits fails then, rather
       * than being written minutes after the caller answered 503 */
        {"message.timeout.ms", timeout},
        /* a topic the broker creates on first use gets the broker's partition count,
       * not ours, and breaks the engine's co-partitioning */
        {"allow.auto.create.topics", "false"},
        /* librdkafka waits 30 s before it believes a topic is missing; flowd's topics are
       * verified at start, so a missing one is a mistake, reported as FL_EINVAL in 1 s
       * instead of a time-out (a topic created later is still found within a second) */
        {"topic.metadata.propagation.max.ms", "1000"},
    };
    fl_kafka_props *props;

    snprintf(timeout, sizeof(timeout), "%d",
             cfg->produce_timeout_ms > 0 ? cfg->produce_timeout_ms : 30000);
    props = props_with_map(cfg, defs, sizeof(defs) / sizeof(defs[0]));
    props_force(props, "producer", "enable.idempotence", "true");
    props_force(props, "producer", "acks", "all");
    /* the Java client's partitioner: the same key lands on the same partition number,
   * whichever client produced it */
    props_force(props, "producer", "partitioner", "murmur2_random");
    return props;
}

fl_rc fl_kafka_props_consumer_new(fl_kafka_props **out, const fl_config_kafka *cfg,
                                  const fl_config_engine *engine, const char *host, fl_err *err)
{
    static const char *const defs[][2] = {
        {"auto.offset.reset", "earliest"},
        {"isolation.level", "read_committed"},
        {"session.timeout.ms", "30000"},
        /* after a crash, what was applied since the last commit is redelivered (and
         * skipped by the inbox): librdkafka's default 5 s made restarts replay more */
        {"auto.commit.interval.ms", "1000"},
        /* one fetch per broker is in flight; the first after an assignment may name only
         * partitions without data, and the broker then holds it this long before the
         * partitions with a backlog can be fetched: librdkafka's 500 ms default was half
         * of a restart's time to first commit (docs/benchmarks.md, S5) */
        {"fetch.wait.max.ms", "50"},
    };
    const char *instance = engine->instance_id && *engine->instance_id ? engine->instance_id : host;
    fl_kafka_props *props;

    *out = NULL;
    if (!engine->group || !*engine->group) {
        return fl_err_set(err, FL_EINVAL, "cannot join a Kafka consumer group without a name");
    }
    if (!instance || !*instance) {
        return fl_err_set(err, FL_EINVAL,
                          "cannot choose a Kafka group.instance.id: no engine instance id "
                          "is configured and the host name is unknown");
    }
    props = props_with_map(cfg, defs, sizeof(defs) / sizeof(defs[0]));
    props_force(props, "consumer", "group.id", engine->group);
    props_force(props, "consumer", "group.instance.id", instance);
    /* range puts the same partition number of every input topic on one member */
    props_force(props, "consumer", "partition.assignment.strategy", "range");
    /* an offset is stored only after the Postgres commit (fl_kafka_consumer_store_offset),
   * and only stored offsets are committed */
    props_force(props, "consumer", "enable.auto.offset.store", "false");
    props_force(props, "consumer", "enable.auto.commit", "true");
    *out = props;
    return FL_OK;
}
