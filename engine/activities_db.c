/* engine/activities_db.c -- the activity worker's SQL: claiming due rows, storing an
 * outcome with its outbox row, and the retention deletes of `call: flowd.purge`.
 *
 * Design: outcomes are stored many at a time, in one statement (a data-modifying CTE over
 * a JSON array made with jansson), so each row update and its outbox row commit together,
 * and a batch of calls costs one round trip and one commit. Every outcome write is
 * guarded by `status = 'running' AND attempt = <ours>`: when a slow worker's row was
 * taken for abandoned and re-claimed by another worker, the late answer changes nothing
 * and the newer attempt decides. */
#include "engine/activities_int.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACQUIRE_TIMEOUT_MS 5000
#define SYSTEM_TENANT      "system"

/* Rows left 'running' by a process that died go back to pending once they are older
 * than their timeout plus the grace. A scan without an index on running rows, which is
 * why the worker runs it every few seconds rather than in every claim. */
static const char sql_unstick[] =
    "UPDATE activities SET status = 'pending', updated_at = now() "
    "WHERE status = 'running' AND updated_at < now() - make_interval(secs => "
    "(CASE WHEN timeout_ms > 0 THEN timeout_ms ELSE $1::bigint END + $2::bigint) / 1000.0)";

static const char sql_claim[] =
    "UPDATE activities SET status = 'running', attempt = attempt + 1, updated_at = now() "
    "WHERE id IN (SELECT id FROM activities WHERE status = 'pending' AND next_attempt_at <= "
    "now() ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) "
    "RETURNING id, tenant, key, call, args::text, retry::text, timeout_ms, attempt, "
    "idempotency_key";

/* Stores many outcomes in one statement (and one commit): completed/failed rows with their
 * outbox rows, and rows going back to pending for another attempt. $1 is a JSON array
 * made with jansson, one object per job; `r` wraps the result ({"v": result}) so a JSON
 * null result stays a JSON null and not SQL NULL. */
static const char sql_finish[] =
    "WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id text, attempt integer, "
    "status text, r jsonb, error jsonb, delay_ms bigint, event_id text, tenant text, "
    "key text, type text, payload jsonb, headers text)), "
    "u AS (UPDATE activities a SET status = x.status, result = x.r -> 'v', error = x.error, "
    "updated_at = now(), next_attempt_at = CASE WHEN x.status = 'pending' THEN now() + "
    "make_interval(secs => x.delay_ms / 1000.0) ELSE a.next_attempt_at END "
    "FROM x WHERE a.id = x.id AND a.status = 'running' AND a.attempt = x.attempt "
    "RETURNING x.status, x.event_id, x.tenant, x.key, x.type, x.payload, x.headers) "
    "INSERT INTO outbox (id, tenant, aggregatetype, aggregateid, type, payload, headers) "
    "SELECT event_id, tenant, $2, key, type, payload, headers::jsonb FROM u "
    "WHERE status <> 'pending'";

/* Claimed rows whose call never started (a stop): pending again, the claim's attempt
 * undone, unless something else has taken them since. */
static const char sql_release[] =
    "UPDATE activities a SET status = 'pending', attempt = a.attempt - 1, updated_at = now() "
    "FROM jsonb_to_recordset($1::jsonb) AS x(id text, attempt integer) "
    "WHERE a.id = x.id AND a.status = 'running' AND a.attempt = x.attempt";

static int stmt_timeout(const fl_activities *a)
{
    return a->cfg->db.statement_timeout_ms > 0 ? a->cfg->db.statement_timeout_ms + 1000 : 30000;
}

static fl_rc exec1(fl_activities *a, const char *sql, int n, const char *const *params,
                   fl_pg_rows **out, fl_err *err)
{
    fl_pg_conn *conn = NULL;
    fl_pg_stmt stmt = {sql, n, params, stmt_timeout(a)};
    fl_rc rc;

    rc = fl_pg_acquire(a->pool, ACQUIRE_TIMEOUT_MS, &conn, err);
    if (rc != FL_OK) {
        goto out;
    }
    rc = fl_pg_exec(conn, &stmt, out, err);
out:
    fl_pg_release(a->pool, conn);
    return rc;
}

