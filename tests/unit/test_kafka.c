/* tests/unit/test_kafka.c -- the Kafka wrapper's configuration layering and message
 * accessors. No broker and no network: the properties are a pure function of the
 * config structs, messages are built with fl_kafka_msg_new, and the one client test
 * fails before librdkafka creates a handle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/kafka.h"
#include "core/log.h"

/* The logger writes to a non-blocking pipe, so a test can also check that nothing was
 * logged. */
static int pipefd[2];

static int setup(void **state)
{
    (void)state;
    if (pipe(pipefd) != 0 || fcntl(pipefd[0], F_SETFL, O_NONBLOCK) != 0) {
        return -1;
    }
    fl_log_set_fd(pipefd[1]);
    fl_log_set_level(FL_DEBUG);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fl_log_set_fd(2);
    close(pipefd[0]);
    close(pipefd[1]);
    return 0;
}

/* Everything logged since the last call ("" when nothing was). */
static const char *logged(void)
{
    static char buf[16384];
    size_t len = 0;

    while (len < sizeof(buf) - 1) {
        ssize_t n = read(pipefd[0], buf + len, sizeof(buf) - 1 - len);
        if (n <= 0) {
            break; /* EAGAIN: everything logged so far has been read */
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

static fl_config_kafka kafka_cfg(fl_config_prop *props, size_t nprops)
{
    fl_config_kafka k;

    memset(&k, 0, sizeof(k));
    k.props = props;
    k.nprops = nprops;
    k.metadata_timeout_ms = 2000;
    k.produce_timeout_ms = 7000;
    k.topics.partitions = 6;
    k.topics.replication_factor = 1;
    return k;
}

static fl_config_engine engine_cfg(char *group, char *instance_id)
{
    fl_config_engine e;

    memset(&e, 0, sizeof(e));
    e.group = group;
    e.instance_id = instance_id;
    return e;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- producer properties ----------------------------------------------------------- */

static void test_kafka_producer_props_have_defaults(void **state)
{
    fl_config_kafka k = kafka_cfg(NULL, 0);
    fl_kafka_props *p = fl_kafka_props_producer_new(&k);

    (void)state;
    assert_string_equal(fl_kafka_props_get(p, "bootstrap.servers"), "127.0.0.1:9092");
    assert_string_equal(fl_kafka_props_get(p, "linger.ms"), "1");
    assert_string_equal(fl_kafka_props_get(p, "compression.codec"), "none");
    assert_string_equal(fl_kafka_props_get(p, "message.timeout.ms"), "7000");
    assert_string_equal(fl_kafka_props_get(p, "allow.auto.create.topics"), "false");
    assert_string_equal(fl_kafka_props_get(p, "topic.metadata.propagation.max.ms"), "1000");
    assert_null(fl_kafka_props_get(p, "group.id"));
    fl_kafka_props_free(p);
}

static void test_kafka_producer_props_force_idempotent_murmur2(void **state)
{
    fl_config_kafka k = kafka_cfg(NULL, 0);
    fl_kafka_props *p = fl_kafka_props_producer_new(&k);

    (void)state;
    assert_string_equal(fl_kafka_props_get(p, "enable.idempotence"), "true");
    assert_string_equal(fl_kafka_props_get(p, "acks"), "all");
    assert_string_equal(fl_kafka_props_get(p, "partitioner"), "murmur2_random");
    assert_string_equal(logged(), ""); /* nothing overridden, nothing to warn about */
    fl_kafka_props_free(p);
}

static void test_kafka_props_map_overrides_defaults(void **state)
{
    fl_config_prop map[] = {{"bootstrap.servers", "kafka-1:9092,kafka-2:9092"},
                            {"linger.ms", "50"},
                            {"security.protocol", "SASL_SSL"}};
    fl_config_kafka k = kafka_cfg(map, N(map));
    fl_kafka_props *p = fl_kafka_props_producer_new(&k);

    (void)state;
    assert_string_equal(fl_kafka_props_get(p, "bootstrap.servers"), "kafka-1:9092,kafka-2:9092");
    assert_string_equal(fl_kafka_props_get(p, "linger.ms"), "50");
    assert_string_equal(fl_kafka_props_get(p, "security.protocol"), "SASL_SSL");
    fl_kafka_props_free(p);
}

static void test_kafka_props_map_alias_overrides_default(void **state)
{
    fl_config_prop map[] = {{"metadata.broker.list", "kafka-1:9092"},
                            {"queue.buffering.max.ms", "20"}};
    fl_config_kafka k = kafka_cfg(map, N(map));
    fl_kafka_props *p = fl_kafka_props_producer_new(&k);

    (void)state;
    /* the default under the other name must not survive and win after the map's value */
    assert_string_equal(fl_kafka_props_get(p, "bootstrap.servers"), "kafka-1:9092");
    assert_string_equal(fl_kafka_props_get(p, "linger.ms"), "20");
    fl_kafka_props_free(p);
}

static void test_kafka_props_forced_settings_win_over_map(void **state)
{
    fl_config_prop map[] = {
        {"acks", "1"}, {"enable.idempotence", "false"}, {"partitioner", "consistent_random"}};
    fl_config_kafka k = kafka_cfg(map, N(map));
    fl_kafka_props *p = fl_kafka_props_producer_new(&k);

    (void)state;
    assert_string_equal(fl_kafka_props_get(p, "acks"), "all");
    assert_string_equal(fl_kafka_props_get(p, "enable.idempotence"), "true");
    assert_string_equal(fl_kafka_props_get(p, "partitioner"), "murmur2_random");
    fl_kafka_props_free(p);
}

static void test_kafka_props_forced_setting_wins_over_alias(void **state)
{
    fl_config_prop map[] = {{"request.required.acks", "0"}};
    fl_config_kafka k = kafka_cfg(map, N(map));
    fl_kafka_props *p = fl_kafka_props_producer_new(&k);

    (void)state;
    assert_string_equal(fl_kafka_props_get(p, "request.required.acks"), "all");
    assert_string_equal(fl_kafka_props_get(p, "acks"), "all");
    fl_kafka_props_free(p);
}

static void test_kafka_props_override_is_logged_without_map_value(void **state)
{
    fl_config_prop map[] = {{"acks", "secret-looking-1"}};
    fl_config_kafka k = kafka_cfg(map, N(map));
    fl_kafka_props *p = fl_kafka_props_producer_new(&k);
    const char *log = logged();

    (void)state;
    assert_non_null(strstr(log, "\"event\":\"kafka.config.overridden\""));
    assert_non_null(strstr(log, "\"key\":\"acks\""));
    assert_non_null(strstr(log, "\"level\":\"warn\""));
    assert_null(strstr(log, "secret-looking-1"));
    fl_kafka_props_free(p);
}

static void test_kafka_props_same_forced_value_is_not_logged(void **state)
{
    fl_config_prop map[] = {{"acks", "-1"}, {"enable.idempotence", "TRUE"}};
    fl_config_kafka k = kafka_cfg(map, N(map));
    fl_kafka_props *p = fl_kafka_props_producer_new(&k);

    (void)state;
    assert_string_equal(logged(), "");
    fl_kafka_props_free(p);
}

/* ---- consumer properties ----------------------------------------------------------- */

static void test_kafka_consumer_props_have_defaults(void **state)
{
    fl_config_kafka k = kafka_cfg(NULL, 0);
    fl_config_engine e = engine_cfg("flowd-engine", "engine-a");
    fl_kafka_props *p = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_kafka_props_consumer_new(&p, &k, &e, "host-1", &err), FL_OK);
    assert_string_equal(fl_kafka_props_get(p, "bootstrap.servers"), "127.0.0.1:9092");
    assert_string_equal(fl_kafka_props_get(p, "auto.offset.reset"), "earliest");
    assert_string_equal(fl_kafka_props_get(p, "isolation.level"), "read_committed");
    assert_string_equal(fl_kafka_props_get(p, "session.timeout.ms"), "30000");
    assert_null(fl_kafka_props_get(p, "enable.idempotence")); /* a producer setting */
    fl_kafka_props_free(p);
}

static void test_kafka_consumer_props_force_group_and_offset_handling(void **state)
{
    fl_config_kafka k = kafka_cfg(NULL, 0);
    fl_config_engine e = engine_cfg("flowd-engine", "engine-a");
    fl_kafka_props *p = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_kafka_props_consumer_new(&p, &k, &e, "host-1", &err), FL_OK);
    assert_string_equal(fl_kafka_props_get(p, "group.id"), "flowd-engine");
    assert_string_equal(fl_kafka_props_get(p, "group.instance.id"), "engine-a");
    assert_string_equal(fl_kafka_props_get(p, "partition.assignment.strategy"), "range");
    assert_string_equal(fl_kafka_props_get(p, "enable.auto.offset.store"), "false");
    assert_string_equal(fl_kafka_props_get(p, "enable.auto.commit"), "true");
    fl_kafka_props_free(p);
}

static void test_kafka_consumer_props_instance_id_from_host_when_empty(void **state)
{
    fl_config_kafka k = kafka_cfg(NULL, 0);
    fl_config_engine e = engine_cfg("flowd-engine", "");
    fl_kafka_props *p = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_kafka_props_consumer_new(&p, &k, &e, "host-1", &err), FL_OK);
    assert_string_equal(fl_kafka_props_get(p, "group.instance.id"), "host-1");
    fl_kafka_props_free(p);
}

static void test_kafka_consumer_props_map_overrides_defaults(void **state)
{
    fl_config_prop map[] = {{"auto.offset.reset", "latest"}, {"session.timeout.ms", "45000"}};
    fl_config_kafka k = kafka_cfg(map, N(map));
    fl_config_engine e = engine_cfg("flowd-engine", "engine-a");
    fl_kafka_props *p = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_kafka_props_consumer_new(&p, &k, &e, "host-1", &err), FL_OK);
    assert_string_equal(fl_kafka_props_get(p, "auto.offset.reset"), "latest");
    assert_string_equal(fl_kafka_props_get(p, "session.timeout.ms"), "45000");
    fl_kafka_props_free(p);
}

