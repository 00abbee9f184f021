/* tests/system/activities_probe.c -- runs engine/activities against the real PostgreSQL
 * for the system tests (test_activities.py), until stdin closes or SECONDS pass.
 *
 *   activities_probe DBURL SECONDS [KEY=VALUE ...]   config flags, e.g. activities.timeout=1s
 *
 * Logs go to stderr as usual; on stdout it prints {"event":"started"} once the worker
 * runs and {"event":"stopped","ms":N} after the stop. Errors are
 * {"event":"error","rc":"FL_...","error":"..."} with exit status 1.
 * Test code, not product code: printing on stdout is its purpose. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/pg.h"
#include "engine/activities.h"

#define MAX_FLAGS 16

static void emit(json_t *o)
{
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

    printf("%s\n", line);
    fflush(stdout);
    free(line);
    json_decref(o);
}

static int fail(const fl_err *err)
{
    emit(json_pack("{s:s,s:s,s:s}", "event", "error", "rc", fl_rc_name(err->code), "error",
                   err->msg));
    return 1;
}

/* argv[3..] "key=value" -> flags; argv strings are split in place. */
static size_t flags_of(int argc, char **argv, fl_config_flag *flags)
{
    size_t n = 0;

    flags[n++] = (fl_config_flag){"db.url", argv[1]};
    for (int i = 3; i < argc && n < MAX_FLAGS; i++) {
        char *eq = strchr(argv[i], '=');

        if (eq) {
            *eq = '\0';
            flags[n++] = (fl_config_flag){argv[i], eq + 1};
        }
    }
    return n;
}

static void run_for(long seconds)
{
    int64_t end = fl_clock_mono_ms(fl_clock_system()) + seconds * 1000;
    struct timespec tick = {0, 50 * 1000 * 1000};

    while (fl_clock_mono_ms(fl_clock_system()) < end) {
        nanosleep(&tick, NULL);
    }
}

int main(int argc, char **argv)
{
    static char *const envp[] = {NULL};
    fl_config_flag flags[MAX_FLAGS];
    fl_config *cfg = NULL;
    fl_pg_pool *pool = NULL;
    fl_activities *a = NULL;
    fl_llm_chain *llm = NULL;
    fl_err err = {0};
    int status = 1;
    int64_t t;

    curl_global_init(CURL_GLOBAL_DEFAULT); /* main's job (R8.1) */
    fl_log_set_level(FL_INFO);
    if (argc < 3) {
        fprintf(stderr, "usage: activities_probe DBURL SECONDS [KEY=VALUE ...]\n");
        goto out;
    }
    if (fl_config_load(&cfg, NULL, envp, flags, flags_of(argc, argv, flags), &err) != FL_OK ||
        fl_pg_pool_open(&pool, &cfg->db, &err) != FL_OK ||
        fl_llm_chain_new(&llm, &cfg->llm, fl_clock_system(), &err) != FL_OK ||
        fl_llm_chain_load_agents(llm, &cfg->engine, &err) != FL_OK ||
        fl_activities_new(&a, cfg, pool, llm, &err) != FL_OK ||
        fl_activities_start(a, &err) != FL_OK) {
        status = fail(&err);
        goto out;
    }
    emit(json_pack("{s:s}", "event", "started"));
    run_for(strtol(argv[2], NULL, 10));
    t = fl_clock_mono_ms(fl_clock_system());
    fl_activities_stop(a);
    fl_activities_stop(a); /* idempotent */
    emit(json_pack("{s:s,s:I}", "event", "stopped", "ms",
                   (json_int_t)(fl_clock_mono_ms(fl_clock_system()) - t)));
    status = 0;
out:
    fl_activities_free(a);
    fl_llm_chain_free(llm);
    fl_pg_pool_close(pool);
    fl_config_free(cfg);
    curl_global_cleanup();
    return status;
}
