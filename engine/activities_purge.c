/* engine/activities_purge.c -- `call: flowd.purge`: the retention deletes.
 *
 * Each kind given in `with` is one statement (its own transaction): a purge cut short
 * by a crash simply runs again, and deleting rows twice is harmless. Only finished
 * instances go; a running one is never deleted (ARCHITECTURE.md section 2).
 * Retention values are definition durations (engine/workflow.h's parser). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/err.h"
#include "core/pg.h"
#include "engine/activities_int.h"
#include "engine/workflow.h"

#define ACQUIRE_TIMEOUT_MS 5000

typedef struct purge_kind {
    const char *arg;    /* the `with` field */
    const char *result; /* the result field */
    const char *sql;    /* $1 = age in ms, $2 = tenant or NULL for every tenant */
} purge_kind;

#define CUTOFF         "now() - make_interval(secs => $1::bigint / 1000.0)"
#define TENANT_OK(col) "($2::text IS NULL OR " col " = $2)"

/* A conversation is its transcript (messages of one tenant and conversation id). It is
 * idle when its newest message is older than the age and no running instance is keyed
 * by it; the running instance itself is never deleted here (instances are purged only
 * once finished). Finished instances lose their history, timers and activities too. */
static const purge_kind purge_kinds[] = {
    {"conversations_idle_for", "conversations",
     "WITH idle AS (SELECT tenant, conversation FROM messages WHERE " TENANT_OK(
         "tenant") " GROUP BY tenant, conversation HAVING max(created_at) < " CUTOFF
                   " AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.tenant = messages.tenant "
                   "AND i.key = messages.conversation AND i.status = 'running')), "
                   "d AS (DELETE FROM messages m USING idle WHERE m.tenant = idle.tenant AND "
                   "m.conversation = idle.conversation RETURNING 1) SELECT count(*) FROM idle"},
    {"instances_finished_for", "instances",
     "WITH i AS (DELETE FROM instances WHERE finished_at < " CUTOFF " AND " TENANT_OK(
         "tenant") " RETURNING id), "
                   "h AS (DELETE FROM history USING i WHERE history.instance_id = i.id RETURNING "
                   "1), "
                   "t AS (DELETE FROM timers USING i WHERE timers.instance_id = i.id RETURNING 1), "
                   "a AS (DELETE FROM activities USING i WHERE activities.instance_id = i.id "
                   "RETURNING 1) "
                   "SELECT count(*) FROM i"},
    {"inbox_older_than", "inbox",
     "WITH d AS (DELETE FROM inbox WHERE processed_at < " CUTOFF
     " AND " TENANT_OK("tenant") " RETURNING 1) SELECT count(*) FROM d"},
    {"outbox_published_older_than", "outbox",
     "WITH d AS (DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < " CUTOFF
     " AND " TENANT_OK("tenant") " RETURNING 1) SELECT count(*) FROM d"},
    {"dead_letters_older_than", "dead_letters",
     "WITH d AS (DELETE FROM dead_letters WHERE created_at < " CUTOFF
     " AND " TENANT_OK("tenant") " RETURNING 1) SELECT count(*) FROM d"},
};

/* A retention value: a duration string ("90d", "PT1H") or a number of milliseconds. */
static bool age_of(const json_t *v, int64_t *ms)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *ms = (int64_t)json_integer_value(v);
        return true;
    }
    return json_is_string(v) && fl_workflow_parse_duration(json_string_value(v), false, ms);
}

static fl_rc purge_one(fl_pg_conn *conn, int timeout_ms, const purge_kind *k, int64_t ms,
                       const char *tenant, json_int_t *count, fl_err *err)
{
    char age[32];
    const char *p[2] = {age, tenant};
    fl_pg_stmt stmt = {k->sql, 2, p, timeout_ms};
    fl_pg_rows *rows = NULL;
    fl_rc rc;

    snprintf(age, sizeof(age), "%lld", (long long)ms);
    rc = fl_pg_exec(conn, &stmt, &rows, err);
    if (rc == FL_OK) {
        *count = strtoll(fl_pg_rows_get(rows, 0, 0), NULL, 10);
    }
    fl_pg_rows_free(rows);
    return rc;
}

fl_rc fl_activities__purge_run(fl_pg_pool *pool, int timeout_ms, const char *tenant,
                               const json_t *args, json_t **result_out, fl_err *err)
{
    json_t *result = json_object();
    fl_pg_conn *conn = NULL;
    fl_rc rc;

    *result_out = NULL;
    rc = fl_pg_acquire(pool, ACQUIRE_TIMEOUT_MS, &conn, err);
    for (size_t i = 0; rc == FL_OK && i < sizeof(purge_kinds) / sizeof(purge_kinds[0]); i++) {
        const purge_kind *k = &purge_kinds[i];
        const json_t *v = json_object_get(args, k->arg);
        json_int_t count = 0;
        int64_t ms = 0;

        if (v && !age_of(v, &ms)) {
            rc = fl_err_set(err, FL_EINVAL, "cannot purge: \"%s\" is not a duration", k->arg);
        } else if (v) {
            rc = purge_one(conn, timeout_ms, k, ms, tenant, &count, err);
        }
        json_object_set_new(result, k->result, json_integer(count));
    }
    fl_pg_release(pool, conn);
    if (rc == FL_OK) {
        *result_out = result;
        result = NULL;
    }
    json_decref(result);
    return rc;
}
