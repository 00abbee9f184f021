/* engine/activities_int.h -- the activity worker's private parts, shared by
 * activities.c (lifecycle, the worker thread, the hand-back queue), activities_pump.c
 * (the claim and store threads), activities_db.c (claim, outcome
 * and purge SQL) and activities_call.c (turning rows into calls and
 * answers into outcomes and event payloads; pure, unit-tested).
 *
 * Thread-safety: a claimed job belongs to the claim thread until it is queued ready
 * (mu), then to the worker thread, except between fl_http_submit and its done callback,
 * when the HTTP thread fills job->resp and queues it (mu); its outcome is handed to the
 * store thread (mu), which stores and frees it. */
#ifndef FL_ENGINE_ACTIVITIES_INT_H
#define FL_ENGINE_ACTIVITIES_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/backoff.h"
#include "core/config.h"
#include "core/http.h"
#include "core/pg.h"
#include "engine/activities.h"
#include "engine/llm/chain.h"

/* A row left 'running' is taken for abandoned (its process died) once its updated_at is
 * older than its timeout plus this grace: long enough for a live worker to store an
 * outcome that arrived just in time, short enough that a crash delays work by seconds. */
#define FL_ACTIVITIES_STALE_GRACE_MS 30000

/* The outcome of one attempt. */
typedef struct fl_act_outcome {
    bool ok;
    json_t *result;         /* ok: owned */
    json_t *usage;          /* ok: owned, may be NULL */
    const char *error_type; /* !ok: static, e.g. "http.status" */
    char message[256];      /* !ok */
    bool retryable;         /* !ok: worth another attempt if any are left */
    int64_t retry_after_ms; /* !ok: the server's Retry-After, -1 when none */
} fl_act_outcome;

/* A streamed LLM answer's relay state (activities_deltas.c); HTTP thread only. */
typedef struct fl_act_deltas fl_act_deltas;
/* One chunk waiting for its NOTIFY flowd_deltas (activities_deltas.c). */
typedef struct fl_act_delta fl_act_delta;

/* One claimed activity row. */
typedef struct fl_act_job {
    char *id;
    char *tenant;
    char *key;
    char *call;
    char *idempotency_key;
    json_t *args; /* the evaluated `with` */
    fl_backoff_policy policy;
    int attempts;    /* retry.attempts: every try counts */
    int attempt;     /* this one, 1-based (already incremented by the claim) */
    long timeout_ms; /* 0 = the configured default */
    fl_act_outcome outcome;
    fl_activities *owner;
    fl_llm_call *llm;        /* call: llm -- the provider chain's state machine */
    int64_t wake_ms;         /* call: llm waiting for a retry: when (monotonic) */
    int64_t started_ms;      /* call: llm started (monotonic), for its duration metric */
    fl_http_response resp;   /* moved out of the HTTP callback; handled by the worker */
    fl_act_deltas *deltas;   /* call: llm with text streamed to listeners, else NULL */
    struct fl_act_job *next; /* guarded by fl_activities.mu while queued */
} fl_act_job;

struct fl_activities {
    const fl_config *cfg;
    fl_pg_pool *pool;
    fl_http *http;
    fl_llm_chain *llm; /* borrowed: the process's providers, fallback chain, breakers */
    pthread_t thread;
    bool started;
    atomic_bool stopping;
    uint64_t jitter_seed;  /* worker thread only */
    int in_flight;         /* worker thread only: submitted, done not yet handled */
    bool claim_failing;    /* worker thread only: log a failing claim once, not per pass */
    fl_act_job *delayed;   /* worker thread only: llm calls waiting for a retry (wake_ms) */
    fl_act_job **finished; /* worker thread only: outcomes of this pass, to hand over */
    int n_finished, cap_finished;
    /* the database threads (activities_pump.c): one claims ahead, one stores outcomes */
    pthread_t claim_thread, store_thread;
    bool claim_started, store_started;
    pthread_cond_t claim_cv;      /* CLOCK_MONOTONIC; slots free up, or a stop */
    pthread_cond_t store_cv;      /* CLOCK_MONOTONIC; outcomes to store, or the worker's end */
    bool claim_wake;              /* guarded by mu */
    bool store_wake;              /* guarded by mu */
    bool worker_done;             /* guarded by mu: the worker thread has ended */
    fl_act_job *ready;            /* guarded by mu: claimed, not started, oldest first */
    fl_act_job *ready_tail;       /* guarded by mu */
    int n_ready;                  /* guarded by mu */
    int busy;                     /* guarded by mu: the worker's in_flight, as last handed over */
    fl_act_job **to_store;        /* guarded by mu: outcomes for the store thread */
    int n_to_store, cap_to_store; /* guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC (R9.7); signalled on done and on stop */
    fl_act_job *done;  /* guarded by mu: finished HTTP jobs, newest first */
    bool wake;         /* guarded by mu: something to look at */
    fl_act_delta *deltas_head, *deltas_tail; /* guarded by mu: chunks to NOTIFY, in order */
};

/* ---- activities_call.c (pure) ------------------------------------------------------- */

void fl_activities__job_free(fl_act_job *job); /* NULL-safe */
void fl_activities__outcome_deinit(fl_act_outcome *o);

