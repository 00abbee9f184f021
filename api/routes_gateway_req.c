/* api/routes_gateway_req.c -- an OpenAI Chat Completions request body read into the
 * `call: llm` with object the provider chain takes (engine/llm/llm.h):
 *
 *   model (required), messages [{role, content}] (content a string, or an array of
 *   {type: "text", text} parts joined by newlines; role "developer" is a system
 *   message), temperature (0..2), max_completion_tokens / max_tokens (positive; the
 *   first wins), stream, stream_options {include_usage} (only with stream),
 *   response_format {type: text | json_object}, user (a string; not forwarded), n (1).
 *
 * What would change the answer's meaning and that flowd cannot do (tools, functions,
 * n > 1, image or audio parts, json_schema) is refused with invalid_request_error
 * naming the param; other OpenAI sampling fields (top_p, stop, seed, ...) are ignored,
 * as the providers behind the chain do not all have them. */
#include "api/routes_gateway_int.h"

#include <stdio.h>
#include <string.h>

#include "core/mem.h"

static bool bad(gw_call *c, const char *param, const char *msg)
{
    fl_openai_error(c->r, 400, NULL, param, "%s", msg);
    return false;
}

static const char *role_of(const char *role)
{
    static const char *const ok[] = {"system", "user", "assistant"};

    if (role && strcmp(role, "developer") == 0) {
        return "system"; /* OpenAI's newer name for the system role */
    }
    for (size_t i = 0; role && i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (strcmp(role, ok[i]) == 0) {
            return ok[i];
        }
    }
    return NULL;
}

/* content as a string: itself, or its text parts joined. Owned, or NULL when malformed. */
static char *content_of(const json_t *content, bool assistant)
{
    fl_buf b;
    size_t i;
    const json_t *part;

    if (json_is_string(content)) {
        return fl_xstrdup(json_string_value(content));
    }
    if (json_is_null(content) && assistant) {
        return fl_xstrdup("");
    }
    if (!json_is_array(content)) {
        return NULL;
    }
    fl_buf_init(&b, SIZE_MAX);
    json_array_foreach(content, i, part)
    {
        const char *type = json_string_value(json_object_get(part, "type"));
        const char *text = json_string_value(json_object_get(part, "text"));

        if (!type || strcmp(type, "text") != 0 || !text) {
            fl_buf_deinit(&b);
            return NULL;
        }
        (void)fl_buf_appendf(&b, NULL, "%s%s", i ? "\n" : "", text);
    }
    return b.data ? fl_buf_steal(&b) : fl_xstrdup("");
}

static bool read_message(gw_call *c, const json_t *m, size_t i, json_t *out)
{
    char param[64];
    const char *role = role_of(json_string_value(json_object_get(m, "role")));
    char *content;

    snprintf(param, sizeof(param), "messages.[%zu].role", i);
    if (!json_is_object(m)) {
        snprintf(param, sizeof(param), "messages.[%zu]", i);
        return bad(c, param, "each message must be an object with a role and a content");
    }
    if (!role) {
        return bad(c, param,
                   "role must be one of system, developer, user or assistant "
                   "(tool and function messages are not supported)");
    }
    content = content_of(json_object_get(m, "content"), strcmp(role, "assistant") == 0);
    if (!content) {
        snprintf(param, sizeof(param), "messages.[%zu].content", i);
        return bad(c, param, "content must be a string or an array of {type: text, text} parts");
    }
    json_array_append_new(out, json_pack("{s:s, s:s}", "role", role, "content", content));
    free(content);
    return true;
}

static bool read_messages(gw_call *c, const json_t *messages)
{
    json_t *out = json_array();
    size_t i;
    const json_t *m;

    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        json_decref(out);
        return bad(c, "messages", "messages must be a non-empty array");
    }
    json_array_foreach(messages, i, m)
    {
        if (!read_message(c, m, i, out)) {
            json_decref(out);
            return false;
        }
    }
    json_object_set_new(c->args, "messages", out);
    return true;
}

