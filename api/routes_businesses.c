/* api/routes_businesses.c -- /api/v1/businesses: the business directory (issue 6 item 7):
 * businesses with hours and ratings, and their services / menu items.
 *
 * The validation and the SQL are engine/directory.h's, shared with the flowd.* activities
 * of workflows. The API writes these rows itself (ARCHITECTURE.md section 2: the directory
 * is the API's own table), so a create answers 201 with the stored object at once.
 *
 * Scopes: reads need `read`; creating, replacing and editing services need `write`;
 * deleting a whole business needs `admin`, because it takes every service with it and
 * cannot be undone -- an app's write key should not be able to wipe a directory.
 *
 * Listing: without q the newest first, paged by a (created_at, id) keyset cursor; with q
 * (websearch syntax) ranked by text rank then rating, paged by offset (a rank is no
 * stable key). Another tenant's business answers 404.
 *
 * Thread-safety: handlers run on civetweb workers, each with its own request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/request.h"
#include "api/routes.h"
#include "engine/cloudevent.h"
#include "engine/directory.h"

#define PATH        "/api/v1/businesses"
#define RANK_CURSOR "rank"
#define MAX_OFFSET  100000L

static fl_dir_ctx dir_ctx(const fl_req *r)
{
    fl_dir_ctx c = {r->api->pool, r->who.tenant, r->api->cfg->db.connect_timeout_ms,
                    r->api->cfg->http.request_timeout_ms};
    return c;
}

/* The answer to a failed directory call: its 404/409 as is, the rest as 503/500. */
static int dir_problem(fl_req *r, fl_rc rc, const fl_err *err)
{
    if (rc == FL_ETIMEDOUT) {
        rc = FL_EUNAVAIL;
    } else if (rc != FL_ENOTFOUND && rc != FL_ECONFLICT && rc != FL_EUNAVAIL) {
        rc = FL_EINTERNAL;
    }
    return fl_problem_rc(r, rc, err);
}

/* The JSON body, checked by check(); false when answered. */
static bool checked_body(fl_req *r, bool (*check)(const json_t *, json_t **), json_t **out)
{
    json_t *errors = NULL;

    if (!fl_req_json(r, out)) {
        return false;
    }
    if (!check(*out, &errors)) {
        json_decref(*out);
        *out = NULL;
        fl_problem_errors(r, 400, "the body is invalid", errors);
        return false;
    }
    return true;
}

/* The answer to a directory call that gave obj: 200 with it, else the failure. */
static int dir_reply(fl_req *r, fl_rc rc, const fl_err *err, json_t *obj)
{
    return rc == FL_OK ? fl_reply(r, 200, obj) : dir_problem(r, rc, err);
}

/* The answer to a directory delete: 204 without a body, else the failure. */
static int dir_deleted(fl_req *r, fl_rc rc, const fl_err *err)
{
    return rc == FL_OK ? fl_req_send(r, 204, "application/json", "", 0) : dir_problem(r, rc, err);
}

static bool service_check(const json_t *body, json_t **errors)
{
    return fl_dir_service_check(body, "", errors);
}

/* ---- list ----------------------------------------------------------------------------- */

/* The filters of the query string into s (texts in bufs); false when answered. */
static bool list_filters(fl_req *r, fl_dir_search *s, char bufs[5][1024])
{
    static const char *const names[] = {"q", "category", "city", "min_rating", "max_price_level"};
    json_t *errors = NULL;

    for (size_t i = 0; i < 5; i++) {
        if (fl_req_query(r, names[i], bufs[i], sizeof(bufs[i])) && bufs[i][0] &&
            !fl_dir_search_set(s, names[i], bufs[i], names[i], &errors)) {
            fl_problem(r, 400, "query parameter %s %s", names[i],
                       json_string_value(json_object_get(json_array_get(errors, 0), "detail")));
            json_decref(errors);
            return false;
        }
    }
    return true;
}