/* Sets a failure outcome. */
void fl_activities__fail(fl_act_outcome *o, const char *type, bool retryable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reads a row's retry object {attempts, backoff, delay_ms, max_delay_ms}; missing or
 * odd values fall back to one attempt, fixed, no delay. */
void fl_activities__retry_parse(const json_t *retry, fl_backoff_policy *p, int *attempts);

/* What a built request points into besides the job's args. */
typedef struct fl_act_http_bufs {
    fl_http_header *headers;
    char *scratch; /* header values that were not strings, rendered */
    char *body;
} fl_act_http_bufs;

void fl_activities__http_bufs_deinit(fl_act_http_bufs *b);

/* Builds the request of a `call: http` from its arguments: method (default GET), url,
 * headers, body (sent as is when a string, else as JSON with a JSON Content-Type).
 * Ownership: req points into job->args and *bufs (fl_activities__http_bufs_deinit, also
 * on failure). Errors: FL_EINVAL (no url, a method that is not a string). */
fl_rc fl_activities__http_request(const fl_act_job *job, long default_timeout_ms,
                                  fl_http_request *req, fl_act_http_bufs *bufs, fl_err *err);

/* The outcome of an HTTP attempt: 2xx -> {status, headers, body}; otherwise an error type
 * (http.status, http.timeout, http.connect, http.too_large, http.error). */
void fl_activities__http_outcome(fl_http_response *resp, int64_t now_ms, fl_act_outcome *o);

/* The outcome of a finished `call: llm` (fl_llm_call_next said DONE): the chain's
 * result and usage (its accounting and fallbacks, also on failure, in the message). */
void fl_activities__llm_outcome(fl_llm_call *call, fl_act_outcome *o);

/* Event data: {activity, result, usage?} and {activity, error, message}. Owned. */
json_t *fl_activities__completed_data(const char *id, const json_t *result, const json_t *usage);
json_t *fl_activities__failed_data(const char *id, const char *type, const char *message);

/* The CloudEvents headers of an outbox row, the same shape the store writes. Owned. */
char *fl_activities__headers(const char *id, const char *type, const char *subject,
                             const char *tenant, int64_t time_ms);

/* ---- activities_deltas.c: streamed text -> NOTIFY flowd_deltas ---------------------- */

/* A `call: llm` that answers in words (not json): relay its streamed text. Worker thread,
 * before the first SEND. */
void fl_activities__deltas_attach(fl_activities *a, fl_act_job *job);
/* The attempt ended (HTTP thread, before the job is handed back): queue the rest. */
void fl_activities__deltas_end(fl_act_job *job);
/* Worker thread: sends the queued chunks, in order, on one pooled connection (no
 * transaction). A failure drops them: deltas are ephemeral. */
void fl_activities__deltas_send(fl_activities *a);
void fl_activities__deltas_free(fl_act_deltas *d); /* NULL-safe */

/* ---- activities_pump.c: the claim and store threads ------------------------------- */

fl_rc fl_activities__db_start(fl_activities *a, fl_err *err); /* FL_EINTERNAL */
/* After the worker thread has ended: stores what it handed over, releases the claimed
 * rows that never started, joins both threads. */
void fl_activities__db_stop(fl_activities *a);
/* Worker thread: hands over n outcomes (the store thread stores and frees them) and
 * publishes its in-flight count, which decides how many rows to claim. */
void fl_activities__handover(fl_activities *a, fl_act_job **jobs, int n, int busy);
/* Worker thread: up to max claimed jobs, oldest first, as a list (job->next). Owned. */
fl_act_job *fl_activities__take_ready(fl_activities *a, int max);

/* ---- activities_db.c ---------------------------------------------------------------- */

/* Claims up to limit due rows (pending and due, or running and abandoned) and marks
 * them running with attempt + 1. Ownership: *jobs_out (n_out entries) is owned by the
 * caller. Errors: FL_EUNAVAIL, FL_ETIMEDOUT, FL_EIO. */
fl_rc fl_activities__claim(fl_activities *a, int limit, fl_act_job ***jobs_out, int *n_out,
                           fl_err *err);

/* Puts claimed rows whose call never started (list, via job->next) back to pending with
 * their attempt undone. Errors: FL_EUNAVAIL, FL_ETIMEDOUT, FL_EIO. */
fl_rc fl_activities__release(fl_activities *a, const fl_act_job *list, fl_err *err);

/* Puts rows abandoned in 'running' (their process died) back to pending.
 * Errors: FL_EUNAVAIL, FL_ETIMEDOUT, FL_EIO. */
fl_rc fl_activities__unstick(fl_activities *a, fl_err *err);

/* Stores the outcomes of n jobs in one statement: completed/failed + outbox row, or
 * pending again with next_attempt_at, each only while the row is still 'running' with the
 * job's attempt. Errors: FL_EUNAVAIL, FL_ETIMEDOUT, FL_EIO (nothing stored). */
fl_rc fl_activities__finish_batch(fl_activities *a, fl_act_job *const *jobs, int n, fl_err *err);

/* activities_purge.c: the retention deletes of a flowd.purge `with` object for tenant
 * (NULL: every tenant). *result_out is {conversations, instances, inbox, outbox,
 * dead_letters}, owned by the caller. Errors: FL_EINVAL (a value that is not a
 * duration), FL_EUNAVAIL, FL_ETIMEDOUT, FL_EIO. */
fl_rc fl_activities__purge_run(fl_pg_pool *pool, int timeout_ms, const char *tenant,
                               const json_t *args, json_t **result_out, fl_err *err);

/* Runs `call: flowd.purge` and fills the outcome. */
void fl_activities__purge(fl_activities *a, const fl_act_job *job, fl_act_outcome *o);

/* activities_directory.c: runs flowd.directory.search, flowd.business.update or
 * flowd.memory.search and fills the outcome; false when job->call is none of them. */
bool fl_activities__directory(fl_activities *a, const fl_act_job *job, fl_act_outcome *o);
void fl_activities__history(fl_activities *a, const fl_act_job *job, fl_act_outcome *o);

#endif
