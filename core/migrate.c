/* core/migrate.c -- applies and checks the compiled-in schema migrations.
 *
 * Design: the decision (what is pending, what conflicts) is a pure function over the
 * applied rows and the known list, so it is unit-tested without PostgreSQL; the rest is
 * a thin sequence of statements through core/pg. `flowd migrate` holds a session-level
 * advisory lock for the whole run and ends by closing its connection, which releases the
 * lock and rolls back a failed migration even when the server cannot be told.
 *
 * Thread-safety: no state of its own; see core/pg.h for the pool. */
#include "core/migrate.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Advisory lock keys are one namespace per database: this fixed key means "flowd schema
 * migrations" and nothing else. */
#define LOCK_KEY "7239852400183170403"

static const char sql_create[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                 " version int PRIMARY KEY,"
                                 " name text NOT NULL,"
                                 " checksum text NOT NULL,"
                                 " applied_at timestamptz NOT NULL DEFAULT now())";
static const char sql_exists[] = "SELECT to_regclass('schema_migrations') IS NOT NULL";
static const char sql_applied[] =
    "SELECT version, name, checksum FROM schema_migrations ORDER BY version";
static const char sql_insert[] =
    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1::int, $2, $3)";

/* The applied rows: items borrow their strings from rows. */
typedef struct applied_set {
    fl_pg_rows *rows;
    fl_migration *items;
    fl_migration_list list;
} applied_set;

fl_migration_list fl_migrate_embedded(void)
{
    return (fl_migration_list){fl_migrations, fl_migration_count};
}

/* ---- the plan (pure) ------------------------------------------------------------------ */

static fl_rc known_check(const fl_migration_list *known, fl_err *err)
{
    for (size_t i = 0; i < known->count; i++) {
        int prev = i > 0 ? known->items[i - 1].version : 0;
        if (known->items[i].version <= prev) {
            return fl_err_set(err, FL_EINTERNAL,
                              "embedded migration \"%s\" is out of version order",
                              known->items[i].name);
        }
    }
    return FL_OK;
}

/* Compares the applied row a with the known migration k at the same position. */
static fl_rc applied_check(const fl_migration *k, const fl_migration *a, fl_err *err)
{
    if (!k || a->version < k->version) {
        return fl_err_set(err, FL_ECONFLICT,
                          "database has migration %d (\"%s\") that this flowd does not know",
                          a->version, a->name);
    }
    if (a->version > k->version) {
        return fl_err_set(err, FL_ECONFLICT,
                          "database is missing migration %s but has %s: the schema history "
                          "has a gap",
                          k->name, a->name);
    }
    if (strcmp(a->name, k->name) != 0) {
        return fl_err_set(err, FL_ECONFLICT,
                          "migration %d is \"%s\" in the database but \"%s\" in this flowd",
                          a->version, a->name, k->name);
    }
    if (strcmp(a->checksum, k->checksum) != 0) {
        return fl_err_set(err, FL_ECONFLICT, "migration %s was changed after it was applied",
                          k->name);
    }
    return FL_OK;
}

fl_rc fl_migrate_plan_make(const fl_migration_list *known, const fl_migration_list *applied,
                           fl_migrate_plan *out, fl_err *err)
{
    fl_rc rc;
    int newest = known->count ? known->items[known->count - 1].version : 0;
    int current = applied->count ? applied->items[applied->count - 1].version : 0;

    memset(out, 0, sizeof(*out));
    rc = known_check(known, err);
    if (rc != FL_OK) {
        goto out;
    }
    if (current > newest) {
        rc = fl_err_set(err, FL_ECONFLICT,
                        "database schema version %d is newer than this flowd knows (%d): "
                        "upgrade flowd",
                        current, newest);
        goto out;
    }
    for (size_t i = 0; i < applied->count; i++) {
        const fl_migration *k = i < known->count ? &known->items[i] : NULL;
        rc = applied_check(k, &applied->items[i], err);
        if (rc != FL_OK) {
            goto out;
        }
    }
    out->db_version = current;
    out->target_version = newest;
    out->first = applied->count;
    out->npending = known->count - applied->count;
out:
    return rc;
}

