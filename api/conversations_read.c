/* api/conversations_read.c -- reading conversations and transcripts, and the command
 * events every conversation route publishes (see api/conversations_int.h for the model).
 *
 * Objects are built in SQL (json_build_object) so one statement answers one question
 * and the shapes live in one place: the three fragments below. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/conv_sql.h"
#include "api/conversations_int.h"
#include "api/keys.h"
#include "api/publish.h"
#include "core/mem.h"
#include "engine/agents.h"

/* ended wins over escalated (api/conv_sql.h, shared with the analytics routes). */
const char fl_conv__sql_status[] = FL_CONV_SQL_STATUS;

const char fl_conv__sql_object[] =
    "json_build_object('id', i.key, 'flow_type', i.context->'flow_type', "
    "'business_id', i.context->'business_id', 'user_id', i.context->'user_id', "
    "'agent', i.context->'agent', 'stage', i.state, 'status', " FL_CONV_SQL_STATUS ", "
    "'usage', json_build_object('tokens_in', COALESCE((i.usage->>'tokens_in')::bigint, 0), "
    "'tokens_out', COALESCE((i.usage->>'tokens_out')::bigint, 0), "
    "'cost', COALESCE((i.usage->>'cost')::numeric, 0)), "
    "'metadata', CASE WHEN jsonb_typeof(i.context->'metadata') = 'object' "
    "THEN i.context->'metadata' ELSE '{}'::jsonb END, "
    "'created_at', " FL_CONV_TS("i.created_at") ", 'updated_at', " FL_CONV_TS("i.updated_at") ")";

/* A macro as well as a constant: fl_conv__sql_reply below embeds it at compile time. */
#define SQL_MESSAGE                                                                           \
    "json_build_object('id', m.conversation || ':' || m.seq, 'seq', m.seq, 'role', m.role, "  \
    "'content', m.content, 'agent', m.agent, 'message_id', m.message_id, 'usage', "           \
    "COALESCE(m.usage, (CASE WHEN m.tokens_in IS NULL AND m.tokens_out IS NULL AND "          \
    "m.cost IS NULL THEN NULL ELSE json_build_object('tokens_in', COALESCE(m.tokens_in, 0), " \
    "'tokens_out', COALESCE(m.tokens_out, 0), 'cost', COALESCE(m.cost, 0), 'provider', "      \
    "m.provider, 'model', m.model) END)::jsonb), "                                            \
    "'created_at', " FL_CONV_TS("m.created_at") ")"

const char fl_conv__sql_message[] = SQL_MESSAGE;

const char fl_conv__sql_reply[] =
    "WITH u AS (SELECT seq FROM messages WHERE tenant = $1 AND conversation = $2 "
    "AND seq > $3::bigint AND role = 'user' AND message_id = $4 ORDER BY seq LIMIT 1) "
    "SELECT " SQL_MESSAGE " FROM messages m, u WHERE m.tenant = $1 AND m.conversation = $2 "
    "AND m.seq > u.seq AND m.role = 'assistant' ORDER BY m.seq LIMIT 1";

/* An id we could have made: anything else is unknown without asking Postgres (and
 * cannot carry bytes that are not valid text there). */
static bool plausible_id(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > FL_UUID_STRLEN) {
        return false;
    }
    return strspn(id, "0123456789abcdefABCDEF-") == n;
}

bool fl_conv__read(fl_req *r, const char *id, json_t **out)
{
    char sql[2048];
    const char *p[2] = {r->who.tenant, id};

    *out = NULL;
    if (!plausible_id(id)) {
        return true;
    }
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM instances i WHERE i.tenant = $1 AND i.workflow = '" FL_CONV_WORKFLOW
             "' AND i.key = $2 ORDER BY i.created_at DESC LIMIT 1",
             fl_conv__sql_object);
    return fl_req_db_json(r, sql, 2, p, out);
}

bool fl_conv__lookup(fl_req *r, const char *id, fl_conv *c)
{
    char sql[2560];
    const char *p[2] = {r->who.tenant, id};
    json_t *row = NULL;
    json_t *obj;

    memset(c, 0, sizeof(*c));
    snprintf(sql, sizeof(sql),
             "SELECT json_build_object('object', %s, 'instance_id', i.id, 'max_seq', "
             "(SELECT COALESCE(max(seq), 0) FROM messages WHERE tenant = $1 AND conversation "
             "= $2)) FROM instances i WHERE i.tenant = $1 AND i.workflow = '" FL_CONV_WORKFLOW
             "' AND i.key = $2 ORDER BY i.created_at DESC LIMIT 1",
             fl_conv__sql_object);
    if (plausible_id(id) && !fl_req_db_json(r, sql, 2, p, &row)) {
        return false;
    }
    obj = json_object_get(row, "object");
    if (!json_is_object(obj)) {
        json_decref(row);
        fl_problem(r, 404, "no conversation \"%s\"", id);
        return false;
    }
    snprintf(c->id, sizeof(c->id), "%s", id);
    snprintf(c->instance_id, sizeof(c->instance_id), "%s",
             json_string_value(json_object_get(row, "instance_id")));
    snprintf(c->status, sizeof(c->status), "%s", json_string_value(json_object_get(obj, "status")));
    c->max_seq = json_integer_value(json_object_get(row, "max_seq"));
    c->object = json_incref(obj);
    json_decref(row);
    return true;
}