static void test_kafka_consumer_props_forced_settings_win_over_map(void **state)
{
    fl_config_prop map[] = {{"group.id", "other"},
                            {"partition.assignment.strategy", "cooperative-sticky"},
                            {"enable.auto.offset.store", "true"}};
    fl_config_kafka k = kafka_cfg(map, N(map));
    fl_config_engine e = engine_cfg("flowd-engine", "engine-a");
    fl_kafka_props *p = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_kafka_props_consumer_new(&p, &k, &e, "host-1", &err), FL_OK);
    assert_string_equal(fl_kafka_props_get(p, "group.id"), "flowd-engine");
    assert_string_equal(fl_kafka_props_get(p, "partition.assignment.strategy"), "range");
    assert_string_equal(fl_kafka_props_get(p, "enable.auto.offset.store"), "false");
    assert_non_null(strstr(logged(), "\"key\":\"partition.assignment.strategy\""));
    fl_kafka_props_free(p);
}

static void test_kafka_consumer_props_reject_empty_group(void **state)
{
    fl_config_kafka k = kafka_cfg(NULL, 0);
    fl_config_engine e = engine_cfg("", "engine-a");
    fl_kafka_props *p = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_kafka_props_consumer_new(&p, &k, &e, "host-1", &err), FL_EINVAL);
    assert_null(p);
    assert_int_equal(err.code, FL_EINVAL);
}

