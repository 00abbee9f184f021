/* engine/activities_directory.c -- the directory's `call: flowd.*` built-ins (issue 6
 * item 6), running engine/directory.h's code, the same the REST API runs, within the
 * instance's tenant:
 *
 *   flowd.directory.search  with {q?, category?, city?, min_rating?, max_price_level?,
 *                           limit? (1..20, default 3)}
 *                           -> {businesses: [the top `limit`, ranked, each with services]}
 *   flowd.business.update   with {business_id, description?, phone?, address?, city?,
 *                           hours?, price_level?, rating?, services?, remove_services?}
 *                           -> {business: {..., services}}
 *   flowd.memory.search     with {user_id, q?, limit? (1..50, default 5)}
 *                           -> {facts: [{id, user_id, fact, source, created_at, rank}]}
 *   flowd.business.get      with {business_id}
 *                           -> {business: {..., hours, services}} -- what
 *                           GET /api/v1/businesses/{id} answers, with the services added
 *
 * It also dispatches flowd.conversation.history (engine/activities_history.c), so the
 * worker has one entry point for the flowd.* built-ins that read or write rows.
 *
 * flowd.business.update changes a business, so it runs only for an owner: the instance's
 * context must hold `scope: admin`. The scope comes from the API key that started the
 * conversation -- the API puts the caller's scope (never a client's value) into the data
 * of conversation.started, and the conversation workflow copies it into ctx.scope -- so
 * a dashboard chat opened with a read or write key cannot edit hours or menus. The check
 * reads the instance row itself, not the call's `with`, so a `with: {scope: admin}`
 * proves nothing. A refusal is a final `business.forbidden` error the workflow can catch
 * with `error: business.forbidden`.
 *
 * Each call is one statement, idempotent as an at-least-once activity must be: searches
 * read, and an update sets fields and upserts services by name, so a re-run after a crash
 * leaves the state one run left. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/pg.h"
#include "engine/activities_int.h"
#include "engine/directory.h"

#define ACQUIRE_TIMEOUT_MS 5000
#define MEMORY_LIMIT_DEF   5
#define USER_ID_MAX        128

static const char sql_scope[] =
    "SELECT coalesce(i.context->>'scope', '') FROM activities a "
    "JOIN instances i ON i.id = a.instance_id WHERE a.id = $1 AND a.tenant = $2";

static fl_dir_ctx dir_ctx(const fl_activities *a, const fl_act_job *job)
{
    int st = a->cfg->db.statement_timeout_ms;
    fl_dir_ctx c = {a->pool, job->tenant, ACQUIRE_TIMEOUT_MS, st > 0 ? st + 1000 : 30000};
    return c;
}

/* errors [{pointer, detail}] -> "pointer: detail; ..." as the failure message. */
static void fail_invalid(fl_act_outcome *o, const char *call, json_t *errors)
{
    char msg[200] = "";
    size_t n = 0, i;
    json_t *e;

    json_array_foreach(errors, i, e)
    {
        const char *p = json_string_value(json_object_get(e, "pointer"));
        n += (size_t)snprintf(msg + n, n < sizeof(msg) ? sizeof(msg) - n : 0, "%s%s: %s",
                              i ? "; " : "", p && *p ? p : "with",
                              json_string_value(json_object_get(e, "detail")));
        if (n >= sizeof(msg)) {
            break;
        }
    }
    fl_activities__fail(o, "directory.invalid", false, "%s: invalid with: %s", call, msg);
    json_decref(errors);
}

/* The outcome of a directory call: ok with {member: value}, or a failure by rc. */
static void finish_rc(fl_act_outcome *o, fl_rc rc, const fl_err *err, const char *member,
                      json_t *value)
{
    if (rc == FL_OK) {
        fl_activities__outcome_deinit(o);
        o->ok = true;
        o->result = json_pack("{s:o}", member, value);
        return;
    }
    json_decref(value);
    if (rc == FL_ENOTFOUND) {
        fl_activities__fail(o, "directory.not_found", false, "%s", err->msg);
    } else if (rc == FL_EUNAVAIL || rc == FL_ETIMEDOUT || rc == FL_ECONFLICT) {
        fl_activities__fail(o, "directory.unavailable", true, "%s", err->msg);
    } else {
        fl_activities__fail(o, "directory.error", false, "%s", err->msg);
    }
}

static void directory_search(fl_activities *a, const fl_act_job *job, fl_act_outcome *o)
{
    fl_dir_ctx c = dir_ctx(a, job);
    fl_dir_search s = FL_DIR_SEARCH_INIT;
    fl_err err = FL_ERR_INIT;
    json_t *errors = NULL, *rows = NULL;
    fl_rc rc;

    if (!fl_dir_search_from_json(&s, job->args, &errors)) {
        fail_invalid(o, job->call, errors);
        return;
    }
    rc = fl_dir_search_run(&c, &s, true, &rows, &err);
    finish_rc(o, rc, &err, "businesses", rows);
}

/* The instance's context.scope (the starting key's scope); "" when absent. */
static fl_rc instance_scope(fl_activities *a, const fl_act_job *job, char *buf, size_t size,
                            fl_err *err)
{
    const char *p[2] = {job->id, job->tenant};
    fl_pg_stmt st = {sql_scope, 2, p, dir_ctx(a, job).timeout_ms};
    fl_pg_conn *conn = NULL;
    fl_pg_rows *rows = NULL;
    fl_rc rc = fl_pg_acquire(a->pool, ACQUIRE_TIMEOUT_MS, &conn, err);

    buf[0] = '\0';
    if (rc != FL_OK) {
        return rc;
    }
    rc = fl_pg_exec(conn, &st, &rows, err);
    fl_pg_release(a->pool, conn);
    if (rc == FL_OK && fl_pg_rows_count(rows) > 0) {
        snprintf(buf, size, "%s", fl_pg_rows_get(rows, 0, 0));
    }
    fl_pg_rows_free(rows);
    return rc;
}

