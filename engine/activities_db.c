/* engine/activities_db.c -- the activity worker's SQL: claiming due rows, storing an
 * outcome with its outbox row, and the retention deletes of `call: flowd.purge`.
 *
 * Design: an outcome is one statement (a data-modifying CTE), so the row update and its
 * outbox row commit together without a BEGIN/COMMIT round trip. Every outcome write is
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
    "now() ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED) "
    "RETURNING id, tenant, key, call, args::text, retry::text, timeout_ms, attempt, "
    "idempotency_key";

static const char sql_final[] =
    "WITH u AS (UPDATE activities SET status = $3, result = $4::jsonb, error = $5::jsonb, "
    "updated_at = now() WHERE id = $1 AND status = 'running' AND attempt = $2::integer "
    "RETURNING id) "
    "INSERT INTO outbox (id, tenant, aggregatetype, aggregateid, type, payload, headers) "
    "SELECT $6, $7, $8, $9, $10, $11::jsonb, $12::jsonb FROM u RETURNING seq";

static const char sql_retry[] =
    "UPDATE activities SET status = 'pending', error = $3::jsonb, updated_at = now(), "
    "next_attempt_at = now() + make_interval(secs => $4::bigint / 1000.0) "
    "WHERE id = $1 AND status = 'running' AND attempt = $2::integer";

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

static char *error_json(const fl_act_outcome *o)
{
    json_t *e = json_pack("{s:s, s:s}", "type", o->error_type, "message", o->message);
    char *s = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);

    json_decref(e);
    return s;
}

/* completed or failed: the row and its outbox row in one statement. */
static fl_rc finish_final(fl_activities *a, const fl_act_job *job, fl_err *err)
{
    const fl_act_outcome *o = &job->outcome;
    const char *type = o->ok ? "flowd.activity.completed" : "flowd.activity.failed";
    char attempt[32];
    char *event_id = fl_xasprintf("activity:%s", job->id);
    json_t *data = o->ok ? fl_activities__completed_data(job->id, o->result, o->usage)
                         : fl_activities__failed_data(job->id, o->error_type, o->message);
    char *result = o->ok ? json_dumps(o->result, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    char *error = o->ok ? NULL : error_json(o);
    char *payload = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);
    char *headers = fl_activities__headers(event_id, type, job->key, job->tenant,
                                           fl_clock_now_ms(fl_clock_system()));
    const char *p[12] = {job->id,  attempt,     o->ok ? "completed" : "failed", result,   error,
                         event_id, job->tenant, a->cfg->kafka.topics.internal,  job->key, type,
                         payload,  headers};
    fl_rc rc;

    snprintf(attempt, sizeof(attempt), "%d", job->attempt);
    rc = exec1(a, sql_final, 12, p, NULL, err);
    json_decref(data);
    free(event_id);
    free(result);
    free(error);
    free(payload);
    free(headers);
    return rc;
}

static fl_rc finish_retry(fl_activities *a, const fl_act_job *job, fl_err *err)
{
    char attempt[32];
    char delay[32];
    char *error = error_json(&job->outcome);
    const char *p[4] = {job->id, attempt, error, delay};
    int64_t ms = fl_backoff_delay_ms(&job->policy, job->attempt, fl_backoff_splitmix64,
                                     &a->jitter_seed, job->outcome.retry_after_ms);
    fl_rc rc;

    snprintf(attempt, sizeof(attempt), "%d", job->attempt);
    snprintf(delay, sizeof(delay), "%lld", (long long)ms);
    rc = exec1(a, sql_retry, 4, p, NULL, err);
    free(error);
    return rc;
}

fl_rc fl_activities__finish(fl_activities *a, fl_act_job *job, fl_err *err)
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
    return retry ? finish_retry(a, job, err) : finish_final(a, job, err);
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
