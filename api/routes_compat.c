/* api/routes_compat.c -- the routes of the project's origin documents (issue 5,
 * "Compatibility routes"), served by the same handlers as /api/v1/conversations where
 * one exists, and /health.
 *
 *   POST /api/v1/conversations/create               = POST /conversations
 *   POST /api/v1/conversations/{id}/message         = POST /conversations/{id}/messages
 *   GET  /api/v1/conversations/{id}/history         = GET /conversations/{id}/messages
 *   POST /api/v1/conversations/chat/{flow_type}     create-or-continue, see handle_chat
 *   GET  /api/v1/conversations/workflows/active     running conversation instances
 *   POST /api/v1/conversations/workflows/{id}/cancel  flowd.instance.cancel for one
 *   GET  /api/v1/conversations/health | stats | agents
 *   GET  /health                                    no key; /readyz in the origin's shape
 *
 * The router prefers literal segments, so "chat", "workflows", "health", "stats",
 * "agents" and "create" never reach a {id} route. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/body.h"
#include "api/conversations_int.h"
#include "api/publish.h"
#include "api/routes.h"
#include "core/clock.h"
#include "core/mem.h"

#define CHAT_DEFAULT_WAIT_MS 10000

/* ---- POST /conversations/chat/{flow_type} ------------------------------------------ */

/* The chat body: {message, conversation_id?} plus, for a new conversation, the create
 * members (business_id, user_id, agent, metadata; flow_type comes from the path). */
static bool chat_body(fl_req *r, json_t *body, const char **message, const char **conv_id,
                      json_t **start_data)
{
    static const char *const allow[] = {"message", "conversation_id", NULL};
    json_t *errors = NULL;
    const json_t *cid = json_object_get(body, "conversation_id");

    *message = json_string_value(json_object_get(body, "message"));
    *conv_id = json_string_value(cid);
    json_object_set_new(body, "flow_type", json_string(fl_req_param(r, 0)));
    (void)fl_conv__create_data(r, body, allow, start_data, &errors);
    if (json_object_get(body, "message") && (!*message || !(*message)[0])) {
        fl_body_error(&errors, "/message", "must be a non-empty string");
    } else if (!*message && *conv_id) {
        fl_body_error(&errors, "/message", "is required to continue a conversation");
    }
    if (cid && !json_is_null(cid) && !json_is_string(cid)) {
        fl_body_error(&errors, "/conversation_id", "must be a conversation id");
    }
    if (errors) {
        json_decref(*start_data);
        *start_data = NULL;
        fl_problem_errors(r, 400, "the chat message is invalid", errors);
        return false;
    }
    return true;
}

/* The conversation to post to: the one named (404 when unknown, 409 when it is of another
 * flow type), or a new one, started here (its start and the message share the key, so
 * the engine sees them in that order). */
static bool chat_target(fl_req *r, const char *conv_id, const json_t *start_data, fl_conv *c)
{
    char event_id[FL_PUBLISH_ID_SIZE];
    fl_publish_cmd cmd = {r->api->cfg->kafka.topics.conversation_events, FL_CONV_STARTED, NULL,
                          start_data};
    const char *ft;

    if (conv_id) {
        if (!fl_conv__lookup(r, conv_id, c)) {
            return false;
        }
        ft = json_string_value(json_object_get(c->object, "flow_type"));
        if (ft && strcmp(ft, fl_req_param(r, 0)) != 0) {
            fl_problem(r, 409, "conversation \"%s\" is a %s conversation", conv_id, ft);
            return false;
        }
        return true;
    }
    memset(c, 0, sizeof(*c));
    fl_conv__new_id(r, c->id);
    snprintf(c->status, sizeof(c->status), "active");
    cmd.subject = c->id;
    return fl_publish_req(r, &cmd, event_id);
}

