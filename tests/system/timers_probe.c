/* tests/system/timers_probe.c -- runs the timer poller (engine/timers.c) against the real
 * PostgreSQL for the system tests (test_timers.py), without the rest of `flowd serve`.
 *
 *   timers_probe CONFIG SECONDS   poll for SECONDS (0: until SIGTERM/SIGINT), then stop
 *
 * It prints {"event":"started"} on stdout once the poller runs and {"event":"stopped"}
 * after a clean stop; errors are {"event":"error",...} and exit status 1. The poller's own
 * JSON log lines go to stderr as in flowd.
 *
 * Test code, not product code: printing on stdout is its purpose. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/config.h"
#include "core/log.h"
#include "core/pg.h"
#include "engine/timers.h"

extern char **environ;

static void emit(json_t *o)
{
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

    printf("%s\n", line);
    fflush(stdout);
    free(line);
    json_decref(o);
}

/* Waits for SIGTERM/SIGINT, or `seconds` when > 0. */
static void wait_stop(const sigset_t *stop, long seconds)
{
    struct timespec limit = {.tv_sec = seconds, .tv_nsec = 0};
    int sig = 0;

    if (seconds > 0) {
        sigtimedwait(stop, NULL, &limit);
    } else {
        sigwait(stop, &sig);
    }
}

int main(int argc, char **argv)
{
    fl_config *cfg = NULL;
    fl_pg_pool *pool = NULL;
    fl_timers *timers = NULL;
    fl_err err = FL_ERR_INIT;
    sigset_t stop;
    int status = 1;

    if (argc != 3) {
        fl_err_set(&err, FL_EINVAL, "usage: timers_probe CONFIG SECONDS");
        goto out;
    }
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL); /* before the poller thread exists */
    fl_log_set_level(FL_DEBUG);
    if (fl_config_load(&cfg, argv[1], environ, NULL, 0, &err) != FL_OK ||
        fl_pg_pool_open(&pool, &cfg->db, &err) != FL_OK ||
        fl_timers_new(&timers, cfg, pool, &err) != FL_OK ||
        fl_timers_start(timers, &err) != FL_OK) {
        goto out;
    }
    emit(json_pack("{s:s}", "event", "started"));
    wait_stop(&stop, strtol(argv[2], NULL, 10));
    fl_timers_stop(timers);
    emit(json_pack("{s:s}", "event", "stopped"));
    status = 0;
out:
    if (err.code != FL_OK) {
        emit(json_pack("{s:s,s:s,s:s}", "event", "error", "rc", fl_rc_name(err.code), "error",
                       err.msg));
    }
    fl_timers_free(timers);
    fl_pg_pool_close(pool);
    fl_config_free(cfg);
    return status;
}