static void business_update(fl_activities *a, const fl_act_job *job, fl_act_outcome *o)
{
    fl_dir_ctx c = dir_ctx(a, job);
    fl_err err = FL_ERR_INIT;
    json_t *errors = NULL, *biz = NULL;
    char scope[16];
    fl_rc rc;

    if (!fl_dir_update_check(job->args, &errors)) {
        fail_invalid(o, job->call, errors);
        return;
    }
    rc = instance_scope(a, job, scope, sizeof(scope), &err);
    if (rc == FL_OK && strcmp(scope, "admin") != 0) {
        fl_activities__fail(o, "business.forbidden", false,
                            "flowd.business.update needs an admin caller: the instance's "
                            "context.scope is \"%s\"",
                            scope);
        return;
    }
    if (rc == FL_OK) {
        rc = fl_dir_business_update(&c, job->args, &biz, &err);
    }
    finish_rc(o, rc, &err, "business", biz);
}

/* with {user_id, q?, limit?}; false after filling a failure. */
static bool memory_args(const fl_act_job *job, fl_act_outcome *o, const char **q, int *limit)
{
    static const char *const members[] = {"user_id", "q", "limit", NULL};
    const json_t *user = json_object_get(job->args, "user_id");
    const json_t *qv = json_object_get(job->args, "q");
    const json_t *lv = json_object_get(job->args, "limit");
    json_t *errors = NULL;

    fl_dir_unknown_members(job->args, members, "", &errors);
    if (!json_is_string(user) || json_string_length(user) == 0 ||
        json_string_length(user) > USER_ID_MAX) {
        fl_dir_error(&errors, "/user_id", "is required: a string of 1 to %d characters",
                     USER_ID_MAX);
    }
    if (qv && !json_is_null(qv) &&
        (!json_is_string(qv) || json_string_length(qv) > FL_DIR_QUERY_TEXT_MAX)) {
        fl_dir_error(&errors, "/q", "must be a string of at most %d characters",
                     FL_DIR_QUERY_TEXT_MAX);
    }
    if (lv && !json_is_null(lv) &&
        !(json_is_integer(lv) && json_integer_value(lv) >= 1 &&
          json_integer_value(lv) <= FL_DIR_MEMORY_MAX)) {
        fl_dir_error(&errors, "/limit", "must be an integer from 1 to %d", FL_DIR_MEMORY_MAX);
    }
    if (errors) {
        fail_invalid(o, job->call, errors);
        return false;
    }
    *q = json_string_value(qv);
    *limit = json_is_integer(lv) ? (int)json_integer_value(lv) : MEMORY_LIMIT_DEF;
    return true;
}

static void memory_search(fl_activities *a, const fl_act_job *job, fl_act_outcome *o)
{
    fl_dir_ctx c = dir_ctx(a, job);
    fl_err err = FL_ERR_INIT;
    json_t *rows = NULL;
    const char *q = NULL;
    int limit = MEMORY_LIMIT_DEF;
    fl_rc rc;

    if (!json_is_object(job->args)) {
        fl_activities__fail(o, "directory.invalid", false, "%s: with must be an object", job->call);
        return;
    }
    if (!memory_args(job, o, &q, &limit)) {
        return;
    }
    rc = fl_dir_memory_search(&c, json_string_value(json_object_get(job->args, "user_id")), q,
                              limit, &rows, &err);
    finish_rc(o, rc, &err, "facts", rows);
}

/* with {business_id}: the business with its hours and services. An unknown id (or
 * another tenant's) is the final directory.not_found: retrying cannot make it appear. */
static void business_get(fl_activities *a, const fl_act_job *job, fl_act_outcome *o)
{
    const json_t *id = json_object_get(job->args, "business_id");
    fl_dir_ctx c = dir_ctx(a, job);
    fl_err err = FL_ERR_INIT;
    json_t *errors = NULL, *biz = NULL, *v;
    const char *key;
    fl_rc rc;

    json_object_foreach((json_t *)job->args, key, v)
    {
        if (strcmp(key, "business_id") != 0) {
            fl_dir_error(&errors, "", "unknown member \"%.64s\"", key);
        }
    }
    if (!json_is_string(id) || json_string_length(id) == 0) {
        fl_dir_error(&errors, "/business_id", "is required: a business id");
    }
    if (errors) { /* also for a `with` that is no object: it has no business_id */
        fail_invalid(o, job->call, errors);
        return;
    }
    rc = fl_dir_business_get(&c, json_string_value(id), true, &biz, &err);
    finish_rc(o, rc, &err, "business", biz);
}

bool fl_activities__directory(fl_activities *a, const fl_act_job *job, fl_act_outcome *o)
{
    if (strcmp(job->call, "flowd.directory.search") == 0) {
        directory_search(a, job, o);
    } else if (strcmp(job->call, "flowd.business.update") == 0) {
        business_update(a, job, o);
    } else if (strcmp(job->call, "flowd.memory.search") == 0) {
        memory_search(a, job, o);
    } else if (strcmp(job->call, "flowd.business.get") == 0) {
        business_get(a, job, o);
    } else if (strcmp(job->call, "flowd.conversation.history") == 0) {
        fl_activities__history(a, job, o); /* engine/activities_history.c */
    } else {
        return false;
    }
    return true;
}