void fl_conv__release(fl_conv *c)
{
    json_decref(c->object);
    c->object = NULL;
}

void fl_conv__new_id(fl_req *r, char out[FL_UUID_STRLEN + 1])
{
    fl_ids_uuid7(r->api->ids, out);
}

/* ---- agents ------------------------------------------------------------------------- */

/* The profiles are the ones `flowd serve` loaded from engine.agents_dir (r->api->agents,
 * engine/agents.h): what GET /agents lists and what create / switch-agent accept. */
bool fl_conv__agent_known(const fl_req *r, const char *id)
{
    return fl_agents_get(r->api->agents, id) != NULL;
}

/* The system prompt is left out: it is the operator's prompt engineering, not something
 * an API client needs, and it may describe internal policy. */
json_t *fl_conv__agents_json(const fl_req *r)
{
    return fl_agents_to_json(r->api->agents, false);
}

/* ---- publishing --------------------------------------------------------------------- */

static fl_wait_check conv_exists(fl_req *r, void *arg)
{
    void **a = arg;
    json_t *obj = NULL;

    if (!fl_conv__read(r, a[0], &obj)) {
        return FL_WAIT_ANSWERED;
    }
    a[1] = obj;
    return obj ? FL_WAIT_DONE : FL_WAIT_NOT_YET;
}

/* The started data carries the caller's key scope (read | write | admin): the dashboard
 * flow lets only an admin change a business (engine/activities_directory.c checks the
 * instance's ctx.scope). The server's value replaces anything the client sent. */
bool fl_conv__start(fl_req *r, const char *id, const json_t *data, char *event_id,
                    json_t **conv_out)
{
    uint64_t since = fl_publish_since(r);
    json_t *with_scope = json_is_object(data) ? json_copy((json_t *)data) : json_object();
    fl_publish_cmd cmd = {r->api->cfg->kafka.topics.conversation_events, FL_CONV_STARTED, id,
                          with_scope};
    void *arg[2] = {(void *)id, NULL};
    bool published;

    *conv_out = NULL;
    json_object_set_new(with_scope, "scope", json_string(fl_scope_name(r->who.scope)));
    published = fl_publish_req(r, &cmd, event_id);
    json_decref(with_scope);
    if (!published) {
        return false;
    }
    switch (fl_publish_wait(r, id, since, r->api->cfg->api.create_wait_ms, conv_exists, arg)) {
    case FL_WAITED_DONE:
        *conv_out = arg[1];
        return true;
    case FL_WAITED_ANSWERED:
        return false;
    default:
        return true;
    }
}

bool fl_conv__send_message(fl_req *r, const char *conv_id, const char *content, char *message_id,
                           char *event_id)
{
    json_t *data;
    fl_publish_cmd cmd = {r->api->cfg->kafka.topics.conversation_events, FL_CONV_MESSAGE, conv_id,
                          NULL};
    bool ok;

    fl_conv__new_id(r, message_id);
    data = json_pack("{s:s, s:s}", "content", content, "message_id", message_id);
    cmd.data = data;
    ok = fl_publish_req(r, &cmd, event_id);
    json_decref(data);
    return ok;
}

/* ---- waiting for the assistant's reply ---------------------------------------------- */

typedef struct reply_wait {
    const char *conv_id;
    char after[24];
    const char *message_id;
    json_t *reply;
} reply_wait;

/* The user's message is the row with its message_id (008_messages_turns.sql); the reply
 * is the first assistant row after it. */
static fl_wait_check reply_arrived(fl_req *r, void *arg)
{
    reply_wait *w = arg;
    const char *p[4] = {r->who.tenant, w->conv_id, w->after, w->message_id};

    if (!fl_req_db_json(r, fl_conv__sql_reply, 4, p, &w->reply)) {
        return FL_WAIT_ANSWERED;
    }
    return w->reply ? FL_WAIT_DONE : FL_WAIT_NOT_YET;
}

bool fl_conv__wait_reply(fl_req *r, const char *conv_id, long long after, const char *message_id,
                         uint64_t since, int wait_ms, json_t **reply_out)
{
    reply_wait w = {conv_id, "", message_id, NULL};

    *reply_out = NULL;
    snprintf(w.after, sizeof(w.after), "%lld", after);
    switch (fl_publish_wait(r, conv_id, since, wait_ms, reply_arrived, &w)) {
    case FL_WAITED_DONE:
        *reply_out = w.reply;
        return true;
    case FL_WAITED_ANSWERED:
        return false;
    default:
        json_decref(w.reply);
        return true;
    }
}