fl_rc fl_activities__unstick(fl_activities *a, fl_err *err)
{
    char timeout[32];
    char grace[32];
    const char *p[2] = {timeout, grace};

    snprintf(timeout, sizeof(timeout), "%d", a->cfg->workers.activities_timeout_ms);
    snprintf(grace, sizeof(grace), "%d", FL_ACTIVITIES_STALE_GRACE_MS);
    return exec1(a, sql_unstick, 2, p, NULL, err);
}

static fl_act_job *job_of(const fl_pg_rows *rows, size_t r)
{
    fl_act_job *job = fl_xcalloc(1, sizeof(*job));
    json_t *retry = fl_json_from_pg(fl_pg_rows_get(rows, r, 5), 0, NULL);

    job->id = fl_xstrdup(fl_pg_rows_get(rows, r, 0));
    job->tenant = fl_xstrdup(fl_pg_rows_get(rows, r, 1));
    job->key = fl_xstrdup(fl_pg_rows_get(rows, r, 2));
    job->call = fl_xstrdup(fl_pg_rows_get(rows, r, 3));
    job->args = fl_json_from_pg(fl_pg_rows_get(rows, r, 4), 0, NULL);
    if (!job->args) {
        job->args = json_object();
    }
    fl_activities__retry_parse(retry, &job->policy, &job->attempts);
    job->timeout_ms = strtol(fl_pg_rows_get(rows, r, 6), NULL, 10);
    job->attempt = (int)strtol(fl_pg_rows_get(rows, r, 7), NULL, 10);
    job->idempotency_key = fl_xstrdup(fl_pg_rows_get(rows, r, 8));
    job->outcome.retry_after_ms = -1;
    json_decref(retry);
    return job;
}

fl_rc fl_activities__claim(fl_activities *a, int limit, fl_act_job ***jobs_out, int *n_out,
                           fl_err *err)
{
    char lim[32];
    const char *p[1] = {lim};
    fl_pg_rows *rows = NULL;
    fl_act_job **jobs = NULL;
    size_t n;
    fl_rc rc;

    *jobs_out = NULL;
    *n_out = 0;
    snprintf(lim, sizeof(lim), "%d", limit);
    rc = exec1(a, sql_claim, 1, p, &rows, err);
    if (rc != FL_OK) {
        goto out;
    }
    n = fl_pg_rows_count(rows);
    jobs = fl_xcalloc(n + 1, sizeof(*jobs));
    for (size_t r = 0; r < n; r++) {
        jobs[r] = job_of(rows, r);
    }
    *jobs_out = jobs;
    *n_out = (int)n;
out:
    fl_pg_rows_free(rows);
    return rc;
}

static json_t *error_obj(const fl_act_outcome *o)
{
    return json_pack("{s:s, s:s}", "type", o->error_type, "message", o->message);
}

/* A completed or failed job: the row's outcome and its outbox row. */
static json_t *final_obj(const fl_act_job *job)
{
    const fl_act_outcome *o = &job->outcome;
    const char *type = o->ok ? "flowd.activity.completed" : "flowd.activity.failed";
    char *event_id = fl_xasprintf("activity:%s", job->id);
    char *headers = fl_activities__headers(event_id, type, job->key, job->tenant,
                                           fl_clock_now_ms(fl_clock_system()));
    json_t *x =
        json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s}", "id", job->id, "attempt",
                  job->attempt, "status", o->ok ? "completed" : "failed", "event_id", event_id,
                  "tenant", job->tenant, "key", job->key, "type", type, "headers", headers);

    if (o->ok) {
        json_object_set_new(x, "r", json_pack("{s:O}", "v", o->result ? o->result : json_null()));
        json_object_set_new(x, "payload",
                            fl_activities__completed_data(job->id, o->result, o->usage));
    } else {
        json_object_set_new(x, "error", error_obj(o));
        json_object_set_new(x, "payload",
                            fl_activities__failed_data(job->id, o->error_type, o->message));
    }
    free(event_id);
    free(headers);
    return x;
}

