/* engine/activities.c -- the activity worker's lifecycle and its thread (see
 * activities.h).
 *
 * Design: three threads. The claim thread (activities_pump.c) claims due rows a little
 * ahead of the free slots, the store thread stores outcomes in batches, and the worker
 * thread here (with the HTTP client's thread, four in all) never
 * waits for PostgreSQL on the calls' path: each pass it takes the answers that came back
 * (an LLM call may send its next attempt), hands the finished outcomes over, and starts
 * claimed rows while concurrency slots are free: `http` on this module's curl-multi
 * client (its own thread), `llm` through the provider chain (engine/llm/chain.h: its attempts go out on
 * the same curl-multi client, its backoff waits sit in `delayed` until due, `local`
 * answers at once) and `flowd.purge` and the `flowd.directory.*` calls (SQL) inline. HTTP completions arrive on the
 * client's thread, which only moves the response into the job and queues it here
 * (mu + cv): Postgres is never touched from that thread, and an LLM call's decisions
 * (retry, fall back, account) are all taken on this one.
 *
 * At least once: a claim marks rows 'running' before the call starts. A crash leaves
 * them so; every few seconds the claim thread puts back to pending the running rows older than
 * their timeout plus FL_ACTIVITIES_STALE_GRACE_MS, and they run again with the same
 * idempotency key. A stop waits for in-flight calls for at most STOP_WAIT_MS and leaves
 * the unfinished ones 'running' for that same path; claimed rows not started yet go back
 * to pending. */
#include "engine/activities_int.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"

#include <stdlib.h>
#include <string.h>

#define STOP_WAIT_MS 2000

fl_rc fl_activities_new(fl_activities **out, const fl_config *cfg, fl_pg_pool *pool,
                        fl_llm_chain *llm, fl_err *err)
{
    fl_activities *a = fl_xcalloc(1, sizeof(*a));
    fl_http_opts opts = FL_HTTP_OPTS_INIT;

    opts.default_timeout_ms = cfg->workers.activities_timeout_ms;
    opts.default_max_response_bytes = (size_t)cfg->workers.activities_max_response_bytes;
    opts.stop_grace_ms = 100; /* the worker already waited STOP_WAIT_MS for them */
    /* an HTTP/1.1 server needs one connection per call in flight: a lower cap would queue
     * calls inside curl while their timeout runs (HTTP/2 multiplexes below it anyway) */
    opts.max_host_connections = cfg->workers.activities_concurrency;
    opts.user_agent = "flowd-activities";
    a->cfg = cfg;
    a->pool = pool;
    a->llm = llm;
    a->jitter_seed = (uint64_t)fl_clock_mono_ms(fl_clock_system()) ^ (uint64_t)(uintptr_t)a;
    atomic_init(&a->stopping, false);
    pthread_mutex_init(&a->mu, NULL);
    fl_clock_cond_init(&a->cv);
    fl_clock_cond_init(&a->claim_cv);
    fl_clock_cond_init(&a->store_cv);
    fl_http_new(&a->http, &opts);
    (void)err; /* nothing above fails; err stays in the signature every module's _new has */
    *out = a;
    return FL_OK;
}

