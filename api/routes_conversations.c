/* api/routes_conversations.c -- /api/v1/conversations... and /api/v1/agents (issue 5).
 *
 * The model and the shapes are described in api/conversations_int.h; messages and
 * long-polls live in api/conversations_messages.c, Server-Sent Events in
 * api/conversations_sse.c, the origin documents' routes in api/routes_compat.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/body.h"
#include "api/conversations_int.h"
#include "api/publish.h"
#include "api/routes.h"
#include "core/mem.h"

#define MAX_ID_TEXT 128 /* business_id, user_id */

static bool member_allowed(const char *key, const char *const *allow)
{
    static const char *const own[] = {"flow_type", "business_id", "user_id", "agent", "metadata"};

    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
        if (strcmp(key, own[i]) == 0) {
            return true;
        }
    }
    for (size_t i = 0; allow && allow[i]; i++) {
        if (strcmp(key, allow[i]) == 0) {
            return true;
        }
    }
    return false;
}

static void check_text(json_t *body, const char *name, json_t *data, json_t **errors)
{
    json_t *v = json_object_get(body, name);

    if (!v || json_is_null(v)) {
        return;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > MAX_ID_TEXT) {
        fl_body_error(errors, name[0] == 'b' ? "/business_id" : "/user_id",
                      "must be a string of 1 to %d characters", MAX_ID_TEXT);
        return;
    }
    json_object_set(data, name, v);
}

bool fl_conv__create_data(const fl_req *r, json_t *body, const char *const *allow,
                          json_t **data_out, json_t **errors)
{
    const char *ft = json_string_value(json_object_get(body, "flow_type"));
    json_t *agent = json_object_get(body, "agent");
    json_t *meta = json_object_get(body, "metadata");
    json_t *data = json_object();
    const char *key;
    const json_t *v;

    json_object_foreach(body, key, v)
    {
        if (!member_allowed(key, allow)) {
            fl_body_error(errors, "", "unknown member \"%s\"", key);
        }
    }
    if (!ft || (strcmp(ft, "dedicated") && strcmp(ft, "dashboard") && strcmp(ft, "global"))) {
        fl_body_error(errors, "/flow_type", "is required: one of dedicated, dashboard, global");
    } else {
        json_object_set_new(data, "flow_type", json_string(ft));
    }
    check_text(body, "business_id", data, errors);
    check_text(body, "user_id", data, errors);
    if (agent && !json_is_null(agent)) {
        if (!json_is_string(agent) || !fl_conv__agent_known(r, json_string_value(agent))) {
            fl_body_error(errors, "/agent", "must be a known agent id (GET /api/v1/agents)");
        } else {
            json_object_set(data, "agent", agent);
        }
    }
    if (meta && !json_is_null(meta) && !json_is_object(meta)) {
        fl_body_error(errors, "/metadata", "must be an object");
    } else if (meta && json_is_object(meta)) {
        json_object_set(data, "metadata", meta);
    }
    *data_out = *errors ? NULL : data;
    if (*errors) {
        json_decref(data);
    }
    return *errors == NULL;
}

int fl_conv__create(fl_req *r)
{
    json_t *body = NULL, *data = NULL, *errors = NULL, *conv = NULL;
    char id[FL_UUID_STRLEN + 1], event_id[FL_PUBLISH_ID_SIZE];

    if (!fl_req_json(r, &body)) {
        return r->status;
    }
    if (!fl_conv__create_data(r, body, NULL, &data, &errors)) {
        fl_problem_errors(r, 400, "the conversation is invalid", errors);
        goto out;
    }
    fl_conv__new_id(r, id);
    if (!fl_conv__start(r, id, data, event_id, &conv)) {
        goto out;
    }
    fl_req_header_add(r, "Location", FL_CONV_PATH "/%s", id);
    if (conv) {
        fl_reply(r, 201, conv);
    } else {
        fl_reply(r, 202, json_pack("{s:s, s:s}", "id", id, "event_id", event_id));
    }
out:
    json_decref(body);
    json_decref(data);
    return r->status;
}