/* A job to try again: pending after the policy's delay (or the server's Retry-After). */
static json_t *retry_obj(fl_activities *a, const fl_act_job *job)
{
    int64_t ms = fl_backoff_delay_ms(&job->policy, job->attempt, fl_backoff_splitmix64,
                                     &a->jitter_seed, job->outcome.retry_after_ms);

    return json_pack("{s:s, s:i, s:s, s:o, s:I}", "id", job->id, "attempt", job->attempt, "status",
                     "pending", "error", error_obj(&job->outcome), "delay_ms", (json_int_t)ms);
}

static json_t *outcome_obj(fl_activities *a, const fl_act_job *job)
{
    const fl_act_outcome *o = &job->outcome;
    bool retry = !o->ok && o->retryable && job->attempt < job->attempts;

    fl_log(o->ok ? FL_DEBUG : FL_WARN, o->ok ? "activity.completed" : "activity.attempt_failed",
           FL_STR("activity", job->id), FL_STR("tenant", job->tenant), FL_STR("call", job->call),
           FL_INT("attempt", job->attempt), FL_STR("error", o->ok ? "" : o->error_type),
           FL_STR("message", o->ok ? "" : o->message), FL_INT("retry", retry));
    if (retry) {
        fl_metrics_activity_retry(job->call, o->error_type);
    }
    return retry ? retry_obj(a, job) : final_obj(job);
}

fl_rc fl_activities__finish_batch(fl_activities *a, fl_act_job *const *jobs, int n, fl_err *err)
{
    json_t *arr = json_array();
    char *text;
    const char *p[2];
    fl_rc rc;

    for (int i = 0; i < n; i++) {
        json_array_append_new(arr, outcome_obj(a, jobs[i]));
    }
    text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    fl_assert(text != NULL); /* jansson fails only on OOM */
    p[0] = text;
    p[1] = a->cfg->kafka.topics.internal;
    rc = exec1(a, sql_finish, 2, p, NULL, err);
    free(text);
    return rc;
}

fl_rc fl_activities__release(fl_activities *a, const fl_act_job *list, fl_err *err)
{
    json_t *arr = json_array();
    char *text;
    const char *p[1];
    fl_rc rc;

    for (const fl_act_job *j = list; j; j = j->next) {
        json_array_append_new(arr, json_pack("{s:s, s:i}", "id", j->id, "attempt", j->attempt));
    }
    text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    fl_assert(text != NULL); /* jansson fails only on OOM */
    p[0] = text;
    rc = exec1(a, sql_release, 1, p, NULL, err);
    free(text);
    return rc;
}

/* ---- flowd.purge ---------------------------------------------------------------------- */

void fl_activities__purge(fl_activities *a, const fl_act_job *job, fl_act_outcome *o)
{
    /* the system tenant's shipped cleanup acts across tenants (ARCHITECTURE.md) */
    const char *tenant = strcmp(job->tenant, SYSTEM_TENANT) == 0 ? NULL : job->tenant;
    json_t *result = NULL;
    fl_err err = {0};
    fl_rc rc;

    rc = fl_activities__purge_run(a->pool, stmt_timeout(a), tenant, job->args, &result, &err);
    if (rc == FL_EINVAL) {
        fl_activities__fail(o, "purge.invalid", false, "%s", err.msg);
        return;
    }
    if (rc != FL_OK) {
        fl_activities__fail(o, "purge.unavailable", true, "%s", err.msg);
        return;
    }
    fl_activities__outcome_deinit(o);
    o->ok = true;
    o->result = result;
}