/* On the HTTP client's thread: move the answer into the job and hand it back. */
static void http_done(void *arg, fl_http_response *resp)
{
    fl_act_job *job = arg;
    fl_activities *a = job->owner;

    fl_activities__deltas_end(job); /* queued before the job: the text precedes its result */
    job->resp = *resp;
    memset(resp, 0, sizeof(*resp)); /* every owned field now belongs to the job */
    pthread_mutex_lock(&a->mu);
    job->next = a->done;
    a->done = job;
    if (!a->wake) { /* else a signal is on its way and the worker takes the whole list */
        a->wake = true;
        pthread_cond_signal(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
}

/* Queues the outcome for the end of the pass (hand_over). */
static void finish(fl_activities *a, fl_act_job *job)
{
    if (a->n_finished == a->cap_finished) {
        a->cap_finished = a->cap_finished ? a->cap_finished * 2 : 64;
        a->finished = fl_xrealloc(a->finished, (size_t)a->cap_finished * sizeof(*a->finished));
    }
    a->finished[a->n_finished++] = job;
}

/* Hands the pass's outcomes to the store thread and the in-flight count to the claim thread. */
static void hand_over(fl_activities *a)
{
    fl_activities__handover(a, a->finished, a->n_finished, a->in_flight);
    a->n_finished = 0;
}

static void llm_advance(fl_activities *a, fl_act_job *job);

static void handle_done(fl_activities *a)
{
    fl_act_job *list;

    fl_activities__deltas_send(a); /* streamed text first: it precedes any result */
    pthread_mutex_lock(&a->mu);
    list = a->done;
    a->done = NULL;
    a->wake = false;
    pthread_mutex_unlock(&a->mu);
    while (list) {
        fl_act_job *job = list;

        list = job->next;
        if (job->llm) {
            fl_llm_call_on_response(job->llm, &job->resp);
            fl_http_response_deinit(&job->resp);
            llm_advance(a, job); /* still in flight until it finishes */
            continue;
        }
        a->in_flight--;
        fl_activities__http_outcome(&job->resp, fl_clock_now_ms(fl_clock_system()), &job->outcome);
        fl_metrics_activity("http", (double)job->resp.total_ms / 1e3);
        finish(a, job);
    }
}

/* On the HTTP client's thread: an LLM answer's bytes, parsed as they arrive. */
static fl_rc llm_data(void *arg, const char *data, size_t len)
{
    fl_act_job *job = arg;

    return fl_llm_call_on_data(job->llm, data, len);
}

/* Drives an LLM call until it sends, waits or is done. The job counts as in flight from
 * its start to its finish, waits included. */
static void llm_advance(fl_activities *a, fl_act_job *job)
{
    fl_llm_step step;
    fl_err err = {0};

    fl_llm_call_next(job->llm, &step);
    if (step.kind == FL_LLM_STEP_SEND) {
        step.req.on_data = llm_data;
        if (fl_http_submit(a->http, &step.req, http_done, job, &err) == FL_OK) {
            return;
        }
        a->in_flight--;
        fl_activities__job_free(job); /* stopping: stays 'running', re-claimed later */
        return;
    }
    if (step.kind == FL_LLM_STEP_WAIT) {
        job->wake_ms = step.wake_ms;
        job->next = a->delayed;
        a->delayed = job;
        return;
    }
    a->in_flight--;
    fl_activities__llm_outcome(job->llm, &job->outcome);
    fl_metrics_activity("llm",
                        (double)(fl_clock_mono_ms(fl_clock_system()) - job->started_ms) / 1e3);
    finish(a, job);
}

static void start_llm(fl_activities *a, fl_act_job *job)
{
    fl_err err = {0};
    long timeout = job->timeout_ms > 0 ? job->timeout_ms : a->cfg->workers.activities_timeout_ms;

    job->started_ms = fl_clock_mono_ms(fl_clock_system());
    if (fl_llm_call_new(&job->llm, a->llm, job->args, job->idempotency_key, timeout, &err) !=
        FL_OK) {
        /* the same arguments would fail the same way: no retry */
        fl_activities__fail(&job->outcome, "llm.invalid_request", false, "%s", err.msg);
        job->outcome.retry_after_ms = -1;
        finish(a, job);
        return;
    }
    fl_activities__deltas_attach(a, job);
    a->in_flight++;
    llm_advance(a, job);
}

/* Resumes the LLM calls whose backoff is over; returns the next wake-up (monotonic), or
 * -1 when none waits. */
static int64_t run_delayed(fl_activities *a)
{
    int64_t now = fl_clock_mono_ms(fl_clock_system());
    int64_t next = -1;
    fl_act_job *list = a->delayed;

    a->delayed = NULL;
    while (list) {
        fl_act_job *job = list;

        list = job->next;
        if (job->wake_ms <= now) {
            llm_advance(a, job);
        } else {
            job->next = a->delayed;
            a->delayed = job;
        }
    }
    for (fl_act_job *j = a->delayed; j; j = j->next) {
        next = next < 0 || j->wake_ms < next ? j->wake_ms : next;
    }
    return next;
}

static void start_http(fl_activities *a, fl_act_job *job)
{
    fl_http_request req;
    fl_act_http_bufs bufs;
    fl_err err = {0};
    fl_rc rc;

    rc = fl_activities__http_request(job, a->cfg->workers.activities_timeout_ms, &req, &bufs, &err);
    if (rc == FL_OK) {
        rc = fl_http_submit(a->http, &req, http_done, job, &err);
    }
    fl_activities__http_bufs_deinit(&bufs); /* the client copied what it needs */
    if (rc == FL_OK) {
        a->in_flight++;
    } else if (rc == FL_EINVAL) {
        fl_activities__fail(&job->outcome, "http.invalid_request", false, "%s", err.msg);
        finish(a, job);
    } else {
        fl_activities__job_free(job); /* stopping: stays 'running', re-claimed later */
    }
}

static void start_job(fl_activities *a, fl_act_job *job)
{
    double t0 = fl_metrics_now();

    job->owner = a;
    fl_log(FL_DEBUG, "activity.started", FL_STR("activity", job->id), FL_STR("call", job->call),
           FL_INT("attempt", job->attempt));
    if (strcmp(job->call, "http") == 0) {
        start_http(a, job);
        return;
    }
    if (strcmp(job->call, "llm") == 0) {
        start_llm(a, job);
        return;
    }
    if (strcmp(job->call, "flowd.purge") == 0) {
        fl_activities__purge(a, job, &job->outcome);
    } else if (fl_activities__directory(a, job, &job->outcome)) {
        /* flowd.directory.search, flowd.business.update, flowd.memory.search: done */
    } else {
        fl_activities__fail(&job->outcome, "call.unknown", false, "cannot run unknown call \"%s\"",
                            job->call);
    }
    fl_metrics_activity(job->call, fl_metrics_now() - t0);
    finish(a, job);
}

/* Starts claimed rows while slots are free (the claim thread claims them ahead). */
static void start_ready(fl_activities *a)
{
    int free_slots = a->cfg->workers.activities_concurrency - a->in_flight;
    fl_act_job *list = free_slots > 0 ? fl_activities__take_ready(a, free_slots) : NULL;

    while (list) {
        fl_act_job *job = list;

        list = job->next;
        job->next = NULL;
        start_job(a, job);
    }
}

/* Sleeps until an HTTP answer, a stop, or ms pass. */
static void wait_for(fl_activities *a, int64_t ms)
{
    struct timespec deadline = fl_clock_mono_deadline(ms);

    pthread_mutex_lock(&a->mu);
    if (!a->wake && !atomic_load(&a->stopping)) {
        pthread_cond_timedwait(&a->cv, &a->mu, &deadline);
    }
    pthread_mutex_unlock(&a->mu);
}

/* Stopping: calls waiting for a retry stay 'running' and are re-claimed later. */
static void drop_delayed(fl_activities *a)
{
    while (a->delayed) {
        fl_act_job *job = a->delayed;

        a->delayed = job->next;
        a->in_flight--;
        fl_activities__job_free(job);
    }
}

/* Lets in-flight calls finish for up to STOP_WAIT_MS and stores their outcomes. */
static void drain(fl_activities *a)
{
    int64_t end = fl_clock_mono_ms(fl_clock_system()) + STOP_WAIT_MS;

    handle_done(a);
    drop_delayed(a);
    while (a->in_flight > 0) {
        int64_t left = end - fl_clock_mono_ms(fl_clock_system());

        if (left <= 0) {
            break;
        }
        pthread_mutex_lock(&a->mu);
        if (!a->wake) {
            struct timespec deadline = fl_clock_mono_deadline(left);

            pthread_cond_timedwait(&a->cv, &a->mu, &deadline);
        }
        pthread_mutex_unlock(&a->mu);
        handle_done(a);
        drop_delayed(a); /* a retry now would outlast the stop */
        hand_over(a);
    }
    hand_over(a);
}

static void *activities_main(void *arg)
{
    fl_activities *a = arg;

    pthread_setname_np(pthread_self(), "fl-activities"); /* seen in /proc, top -H, gdb */
    while (!atomic_load(&a->stopping)) {
        int64_t ms = a->cfg->workers.activities_interval_ms;
        int64_t wake;

        handle_done(a);
        wake = run_delayed(a);
        start_ready(a);
        hand_over(a);
        if (wake >= 0 && wake - fl_clock_mono_ms(fl_clock_system()) < ms) {
            ms = wake - fl_clock_mono_ms(fl_clock_system());
        }
        wait_for(a, ms > 0 ? ms : 0);
    }
    drop_delayed(a);
    drain(a);
    return NULL;
}

fl_rc fl_activities_start(void *activities, fl_err *err)
{
    fl_activities *a = activities;
    fl_rc rc;

    rc = fl_http_start(a->http, err);
    if (rc == FL_OK) {
        rc = fl_activities__db_start(a, err);
    }
    if (rc != FL_OK) {
        goto out;
    }
    if (pthread_create(&a->thread, NULL, activities_main, a) != 0) {
        rc = fl_err_set(err, FL_EINTERNAL, "could not start the activity worker thread");
        goto out;
    }
    a->started = true;
    fl_log(FL_INFO, "activities.started",
           FL_INT("concurrency", a->cfg->workers.activities_concurrency));
out:
    return rc;
}

void fl_activities_stop(void *activities)
{
    fl_activities *a = activities;
    fl_act_job *list;

    if (!a) {
        return;
    }
    atomic_store(&a->stopping, true);
    pthread_mutex_lock(&a->mu);
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_mutex_lock(&a->mu);
    a->claim_wake = true; /* it sees the stop and ends: no more claims */
    pthread_cond_signal(&a->claim_cv);
    pthread_mutex_unlock(&a->mu);
    if (a->started) {
        pthread_join(a->thread, NULL);
        a->started = false;
    }
    fl_activities__db_stop(a); /* stores the last outcomes, releases unstarted rows */
    fl_http_stop(a->http);     /* every accepted request has had its callback after this */
    pthread_mutex_lock(&a->mu);
    list = a->done;
    a->done = NULL;
    pthread_mutex_unlock(&a->mu);
    while (list) { /* cut short by the stop: left 'running', re-claimed later */
        fl_act_job *job = list;

        list = job->next;
        fl_activities__job_free(job);
    }
}

void fl_activities_free(fl_activities *activities)
{
    if (!activities) {
        return;
    }
    fl_activities_stop(activities);
    fl_activities__deltas_send(activities); /* frees what a stop left queued */
    fl_http_free(activities->http);
    free(activities->finished); /* empty: the worker handed everything over */
    free(activities->to_store); /* empty: the store thread stored everything */
    pthread_cond_destroy(&activities->claim_cv);
    pthread_cond_destroy(&activities->store_cv);
    pthread_cond_destroy(&activities->cv);
    pthread_mutex_destroy(&activities->mu);
    free(activities);
}