static int handle_get(fl_req *r)
{
    json_t *conv = NULL;

    if (!fl_conv__read(r, fl_req_param(r, 0), &conv)) {
        return r->status;
    }
    if (!conv) {
        return fl_problem(r, 404, "no conversation \"%s\"", fl_req_param(r, 0));
    }
    return fl_reply(r, 200, conv);
}

/* ---- GET /conversations ------------------------------------------------------------- */

static char *key_of(const json_t *item)
{
    return fl_page_cursor(json_string_value(json_object_get(item, "id")), NULL);
}

/* A filter value from the query, checked against `allowed` ("a|b|c", NULL = any). */
static bool filter(fl_req *r, const char *name, const char *allowed, char *buf, size_t size,
                   const char **out)
{
    *out = NULL;
    if (!fl_req_query(r, name, buf, size) || !buf[0]) {
        return true;
    }
    if (allowed) {
        size_t n = strlen(buf);
        const char *hit = strstr(allowed, buf);

        if (!hit || (hit != allowed && hit[-1] != '|') || (hit[n] && hit[n] != '|')) {
            fl_problem(r, 400, "%s must be one of %s", name, allowed);
            return false;
        }
    }
    *out = buf;
    return true;
}

/* Sorted by id, newest first: ids are UUIDv7s, so that is creation order. */
static int handle_list(fl_req *r)
{
    fl_page pg;
    char st[32], ft[32], ag[128], lim[16], sql[4096];
    const char *p[6] = {r->who.tenant, NULL, NULL, NULL, NULL, lim};
    json_t *rows = NULL;

    if (!fl_req_page(r, &pg) || !filter(r, "status", "active|ended|escalated", st, 32, &p[1]) ||
        !filter(r, "flow_type", "dedicated|dashboard|global", ft, 32, &p[2]) ||
        !filter(r, "agent", NULL, ag, sizeof(ag), &p[3])) {
        return r->status;
    }
    p[4] = pg.has_cursor ? pg.after[0] : NULL;
    snprintf(lim, sizeof(lim), "%d", pg.limit + 1);
    snprintf(sql, sizeof(sql),
             "SELECT COALESCE(json_agg(o ORDER BY k DESC), '[]') FROM (SELECT %s AS o, "
             "i.key COLLATE \"C\" AS k FROM instances i WHERE i.tenant = $1 AND i.workflow = "
             "'" FL_CONV_WORKFLOW "' AND ($2::text IS NULL OR %s = $2) AND ($3::text IS NULL OR "
             "i.context->>'flow_type' = $3) AND ($4::text IS NULL OR i.context->>'agent' = $4) "
             "AND ($5::text IS NULL OR i.key COLLATE \"C\" < $5) ORDER BY i.key COLLATE \"C\" "
             "DESC LIMIT $6::int) s",
             fl_conv__sql_object, fl_conv__sql_status);
    if (!fl_req_db_json(r, sql, 6, p, &rows)) {
        return r->status;
    }
    return fl_reply(r, 200, fl_page_wrap(&pg, rows ? rows : json_array(), key_of));
}

/* ---- switch-agent, end, recover ----------------------------------------------------- */

typedef struct applied {
    const char *instance_id;
    const char *event_id;
    const char *conv_id;
    const char *object_sql; /* NULL: the conversation; else the object of row `i` */
    json_t *conv;
} applied;

static bool read_object(fl_req *r, const applied *a, json_t **out)
{
    char sql[2048];
    const char *p[2] = {r->who.tenant, a->instance_id};

    if (!a->object_sql) {
        return fl_conv__read(r, a->conv_id, out);
    }
    snprintf(sql, sizeof(sql), "SELECT %s FROM instances i WHERE i.tenant = $1 AND i.id = $2::uuid",
             a->object_sql);
    return fl_req_db_json(r, sql, 2, p, out);
}

