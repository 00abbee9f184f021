/* api/routes_instances.c -- workflow instances: create, list, read, history (signal and
 * cancel are in api/routes_instances_cmd.c).
 *
 * The API never writes instances (ARCHITECTURE.md section 2): a create publishes
 * `flowd.instance.start` {workflow, version?, input} on the instance key to
 * topics.flowd_events, then waits (api.create_wait) for the engine's NOTIFY on that key
 * and reads the instance the event started -- the one whose history holds the event's
 * id. Past the bound it answers 202 with a Location listing the key's instances, since
 * the instance id is the engine's to choose.
 *
 * Instance ids are UUIDv7, so "newest first" is id DESC and a list cursor is one id
 * (schemas/sql/004_api_lists.sql).
 *
 * Thread-safety: handlers run on civetweb workers, each with its own request. */
#include <stdlib.h>
#include <string.h>

#include "api/body.h"
#include "api/instances_int.h"
#include "api/publish.h"
#include "api/routes.h"
#include "engine/cloudevent.h"

#define EVENT_START "flowd.instance.start"

static const char sql_visible[] =
    "SELECT json_build_object('version', d.version) FROM definitions d "
    "WHERE d.name = $2 AND (d.tenant = $1 OR d.shipped) AND ($3::int <= 0 OR d.version = $3) "
    "ORDER BY (d.tenant = $1) DESC, d.version DESC LIMIT 1";

static const char sql_running[] = "SELECT " FL_INST_SQL_OBJECT " FROM instances i "
                                  "WHERE i.tenant = $1 AND i.workflow = $2 AND i.key = $3 "
                                  "AND i.status = 'running' LIMIT 1";

static const char sql_started[] =
    "SELECT " FL_INST_SQL_OBJECT " FROM instances i WHERE i.tenant = $1 AND i.key = $2 "
    "AND i.workflow = $3 AND EXISTS (SELECT 1 FROM history h WHERE h.instance_id = i.id "
    "AND h.event_id = $4) ORDER BY i.id DESC LIMIT 1";

static const char sql_one[] =
    "SELECT " FL_INST_SQL_OBJECT " FROM instances i WHERE i.tenant = $1 AND i.id = $2::uuid";

static const char sql_list[] =
    "SELECT COALESCE(json_agg(" FL_INST_SQL_OBJECT " ORDER BY i.id DESC), '[]') FROM "
    "(SELECT * FROM instances i WHERE i.tenant = $1 AND ($2::uuid IS NULL OR i.id < $2::uuid) "
    "AND ($3::text IS NULL OR i.workflow = $3) AND ($4::text IS NULL OR i.key = $4) "
    "AND ($5::text IS NULL OR i.state = $5) AND ($6::text IS NULL OR i.status = $6) "
    "ORDER BY i.id DESC LIMIT $7::int) i";

static const char sql_history[] =
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM instances WHERE tenant = $1 AND id = $2::uuid) "
    "THEN (SELECT COALESCE(json_agg(json_build_object('seq', h.seq, 'event_id', h.event_id, "
    "'event_type', h.event_type, 'from_state', h.from_state, 'to_state', h.to_state, "
    "'effects', h.effects, 'created_at', " FL_INST_TS(
        "h.created_at") ") ORDER BY h.seq), '[]') FROM "
                        "(SELECT * FROM history h WHERE h.instance_id = $2::uuid AND h.tenant = $1 "
                        "AND h.seq > $3::bigint ORDER BY h.seq LIMIT $4::int) h) END";

/* ---- create ---------------------------------------------------------------------------- */

typedef struct create_req {
    const char *name;
    const char *key;     /* borrowed from the body, or key_buf */
    const json_t *input; /* may be NULL */
    int version;         /* 0 = the latest */
    char key_buf[FL_PUBLISH_ID_SIZE];
    char event_id[FL_PUBLISH_ID_SIZE];
    json_t *instance; /* owned: what the wait found */
} create_req;

