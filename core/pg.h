/* core/pg.h -- a pool of PostgreSQL connections, and the few query helpers core needs.
 *
 * The pool connects on demand, never at open: flowd must start while PostgreSQL is down,
 * report not-ready, and recover without a restart (ARCHITECTURE.md section 10). Every
 * connect and every helper query is bounded by a deadline (non-blocking libpq with
 * poll(2)), so /readyz answers in about its timeout even when the server is down or hung.
 * A connection that is broken, mid-transaction or abandoned after a timeout is closed on
 * release and replaced by a fresh one on a later acquire.
 *
 * This module and the engine store are the only ones that see libpq (STYLE.md R4.3):
 * libpq errors become fl_rc + a one-line message here. Messages name the server as
 * "host:port" and never contain the connection string, user secrets or passwords.
 *
 * Thread-safety: the pool functions are thread-safe. An fl_pg_conn belongs to the
 * thread that acquired it until it is released (libpq forbids concurrent use of a
 * PGconn). fl_pg_rows may be read by any thread but freed once. */
#ifndef FL_CORE_PG_H
#define FL_CORE_PG_H

#include <stddef.h>

#include "core/config.h"
#include "core/err.h"

/* libpq's PGconn is `struct pg_conn`; naming the tag keeps <libpq-fe.h> out of the
 * modules that only open the pool or ping it. */
struct pg_conn;

typedef struct fl_pg_pool fl_pg_pool; /* opaque */
typedef struct fl_pg_conn fl_pg_conn; /* opaque: one pooled connection */
typedef struct fl_pg_rows fl_pg_rows; /* opaque: the rows of one statement */

/* One parameterized statement for fl_pg_exec. Parameters are text; NULL is SQL NULL. */
typedef struct fl_pg_stmt {
    const char *sql;
    int nparams;
    const char *const *params;
    /* client-side bound; <= 0: none (the server's statement_timeout still applies) */
    int timeout_ms;
} fl_pg_stmt;

/* A snapshot of the pool for metrics. */
typedef struct fl_pg_stats {
    int size;                 /* db.pool_size: the most connections ever open */
    int in_use;               /* acquired, including those still connecting */
    int idle;                 /* open and waiting in the pool */
    long long connects_total; /* successful connects */
    long long connect_errors_total;
    long long discards_total; /* connections closed because they were unusable */
    long long acquire_timeouts_total;
} fl_pg_stats;

/* Validates cfg and prepares the pool without connecting. The connection string comes
 * from cfg->url ("" = libpq's PG* environment variables); flowd adds
 * fallback_application_name=flowd and `-c statement_timeout=<cfg>` to its options.
 * Ownership: *out is owned by the caller (fl_pg_pool_close); cfg is copied.
 * Errors: FL_EINVAL (unparsable db.url, pool_size < 1). */
fl_rc fl_pg_pool_open(fl_pg_pool **out, const fl_config_db *cfg, fl_err *err);

/* Closes every idle connection and frees the pool. NULL-safe. Every acquired connection
 * must have been released before (a programmer error otherwise: assert). */
void fl_pg_pool_close(fl_pg_pool *pool);

/* Lends a connection: an idle one that is still alive, or a new one. Waits at most
 * timeout_ms for a free slot and the connect (0: take an idle connection or fail; < 0:
 * wait for a slot without limit); the connect is also bounded by db.connect_timeout_ms.
 * Ownership: *out is borrowed until fl_pg_release or fl_pg_discard.
 * Errors: FL_EUNAVAIL (cannot connect), FL_ETIMEDOUT (every connection stays in use). */
fl_rc fl_pg_acquire(fl_pg_pool *pool, int timeout_ms, fl_pg_conn **out, fl_err *err);

/* Returns conn to the pool; a connection that is broken, inside a transaction, in
 * pipeline mode or abandoned after a timeout is closed instead. NULL-safe. */
void fl_pg_release(fl_pg_pool *pool, fl_pg_conn *conn);

/* Returns conn and closes it: for callers that changed session state (advisory locks,
 * SET) and would rather start over than undo it. NULL-safe. */
void fl_pg_discard(fl_pg_pool *pool, fl_pg_conn *conn);

/* The libpq connection, for the engine store's own queries (pipelining, COPY).
 * Ownership: borrowed while conn is acquired; do not PQfinish it. */
struct pg_conn *fl_pg_conn_get(fl_pg_conn *conn);

/* The server as "host:port" for messages. Ownership: borrowed while conn is acquired. */
const char *fl_pg_conn_target(const fl_pg_conn *conn);

/* Runs one statement with the extended protocol (parameters never touch the SQL text).
 * out may be NULL when the rows are not needed.
 * Ownership: *out is owned by the caller (fl_pg_rows_free).
 * Errors: FL_EUNAVAIL (connection lost, or timeout_ms passed: the connection is then
 * abandoned), FL_EIO (the statement failed; the message carries the SQLSTATE),
 * FL_ECONFLICT (unique violation, serialization failure, deadlock). */
fl_rc fl_pg_exec(fl_pg_conn *conn, const fl_pg_stmt *stmt, fl_pg_rows **out, fl_err *err);

/* Runs trusted SQL text that may hold several statements (the simple protocol), such as
 * a compiled-in migration. Stops at the first failing statement; the message names its
 * line. Errors: as fl_pg_exec. */
fl_rc fl_pg_exec_script(fl_pg_conn *conn, const char *sql, int timeout_ms, fl_err *err);

/* The number of rows (0 for statements that return none). */
size_t fl_pg_rows_count(const fl_pg_rows *rows);

/* The text of one field, or NULL for SQL NULL or out-of-range indexes.
 * Ownership: borrowed until fl_pg_rows_free. */
const char *fl_pg_rows_get(const fl_pg_rows *rows, size_t row, int col);

void fl_pg_rows_free(fl_pg_rows *rows); /* NULL-safe */

/* Runs `SELECT 1` on a pooled connection, all within about timeout_ms, for /readyz.
 * Errors: FL_EUNAVAIL (down, refused, hung), FL_ETIMEDOUT (every connection in use). */
fl_rc fl_pg_ping(fl_pg_pool *pool, int timeout_ms, fl_err *err);

/* Fills *out with the current counts (a consistent snapshot, taken under the mutex). */
void fl_pg_pool_stats(fl_pg_pool *pool, fl_pg_stats *out);

/* The fl_rc of a PostgreSQL SQLSTATE: unique/serialization/deadlock -> FL_ECONFLICT,
 * statement timeout and lock-not-available -> FL_ETIMEDOUT, connection and resource
 * classes (08, 53, 57P, 58) -> FL_EUNAVAIL, anything else -> FL_EIO. One table for the
 * pool and the store's pipelines. */
fl_rc fl_pg_sqlstate_rc(const char *state);

#endif
