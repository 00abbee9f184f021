/* cmd/serve_modules.c -- the fl_app adapters of the background workers of `flowd serve`:
 * the engine loop, the timer poller, the outbox relay and the activity worker. Each is
 * created in its start adapter (it needs the store and producer that start before it)
 * and freed in its stop adapter, so a process never holds a worker its roles exclude.
 *
 * Thread-safety: the main thread only. */
#include "cmd/serve_int.h"
#include "core/log.h"

static fl_rc engine_start(void *self, fl_err *err)
{
    fl_serve *s = self;
    fl_rc rc = fl_engine_new(&s->engine, s->cfg, s->pool, s->store, err);

    return rc == FL_OK ? fl_engine_start(s->engine, err) : rc;
}

static void engine_stop(void *self)
{
    fl_serve *s = self;

    fl_engine_free(s->engine); /* stops first: joins the loop, commits stored offsets */
    s->engine = NULL;
}

fl_rc fl_serve__check_engine(void *arg, fl_err *err)
{
    fl_serve *s = arg;

    if (!s->engine || fl_engine_assigned(s->engine) <= 0) {
        return fl_err_set(err, FL_EUNAVAIL, "no engine partitions assigned");
    }
    return FL_OK;
}

static fl_rc timers_start(void *self, fl_err *err)
{
    fl_serve *s = self;
    fl_rc rc = fl_timers_new(&s->timers, s->cfg, s->pool, err);

    return rc == FL_OK ? fl_timers_start(s->timers, err) : rc;
}

static void timers_stop(void *self)
{
    fl_serve *s = self;

    fl_timers_free(s->timers);
    s->timers = NULL;
}

static fl_rc relay_start(void *self, fl_err *err)
{
    fl_serve *s = self;
    fl_rc rc = fl_relay_new(&s->relay, s->cfg, s->pool, s->producer, err);

    return rc == FL_OK ? fl_relay_start(s->relay, err) : rc;
}

static void relay_stop(void *self)
{
    fl_serve *s = self;

    fl_relay_free(s->relay);
    s->relay = NULL;
}

/* One chain for the process, so `call: llm` and the OpenAI-compatible gateway share the
 * providers' breakers, rate limits and daily quotas instead of each counting alone. */
static fl_rc llm_start(void *self, fl_err *err)
{
    fl_serve *s = self;
    fl_rc rc = fl_llm_chain_new(&s->llm, &s->cfg->llm, fl_clock_system(), err);

    if (rc == FL_OK) { /* the profiles `with.agent` names (the API's directory) */
        rc = fl_llm_chain_load_agents(s->llm, &s->cfg->engine, err);
    }
    return rc;
}

static void llm_stop(void *self)
{
    fl_serve *s = self;

    fl_llm_chain_free(s->llm);
    s->llm = NULL;
}

static fl_rc activities_start(void *self, fl_err *err)
{
    fl_serve *s = self;
    fl_rc rc = fl_activities_new(&s->activities, s->cfg, s->pool, s->llm, err);

    return rc == FL_OK ? fl_activities_start(s->activities, err) : rc;
}

static void activities_stop(void *self)
{
    fl_serve *s = self;

    fl_activities_free(s->activities);
    s->activities = NULL;
}

/* The business.analytics worker runs with the timers role: both are periodic passes
 * over Postgres that write the outbox, and neither needs Kafka. */
static fl_rc analytics_start(void *self, fl_err *err)
{
    fl_serve *s = self;
    fl_rc rc = fl_analytics_new(&s->analytics, s->cfg, s->pool, err);

    return rc == FL_OK ? fl_analytics_start(s->analytics, err) : rc;
}

static void analytics_stop(void *self)
{
    fl_serve *s = self;

    fl_analytics_free(s->analytics);
    s->analytics = NULL;
}

void fl_serve__add_workers(fl_app *app, fl_serve *s)
{
    if (fl_config_has_role(s->cfg, "api") || fl_config_has_role(s->cfg, "activities")) {
        fl_app_add(app, "llm", llm_start, llm_stop, s);
    }
    if (fl_config_has_role(s->cfg, "engine")) {
        fl_app_add(app, "engine", engine_start, engine_stop, s);
    }
    if (fl_config_has_role(s->cfg, "timers")) {
        fl_app_add(app, "timers", timers_start, timers_stop, s);
        fl_app_add(app, "analytics", analytics_start, analytics_stop, s);
    }
    if (fl_config_has_role(s->cfg, "relay")) {
        fl_app_add(app, "relay", relay_start, relay_stop, s);
    }
    if (fl_config_has_role(s->cfg, "activities")) {
        fl_app_add(app, "activities", activities_start, activities_stop, s);
    }
}