/* {key?: string, input?: any, version?: integer >= 1}; unknown members are errors. */
static bool create_body(fl_req *r, const json_t *body, create_req *c)
{
    json_t *errors = NULL;
    const char *k;
    const json_t *v;

    json_object_foreach((json_t *)body, k, v)
    {
        if (strcmp(k, "key") == 0) {
            size_t n = json_string_length(v);
            c->key = json_string_value(v);
            if (!c->key || n == 0 || n > FL_CE_MAX_SUBJECT || strlen(c->key) != n) {
                fl_body_error(&errors, "/key", "must be a string of 1 to %d bytes without NUL",
                              FL_CE_MAX_SUBJECT);
            }
        } else if (strcmp(k, "version") == 0) {
            c->version = json_is_integer(v) && json_integer_value(v) >= 1 &&
                                 json_integer_value(v) <= 1000000000
                             ? (int)json_integer_value(v)
                             : -1;
            if (c->version < 0) {
                fl_body_error(&errors, "/version", "must be a positive integer");
            }
        } else if (strcmp(k, "input") == 0) {
            c->input = v;
        } else {
            fl_body_error(&errors, "", "unknown member \"%s\" (allowed: key, input, version)", k);
        }
    }
    if (errors) {
        fl_problem_errors(r, 400, "the body is invalid", errors);
        return false;
    }
    return true;
}

/* 404 unless the tenant sees the workflow (and the version); 409 when the key already
 * runs an instance of it (the engine would ignore the start). */
static bool create_check(fl_req *r, create_req *c)
{
    char v[16];
    const char *p[3] = {r->who.tenant, c->name, v};
    json_t *row = NULL;

    snprintf(v, sizeof(v), "%d", c->version);
    if (!fl_inst__name_valid(c->name) || !fl_req_db_json(r, sql_visible, 3, p, &row) || !row) {
        if (!r->status) {
            fl_problem(r, 404, "no workflow \"%s\"%s", c->name,
                       c->version ? " in that version" : "");
        }
        return false;
    }
    json_decref(row);
    row = NULL;
    p[2] = c->key;
    if (!fl_req_db_json(r, sql_running, 3, p, &row)) {
        return false;
    }
    if (row) {
        fl_req_header_add(r, "Location", "/api/v1/instances/%s",
                          json_string_value(json_object_get(row, "id")));
        fl_problem(r, 409, "an instance of \"%s\" is already running for this key", c->name);
        json_decref(row);
        return false;
    }
    return true;
}

static fl_wait_check started(fl_req *r, void *arg)
{
    create_req *c = arg;
    const char *p[4] = {r->who.tenant, c->key, c->name, c->event_id};

    if (!fl_req_db_json(r, sql_started, 4, p, &c->instance)) {
        return FL_WAIT_ANSWERED;
    }
    return c->instance ? FL_WAIT_DONE : FL_WAIT_NOT_YET;
}

/* Publishes the start and answers 201 (the instance), 202 or the error. */
static int create_run(fl_req *r, create_req *c)
{
    uint64_t since = fl_publish_since(r);
    json_t *data = json_pack("{s:s}", "workflow", c->name);
    fl_publish_cmd cmd = {r->api->cfg->kafka.topics.flowd_events, EVENT_START, c->key, data};
    char loc[3 * FL_CE_MAX_SUBJECT + 1];
    bool sent;

    if (c->input) {
        json_object_set(data, "input", (json_t *)c->input);
    }
    if (c->version > 0) {
        json_object_set_new(data, "version", json_integer(c->version));
    }
    sent = fl_publish_req(r, &cmd, c->event_id);
    json_decref(data);
    if (!sent) {
        return r->status;
    }
    switch (fl_publish_wait(r, c->key, since, r->api->cfg->api.create_wait_ms, started, c)) {
    case FL_WAITED_DONE:
        fl_req_header_add(r, "Location", "/api/v1/instances/%s",
                          json_string_value(json_object_get(c->instance, "id")));
        return fl_reply(r, 201, json_incref(c->instance));
    case FL_WAITED_ANSWERED:
        return r->status;
    default:
        mg_url_encode(c->key, loc, sizeof(loc));
        fl_req_header_add(r, "Location", "/api/v1/instances?workflow=%s&key=%s", c->name, loc);
        return fl_reply(r, 202,
                        json_pack("{s:s, s:s, s:s}", "event_id", c->event_id, "workflow", c->name,
                                  "key", c->key));
    }
}

static int create_instance(fl_req *r)
{
    create_req c = {.name = fl_req_param(r, 0)};
    json_t *body = NULL;
    int status;

    if (!fl_req_json(r, &body) || !create_body(r, body, &c)) {
        json_decref(body);
        return r->status;
    }
    if (!c.key) {
        fl_publish_new_id(r, c.key_buf);
        c.key = c.key_buf;
    }
    status = create_check(r, &c) ? create_run(r, &c) : r->status;
    json_decref(c.instance);
    json_decref(body);
    return status;
}

/* ---- reads ----------------------------------------------------------------------------- */

static char *id_cursor(const json_t *item)
{
    return fl_page_cursor(json_string_value(json_object_get(item, "id")), NULL);
}