/* The engine wrote a history row for our event: it was applied (an event that matched
 * nothing writes none, and then the wait ends in 202). */
static fl_wait_check event_applied(fl_req *r, void *arg)
{
    applied *a = arg;
    const char *p[2] = {a->instance_id, a->event_id};
    fl_pg_rows *rows = NULL;
    bool hit;

    if (!fl_req_db(r, "SELECT 1 FROM history WHERE instance_id = $1::uuid AND event_id = $2", 2, p,
                   &rows)) {
        return FL_WAIT_ANSWERED;
    }
    hit = fl_pg_rows_count(rows) > 0;
    fl_pg_rows_free(rows);
    if (!hit) {
        return FL_WAIT_NOT_YET;
    }
    return read_object(r, a, &a->conv) ? FL_WAIT_DONE : FL_WAIT_ANSWERED;
}

int fl_conv__command(fl_req *r, fl_conv *c, const char *type, const json_t *data, int wait_ms,
                     const char *object_sql)
{
    uint64_t since = fl_publish_since(r);
    char event_id[FL_PUBLISH_ID_SIZE];
    fl_publish_cmd cmd = {r->api->cfg->kafka.topics.conversation_events, type, c->id, data};
    applied a = {c->instance_id, event_id, c->id, object_sql, NULL};
    json_t *body;

    if (!fl_publish_req(r, &cmd, event_id)) {
        return r->status;
    }
    if (wait_ms > 0) {
        fl_wait_result w = fl_publish_wait(r, c->id, since, wait_ms, event_applied, &a);

        if (w == FL_WAITED_ANSWERED) {
            return r->status;
        }
        if (w == FL_WAITED_DONE && a.conv) {
            return fl_reply(r, 200, a.conv);
        }
    }
    body = json_pack("{s:s, s:s}", "event_id", event_id, "conversation_id", c->id);
    fl_req_header_add(r, "Location", FL_CONV_PATH "/%s", c->id);
    return fl_reply(r, 202, body);
}

/* The common start of the three commands: the JSON body (an empty one allowed when
 * `empty_ok`), ?wait= (counted against api.max_streams) and the conversation. */
static bool command_begin(fl_req *r, bool empty_ok, json_t **body, int *wait_ms, fl_conv *c)
{
    const char *raw;
    size_t len = 0;

    *body = NULL;
    if (!fl_req_wait_ms(r, wait_ms)) {
        return false;
    }
    if (empty_ok && fl_req_body(r, &raw, &len) && len == 0) {
        *body = json_object();
    } else if (r->status || !fl_req_json(r, body)) {
        return false;
    }
    if (*wait_ms > 0 && !fl_req_stream_enter(r)) {
        json_decref(*body);
        *body = NULL;
        return false;
    }
    if (!fl_conv__lookup(r, fl_req_param(r, 0), c)) {
        if (*wait_ms > 0) {
            fl_req_stream_leave(r);
        }
        json_decref(*body);
        *body = NULL;
        return false;
    }
    return true;
}

static void command_end(fl_req *r, int wait_ms, json_t *body, fl_conv *c)
{
    if (wait_ms > 0) {
        fl_req_stream_leave(r);
    }
    json_decref(body);
    fl_conv__release(c);
}

/* The only member of a command body; anything else is a 400. */
static bool one_member(const json_t *body, const char *name, json_t **errors)
{
    const char *key;
    const json_t *v;

    json_object_foreach((json_t *)body, key, v)
    {
        if (strcmp(key, name) != 0) {
            fl_body_error(errors, "", "unknown member \"%s\"", key);
        }
    }
    return *errors == NULL;
}