static void test_kafka_consumer_props_reject_no_instance_id_and_no_host(void **state)
{
    fl_config_kafka k = kafka_cfg(NULL, 0);
    fl_config_engine e = engine_cfg("flowd-engine", "");
    fl_kafka_props *p = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_kafka_props_consumer_new(&p, &k, &e, "", &err), FL_EINVAL);
    assert_null(p);
    assert_non_null(strstr(err.msg, "group.instance.id"));
}

/* ---- clients (failing before any connection) --------------------------------------- */

static void test_kafka_producer_open_rejects_unknown_setting(void **state)
{
    fl_config_prop map[] = {{"no.such.setting", "1"}};
    fl_config_kafka k = kafka_cfg(map, N(map));
    fl_kafka_producer *p = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_kafka_producer_open(&p, &k, &err), FL_EINVAL);
    assert_null(p);
    assert_string_equal(err.msg, "unknown Kafka setting \"no.such.setting\"");
}

static void test_kafka_producer_open_does_not_quote_secret_values(void **state)
{
    fl_config_prop map[] = {{"ssl.endpoint.identification.algorithm", "hunter2"}};
    fl_config_kafka k = kafka_cfg(map, N(map));
    fl_kafka_producer *p = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_kafka_producer_open(&p, &k, &err), FL_EINVAL);
    assert_null(p);
    assert_string_equal(
        err.msg, "invalid value for Kafka setting \"ssl.endpoint.identification.algorithm\"");
}

