/* cmd/serve.c -- `flowd serve`: wires the modules into an fl_app and waits for a signal.
 *
 * Start order (R9.2): store (Postgres pool + schema check + engine store) -> producer
 * (Kafka) -> llm (the process's one provider chain, when api or activities runs) -> engine
 * -> timers -> relay -> activities (cmd/serve_modules.c; each only when its role is
 * enabled) -> health prober -> HTTP (role api only). Postgres or Kafka being down at start is not fatal: flowd
 * starts, answers /readyz with 503 and recovers by itself. A schema that is known to be
 * wrong (unmigrated, behind, newer) is fatal: serving on it would corrupt data. */
#include <signal.h>
#include <stdio.h>

#include "cmd/cli.h"
#include "cmd/serve_int.h"
#include "core/log.h"

typedef fl_serve serve;

/* The engine store's settings from the configuration's topics. */
static fl_store_opts store_opts(const fl_config *cfg)
{
    fl_store_opts o = FL_STORE_OPTS_INIT;

    o.default_topic = cfg->kafka.topics.flowd_events;
    o.workflow_events_topic = cfg->kafka.topics.workflow_events;
    o.dead_letter_topic = cfg->kafka.topics.dead_letter;
    o.acquire_timeout_ms = cfg->db.connect_timeout_ms;
    return o;
}

/* ---- store -------------------------------------------------------------------------- */

static fl_rc store_start(void *self, fl_err *err)
{
    serve *s = self;
    fl_err ping = FL_ERR_INIT;
    fl_store_opts opts = store_opts(s->cfg);
    fl_rc rc = fl_pg_pool_open(&s->pool, &s->cfg->db, err);

    if (rc == FL_OK) {
        rc = fl_store_open(&s->store, s->pool, &opts, err);
    }
    if (rc != FL_OK) {
        return rc;
    }
    if (fl_pg_ping(s->pool, s->cfg->db.connect_timeout_ms, &ping) != FL_OK) {
        fl_log(FL_WARN, "store.unavailable", FL_STR("error", ping.msg));
        return FL_OK; /* readiness reports it; the pool reconnects when Postgres returns */
    }
    return fl_migrate_check(s->pool, &s->migrations, s->cfg->db.connect_timeout_ms, err);
}

static void store_stop(void *self)
{
    serve *s = self;

    fl_store_close(s->store);
    s->store = NULL;
    fl_pg_pool_close(s->pool);
    s->pool = NULL;
}

/* ---- producer ----------------------------------------------------------------------- */

static fl_rc producer_start(void *self, fl_err *err)
{
    serve *s = self;
    return fl_kafka_producer_open(&s->producer, &s->cfg->kafka, err);
}

static void producer_stop(void *self)
{
    serve *s = self;

    fl_kafka_producer_close(s->producer, s->cfg->shutdown_timeout_ms / 2);
    s->producer = NULL;
}

/* ---- health ------------------------------------------------------------------------- */

static fl_rc check_postgres(void *arg, fl_err *err)
{
    serve *s = arg;
    return fl_pg_ping(s->pool, s->cfg->db.connect_timeout_ms, err);
}

static fl_rc check_schema(void *arg, fl_err *err)
{
    serve *s = arg;
    return fl_migrate_check(s->pool, &s->migrations, s->cfg->db.connect_timeout_ms, err);
}

static fl_rc check_kafka(void *arg, fl_err *err)
{
    serve *s = arg;
    return fl_kafka_check(s->producer, s->cfg->kafka.metadata_timeout_ms, err);
}

static fl_rc health_start(void *self, fl_err *err)
{
    serve *s = self;

    fl_health_new(&s->health, s->cfg->health_interval_ms);
    fl_health_add(s->health, "postgres", check_postgres, s);
    fl_health_add(s->health, "schema", check_schema, s);
    fl_health_add(s->health, "kafka", check_kafka, s);
    if (s->engine) {
        fl_health_add(s->health, "engine", fl_serve__check_engine, s);
    }
    return fl_health_start(s->health, err);
}

static void health_stop(void *self)
{
    serve *s = self;

    fl_health_free(s->health);
    s->health = NULL;
}

/* ---- HTTP --------------------------------------------------------------------------- */

static fl_rc http_start(void *self, fl_err *err)
{
    serve *s = self;
    fl_server_deps deps = {.cfg = s->cfg,
                           .pool = s->pool,
                           .producer = s->producer,
                           .health = s->health,
                           .llm = s->llm};

    return fl_server_start(&s->server, &deps, err);
}

static void http_stop(void *self)
{
    serve *s = self;

    fl_server_stop(s->server);
    s->server = NULL;
}

/* ---- the command -------------------------------------------------------------------- */

static void log_config(const fl_config *cfg)
{
    fl_buf dump;

    fl_buf_init(&dump, 1 << 20);
    if (fl_config_dump(cfg, &dump, NULL) == FL_OK) {
        fl_log(FL_INFO, "config.loaded", FL_STR("file", cfg->path), FL_STR("config", dump.data));
    }
    fl_buf_deinit(&dump);
}

static int run(const fl_cli *cli, const fl_config *cfg)
{
    serve s = {.cfg = cfg, .migrations = fl_migrate_embedded()};
    fl_app *app;
    fl_err err = FL_ERR_INIT;
    int sig = 0;
    fl_rc rc;

    fl_app_new(&app, cfg->shutdown_timeout_ms);
    fl_app_add(app, "store", store_start, store_stop, &s);
    fl_app_add(app, "producer", producer_start, producer_stop, &s);
    fl_serve__add_workers(app, &s);
    fl_app_add(app, "health", health_start, health_stop, &s);
    if (fl_config_has_role(cfg, "api")) {
        fl_app_add(app, "http", http_start, http_stop, &s);
    }
    rc = fl_app_start(app, &err);
    if (rc == FL_OK) {
        fl_log(FL_INFO, "server.started");
        sigwait(cli->stop_signals, &sig);
        fl_log(FL_INFO, "server.stopping", FL_INT("signal", sig));
    } else {
        fl_log(FL_ERROR, "server.failed", FL_STR("error", err.msg));
    }
    fl_app_free(app); /* stops what runs, reverse order, bounded by shutdown_timeout */
    fl_log(FL_INFO, rc == FL_OK ? "server.stopped" : "server.exited");
    return rc == FL_OK ? FL_EXIT_OK : FL_EXIT_FAIL;
}

int fl_cmd_serve(const fl_cli *cli)
{
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;
    int status;

    if (fl_cli_load_config(cli, &cfg, &err) != FL_OK) {
        fl_log(FL_ERROR, "config.invalid", FL_STR("error", err.msg));
        return FL_EXIT_FAIL;
    }
    log_config(cfg);
    status = run(cli, cfg);
    fl_config_free(cfg);
    return status;
}