static int handle_switch(fl_req *r)
{
    json_t *body, *errors = NULL, *data = NULL;
    int wait_ms;
    fl_conv c;
    const char *agent;

    if (!command_begin(r, false, &body, &wait_ms, &c)) {
        return r->status;
    }
    agent = json_string_value(json_object_get(body, "agent"));
    if (one_member(body, "agent", &errors) && (!agent || !fl_conv__agent_known(r, agent))) {
        fl_body_error(&errors, "/agent", "is required: a known agent id (GET /api/v1/agents)");
    }
    if (errors) {
        fl_problem_errors(r, 400, "the agent switch is invalid", errors);
    } else if (strcmp(c.status, "ended") == 0) {
        fl_problem(r, 409, "conversation \"%s\" has ended", c.id);
    } else {
        data = json_pack("{s:s}", "agent", agent);
        fl_conv__command(r, &c, FL_CONV_SWITCH, data, wait_ms, NULL);
    }
    json_decref(data);
    command_end(r, wait_ms, body, &c);
    return r->status;
}

/* Ending an ended conversation changes nothing: 200 with it, nothing published. */
static int handle_end(fl_req *r)
{
    json_t *body, *errors = NULL;
    int wait_ms;
    fl_conv c;
    const json_t *reason;

    if (!command_begin(r, true, &body, &wait_ms, &c)) {
        return r->status;
    }
    reason = json_object_get(body, "reason");
    if (one_member(body, "reason", &errors) && reason && !json_is_string(reason)) {
        fl_body_error(&errors, "/reason", "must be a string");
    }
    if (errors) {
        fl_problem_errors(r, 400, "the request is invalid", errors);
    } else if (strcmp(c.status, "ended") == 0) {
        fl_reply(r, 200, json_incref(c.object));
    } else {
        fl_conv__command(r, &c, FL_CONV_END, body, wait_ms, NULL);
    }
    command_end(r, wait_ms, body, &c);
    return r->status;
}

static const char *const strategies[] = {"retry_same_agent", "switch_to_fallback",
                                         "reset_conversation", "create_new_conversation",
                                         "escalate_to_human"};

