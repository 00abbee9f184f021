/* api/routes_memory.c -- /api/v1/memory: per-user facts an assistant remembers (issue 6
 * item 8), stored and searched with PostgreSQL full-text search through
 * engine/directory.h, the same code `call: flowd.memory.search` runs.
 *
 * POST stores a fact (201); the same fact for the same user is one row, answered 200
 * with the stored one, so a retry without an Idempotency-Key does not duplicate it.
 * GET /memory/search ranks the user's facts against q (websearch syntax); without q it
 * lists the newest. Facts belong to the caller's tenant.
 *
 * Thread-safety: handlers run on civetweb workers, each with its own request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/request.h"
#include "api/routes.h"
#include "engine/directory.h"

#define DEFAULT_LIMIT 5
#define USER_ID_MAX   128

static fl_dir_ctx dir_ctx(const fl_req *r)
{
    fl_dir_ctx c = {r->api->pool, r->who.tenant, r->api->cfg->db.connect_timeout_ms,
                    r->api->cfg->http.request_timeout_ms};
    return c;
}

static int dir_problem(fl_req *r, fl_rc rc, const fl_err *err)
{
    if (rc == FL_ETIMEDOUT || rc == FL_ECONFLICT) {
        rc = FL_EUNAVAIL; /* a concurrent insert of the same fact: worth a retry */
    } else if (rc != FL_EUNAVAIL) {
        rc = FL_EINTERNAL;
    }
    return fl_problem_rc(r, rc, err);
}

static int add_fact(fl_req *r)
{
    fl_dir_ctx c = dir_ctx(r);
    fl_err err = FL_ERR_INIT;
    json_t *body = NULL, *errors = NULL, *fact = NULL;
    bool created = false;
    fl_rc rc;

    if (!fl_req_json(r, &body)) {
        return r->status;
    }
    if (!fl_dir_memory_check(body, &errors)) {
        json_decref(body);
        return fl_problem_errors(r, 400, "the fact is invalid", errors);
    }
    rc = fl_dir_memory_add(&c, body, &fact, &created, &err);
    json_decref(body);
    if (rc != FL_OK) {
        return dir_problem(r, rc, &err);
    }
    return fl_reply(r, created ? 201 : 200, fact);
}

/* ?limit=: 1..FL_DIR_MEMORY_MAX, default DEFAULT_LIMIT; false when answered. */
static bool search_limit(fl_req *r, int *limit)
{
    char buf[32], *end = NULL;
    long v;

    *limit = DEFAULT_LIMIT;
    if (!fl_req_query(r, "limit", buf, sizeof(buf))) {
        return true;
    }
    v = strtol(buf, &end, 10);
    if (end == buf || *end || v < 1 || v > FL_DIR_MEMORY_MAX) {
        fl_problem(r, 400, "limit must be an integer from 1 to %d", FL_DIR_MEMORY_MAX);
        return false;
    }
    *limit = (int)v;
    return true;
}

static int search_facts(fl_req *r)
{
    fl_dir_ctx c = dir_ctx(r);
    char user[USER_ID_MAX + 2], q[FL_DIR_QUERY_TEXT_MAX + 2];
    fl_err err = FL_ERR_INIT;
    json_t *rows = NULL;
    bool has_q;
    int limit;
    fl_rc rc;

    if (!fl_req_query(r, "user_id", user, sizeof(user)) || !user[0] || strlen(user) > USER_ID_MAX) {
        return fl_problem(r, 400, "query parameter user_id is required: 1 to %d characters",
                          USER_ID_MAX);
    }
    has_q = fl_req_query(r, "q", q, sizeof(q)) && q[0];
    if (has_q && strlen(q) > FL_DIR_QUERY_TEXT_MAX) {
        return fl_problem(r, 400, "query parameter q must be at most %d characters",
                          FL_DIR_QUERY_TEXT_MAX);
    }
    if (!search_limit(r, &limit)) {
        return r->status;
    }
    rc = fl_dir_memory_search(&c, user, has_q ? q : NULL, limit, &rows, &err);
    if (rc != FL_OK) {
        return dir_problem(r, rc, &err);
    }
    /* the list shape, one page: a search answers its best `limit` matches */
    return fl_reply(r, 200,
                    json_pack("{s:o, s:n, s:b}", "data", rows, "next_cursor", "has_more", 0));
}

static const fl_route routes[] = {
    {"POST", "/api/v1/memory", add_fact, FL_SCOPE_WRITE, FL_ROUTE_IDEMPOTENT},
    {"GET", "/api/v1/memory/search", search_facts, FL_SCOPE_READ, 0},
};

void fl_routes_memory(fl_router *rt)
{
    fl_router_add(rt, routes, sizeof(routes) / sizeof(routes[0]));
}
