/* engine/activities_pump.c -- the activity worker's two database threads: the claim
 * thread claims due rows a little ahead of the free slots (and every few seconds puts
 * back rows a dead process left 'running'); the store thread stores the outcomes the
 * worker thread hands over, in batches (one statement and one commit for many calls).
 *
 * Why threads of their own: a claim or a store is a round trip and a commit, tens of ms
 * for a thousand rows and more on a busy machine, and with thousands of calls in flight
 * completions arrive all the time. Done on the worker thread, every slot freed during a
 * round trip stayed empty until it ended (S4 lost 15 to 20 % of its throughput that way);
 * done one after the other on one thread, claims waited for stores. Here the worker
 * starts the next claimed row the moment a slot frees and never waits for PostgreSQL,
 * and claims and stores run side by side on two pooled connections.
 *
 * Claimed ahead: up to a quarter of the concurrency more rows than free slots are
 * claimed ('running', attempt + 1) before their call starts, so a freed slot needs no
 * round trip. They are started within moments; at a stop the unstarted ones go back to
 * pending with their attempt undone (if that write fails, the stale-row path re-runs
 * them later, as after a crash: at least once either way). */
#include "engine/activities_int.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define UNSTICK_EVERY_MS 5000
/* Outcomes per storing statement: one commit for many, a parameter of at most a few MB. */
#define FINISH_BATCH     500

static int prefetch(const fl_activities *a)
{
    int n = a->cfg->workers.activities_concurrency / 4;

    return n > 0 ? n : 1;
}

/* Rows to claim now: free slots plus the read-ahead, minus what is claimed already.
 * Caller holds mu. */
static int want_locked(const fl_activities *a)
{
    if (atomic_load(&a->stopping)) {
        return 0;
    }
    return a->cfg->workers.activities_concurrency + prefetch(a) - a->busy - a->n_ready;
}

void fl_activities__handover(fl_activities *a, fl_act_job **jobs, int n, int busy)
{
    pthread_mutex_lock(&a->mu);
    if (a->n_to_store + n > a->cap_to_store) {
        a->cap_to_store = (a->n_to_store + n) * 2;
        a->to_store = fl_xrealloc(a->to_store, (size_t)a->cap_to_store * sizeof(*a->to_store));
    }
    if (n > 0) {
        memcpy(a->to_store + a->n_to_store, jobs, (size_t)n * sizeof(*jobs));
    }
    a->n_to_store += n;
    a->busy = busy;
    if (n > 0) {
        a->store_wake = true;
        pthread_cond_signal(&a->store_cv);
    }
    if (want_locked(a) > prefetch(a) / 2) {
        a->claim_wake = true;
        pthread_cond_signal(&a->claim_cv);
    }
    pthread_mutex_unlock(&a->mu);
}

fl_act_job *fl_activities__take_ready(fl_activities *a, int max)
{
    fl_act_job *head = NULL;
    fl_act_job **tail = &head;

    pthread_mutex_lock(&a->mu);
    while (max-- > 0 && a->ready) {
        fl_act_job *job = a->ready;

        a->ready = job->next;
        a->n_ready--;
        a->busy++; /* about to start: counted before the worker says so, or it is claimed twice */
        job->next = NULL;
        *tail = job;
        tail = &job->next;
    }
    if (!a->ready) {
        a->ready_tail = NULL;
    }
    pthread_mutex_unlock(&a->mu);
    return head;
}

/* Appends claimed jobs to the ready list and wakes the worker. */
static void give_ready(fl_activities *a, fl_act_job **jobs, int n)
{
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < n; i++) {
        jobs[i]->next = NULL;
        if (a->ready_tail) {
            a->ready_tail->next = jobs[i];
        } else {
            a->ready = jobs[i];
        }
        a->ready_tail = jobs[i];
        a->n_ready++;
    }
    a->wake = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

/* Claims up to want rows; true when it got them all (more may be due at once). */
static bool claim(fl_activities *a, int want)
{
    fl_act_job **jobs = NULL;
    int n = 0;
    fl_err err = {0};

    if (fl_activities__claim(a, want, &jobs, &n, &err) != FL_OK) {
        if (!a->claim_failing) {
            fl_log(FL_WARN, "activity.claim_failed", FL_STR("error", err.msg));
        }
        a->claim_failing = true;
        return false;
    }
    a->claim_failing = false;
    if (n > 0) {
        give_ready(a, jobs, n);
    }
    free(jobs);
    return n == want;
}

/* Stores jobs[0..n) in one statement; when that fails, each alone, so one bad row cannot
 * hold back the others. A failed store leaves its row 'running', to be re-claimed. */
static void store(fl_activities *a, fl_act_job **jobs, int n)
{
    fl_err err = {0};

    if (fl_activities__finish_batch(a, jobs, n, &err) == FL_OK) {
        return;
    }
    if (n == 1) {
        fl_log(FL_WARN, "activity.store_failed", FL_STR("activity", jobs[0]->id),
               FL_STR("error", err.msg));
        return;
    }
    for (int i = 0; i < n; i++) {
        store(a, jobs + i, 1);
    }
}

