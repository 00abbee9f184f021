/* core/migrate.h -- the database schema: compiled-in SQL migrations, applied in order.
 *
 * schemas/sql/NNN_name.sql files are embedded by deploy/embed-migrations.sh, so a flowd
 * binary knows exactly the schema version it needs without reading files at run time.
 * `flowd migrate` applies what is missing, each file in its own transaction together
 * with its schema_migrations row, under a PostgreSQL advisory lock so that concurrent
 * runs serialize (the second waits, then finds nothing to do). `flowd serve` and /readyz
 * only check; they never change the schema. A migration that was changed after it was
 * applied is an error, never silently skipped.
 *
 * Migration files run inside a transaction, so they must not contain BEGIN/COMMIT or
 * statements that refuse transactions (CREATE INDEX CONCURRENTLY, VACUUM).
 *
 * Thread-safety: all functions are reentrant; the pool does the locking. */
#ifndef FL_CORE_MIGRATE_H
#define FL_CORE_MIGRATE_H

#include <stddef.h>

#include "core/err.h"
#include "core/pg.h"

/* One migration; also one row of schema_migrations (sql is then NULL). */
typedef struct fl_migration {
    int version;          /* NNN of the file name */
    const char *name;     /* the file name without ".sql": "001_init" */
    const char *sql;      /* the file's text */
    const char *checksum; /* sha256 of the file, 64 lower-case hex digits */
} fl_migration;

/* The migrations compiled into this binary (build/gen/migrations.c), by version. */
extern const fl_migration fl_migrations[];
extern const size_t fl_migration_count;

/* A borrowed array of migrations, ordered by version. */
typedef struct fl_migration_list {
    const fl_migration *items;
    size_t count;
} fl_migration_list;

/* What migrate has to do, decided from the applied rows and the known list. */
typedef struct fl_migrate_plan {
    int db_version;     /* highest applied version; 0 = none */
    int target_version; /* newest known version */
    size_t first;       /* index in the known list of the first pending migration */
    size_t npending;    /* pending migrations: known[first .. first + npending) */
} fl_migrate_plan;

/* The migrations compiled into this binary, as a list.
 * Ownership: the items are static data, valid for the life of the process. */
fl_migration_list fl_migrate_embedded(void);

/* Decides the plan without touching the database: applied must be a prefix of known,
 * with the same names and checksums.
 * Ownership: borrows both lists; *out holds only numbers and indexes into known.
 * Errors: FL_ECONFLICT (an applied migration changed, is unknown, is missing below a
 * newer one, or the database is newer than known), FL_EINTERNAL (known is not in
 * strictly increasing version order). */
fl_rc fl_migrate_plan_make(const fl_migration_list *known, const fl_migration_list *applied,
                           fl_migrate_plan *out, fl_err *err);

/* Whether a plan means "ready to serve": nothing pending.
 * Errors: FL_EUNAVAIL ("database has no flowd schema: run `flowd migrate`", or
 * "database schema is at version 1, this flowd needs 3: run `flowd migrate`"). */
fl_rc fl_migrate_plan_check(const fl_migrate_plan *plan, fl_err *err);

/* Applies every pending migration of known, in order, and logs migrate.applied for each
 * and migrate.done at the end. Waits without limit for a concurrent run to finish; the
 * session's statement_timeout is lifted, since migrations may be long.
 * Errors: FL_EUNAVAIL (cannot connect), FL_ECONFLICT (see fl_migrate_plan_make),
 * FL_EIO (a migration failed; it was rolled back and the message names it). */
fl_rc fl_migrate_run(fl_pg_pool *pool, const fl_migration_list *known, fl_err *err);

/* Checks, within about timeout_ms, that the database is exactly at the newest known
 * version, for `flowd serve` and /readyz.
 * Errors: FL_EUNAVAIL for every way of not being ready: unreachable, unmigrated, behind,
 * newer ("database schema version 4 is newer than this flowd knows (3): upgrade
 * flowd") or changed migrations; FL_ETIMEDOUT (every pooled connection in use);
 * FL_EIO (schema_migrations exists but cannot be read, e.g. another tool's table). */
fl_rc fl_migrate_check(fl_pg_pool *pool, const fl_migration_list *known, int timeout_ms,
                       fl_err *err);

#endif