fl_rc fl_migrate_plan_check(const fl_migrate_plan *plan, fl_err *err)
{
    if (plan->npending == 0) {
        return FL_OK;
    }
    if (plan->db_version == 0) {
        return fl_err_set(err, FL_EUNAVAIL, "database has no flowd schema: run `flowd migrate`");
    }
    return fl_err_set(err, FL_EUNAVAIL,
                      "database schema is at version %d, this flowd needs %d: run `flowd migrate`",
                      plan->db_version, plan->target_version);
}

/* ---- the database --------------------------------------------------------------------- */

/* Timeouts follow CLOCK_MONOTONIC, so wall-clock jumps neither expire nor stretch them. */
static long long mono_ms(void)
{
    return fl_clock_mono_ms(fl_clock_system());
}

/* What is left of a check's time budget; at least 1 ms so that 0 never means "none". */
static int remaining_ms(long long deadline)
{
    long long left = deadline - mono_ms();

    return left < 1 ? 1 : left > 0x7fffffff ? 0x7fffffff : (int)left;
}

static void applied_free(applied_set *a)
{
    free(a->items);
    fl_pg_rows_free(a->rows);
    memset(a, 0, sizeof(*a));
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

static fl_rc applied_load(fl_pg_conn *c, int timeout_ms, applied_set *out, fl_err *err)
{
    fl_pg_stmt stmt = {.sql = sql_applied, .timeout_ms = timeout_ms};
    fl_rc rc = fl_pg_exec(c, &stmt, &out->rows, err);
    size_t n;

    if (rc != FL_OK) {
        goto out;
    }
    n = fl_pg_rows_count(out->rows);
    out->items = fl_xcalloc(n, sizeof(fl_migration));
    for (size_t i = 0; i < n; i++) {
        char *end = NULL;
        const char *v = fl_pg_rows_get(out->rows, i, 0);
        long version = v ? strtol(v, &end, 10) : 0;
        if (!v || *end != '\0' || version <= 0 || version > 0x7fffffff) {
            rc = fl_err_set(err, FL_EIO, "schema_migrations has an invalid version \"%s\"",
                            v ? v : "NULL");
            goto out;
        }
        out->items[i].version = (int)version;
        out->items[i].name = or_empty(fl_pg_rows_get(out->rows, i, 1));
        out->items[i].checksum = or_empty(fl_pg_rows_get(out->rows, i, 2));
    }
    out->list = (fl_migration_list){out->items, n};
out:
    return rc;
}

/* Takes the migration lock, telling the operator when another run holds it. */
static fl_rc lock_take(fl_pg_conn *c, fl_err *err)
{
    static const char *const key[] = {LOCK_KEY};
    fl_pg_stmt off = {.sql = "SET statement_timeout = 0"};
    fl_pg_stmt try = {
        .sql = "SELECT pg_try_advisory_lock($1::bigint)", .nparams = 1, .params = key};
    fl_pg_stmt wait = {.sql = "SELECT pg_advisory_lock($1::bigint)", .nparams = 1, .params = key};
    fl_pg_rows *rows = NULL;
    const char *got;
    fl_rc rc;

    /* waiting for the lock and long migrations must not hit db.statement_timeout */
    rc = fl_pg_exec(c, &off, NULL, err);
    if (rc != FL_OK) {
        goto out;
    }
    rc = fl_pg_exec(c, &try, &rows, err);
    if (rc != FL_OK) {
        goto out;
    }
    got = fl_pg_rows_get(rows, 0, 0);
    if (got && strcmp(got, "t") == 0) {
        goto out;
    }
    fl_log(FL_INFO, "migrate.waiting", FL_STR("msg", "another flowd migrate is running"));
    rc = fl_pg_exec(c, &wait, NULL, err);
out:
    fl_pg_rows_free(rows);
    return rc;
}

/* One migration and its schema_migrations row, in one transaction. On failure the
 * caller discards the connection, which rolls the transaction back. */
static fl_rc apply_one(fl_pg_conn *c, const fl_migration *m, fl_err *err)
{
    char version[16];
    const char *params[] = {version, m->name, m->checksum};
    fl_pg_stmt begin = {.sql = "BEGIN"};
    fl_pg_stmt insert = {.sql = sql_insert, .nparams = 3, .params = params};
    fl_pg_stmt commit = {.sql = "COMMIT"};
    fl_rc rc;

    snprintf(version, sizeof(version), "%d", m->version);
    rc = fl_pg_exec(c, &begin, NULL, err);
    if (rc != FL_OK) {
        goto out;
    }
    rc = fl_pg_exec_script(c, m->sql, 0, err);
    if (rc != FL_OK) {
        goto out;
    }
    rc = fl_pg_exec(c, &insert, NULL, err);
    if (rc != FL_OK) {
        goto out;
    }
    rc = fl_pg_exec(c, &commit, NULL, err);
    if (rc != FL_OK) {
        goto out;
    }
    fl_log(FL_INFO, "migrate.applied", FL_INT("version", m->version), FL_STR("name", m->name));
out:
    if (rc != FL_OK) {
        fl_err_prefix(err, "could not apply migration %s", m->name);
    }
    return rc;
}

fl_rc fl_migrate_run(fl_pg_pool *pool, const fl_migration_list *known, fl_err *err)
{
    fl_pg_stmt create = {.sql = sql_create};
    fl_pg_conn *c = NULL;
    applied_set a = {0};
    fl_migrate_plan plan = {0};
    fl_rc rc;

    rc = fl_pg_acquire(pool, -1, &c, err);
    if (rc != FL_OK) {
        goto out;
    }
    rc = lock_take(c, err);
    if (rc != FL_OK) {
        goto out;
    }
    rc = fl_pg_exec(c, &create, NULL, err);
    if (rc != FL_OK) {
        goto out;
    }
    rc = applied_load(c, 0, &a, err);
    if (rc != FL_OK) {
        goto out;
    }
    rc = fl_migrate_plan_make(known, &a.list, &plan, err);
    for (size_t i = 0; rc == FL_OK && i < plan.npending; i++) {
        rc = apply_one(c, &known->items[plan.first + i], err);
    }
    if (rc == FL_OK) {
        fl_log(FL_INFO, "migrate.done", FL_INT("version", plan.target_version),
               FL_INT("applied", (long long)plan.npending));
    }
out:
    applied_free(&a);
    /* closing the session releases the advisory lock and the SET in every case */
    fl_pg_discard(pool, c);
    return rc;
}

/* Loads the applied rows, or none when the table does not exist yet. */
static fl_rc check_load(fl_pg_conn *c, long long deadline, applied_set *out, fl_err *err)
{
    fl_pg_stmt exists = {.sql = sql_exists, .timeout_ms = remaining_ms(deadline)};
    fl_pg_rows *rows = NULL;
    const char *found;
    fl_rc rc;

    rc = fl_pg_exec(c, &exists, &rows, err);
    if (rc != FL_OK) {
        goto out;
    }
    found = fl_pg_rows_get(rows, 0, 0);
    if (found && strcmp(found, "t") == 0) {
        rc = applied_load(c, remaining_ms(deadline), out, err);
    }
out:
    fl_pg_rows_free(rows);
    return rc;
}

fl_rc fl_migrate_check(fl_pg_pool *pool, const fl_migration_list *known, int timeout_ms,
                       fl_err *err)
{
    long long deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 1);
    fl_err why = FL_ERR_INIT;
    fl_pg_conn *c = NULL;
    applied_set a = {0};
    fl_migrate_plan plan;
    fl_rc rc;

    rc = fl_pg_acquire(pool, remaining_ms(deadline), &c, err);
    if (rc != FL_OK) {
        goto out;
    }
    rc = check_load(c, deadline, &a, err);
    if (rc != FL_OK) {
        goto out;
    }
    rc = fl_migrate_plan_make(known, &a.list, &plan, &why);
    if (rc == FL_OK) {
        rc = fl_migrate_plan_check(&plan, &why);
    }
    /* every way of disagreeing with the database means "not ready" to a caller */
    if (rc != FL_OK) {
        rc = fl_err_set(err, FL_EUNAVAIL, "%s", why.msg);
    }
out:
    applied_free(&a);
    fl_pg_release(pool, c);
    return rc;
}
