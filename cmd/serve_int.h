/* cmd/serve_int.h -- what cmd/serve.c (store, producer, health, HTTP, the command) and
 * cmd/serve_modules.c (engine, timers, relay, activities) share: the process's modules
 * and their fl_app start/stop adapters. Private to `flowd serve`.
 *
 * Thread-safety: the main thread only (fl_app calls the adapters there). */
#ifndef FL_CMD_SERVE_INT_H
#define FL_CMD_SERVE_INT_H

#include "api/server.h"
#include "consumers/engine.h"
#include "core/app.h"
#include "core/health.h"
#include "core/kafka.h"
#include "core/migrate.h"
#include "core/pg.h"
#include "engine/activities.h"
#include "engine/analytics.h"
#include "engine/llm/chain.h"
#include "engine/relay.h"
#include "engine/store.h"
#include "engine/timers.h"

typedef struct fl_serve {
    const fl_config *cfg;
    fl_migration_list migrations;
    fl_pg_pool *pool;
    fl_store *store;
    fl_kafka_producer *producer;
    fl_engine *engine;
    fl_timers *timers;
    fl_relay *relay;
    fl_llm_chain *llm; /* one per process: the activity worker's and the gateway's */
    fl_activities *activities;
    fl_analytics *analytics;
    fl_health *health;
    fl_server *server;
} fl_serve;

/* Registers engine, timers, relay and activities with app, each only when its role is
 * enabled, in R9.2 order (after the producer, before health); before them the LLM chain,
 * when the api or activities role will use it. */
void fl_serve__add_workers(fl_app *app, fl_serve *s);

/* The readiness check of the engine role: partitions assigned. */
fl_rc fl_serve__check_engine(void *arg, fl_err *err);

#endif
