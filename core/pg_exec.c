/* core/pg_exec.c -- running statements and scripts on a pooled PostgreSQL connection:
 * fl_pg_exec, fl_pg_exec_script, the rows they return, and the translation of libpq
 * errors (messages, SQLSTATEs) into fl_rc + one line. Part of the pg module (core/pg.h);
 * the pool itself is core/pg.c, what both share is in core/pg_int.h.
 *
 * Design: statements are sent with PQsendQuery* and read with PQconsumeInput against our
 * own deadline. PG 15's PQcancel blocks without a limit, so a query that overruns is
 * abandoned (its connection marked broken and closed on release, which also stops the
 * server's work) rather than cancelled.
 *
 * Thread-safety: a connection is used only by the thread that acquired it, and this file
 * keeps no state of its own; an fl_pg_rows may be read by any thread but freed once. */
#include "core/pg.h"

#include "core/mem.h"
#include "core/metrics.h"
#include "core/pg_int.h"

#include <libpq-fe.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fl_pg_rows {
    PGresult *res;
};

/* ---- messages ------------------------------------------------------------------------- */

/* Reduces a libpq message to its reason (see core/pg_int.h). Connection strings never
 * reach here: see params_build in core/pg.c. */
void fl_pg__reason_format(const char *msg, char *out, size_t size)
{
    char line[FL_PG_REASON_MAX];
    const char *p = line;
    const char *failed;

    snprintf(line, sizeof(line), "%.*s", (int)strcspn(msg ? msg : "", "\r\n"), msg ? msg : "");
    failed = strstr(line, " failed: ");
    if (strncmp(p, "connection to server ", 21) == 0 && failed) {
        p = failed + 9;
    }
    if (strncmp(p, "FATAL:  ", 8) == 0 || strncmp(p, "ERROR:  ", 8) == 0) {
        p += 8;
    }
    snprintf(out, size, "%s", *p ? p : "unknown error");
    /* "Connection refused" comes from strerror; keep acronyms such as "SSL" intact */
    if (out[0] >= 'A' && out[0] <= 'Z' && !(out[1] >= 'A' && out[1] <= 'Z')) {
        out[0] = (char)(out[0] - 'A' + 'a');
    }
}

/* ---- statements ----------------------------------------------------------------------- */

static fl_rc lost(fl_pg_conn *c, const char *why, fl_err *err)
{
    char reason[FL_PG_REASON_MAX];

    fl_pg__reason_format(why ? why : PQerrorMessage(c->pg), reason, sizeof(reason));
    return fl_err_set(err, FL_EUNAVAIL, "could not query PostgreSQL \"%s\": %s", c->target, reason);
}

/* Sends what is queued and reads until a result can be fetched without blocking. The
 * flush matters only if a caller (the store) left the connection non-blocking. A
 * timeout abandons the connection: see the file comment for why there is no PQcancel. */
static fl_rc wait_result(fl_pg_conn *c, long long deadline, fl_err *err)
{
    for (;;) {
        int unsent = PQflush(c->pg);
        int ready;
        if (unsent < 0) {
            return lost(c, NULL, err);
        }
        if (!unsent && !PQisBusy(c->pg)) {
            return FL_OK;
        }
        ready = fl_pg__wait_socket(c->pg, unsent ? POLLIN | POLLOUT : POLLIN, deadline);
        if (ready == 0) {
            c->broken = true;
            return lost(c, "timeout expired", err);
        }
        if (ready < 0 || !PQconsumeInput(c->pg)) {
            return lost(c, NULL, err);
        }
    }
}

fl_rc fl_pg_sqlstate_rc(const char *state)
{
    static const struct {
        const char *prefix;
        fl_rc rc;
    } map[] = {
        {"23505", FL_ECONFLICT}, {"40001", FL_ECONFLICT}, {"40P01", FL_ECONFLICT},
        {"57014", FL_ETIMEDOUT}, {"55P03", FL_ETIMEDOUT}, {"08", FL_EUNAVAIL},
        {"53", FL_EUNAVAIL},     {"57P", FL_EUNAVAIL},    {"58", FL_EUNAVAIL},
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strncmp(state, map[i].prefix, strlen(map[i].prefix)) == 0) {
            return map[i].rc;
        }
    }
    return FL_EIO;
}

/* " at line N" for an error position (1-based, in characters) inside sql. */
static void position_format(const char *sql, const char *pos, char *out, size_t size)
{
    long chars = pos ? strtol(pos, NULL, 10) : 0;
    long line = 1;

    out[0] = '\0';
    if (!sql || chars <= 0) {
        return;
    }
    for (const char *p = sql; *p && chars > 1; p++) {
        if (((unsigned char)*p & 0xC0) != 0x80) {
            chars--; /* count UTF-8 lead bytes only: the server counts characters */
        }
        line += *p == '\n';
    }
    snprintf(out, size, " at line %ld", line);
}