/* The JSON body, or {} when there is none (the body is optional here). */
static bool json_body(fl_req *r, json_t **out)
{
    const char *raw;
    size_t len = 0;

    *out = NULL;
    if (!fl_req_body(r, &raw, &len)) {
        return false;
    }
    if (len == 0) {
        *out = json_object();
        return true;
    }
    return fl_req_json(r, out);
}

/* Without a message the chat route is POST /conversations with the path's flow type. */
static void chat_start_only(fl_req *r, const json_t *start)
{
    char id[FL_UUID_STRLEN + 1], event_id[FL_PUBLISH_ID_SIZE];
    json_t *conv = NULL;

    fl_conv__new_id(r, id);
    if (!fl_conv__start(r, id, start, event_id, &conv)) {
        return;
    }
    fl_req_header_add(r, "Location", FL_CONV_PATH "/%s", id);
    if (conv) {
        fl_reply(r, 201, conv);
    } else {
        fl_reply(r, 202, json_pack("{s:s, s:s}", "id", id, "event_id", event_id));
    }
}

/* With a message: answers like POST .../messages?wait=: 200 with the reply ({..message, event_id,
 * message_id, conversation_id}) or 202 {event_id, message_id, conversation_id}. The wait
 * is ?wait= when given, else 10 s (capped by api.max_wait): chat clients expect the
 * answer in the response. */
static int handle_chat(fl_req *r)
{
    const char *ft = fl_req_param(r, 0), *message, *conv_id;
    json_t *body = NULL, *start = NULL;
    int wait_ms = 0;
    char q[8];
    bool entered = false;
    fl_conv c = {0};

    if (strcmp(ft, "dedicated") && strcmp(ft, "dashboard") && strcmp(ft, "global")) {
        return fl_problem(r, 404, "no chat \"%s\" (dedicated, dashboard, global)", ft);
    }
    if (!fl_req_wait_ms(r, &wait_ms) || !json_body(r, &body) ||
        !chat_body(r, body, &message, &conv_id, &start)) {
        goto out;
    }
    if (!fl_req_query(r, "wait", q, sizeof(q))) {
        int cap = r->api->cfg->api.max_wait_ms;

        wait_ms = CHAT_DEFAULT_WAIT_MS < cap ? CHAT_DEFAULT_WAIT_MS : cap;
    }
    entered = (wait_ms > 0 || fl_sse__wanted(r)) && fl_req_stream_enter(r);
    if ((wait_ms > 0 || fl_sse__wanted(r)) && !entered) {
        goto out;
    }
    if (!message) {
        chat_start_only(r, start);
    } else if (chat_target(r, conv_id, start, &c)) {
        fl_conv__post_to(r, &c, message, wait_ms, fl_sse__wanted(r));
    }
out:
    if (entered) {
        fl_req_stream_leave(r);
    }
    fl_conv__release(&c);
    json_decref(start);
    json_decref(body);
    return r->status;
}

/* ---- workflows/active, workflows/{id}/cancel ---------------------------------------- */

/* The instance shape of GET /api/v1/instances (+ conversation_id) of a row aliased i. */
static const char sql_instance[] =
    "json_build_object('id', i.id, 'workflow', i.workflow, 'version', i.version, 'key', i.key, "
    "'state', i.state, 'status', i.status, 'context', i.context, 'usage', i.usage, "
    "'conversation_id', i.key, 'created_at', " FL_CONV_TS(
        "i.created_at") ", 'updated_at', " FL_CONV_TS("i.updated_at") ")";

static char *key_of(const json_t *item)
{
    return fl_page_cursor(json_string_value(json_object_get(item, "key")), NULL);
}