static void store_all(fl_activities *a, fl_act_job **jobs, int n)
{
    for (int i = 0; i < n; i += FINISH_BATCH) {
        store(a, jobs + i, n - i < FINISH_BATCH ? n - i : FINISH_BATCH);
    }
    for (int i = 0; i < n; i++) {
        fl_activities__job_free(jobs[i]);
    }
}

static void unstick(fl_activities *a, int64_t now, int64_t *next_ms)
{
    fl_err err = {0};

    if (now < *next_ms) {
        return;
    }
    *next_ms = now + UNSTICK_EVERY_MS;
    if (fl_activities__unstick(a, &err) != FL_OK && !a->claim_failing) {
        fl_log(FL_WARN, "activity.unstick_failed", FL_STR("error", err.msg));
    }
}

/* Waits for cv until *flag, the worker's end, or until_ms (monotonic); clears *flag. */
static void wait_flag(fl_activities *a, pthread_cond_t *cv, bool *flag, int64_t until_ms)
{
    int64_t left = until_ms - fl_clock_mono_ms(fl_clock_system());

    if (!*flag && !a->worker_done && left > 0) {
        struct timespec deadline = fl_clock_mono_deadline(left);

        pthread_cond_timedwait(cv, &a->mu, &deadline);
    }
    *flag = false;
}

static void *claim_main(void *arg)
{
    fl_activities *a = arg;
    int64_t next_claim = 0, next_unstick = 0;

    pthread_setname_np(pthread_self(), "fl-act-claim"); /* seen in /proc, top -H, gdb */
    for (;;) {
        int64_t now = fl_clock_mono_ms(fl_clock_system());
        int64_t until =
            next_claim > now ? next_claim : now + a->cfg->workers.activities_interval_ms;
        int want;

        pthread_mutex_lock(&a->mu);
        wait_flag(a, &a->claim_cv, &a->claim_wake, until < next_unstick ? until : next_unstick);
        want = want_locked(a);
        pthread_mutex_unlock(&a->mu);
        if (atomic_load(&a->stopping)) {
            break;
        }
        now = fl_clock_mono_ms(fl_clock_system());
        if (want > 0 && now >= next_claim) {
            /* a short claim means nothing more is due: poll again after the interval */
            next_claim = claim(a, want) ? 0 : now + a->cfg->workers.activities_interval_ms;
        }
        unstick(a, now, &next_unstick);
    }
    return NULL;
}

static void *store_main(void *arg)
{
    fl_activities *a = arg;

    pthread_setname_np(pthread_self(), "fl-act-store"); /* seen in /proc, top -H, gdb */
    for (;;) {
        fl_act_job **jobs;
        int n;
        bool last;

        pthread_mutex_lock(&a->mu);
        wait_flag(a, &a->store_cv, &a->store_wake, fl_clock_mono_ms(fl_clock_system()) + 1000);
        jobs = a->to_store;
        n = a->n_to_store;
        a->to_store = NULL;
        a->n_to_store = a->cap_to_store = 0;
        last = a->worker_done;
        pthread_mutex_unlock(&a->mu);
        store_all(a, jobs, n);
        free(jobs);
        if (last) {
            break;
        }
    }
    return NULL;
}

fl_rc fl_activities__db_start(fl_activities *a, fl_err *err)
{
    if (pthread_create(&a->claim_thread, NULL, claim_main, a) != 0) {
        return fl_err_set(err, FL_EINTERNAL, "could not start the activity claim thread");
    }
    a->claim_started = true;
    if (pthread_create(&a->store_thread, NULL, store_main, a) != 0) {
        return fl_err_set(err, FL_EINTERNAL, "could not start the activity store thread");
    }
    a->store_started = true;
    return FL_OK;
}

/* The worker has stopped: store what it handed over, give back what never started. */
void fl_activities__db_stop(fl_activities *a)
{
    fl_act_job *list;
    fl_err err = {0};

    pthread_mutex_lock(&a->mu);
    a->worker_done = true;
    pthread_cond_signal(&a->claim_cv);
    pthread_cond_signal(&a->store_cv);
    pthread_mutex_unlock(&a->mu);
    if (a->claim_started) {
        pthread_join(a->claim_thread, NULL);
        a->claim_started = false;
    }
    if (a->store_started) {
        pthread_join(a->store_thread, NULL);
        a->store_started = false;
    }
    list = fl_activities__take_ready(a, INT_MAX);
    if (list && fl_activities__release(a, list, &err) != FL_OK) {
        fl_log(FL_WARN, "activity.release_failed", FL_STR("error", err.msg));
    }
    while (list) {
        fl_act_job *job = list;

        list = job->next;
        fl_activities__job_free(job);
    }
}