/* Only the primary message and SQLSTATE: DETAIL may quote row values (user data). */
static fl_rc result_error(fl_pg_conn *c, const PGresult *res, const char *script, fl_err *err)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    char where[32];
    fl_rc rc;

    if (PQstatus(c->pg) != CONNECTION_OK || !state || !primary) {
        return lost(c, PQresultErrorMessage(res), err);
    }
    rc = fl_pg_sqlstate_rc(state);
    if (rc == FL_EUNAVAIL) {
        return lost(c, primary, err);
    }
    position_format(script, PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION), where,
                    sizeof(where));
    return fl_err_set(err, rc, "%s%s (SQLSTATE %s)", primary, where, state);
}

static bool result_ok(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);

    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
}

/* Sorts one result into *keep (the last good one) or *bad (the first error). COPY is
 * not spoken here, so it leaves the connection unusable. */
static fl_rc sort_result(fl_pg_conn *c, PGresult *res, PGresult **keep, PGresult **bad, fl_err *err)
{
    ExecStatusType st = PQresultStatus(res);

    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
        c->broken = true;
        PQclear(res);
        return fl_err_set(err, FL_EINVAL, "cannot run COPY through the pool's query helpers");
    }
    if (*bad) {
        PQclear(res);
    } else if (!result_ok(res)) {
        *bad = res;
    } else {
        PQclear(*keep);
        *keep = res;
    }
    return FL_OK;
}

/* Fetches every result of the statement(s) sent, then reports the first error. */
static fl_rc collect(fl_pg_conn *c, long long deadline, const char *script, PGresult **out,
                     fl_err *err)
{
    PGresult *keep = NULL, *bad = NULL;
    fl_rc rc;

    for (;;) {
        PGresult *res;
        rc = wait_result(c, deadline, err);
        if (rc != FL_OK) {
            goto out;
        }
        res = PQgetResult(c->pg);
        if (!res) {
            break;
        }
        rc = sort_result(c, res, &keep, &bad, err);
        if (rc != FL_OK) {
            goto out;
        }
    }
    if (bad) {
        rc = result_error(c, bad, script, err);
        goto out;
    }
    *out = keep;
    keep = NULL;
out:
    PQclear(bad);
    PQclear(keep);
    return rc;
}

fl_rc fl_pg_exec(fl_pg_conn *conn, const fl_pg_stmt *stmt, fl_pg_rows **out, fl_err *err)
{
    fl_rc rc;
    PGresult *res = NULL;
    long long deadline = fl_pg__deadline_in(stmt->timeout_ms);
    double started = fl_metrics_now();

    if (out) {
        *out = NULL;
    }
    if (!PQsendQueryParams(conn->pg, stmt->sql, stmt->nparams, NULL, stmt->params, NULL, NULL, 0)) {
        rc = lost(conn, NULL, err);
        goto out;
    }
    rc = collect(conn, deadline, NULL, &res, err);
    if (rc != FL_OK || !out) {
        goto out;
    }
    *out = fl_xmalloc(sizeof(fl_pg_rows));
    (*out)->res = res;
    res = NULL;
out:
    PQclear(res);
    fl_metrics_db_query(fl_metrics_sql_op(stmt->sql), fl_metrics_now() - started);
    return rc;
}

fl_rc fl_pg_exec_script(fl_pg_conn *conn, const char *sql, int timeout_ms, fl_err *err)
{
    fl_rc rc;
    PGresult *res = NULL;

    if (!PQsendQuery(conn->pg, sql)) {
        rc = lost(conn, NULL, err);
        goto out;
    }
    rc = collect(conn, fl_pg__deadline_in(timeout_ms), sql, &res, err);
out:
    PQclear(res);
    return rc;
}

size_t fl_pg_rows_count(const fl_pg_rows *rows)
{
    int n = PQntuples(rows->res);

    return n > 0 ? (size_t)n : 0;
}

const char *fl_pg_rows_get(const fl_pg_rows *rows, size_t row, int col)
{
    if (row >= fl_pg_rows_count(rows) || col < 0 || col >= PQnfields(rows->res) ||
        PQgetisnull(rows->res, (int)row, col)) {
        return NULL;
    }
    return PQgetvalue(rows->res, (int)row, col);
}

void fl_pg_rows_free(fl_pg_rows *rows)
{
    if (rows) {
        PQclear(rows->res);
        free(rows);
    }
}