/* The list's filters ($3..$6): workflow, key, state, status; false after a 400. */
static bool list_filters(fl_req *r, char f[4][600], const char **p)
{
    static const char *const names[4] = {"workflow", "key", "state", "status"};

    for (int i = 0; i < 4; i++) {
        if (!fl_inst__query(r, names[i], f[i], sizeof(f[i]), &p[i])) {
            return false;
        }
    }
    if (p[3] && strcmp(p[3], "running") != 0 && strcmp(p[3], "completed") != 0 &&
        strcmp(p[3], "failed") != 0 && strcmp(p[3], "cancelled") != 0) {
        fl_problem(r, 400, "status must be one of running, completed, failed, cancelled");
        return false;
    }
    return true;
}

static int list_instances(fl_req *r)
{
    fl_page pg;
    char f[4][600], limit[16];
    const char *p[7] = {r->who.tenant};
    json_t *rows = NULL;

    if (!fl_req_page(r, &pg) || !list_filters(r, f, &p[2])) {
        return r->status;
    }
    if (pg.has_cursor && !fl_inst__uuid_valid(pg.after[0])) {
        return fl_problem(r, 400, "the cursor is not valid");
    }
    p[1] = pg.has_cursor ? pg.after[0] : NULL;
    snprintf(limit, sizeof(limit), "%d", pg.limit + 1);
    p[6] = limit;
    if (!fl_req_db_json(r, sql_list, 7, p, &rows)) {
        return r->status;
    }
    return fl_reply(r, 200, fl_page_wrap(&pg, rows ? rows : json_array(), id_cursor));
}

bool fl_inst__load(fl_req *r, const char *id, json_t **out)
{
    const char *p[2] = {r->who.tenant, id};

    *out = NULL;
    if (!fl_inst__uuid_valid(id)) {
        fl_problem(r, 404, "no instance \"%s\"", id);
        return false;
    }
    if (!fl_req_db_json(r, sql_one, 2, p, out)) {
        return false;
    }
    if (!*out) {
        fl_problem(r, 404, "no instance \"%s\"", id);
        return false;
    }
    return true;
}

static int get_instance(fl_req *r)
{
    json_t *inst;

    if (!fl_inst__load(r, fl_req_param(r, 0), &inst)) {
        return r->status;
    }
    return fl_reply(r, 200, inst);
}

static char *seq_cursor(const json_t *item)
{
    char seq[24];

    snprintf(seq, sizeof(seq), "%lld", (long long)json_integer_value(json_object_get(item, "seq")));
    return fl_page_cursor(seq, NULL);
}

static int get_history(fl_req *r)
{
    const char *id = fl_req_param(r, 0);
    fl_page pg;
    char limit[16];
    const char *p[4] = {r->who.tenant, id, "0", limit};
    json_t *rows = NULL;

    if (!fl_req_page(r, &pg)) {
        return r->status;
    }
    if (pg.has_cursor && (!pg.after[0][0] || strlen(pg.after[0]) > 18 ||
                          strspn(pg.after[0], "0123456789") != strlen(pg.after[0]))) {
        return fl_problem(r, 400, "the cursor is not valid");
    }
    p[2] = pg.has_cursor ? pg.after[0] : "0";
    snprintf(limit, sizeof(limit), "%d", pg.limit + 1);
    if (!fl_inst__uuid_valid(id) || !fl_req_db_json(r, sql_history, 4, p, &rows) || !rows) {
        return r->status ? r->status : fl_problem(r, 404, "no instance \"%s\"", id);
    }
    return fl_reply(r, 200, fl_page_wrap(&pg, rows, seq_cursor));
}

static const fl_route routes[] = {
    {"POST", "/api/v1/workflows/{name}/instances", create_instance, FL_SCOPE_WRITE,
     FL_ROUTE_IDEMPOTENT},
    {"GET", "/api/v1/instances", list_instances, FL_SCOPE_READ, 0},
    {"GET", "/api/v1/instances/{id}", get_instance, FL_SCOPE_READ, 0},
    {"GET", "/api/v1/instances/{id}/history", get_history, FL_SCOPE_READ, 0},
    {"POST", "/api/v1/instances/{id}/signal", fl_inst__signal, FL_SCOPE_WRITE,
     FL_ROUTE_IDEMPOTENT | FL_ROUTE_STREAM},
    {"POST", "/api/v1/instances/{id}/cancel", fl_inst__cancel, FL_SCOPE_WRITE,
     FL_ROUTE_IDEMPOTENT | FL_ROUTE_STREAM},
};

void fl_routes_instances(fl_router *rt)
{
    fl_router_add(rt, routes, sizeof(routes) / sizeof(routes[0]));
}
