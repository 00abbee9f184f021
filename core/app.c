/* core/app.c -- the module list and the shutdown watchdog. */
#include "core/app.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

#define MAX_MODULES       16
#define EXIT_STOP_TIMEOUT 70 /* EX_SOFTWARE */

typedef struct module {
    const char *name;
    fl_app_start_fn start;
    fl_app_stop_fn stop;
    void *self;
    bool started;
} module;

struct fl_app {
    module modules[MAX_MODULES];
    size_t nmodules;
    int shutdown_timeout_ms;
    pthread_mutex_t mu;
    pthread_cond_t done_cv; /* CLOCK_MONOTONIC */
    bool done;              /* guarded by mu: the stop finished in time */
};

void fl_app_new(fl_app **out, int shutdown_timeout_ms)
{
    fl_app *app = fl_xcalloc(1, sizeof(*app));

    app->shutdown_timeout_ms = shutdown_timeout_ms;
    pthread_mutex_init(&app->mu, NULL);
    fl_clock_cond_init(&app->done_cv);
    *out = app;
}

void fl_app_free(fl_app *app)
{
    if (!app) {
        return;
    }
    fl_app_stop(app);
    pthread_cond_destroy(&app->done_cv);
    pthread_mutex_destroy(&app->mu);
    free(app);
}

void fl_app_add(fl_app *app, const char *name, fl_app_start_fn start, fl_app_stop_fn stop,
                void *self)
{
    fl_assert(app->nmodules < MAX_MODULES);
    app->modules[app->nmodules++] = (module){name, start, stop, self, false};
}

static void stop_modules(fl_app *app)
{
    for (size_t i = app->nmodules; i-- > 0;) {
        module *m = &app->modules[i];
        if (!m->started) {
            continue;
        }
        m->stop(m->self);
        m->started = false;
        fl_log(FL_INFO, "module.stopped", FL_STR("module", m->name));
    }
}

fl_rc fl_app_start(fl_app *app, fl_err *err)
{
    for (size_t i = 0; i < app->nmodules; i++) {
        module *m = &app->modules[i];
        fl_rc rc = m->start(m->self, err);
        if (rc != FL_OK) {
            fl_err_prefix(err, "could not start %s", m->name);
            stop_modules(app);
            return rc;
        }
        m->started = true;
        fl_log(FL_INFO, "module.started", FL_STR("module", m->name));
    }
    return FL_OK;
}

/* Waits for the stop to finish; past the bound it ends the process: a stuck stop must
 * not keep a process manager waiting, and SIGKILL would lose the log line. */
static void *watchdog_main(void *arg)
{
    fl_app *app = arg;
    struct timespec until = fl_clock_mono_deadline(app->shutdown_timeout_ms);

    pthread_mutex_lock(&app->mu);
    while (!app->done && pthread_cond_timedwait(&app->done_cv, &app->mu, &until) == 0)
        ;
    if (!app->done) {
        fl_log(FL_ERROR, "shutdown.timeout", FL_INT("timeout_ms", app->shutdown_timeout_ms));
        _exit(EXIT_STOP_TIMEOUT);
    }
    pthread_mutex_unlock(&app->mu);
    return NULL;
}

void fl_app_stop(fl_app *app)
{
    pthread_t watchdog;
    bool watched;

    if (!app) {
        return;
    }
    app->done = false;
    watched = pthread_create(&watchdog, NULL, watchdog_main, app) == 0;
    stop_modules(app);
    pthread_mutex_lock(&app->mu);
    app->done = true;
    pthread_cond_signal(&app->done_cv);
    pthread_mutex_unlock(&app->mu);
    if (watched) {
        pthread_join(watchdog, NULL);
    }
}