static void test_kafka_producer_open_explains_invalid_value(void **state)
{
    fl_config_prop map[] = {{"linger.ms", "soon"}};
    fl_config_kafka k = kafka_cfg(map, N(map));
    fl_kafka_producer *p = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_kafka_producer_open(&p, &k, &err), FL_EINVAL);
    assert_non_null(strstr(err.msg, "invalid value for Kafka setting \"linger.ms\": "));
    fl_kafka_producer_close(p, 0); /* NULL-safe */
}

/* ---- messages ---------------------------------------------------------------------- */

static fl_kafka_msg *event_msg(void)
{
    static const fl_kafka_header headers[] = {
        {"ce_specversion", "1.0", 3},  {"ce_type", "order.created", 13},
        {"ce_subject", "order-42", 8}, {"ce_type", "order.updated", 13},
        {"traceparent", NULL, 0},
    };
    fl_kafka_record rec = {.topic = "order.events",
                           .key = "order-42",
                           .key_len = 8,
                           .value = "{\"total\":3}",
                           .value_len = 11,
                           .headers = headers,
                           .nheaders = N(headers)};

    return fl_kafka_msg_new(&rec, 3, 1234);
}

static void test_kafka_msg_header_get_returns_last_value(void **state)
{
    fl_kafka_msg *m = event_msg();
    const char *v = NULL;
    size_t len = 0;

    (void)state;
    assert_true(fl_kafka_msg_header_get(m, "ce_type", &v, &len));
    assert_int_equal(len, 13);
    assert_memory_equal(v, "order.updated", 13);
    assert_int_equal(v[len], '\0'); /* values are NUL-terminated for convenience */
    fl_kafka_msg_free(m);
}

static void test_kafka_msg_header_get_missing_is_false(void **state)
{
    fl_kafka_msg *m = event_msg();
    const char *v = "unchanged";
    size_t len = 99;

    (void)state;
    assert_false(fl_kafka_msg_header_get(m, "ce_tenant", &v, &len));
    assert_null(v);
    assert_int_equal(len, 0);
    fl_kafka_msg_free(m);
}

static void test_kafka_msg_header_get_without_value(void **state)
{
    fl_kafka_msg *m = event_msg();
    const char *v = "unchanged";
    size_t len = 99;

    (void)state;
    assert_true(fl_kafka_msg_header_get(m, "traceparent", &v, &len));
    assert_null(v);
    assert_int_equal(len, 0);
    fl_kafka_msg_free(m);
}

static void test_kafka_msg_header_at_iterates_in_order(void **state)
{
    static const char *const names[] = {"ce_specversion", "ce_type", "ce_subject", "ce_type",
                                        "traceparent"};
    fl_kafka_msg *m = event_msg();
    const char *name = NULL;
    const char *v = NULL;
    size_t len = 0;
    size_t i = 0;

    (void)state;
    while (fl_kafka_msg_header_at(m, i, &name, &v, &len)) {
        assert_true(i < N(names));
        assert_string_equal(name, names[i]);
        i++;
    }
    assert_int_equal(i, N(names));
    assert_null(name);
    fl_kafka_msg_free(m);
}

