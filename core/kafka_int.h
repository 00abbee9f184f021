/* core/kafka_int.h -- what the files of the Kafka module share, and nothing else sees.
 *
 * The module is split by concern to stay within the file budget (R12.3): kafka.c
 * (client configuration, handles, the producer), kafka_admin.c (metadata, readiness,
 * topics) and kafka_consumer.c (the group consumer and its messages). Only these files
 * include this header, so librdkafka stays out of every other module (R4.3).
 *
 * Thread-safety: as core/kafka.h. */
#ifndef FL_CORE_KAFKA_INT_H
#define FL_CORE_KAFKA_INT_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/kafka.h"
#include "core/metrics.h"

/* The librdkafka properties of one client (core/kafka_props.c). */
struct fl_kafka_props {
    fl_config_prop *items; /* key and value owned, in the order librdkafka applies them */
    size_t n;
    size_t cap;
};

struct fl_kafka_producer {
    rd_kafka_t *rk;
    char *servers; /* bootstrap.servers, for error messages (never a secret) */
    pthread_t thread;
    bool thread_started;
    atomic_bool stopping;
    atomic_bool brokers_down; /* set on ALL_BROKERS_DOWN, cleared by any broker answer */
};

/* Builds a librdkafka configuration from props, with flowd's log callback and `opaque`
 * as the callbacks' opaque.
 * Ownership: *out is owned by the caller (rd_kafka_conf_destroy, or fl_kafka__client_new).
 * Errors: FL_EINVAL (an unknown setting, or an invalid value; secrets are not quoted). */
fl_rc fl_kafka__conf_new(const fl_kafka_props *props, void *opaque, rd_kafka_conf_t **out,
                         fl_err *err);

/* Creates a client. Ownership: takes *conf on success (and sets it to NULL), leaves it
 * with the caller on failure; *out is owned by the caller. Errors: FL_EINVAL. */
fl_rc fl_kafka__client_new(rd_kafka_type_t type, rd_kafka_conf_t **conf, rd_kafka_t **out,
                           fl_err *err);

/* Logs an error event of a client: `kafka.error`, or `kafka.fatal` for fatal errors. */
void fl_kafka__log_error(rd_kafka_t *rk, rd_kafka_resp_err_t code, const char *reason);

/* Milliseconds left until a CLOCK_MONOTONIC deadline, 0 once it has passed. */
static inline int fl_kafka__remaining_ms(int64_t deadline)
{
    int64_t left = deadline - fl_clock_mono_ms(fl_clock_system());

    return left <= 0 ? 0 : (left > INT32_MAX ? INT32_MAX : (int)left);
}

#endif
