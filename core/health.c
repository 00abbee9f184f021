/* core/health.c -- the readiness prober thread. */
#include "core/health.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

#define MAX_CHECKS 8

typedef struct check {
    const char *name;
    fl_health_fn fn;
    void *arg;
    bool ran;        /* guarded by mu */
    bool ok;         /* guarded by mu */
    char error[256]; /* guarded by mu */
} check;

struct fl_health {
    int interval_ms;
    check checks[MAX_CHECKS];
    size_t nchecks;
    pthread_t thread;
    bool started;
    atomic_bool stopping;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* signalled by stop; CLOCK_MONOTONIC */
};

void fl_health_new(fl_health **out, int interval_ms)
{
    fl_health *h = fl_xcalloc(1, sizeof(*h));

    h->interval_ms = interval_ms;
    pthread_mutex_init(&h->mu, NULL);
    fl_clock_cond_init(&h->wake);
    *out = h;
}

void fl_health_free(fl_health *h)
{
    if (!h) {
        return;
    }
    fl_health_stop(h);
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

void fl_health_add(fl_health *h, const char *name, fl_health_fn fn, void *arg)
{
    fl_assert(h->nchecks < MAX_CHECKS && !h->started);
    h->checks[h->nchecks++] = (check){.name = name, .fn = fn, .arg = arg};
}

/* Runs one check outside the lock and records the outcome; logs only on a change so a
 * long outage is one line, not one per second. */
static void run_check(fl_health *h, check *c)
{
    fl_err err = FL_ERR_INIT;
    bool ok = c->fn(c->arg, &err) == FL_OK;
    bool changed;

    pthread_mutex_lock(&h->mu);
    changed = !c->ran || c->ok != ok || (!ok && strcmp(c->error, err.msg) != 0);
    c->ran = true;
    c->ok = ok;
    snprintf(c->error, sizeof(c->error), "%s", ok ? "" : err.msg);
    pthread_mutex_unlock(&h->mu);
    if (changed && ok) {
        fl_log(FL_INFO, "health.up", FL_STR("check", c->name));
    } else if (changed) {
        fl_log(FL_WARN, "health.down", FL_STR("check", c->name), FL_STR("error", err.msg));
    }
}

static void run_all(fl_health *h)
{
    for (size_t i = 0; i < h->nchecks && !atomic_load(&h->stopping); i++) {
        run_check(h, &h->checks[i]);
    }
}

static void *health_main(void *arg)
{
    fl_health *h = arg;
    struct timespec until;

    while (!atomic_load(&h->stopping)) {
        until = fl_clock_mono_deadline(h->interval_ms);
        pthread_mutex_lock(&h->mu);
        while (!atomic_load(&h->stopping) && pthread_cond_timedwait(&h->wake, &h->mu, &until) == 0)
            ;
        pthread_mutex_unlock(&h->mu);
        run_all(h);
    }
    return NULL;
}

fl_rc fl_health_start(fl_health *h, fl_err *err)
{
    run_all(h);
    if (pthread_create(&h->thread, NULL, health_main, h) != 0) {
        return fl_err_set(err, FL_EINTERNAL, "could not start the health prober thread");
    }
    h->started = true;
    return FL_OK;
}

void fl_health_stop(fl_health *h)
{
    if (!h || !h->started) {
        return;
    }
    pthread_mutex_lock(&h->mu);
    atomic_store(&h->stopping, true);
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    h->started = false;
}

bool fl_health_ready(fl_health *h)
{
    bool ready = true;

    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->nchecks; i++) {
        ready = ready && h->checks[i].ran && h->checks[i].ok;
    }
    pthread_mutex_unlock(&h->mu);
    return ready;
}

json_t *fl_health_snapshot(fl_health *h)
{
    json_t *checks = json_object();
    bool ready = true;

    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->nchecks; i++) {
        const check *c = &h->checks[i];
        json_t *o = json_pack("{s:s}", "status", !c->ran ? "unknown" : c->ok ? "up" : "down");
        if (c->ran && !c->ok) {
            json_object_set_new(o, "error", json_string(c->error));
        }
        json_object_set_new(checks, c->name, o);
        ready = ready && c->ran && c->ok;
    }
    pthread_mutex_unlock(&h->mu);
    return json_pack("{s:s,s:o}", "status", ready ? "ready" : "unavailable", "checks", checks);
}