static int handle_active(fl_req *r)
{
    fl_page pg;
    char lim[16], sql[2048];
    const char *p[3] = {r->who.tenant, NULL, lim};
    json_t *rows = NULL;

    if (!fl_req_page(r, &pg)) {
        return r->status;
    }
    p[1] = pg.has_cursor ? pg.after[0] : NULL;
    snprintf(lim, sizeof(lim), "%d", pg.limit + 1);
    snprintf(sql, sizeof(sql),
             "SELECT COALESCE(json_agg(o ORDER BY k DESC), '[]') FROM (SELECT %s AS o, i.key "
             "COLLATE \"C\" AS k FROM instances i WHERE i.tenant = $1 AND i.workflow = "
             "'" FL_CONV_WORKFLOW "' AND i.status = 'running' AND ($2::text IS NULL OR i.key "
             "COLLATE \"C\" < $2) ORDER BY i.key COLLATE \"C\" DESC LIMIT $3::int) s",
             sql_instance);
    if (!fl_req_db_json(r, sql, 3, p, &rows)) {
        return r->status;
    }
    return fl_reply(r, 200, fl_page_wrap(&pg, rows ? rows : json_array(), key_of));
}

/* {id} names the conversation (its key) or its instance: the key it stands for. */
static bool cancel_key(fl_req *r, char key[FL_UUID_STRLEN + 1])
{
    const char *id = fl_req_param(r, 0);
    const char *p[2] = {r->who.tenant, id};
    json_t *k = NULL;

    snprintf(key, FL_UUID_STRLEN + 1, "%s", id);
    if (strlen(id) != FL_UUID_STRLEN || strspn(id, "0123456789abcdef-") != FL_UUID_STRLEN) {
        return true; /* not an instance id: the lookup answers 404 */
    }
    if (!fl_req_db_json(
            r,
            "SELECT to_json(key) FROM instances WHERE tenant = $1 AND workflow = '" FL_CONV_WORKFLOW
            "' AND id = $2::uuid",
            2, p, &k)) {
        return false;
    }
    if (json_is_string(k)) {
        snprintf(key, FL_UUID_STRLEN + 1, "%s", json_string_value(k));
    }
    json_decref(k);
    return true;
}

/* Cancels the conversation's instance at once (flowd.instance.cancel: no exit actions,
 * status cancelled, shown as "ended"): 202, or 200 with the instance when ?wait= sees it. */
static int handle_cancel(fl_req *r)
{
    int wait_ms = 0;
    char key[FL_UUID_STRLEN + 1];
    fl_conv c;
    json_t *data;

    if (!fl_req_wait_ms(r, &wait_ms) || !cancel_key(r, key)) {
        return r->status;
    }
    if (wait_ms > 0 && !fl_req_stream_enter(r)) {
        return r->status;
    }
    if (fl_conv__lookup(r, key, &c)) {
        if (strcmp(c.status, "ended") == 0) {
            fl_problem(r, 409, "conversation \"%s\" has ended", c.id);
        } else {
            data =
                json_pack("{s:s, s:s}", "workflow", FL_CONV_WORKFLOW, "instance_id", c.instance_id);
            fl_conv__command(r, &c, FL_CONV_INSTANCE_CANCEL, data, wait_ms, sql_instance);
            json_decref(data);
        }
        fl_conv__release(&c);
    }
    if (wait_ms > 0) {
        fl_req_stream_leave(r);
    }
    return r->status;
}

/* ---- health, stats ------------------------------------------------------------------ */

/* {status: healthy | unhealthy, service, timestamp, checks}: the readiness snapshot. */
static json_t *health_body(fl_req *r, int *status)
{
    json_t *snap = fl_health_snapshot(r->api->health);
    json_t *checks = json_object_get(snap, "checks");
    const char *s = json_string_value(json_object_get(snap, "status"));
    bool ready = s && strcmp(s, "ready") == 0;
    char ts[32];
    json_t *body;

    fl_clock_format_rfc3339(fl_clock_now_ms(fl_clock_system()), ts, sizeof(ts));
    *status = ready ? 200 : 503;
    body =
        json_pack("{s:s, s:s, s:s, s:o}", "status", ready ? "healthy" : "unhealthy", "service",
                  "flowd", "timestamp", ts, "checks", checks ? json_incref(checks) : json_object());
    json_decref(snap);
    return body;
}