static bool strategy_known(const char *s)
{
    for (size_t i = 0; s && i < sizeof(strategies) / sizeof(strategies[0]); i++) {
        if (strcmp(s, strategies[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* create_new_conversation also opens the new conversation (same flow type, business,
 * user, agent and metadata) and names it in the answer. */
static bool open_successor(fl_req *r, const fl_conv *c, json_t **extra)
{
    static const char *const copied[] = {"flow_type", "business_id", "user_id", "agent",
                                         "metadata"};
    json_t *data = json_object(), *conv = NULL;
    char id[FL_UUID_STRLEN + 1], event_id[FL_PUBLISH_ID_SIZE];
    bool ok;

    for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++) {
        json_t *v = json_object_get(c->object, copied[i]);

        if (v && !json_is_null(v)) {
            json_object_set(data, copied[i], v);
        }
    }
    fl_conv__new_id(r, id);
    ok = fl_conv__start(r, id, data, event_id, &conv);
    if (ok) {
        *extra = json_pack("{s:s, s:o?}", "new_conversation_id", id, "new_conversation", conv);
    }
    json_decref(data);
    return ok;
}

/* create_new_conversation: the old one is told to end (202 with its event id); the
 * answer names the new one, with Location pointing at it. */
static void recover_to_successor(fl_req *r, fl_conv *c, const json_t *body, json_t *extra)
{
    char event_id[FL_PUBLISH_ID_SIZE];
    fl_publish_cmd cmd = {r->api->cfg->kafka.topics.conversation_events, FL_CONV_RECOVER, c->id,
                          body};

    if (!fl_publish_req(r, &cmd, event_id)) {
        return;
    }
    json_object_set_new(extra, "event_id", json_string(event_id));
    json_object_set_new(extra, "conversation_id", json_string(c->id));
    fl_req_header_add(r, "Location", FL_CONV_PATH "/%s",
                      json_string_value(json_object_get(extra, "new_conversation_id")));
    fl_reply(r, 202, json_incref(extra));
}

static int handle_recover(fl_req *r)
{
    json_t *body, *errors = NULL, *extra = NULL;
    int wait_ms;
    fl_conv c;
    const char *strategy;

    if (!command_begin(r, false, &body, &wait_ms, &c)) {
        return r->status;
    }
    strategy = json_string_value(json_object_get(body, "strategy"));
    if (one_member(body, "strategy", &errors) && !strategy_known(strategy)) {
        fl_body_error(&errors, "/strategy",
                      "is required: one of retry_same_agent, switch_to_fallback, "
                      "reset_conversation, create_new_conversation, escalate_to_human");
    }
    if (errors) {
        fl_problem_errors(r, 400, "the recovery is invalid", errors);
    } else if (strcmp(c.status, "ended") == 0) {
        fl_problem(r, 409, "conversation \"%s\" has ended", c.id);
    } else if (strcmp(strategy, "create_new_conversation") != 0) {
        fl_conv__command(r, &c, FL_CONV_RECOVER, body, wait_ms, NULL);
    } else if (open_successor(r, &c, &extra)) {
        recover_to_successor(r, &c, body, extra);
    }
    json_decref(extra);
    command_end(r, wait_ms, body, &c);
    return r->status;
}

/* ---- export, agents ----------------------------------------------------------------- */

static int handle_export(fl_req *r)
{
    fl_conv c;
    char sql[2048];
    const char *p[3];
    json_t *out = NULL;

    if (!fl_conv__lookup(r, fl_req_param(r, 0), &c)) {
        return r->status;
    }
    p[0] = r->who.tenant;
    p[1] = c.id;
    p[2] = c.instance_id;
    snprintf(sql, sizeof(sql),
             "SELECT json_build_object('messages', (SELECT COALESCE(json_agg(%s ORDER BY m.seq), "
             "'[]') FROM messages m WHERE m.tenant = $1 AND m.conversation = $2), 'stages', "
             "(SELECT COALESCE(json_agg(json_build_object('seq', h.seq, 'event_type', "
             "h.event_type, 'from', h.from_state, 'to', h.to_state, 'created_at', %s) ORDER BY "
             "h.seq), '[]') FROM history h WHERE h.instance_id = $3::uuid), 'exported_at', %s)",
             fl_conv__sql_message, FL_CONV_TS("h.created_at"), FL_CONV_TS("now()"));
    if (fl_req_db_json(r, sql, 3, p, &out)) {
        json_object_set(out, "conversation", c.object);
        fl_reply(r, 200, out);
    }
    fl_conv__release(&c);
    return r->status;
}

int fl_conv__agents(fl_req *r)
{
    return fl_reply(r, 200,
                    json_pack("{s:o, s:n, s:b}", "data", fl_conv__agents_json(r), "next_cursor",
                              "has_more", 0));
}

#define W  FL_SCOPE_WRITE
#define RD FL_SCOPE_READ
#define I  FL_ROUTE_IDEMPOTENT
#define S  FL_ROUTE_STREAM

static const fl_route routes[] = {
    {"POST", FL_CONV_PATH, fl_conv__create, W, I},
    {"GET", FL_CONV_PATH, handle_list, RD, 0},
    {"GET", FL_CONV_PATH "/{id}", handle_get, RD, 0},
    {"POST", FL_CONV_PATH "/{id}/messages", fl_conv__post_message, W, I | S},
    {"GET", FL_CONV_PATH "/{id}/messages", fl_conv__list_messages, RD, S},
    {"GET", FL_CONV_PATH "/{id}/events", fl_conv__events, RD, S},
    {"POST", FL_CONV_PATH "/{id}/switch-agent", handle_switch, W, I | S},
    {"POST", FL_CONV_PATH "/{id}/end", handle_end, W, I | S},
    {"POST", FL_CONV_PATH "/{id}/recover", handle_recover, W, I | S},
    {"GET", FL_CONV_PATH "/{id}/export", handle_export, RD, 0},
    {"GET", "/api/v1/agents", fl_conv__agents, RD, 0},
};

void fl_routes_conversations(fl_router *rt)
{
    fl_router_add(rt, routes, sizeof(routes) / sizeof(routes[0]));
}