/* The cursor, which must be of the list's kind (ranked: offset; else created_at, id). */
static bool list_cursor(fl_req *r, const fl_page *pg, fl_dir_search *s)
{
    char *end = NULL;

    if (!pg->has_cursor) {
        return true;
    }
    if (s->q && strcmp(pg->after[0], RANK_CURSOR) == 0) {
        s->offset = strtol(pg->after[1], &end, 10);
        if (*pg->after[1] && !*end && s->offset > 0 && s->offset <= MAX_OFFSET) {
            return true;
        }
    } else if (!s->q && fl_ce_time_valid(pg->after[0]) && fl_dir_uuid_valid(pg->after[1])) {
        s->after_created_at = pg->after[0];
        s->after_id = pg->after[1];
        return true;
    }
    fl_problem(r, 400, "the cursor is not valid for this query");
    return false;
}

static char *keyset_cursor(const json_t *item)
{
    return fl_page_cursor(json_string_value(json_object_get(item, "created_at")),
                          json_string_value(json_object_get(item, "id")));
}

/* {data, next_cursor, has_more} of a ranked page: the next cursor is the next offset. */
static json_t *ranked_page(const fl_page *pg, const fl_dir_search *s, json_t *rows)
{
    bool more = json_array_size(rows) > (size_t)pg->limit;
    char off[32], *cursor = NULL;
    json_t *out;

    if (more) {
        json_array_remove(rows, (size_t)pg->limit);
        snprintf(off, sizeof(off), "%ld", s->offset + pg->limit);
        cursor = fl_page_cursor(RANK_CURSOR, off);
    }
    out = json_pack("{s:o, s:s?, s:b}", "data", rows, "next_cursor", cursor, "has_more", more);
    free(cursor);
    return out;
}

static int list_businesses(fl_req *r)
{
    fl_dir_ctx c = dir_ctx(r);
    fl_dir_search s = FL_DIR_SEARCH_INIT;
    char bufs[5][1024];
    fl_err err = FL_ERR_INIT;
    json_t *rows = NULL;
    fl_page pg;
    fl_rc rc;

    if (!fl_req_page(r, &pg) || !list_filters(r, &s, bufs) || !list_cursor(r, &pg, &s)) {
        return r->status;
    }
    s.limit = pg.limit + 1;
    rc = fl_dir_search_run(&c, &s, false, &rows, &err);
    if (rc != FL_OK) {
        return dir_problem(r, rc, &err);
    }
    if (s.q) {
        return fl_reply(r, 200, ranked_page(&pg, &s, rows));
    }
    return fl_reply(r, 200, fl_page_wrap(&pg, rows, keyset_cursor));
}

/* ---- businesses ----------------------------------------------------------------------- */

static int create_business(fl_req *r)
{
    fl_dir_ctx c = dir_ctx(r);
    fl_err err = FL_ERR_INIT;
    json_t *body = NULL, *biz = NULL;
    fl_rc rc;

    if (!checked_body(r, fl_dir_business_check, &body)) {
        return r->status;
    }
    rc = fl_dir_business_create(&c, body, &biz, &err);
    json_decref(body);
    if (rc != FL_OK) {
        return dir_problem(r, rc, &err);
    }
    fl_req_header_add(r, "Location", PATH "/%s", json_string_value(json_object_get(biz, "id")));
    return fl_reply(r, 201, biz);
}

static int get_business(fl_req *r)
{
    fl_dir_ctx c = dir_ctx(r);
    fl_err err = FL_ERR_INIT;
    json_t *biz = NULL;
    fl_rc rc = fl_dir_business_get(&c, fl_req_param(r, 0), false, &biz, &err);

    return dir_reply(r, rc, &err, biz);
}