static int handle_health(fl_req *r)
{
    int status;
    json_t *body = health_body(r, &status);

    return fl_reply(r, status, body);
}

static int handle_conv_health(fl_req *r)
{
    int status;
    json_t *body = health_body(r, &status);

    json_object_set_new(body, "service", json_string("conversations"));
    json_object_set_new(body, "streams",
                        json_pack("{s:i, s:i}", "open", atomic_load(&r->api->streams), "max",
                                  r->api->cfg->api.max_streams));
    return fl_reply(r, status, body);
}

static int handle_stats(fl_req *r)
{
    char sql[2048];
    const char *p[1] = {r->who.tenant};
    json_t *out = NULL;

    snprintf(sql, sizeof(sql),
             "SELECT json_build_object('total', count(*), 'by_status', json_build_object('active', "
             "count(*) FILTER (WHERE st = 'active'), 'ended', count(*) FILTER (WHERE st = "
             "'ended'), 'escalated', count(*) FILTER (WHERE st = 'escalated')), "
             "'by_flow_type', COALESCE((SELECT json_object_agg(ft, n) FROM (SELECT "
             "COALESCE(i.context->>'flow_type', 'unknown') AS ft, count(*) AS n FROM instances i "
             "WHERE i.tenant = $1 AND i.workflow = '" FL_CONV_WORKFLOW "' GROUP BY 1) f), '{}'), "
             "'messages', (SELECT json_build_object('total', count(*), 'user', count(*) FILTER "
             "(WHERE role = 'user'), 'assistant', count(*) FILTER (WHERE role = 'assistant')) "
             "FROM messages WHERE tenant = $1), 'usage', json_build_object('tokens_in', "
             "COALESCE(sum(ti), 0), 'tokens_out', COALESCE(sum(tout), 0), 'cost', "
             "COALESCE(sum(cost), 0))) FROM (SELECT %s AS st, (i.usage->>'tokens_in')::bigint "
             "AS ti, (i.usage->>'tokens_out')::bigint AS tout, (i.usage->>'cost')::numeric AS "
             "cost FROM instances i WHERE i.tenant = $1 AND i.workflow = '" FL_CONV_WORKFLOW "') s",
             fl_conv__sql_status);
    if (!fl_req_db_json(r, sql, 1, p, &out)) {
        return r->status;
    }
    return fl_reply(r, 200, out ? out : json_object());
}

#define W  FL_SCOPE_WRITE
#define RD FL_SCOPE_READ
#define I  FL_ROUTE_IDEMPOTENT
#define S  FL_ROUTE_STREAM

static const fl_route routes[] = {
    {"POST", FL_CONV_PATH "/create", fl_conv__create, W, I},
    {"POST", FL_CONV_PATH "/{id}/message", fl_conv__post_message, W, I | S},
    {"GET", FL_CONV_PATH "/{id}/history", fl_conv__list_messages, RD, S},
    {"POST", FL_CONV_PATH "/chat/{flow_type}", handle_chat, W, I | S},
    {"GET", FL_CONV_PATH "/workflows/active", handle_active, RD, 0},
    {"POST", FL_CONV_PATH "/workflows/{id}/cancel", handle_cancel, W, I | S},
    {"GET", FL_CONV_PATH "/health", handle_conv_health, RD, 0},
    {"GET", FL_CONV_PATH "/stats", handle_stats, RD, 0},
    {"GET", FL_CONV_PATH "/agents", fl_conv__agents, RD, 0},
    {"GET", "/health", handle_health, FL_SCOPE_NONE, 0},
};

void fl_routes_compat(fl_router *rt)
{
    fl_router_add(rt, routes, sizeof(routes) / sizeof(routes[0]));
}