static bool read_limits(gw_call *c, const json_t *body)
{
    const json_t *t = json_object_get(body, "temperature");
    const json_t *mct = json_object_get(body, "max_completion_tokens");
    const json_t *mt = json_object_get(body, "max_tokens");
    const char *name = mct && !json_is_null(mct) ? "max_completion_tokens" : "max_tokens";
    const json_t *max = mct && !json_is_null(mct) ? mct : mt;

    if (t && !json_is_null(t)) {
        if (!json_is_number(t) || json_number_value(t) < 0 || json_number_value(t) > 2) {
            return bad(c, "temperature", "temperature must be a number from 0 to 2");
        }
        json_object_set_new(c->args, "temperature", json_real(json_number_value(t)));
    }
    if (max && !json_is_null(max)) {
        if (!json_is_integer(max) || json_integer_value(max) < 1) {
            return bad(c, name, "the token limit must be a positive integer");
        }
        json_object_set_new(c->args, "max_tokens", json_integer(json_integer_value(max)));
    }
    return true;
}

static bool read_stream(gw_call *c, const json_t *body)
{
    const json_t *s = json_object_get(body, "stream");
    const json_t *so = json_object_get(body, "stream_options");
    const json_t *iu = json_object_get(so, "include_usage");

    if (s && !json_is_null(s) && !json_is_boolean(s)) {
        return bad(c, "stream", "stream must be a boolean");
    }
    c->stream = json_is_true(s);
    if (so && !json_is_null(so)) {
        if (!c->stream) {
            return bad(c, "stream_options",
                       "stream_options is only allowed when stream is enabled");
        }
        if (!json_is_object(so) || (iu && !json_is_boolean(iu))) {
            return bad(c, "stream_options", "stream_options must be {include_usage: boolean}");
        }
        c->include_usage = json_is_true(iu);
    }
    return true;
}

static bool read_format(gw_call *c, const json_t *body)
{
    const json_t *rf = json_object_get(body, "response_format");
    const char *type = json_string_value(json_object_get(rf, "type"));

    if (!rf || json_is_null(rf)) {
        return true;
    }
    if (!type || (strcmp(type, "text") != 0 && strcmp(type, "json_object") != 0)) {
        return bad(c, "response_format.type",
                   "response_format.type must be text or json_object (json_schema is not "
                   "supported)");
    }
    if (strcmp(type, "json_object") == 0) {
        json_object_set_new(c->args, "json", json_true());
    }
    return true;
}

/* Fields that would change what an answer means and that the chain cannot honour. */
static bool refuse_unsupported(gw_call *c, const json_t *body)
{
    static const char *const unsupported[] = {"tools", "functions", "tool_choice", "function_call",
                                              "audio"};
    const json_t *n = json_object_get(body, "n");
    const json_t *user = json_object_get(body, "user");

    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
        const json_t *v = json_object_get(body, unsupported[i]);

        if (v && !json_is_null(v)) {
            return bad(c, unsupported[i], "this parameter is not supported by flowd's gateway");
        }
    }
    if (n && !json_is_null(n) && !(json_is_integer(n) && json_integer_value(n) == 1)) {
        return bad(c, "n", "only n = 1 is supported");
    }
    if (user && !json_is_null(user) && !json_is_string(user)) {
        return bad(c, "user", "user must be a string");
    }
    return true;
}

bool fl_gw__read(gw_call *c, const json_t *body)
{
    const json_t *model = json_object_get(body, "model");

    c->args = json_object();
    if (!json_is_string(model) || json_string_length(model) == 0) {
        return bad(c, "model", "model must be a non-empty string (see GET /v1/models)");
    }
    c->model = json_string_value(model);
    if (!refuse_unsupported(c, body) || !read_messages(c, json_object_get(body, "messages")) ||
        !read_limits(c, body) || !read_stream(c, body) || !read_format(c, body)) {
        return false;
    }
    if (c->stream) {
        json_object_set_new(c->args, "stream", json_true());
    }
    return true;
}
