/* tests/system/kafka_probe.c -- drives core/kafka against the real broker for the system
 * tests (test_kafka_client.py). It prints one JSON object per line on stdout.
 *
 *   kafka_probe CONFIG produce TOPIC KEY VALUE
 *       -> {"event":"produced","partition":P,"offset":O}
 *   kafka_probe CONFIG consume GROUP INSTANCE_ID TOPIC SECONDS
 *       -> {"event":"assigned","partitions":N,"ms":T}   (T since start, once)
 *          {"event":"message","partition":P,"offset":O,"value":"..."} (offset stored)
 *          {"event":"closed"}                              (on SIGTERM or after SECONDS)
 *
 * Test code, not product code: printing on stdout is its purpose. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/kafka.h"
#include "core/log.h"

static void emit(json_t *o)
{
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

    printf("%s\n", line);
    fflush(stdout);
    free(line);
    json_decref(o);
}

static int fail(const char *what, const fl_err *err)
{
    emit(json_pack("{s:s,s:s,s:s}", "event", "error", "what", what, "error", err->msg));
    return 1;
}

static int produce(const fl_config *cfg, char **argv)
{
    fl_kafka_producer *p = NULL;
    fl_kafka_delivery d = {0};
    fl_err err = FL_ERR_INIT;
    fl_kafka_record rec = {.topic = argv[0],
                           .key = argv[1],
                           .key_len = strlen(argv[1]),
                           .value = argv[2],
                           .value_len = strlen(argv[2])};
    int status = 0;

    if (fl_kafka_producer_open(&p, &cfg->kafka, &err) != FL_OK ||
        fl_kafka_produce_sync(p, &rec, 10000, &d, &err) != FL_OK) {
        status = fail("produce", &err);
    } else {
        emit(json_pack("{s:s,s:i,s:I}", "event", "produced", "partition", (int)d.partition,
                       "offset", (json_int_t)d.offset));
    }
    fl_kafka_producer_close(p, 5000);
    return status;
}

static void report_message(fl_kafka_consumer *c, fl_kafka_msg *m)
{
    size_t len = 0;
    const char *value = fl_kafka_msg_value(m, &len);
    fl_err err = FL_ERR_INIT;

    emit(json_pack("{s:s,s:i,s:I,s:s%}", "event", "message", "partition",
                   (int)fl_kafka_msg_partition(m), "offset", (json_int_t)fl_kafka_msg_offset(m),
                   "value", value ? value : "", len));
    if (fl_kafka_consumer_store_offset(c, m, &err) != FL_OK) {
        fail("store_offset", &err);
    }
}

/* Polls until SIGTERM or the deadline, reporting the first assignment and every message. */
static int consume_loop(fl_kafka_consumer *c, const sigset_t *term, int seconds)
{
    const fl_clock *clock = fl_clock_system();
    int64_t start = fl_clock_mono_ms(clock);
    struct timespec zero = {0, 0};
    bool reported = false;
    fl_err err = FL_ERR_INIT;

    while (fl_clock_mono_ms(clock) - start < seconds * 1000LL &&
           sigtimedwait(term, NULL, &zero) < 0) {
        fl_kafka_msg *m = NULL;
        if (fl_kafka_consumer_poll(c, 100, &m, &err) != FL_OK) {
            return fail("poll", &err);
        }
        if (!reported && fl_kafka_consumer_assigned(c) > 0) {
            reported = true;
            emit(json_pack("{s:s,s:i,s:I}", "event", "assigned", "partitions",
                           fl_kafka_consumer_assigned(c), "ms",
                           (json_int_t)(fl_clock_mono_ms(clock) - start)));
        }
        if (m) {
            report_message(c, m);
            fl_kafka_msg_free(m);
        }
    }
    return 0;
}

static int consume(const fl_config *cfg, char **argv)
{
    fl_config_engine engine = cfg->engine;
    const char *topics[1] = {argv[2]};
    fl_kafka_consumer *c = NULL;
    fl_err err = FL_ERR_INIT;
    sigset_t term;
    int status;

    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, NULL); /* before librdkafka starts its threads */
    engine.group = argv[0];
    engine.instance_id = argv[1];
    if (fl_kafka_consumer_open(&c, &cfg->kafka, &engine, topics, 1, &err) != FL_OK) {
        return fail("open", &err);
    }
    status = consume_loop(c, &term, (int)strtol(argv[3], NULL, 10));
    fl_kafka_consumer_close(c, 10000);
    emit(json_pack("{s:s}", "event", "closed"));
    return status;
}

int main(int argc, char **argv)
{
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;
    int status = 2;

    fl_log_set_level(FL_WARN); /* librdkafka's chatter goes to stderr as JSON lines */
    if (argc < 3 || fl_config_load(&cfg, argv[1], NULL, NULL, 0, &err) != FL_OK) {
        fprintf(stderr, "usage: kafka_probe CONFIG produce|consume ARGS... %s\n", err.msg);
        return 2;
    }
    if (!strcmp(argv[2], "produce") && argc == 6) {
        status = produce(cfg, argv + 3);
    } else if (!strcmp(argv[2], "consume") && argc == 7) {
        status = consume(cfg, argv + 3);
    }
    fl_config_free(cfg);
    return status;
}