static int replace_business(fl_req *r)
{
    fl_dir_ctx c = dir_ctx(r);
    fl_err err = FL_ERR_INIT;
    json_t *body = NULL, *biz = NULL;
    fl_rc rc;

    if (!checked_body(r, fl_dir_business_check, &body)) {
        return r->status;
    }
    rc = fl_dir_business_replace(&c, fl_req_param(r, 0), body, &biz, &err);
    json_decref(body);
    return dir_reply(r, rc, &err, biz);
}

static int delete_business(fl_req *r)
{
    fl_dir_ctx c = dir_ctx(r);
    fl_err err = FL_ERR_INIT;
    fl_rc rc = fl_dir_business_delete(&c, fl_req_param(r, 0), &err);

    return dir_deleted(r, rc, &err);
}

/* ---- services ------------------------------------------------------------------------- */

static int list_services(fl_req *r)
{
    fl_dir_ctx c = dir_ctx(r);
    fl_err err = FL_ERR_INIT;
    json_t *rows = NULL;
    fl_rc rc = fl_dir_services_list(&c, fl_req_param(r, 0), &rows, &err);

    if (rc != FL_OK) {
        return dir_problem(r, rc, &err);
    }
    /* a business has at most a few hundred items: one page, in the list shape */
    return fl_reply(r, 200,
                    json_pack("{s:o, s:n, s:b}", "data", rows, "next_cursor", "has_more", 0));
}

static int create_service(fl_req *r)
{
    fl_dir_ctx c = dir_ctx(r);
    const char *bid = fl_req_param(r, 0);
    fl_err err = FL_ERR_INIT;
    json_t *body = NULL, *svc = NULL;
    fl_rc rc;

    if (!checked_body(r, service_check, &body)) {
        return r->status;
    }
    rc = fl_dir_service_create(&c, bid, body, &svc, &err);
    json_decref(body);
    if (rc != FL_OK) {
        return dir_problem(r, rc, &err);
    }
    fl_req_header_add(r, "Location", PATH "/%s/services/%s", bid,
                      json_string_value(json_object_get(svc, "id")));
    return fl_reply(r, 201, svc);
}

static int replace_service(fl_req *r)
{
    fl_dir_ctx c = dir_ctx(r);
    fl_err err = FL_ERR_INIT;
    json_t *body = NULL, *svc = NULL;
    fl_rc rc;

    if (!checked_body(r, service_check, &body)) {
        return r->status;
    }
    rc = fl_dir_service_replace(&c, fl_req_param(r, 0), fl_req_param(r, 1), body, &svc, &err);
    json_decref(body);
    return dir_reply(r, rc, &err, svc);
}

static int delete_service(fl_req *r)
{
    fl_dir_ctx c = dir_ctx(r);
    fl_err err = FL_ERR_INIT;
    fl_rc rc = fl_dir_service_delete(&c, fl_req_param(r, 0), fl_req_param(r, 1), &err);

    return dir_deleted(r, rc, &err);
}

static const fl_route routes[] = {
    {"GET", PATH, list_businesses, FL_SCOPE_READ, 0},
    {"POST", PATH, create_business, FL_SCOPE_WRITE, FL_ROUTE_IDEMPOTENT},
    {"GET", PATH "/{id}", get_business, FL_SCOPE_READ, 0},
    {"PUT", PATH "/{id}", replace_business, FL_SCOPE_WRITE, 0},
    {"DELETE", PATH "/{id}", delete_business, FL_SCOPE_ADMIN, 0},
    {"GET", PATH "/{id}/services", list_services, FL_SCOPE_READ, 0},
    {"POST", PATH "/{id}/services", create_service, FL_SCOPE_WRITE, FL_ROUTE_IDEMPOTENT},
    {"PUT", PATH "/{id}/services/{service_id}", replace_service, FL_SCOPE_WRITE, 0},
    {"DELETE", PATH "/{id}/services/{service_id}", delete_service, FL_SCOPE_WRITE, 0},
};

void fl_routes_businesses(fl_router *rt)
{
    fl_router_add(rt, routes, sizeof(routes) / sizeof(routes[0]));
}
