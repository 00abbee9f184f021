/* tests/system/relay_probe.c -- runs engine/relay against the real PostgreSQL and Kafka
 * for the system tests (test_relay.py), the way `flowd serve --roles relay` would: pool
 * and producer from the configuration, then the relay until SIGTERM or SIGINT. It
 * prints one JSON object per line on stdout; the relay's own logs go to stderr.
 *
 *   relay_probe CONFIG   -> {"event":"started"} ... {"event":"stopped"}
 *                           {"event":"error","what":"...","error":"..."} and exit 1
 *
 * Test code, not product code: printing on stdout is its purpose. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/config.h"
#include "core/kafka.h"
#include "core/log.h"
#include "core/pg.h"
#include "engine/relay.h"

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

static int run(const fl_config *cfg, const sigset_t *stop)
{
    fl_pg_pool *pool = NULL;
    fl_kafka_producer *producer = NULL;
    fl_relay *relay = NULL;
    fl_err err = FL_ERR_INIT;
    int status = 0;
    int sig;

    if (fl_pg_pool_open(&pool, &cfg->db, &err) != FL_OK) {
        status = fail("pool", &err);
    } else if (fl_kafka_producer_open(&producer, &cfg->kafka, &err) != FL_OK) {
        status = fail("producer", &err);
    } else if (fl_relay_new(&relay, cfg, pool, producer, &err) != FL_OK ||
               fl_relay_start(relay, &err) != FL_OK) {
        status = fail("relay", &err);
    } else {
        emit(json_pack("{s:s}", "event", "started"));
        sigwait(stop, &sig);
        fl_relay_stop(relay);
        emit(json_pack("{s:s}", "event", "stopped"));
    }
    fl_relay_free(relay); /* stops before the producer and pool go, as fl_app would */
    fl_kafka_producer_close(producer, 5000);
    fl_pg_pool_close(pool);
    return status;
}

int main(int argc, char **argv)
{
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;
    sigset_t stop;
    int status;

    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL); /* before any thread exists */
    if (argc != 2 || fl_config_load(&cfg, argv[1], NULL, NULL, 0, &err) != FL_OK) {
        fprintf(stderr, "usage: relay_probe CONFIG %s\n", err.msg);
        return 2;
    }
    fl_log_set_level(FL_DEBUG);
    status = run(cfg, &stop);
    fl_config_free(cfg);
    return status;
}
