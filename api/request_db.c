/* api/request_db.c -- one statement for a handler: pool, exec, release, and the answer
 * when it fails (503 for connection trouble, 500 otherwise, logged with the request id). */
#include "api/request.h"

#include "core/json.h"
#include "core/log.h"

bool fl_req_db(fl_req *r, const char *sql, int nparams, const char *const *params,
               fl_pg_rows **rows)
{
    const fl_config *cfg = r->api->cfg;
    fl_pg_stmt st = {.sql = sql,
                     .nparams = nparams,
                     .params = params,
                     .timeout_ms = cfg->http.request_timeout_ms};
    fl_pg_conn *conn = NULL;
    fl_err err = FL_ERR_INIT;
    fl_rc rc = fl_pg_acquire(r->api->pool, cfg->db.connect_timeout_ms, &conn, &err);

    if (rc == FL_OK) {
        rc = fl_pg_exec(conn, &st, rows, &err);
        fl_pg_release(r->api->pool, conn);
    }
    if (rc != FL_OK) {
        /* a conflict or bad input here is a bug in our SQL, not the client's fault */
        fl_problem_rc(r, rc == FL_EUNAVAIL || rc == FL_ETIMEDOUT ? FL_EUNAVAIL : FL_EINTERNAL,
                      &err);
        return false;
    }
    return true;
}

bool fl_req_db_json(fl_req *r, const char *sql, int nparams, const char *const *params,
                    json_t **out)
{
    fl_pg_rows *rows = NULL;
    const char *text;
    json_error_t jerr;

    *out = NULL;
    if (!fl_req_db(r, sql, nparams, params, &rows)) {
        return false;
    }
    text = fl_pg_rows_count(rows) > 0 ? fl_pg_rows_get(rows, 0, 0) : NULL;
    if (text) {
        *out = fl_json_from_pg(text, JSON_DECODE_ANY, &jerr);
    }
    fl_pg_rows_free(rows);
    if (text && !*out) {
        fl_err err = FL_ERR_INIT;

        fl_err_set(&err, FL_EINTERNAL, "the database returned invalid JSON: %s", jerr.text);
        fl_problem_rc(r, FL_EINTERNAL, &err);
        return false;
    }
    return true;
}