static void test_kafka_msg_without_headers_has_none(void **state)
{
    fl_kafka_record rec = {.topic = "flowd.events"};
    fl_kafka_msg *m = fl_kafka_msg_new(&rec, 0, 0);
    const char *name = NULL;
    const char *v = NULL;
    size_t len = 0;

    (void)state;
    assert_false(fl_kafka_msg_header_get(m, "ce_type", &v, &len));
    assert_false(fl_kafka_msg_header_at(m, 0, &name, &v, &len));
    assert_null(fl_kafka_msg_key(m, &len));
    assert_int_equal(len, 0);
    assert_null(fl_kafka_msg_value(m, &len));
    assert_int_equal(len, 0);
    fl_kafka_msg_free(m);
}

static void test_kafka_msg_new_copies_the_record(void **state)
{
    char topic[] = "order.events";
    char key[] = "order-42";
    char value[] = "{}";
    fl_kafka_record rec = {
        .topic = topic, .key = key, .key_len = 8, .value = value, .value_len = 2};
    fl_kafka_msg *m = fl_kafka_msg_new(&rec, 5, 77);
    size_t len = 0;
    const void *p;

    (void)state;
    memset(topic, 'x', sizeof(topic) - 1);
    memset(key, 'x', sizeof(key) - 1);
    memset(value, 'x', sizeof(value) - 1);
    assert_string_equal(fl_kafka_msg_topic(m), "order.events");
    p = fl_kafka_msg_key(m, &len);
    assert_int_equal(len, 8);
    assert_memory_equal(p, "order-42", 8);
    p = fl_kafka_msg_value(m, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(p, "{}", 2);
    assert_int_equal(fl_kafka_msg_partition(m), 5);
    assert_int_equal(fl_kafka_msg_offset(m), 77);
    assert_int_equal(fl_kafka_msg_timestamp_ms(m), -1);
    fl_kafka_msg_free(m);
}

/* ---- asynchronous produce without a broker (error paths) ---------------------------- */

/* What a delivery report told an async produce; the test thread waits on it. */
typedef struct async_result {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls; /* guarded by mu */
    fl_err err;
} async_result;

static void async_result_init(async_result *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    fl_clock_cond_init(&r->cv);
}

static void async_result_deinit(async_result *r)
{
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

static void async_done(void *arg, const fl_kafka_delivery *d, const fl_err *err)
{
    async_result *r = arg;

    (void)d;
    pthread_mutex_lock(&r->mu);
    r->calls++;
    r->err = *err;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Waits (bounded, on the condvar: no sleep) for the report; returns the number of calls. */
static int async_wait(async_result *r, int timeout_ms)
{
    struct timespec deadline = fl_clock_mono_deadline(timeout_ms);
    int calls;

    pthread_mutex_lock(&r->mu);
    while (r->calls == 0 && pthread_cond_timedwait(&r->cv, &r->mu, &deadline) == 0) {
    }
    calls = r->calls;
    pthread_mutex_unlock(&r->mu);
    return calls;
}

/* A broker address where nothing listens: the client never gets metadata. */
static fl_kafka_producer *producer_without_broker(int produce_timeout_ms)
{
    static fl_config_prop map[] = {{"bootstrap.servers", "127.0.0.1:1"}, {"log_level", "0"}};
    fl_config_kafka k = kafka_cfg(map, N(map));
    fl_kafka_producer *p = NULL;
    fl_err err = FL_ERR_INIT;

    k.produce_timeout_ms = produce_timeout_ms;
    assert_int_equal(fl_kafka_producer_open(&p, &k, &err), FL_OK);
    return p;
}

static void test_kafka_produce_async_reports_timeout_without_broker(void **state)
{
    fl_kafka_producer *p = producer_without_broker(300);
    fl_kafka_record rec = {
        .topic = "flowd.events", .key = "k", .key_len = 1, .value = "{}", .value_len = 2};
    async_result r;
    fl_err err = FL_ERR_INIT;

    (void)state;
    async_result_init(&r);
    assert_int_equal(fl_kafka_produce_async(p, &rec, async_done, &r, &err), FL_OK);
    assert_int_equal(async_wait(&r, 10000), 1);
    assert_true(r.err.code == FL_ETIMEDOUT || r.err.code == FL_EUNAVAIL);
    assert_non_null(strstr(r.err.msg, "could not produce to Kafka topic \"flowd.events\""));
    fl_kafka_producer_close(p, 0);
    assert_int_equal(r.calls, 1);
    async_result_deinit(&r);
}

static void test_kafka_produce_async_reports_purge_on_close(void **state)
{
    fl_kafka_producer *p = producer_without_broker(60000);
    fl_kafka_record rec = {.topic = "flowd.events", .value = "{}", .value_len = 2};
    async_result r;
    fl_err err = FL_ERR_INIT;

    (void)state;
    async_result_init(&r);
    assert_int_equal(fl_kafka_produce_async(p, &rec, async_done, &r, &err), FL_OK);
    fl_kafka_producer_close(p, 0); /* the queued message is purged, and reported */
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.err.code, FL_EUNAVAIL);
    async_result_deinit(&r);
}

static void test_kafka_produce_async_too_big_fails_at_once(void **state)
{
    fl_kafka_producer *p = producer_without_broker(60000);
    size_t len = 2 * 1000 * 1000; /* over librdkafka's message.max.bytes default */
    char *big = calloc(len, 1);
    fl_kafka_record rec = {.topic = "flowd.events", .value = big, .value_len = len};
    async_result r;
    fl_err err = FL_ERR_INIT;

    (void)state;
    async_result_init(&r);
    assert_int_equal(fl_kafka_produce_async(p, &rec, async_done, &r, &err), FL_ETOOBIG);
    assert_non_null(strstr(err.msg, "cannot produce to Kafka topic \"flowd.events\""));
    fl_kafka_producer_close(p, 0);
    assert_int_equal(r.calls, 0); /* not queued: never reported */
    free(big);
    async_result_deinit(&r);
}

static void test_kafka_produce_sync_still_times_out_without_broker(void **state)
{
    fl_kafka_producer *p = producer_without_broker(300);
    fl_kafka_record rec = {.topic = "flowd.events", .value = "{}", .value_len = 2};
    fl_err err = FL_ERR_INIT;
    fl_rc rc;

    (void)state;
    rc = fl_kafka_produce_sync(p, &rec, 10000, NULL, &err);
    assert_true(rc == FL_ETIMEDOUT || rc == FL_EUNAVAIL);
    assert_non_null(strstr(err.msg, "Kafka topic \"flowd.events\""));
    fl_kafka_producer_close(p, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kafka_producer_props_have_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_producer_props_force_idempotent_murmur2, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kafka_props_map_overrides_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_props_map_alias_overrides_default, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kafka_props_forced_settings_win_over_map, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kafka_props_forced_setting_wins_over_alias, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kafka_props_override_is_logged_without_map_value,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_props_same_forced_value_is_not_logged, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kafka_consumer_props_have_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_consumer_props_force_group_and_offset_handling,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_consumer_props_instance_id_from_host_when_empty,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_consumer_props_map_overrides_defaults, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kafka_consumer_props_forced_settings_win_over_map,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_consumer_props_reject_empty_group, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kafka_consumer_props_reject_no_instance_id_and_no_host,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_producer_open_rejects_unknown_setting, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kafka_producer_open_does_not_quote_secret_values,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_producer_open_explains_invalid_value, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kafka_msg_header_get_returns_last_value, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kafka_msg_header_get_missing_is_false, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kafka_msg_header_get_without_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_msg_header_at_iterates_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kafka_msg_without_headers_has_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_msg_new_copies_the_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_produce_async_reports_timeout_without_broker,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_produce_async_reports_purge_on_close, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kafka_produce_async_too_big_fails_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kafka_produce_sync_still_times_out_without_broker,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
