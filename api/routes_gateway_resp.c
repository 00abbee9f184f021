/* api/routes_gateway_resp.c -- what the gateway answers: a chat.completion object, or a
 * text/event-stream of chat.completion.chunk objects (the role chunk, content deltas as
 * the provider streams them, a finish chunk, with stream_options.include_usage a usage
 * chunk with empty choices, then `data: [DONE]`), and the chain's failures as OpenAI
 * errors. The stream's headers wait for the first piece of text, so a chain that fails
 * before answering still gets a plain HTTP error status; a failure after that is an
 * `error` event (the official clients raise it) and no [DONE]. */
#include "api/routes_gateway_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"

const char *fl_gw__finish_reason(const char *why)
{
    static const char *const length[] = {"length", "max_tokens", "MAX_TOKENS"};
    static const char *const filter[] = {"content_filter", "SAFETY", "RECITATION", "refusal"};

    for (size_t i = 0; why && i < sizeof(length) / sizeof(length[0]); i++) {
        if (strcmp(why, length[i]) == 0) {
            return "length";
        }
    }
    for (size_t i = 0; why && i < sizeof(filter) / sizeof(filter[0]); i++) {
        if (strcmp(why, filter[i]) == 0) {
            return "content_filter";
        }
    }
    return "stop"; /* stop, end_turn, stop_sequence, STOP, or none said */
}

/* The answer's text: the string, or the JSON-mode object as text. Owned. */
static char *text_of(const fl_llm_outcome *out)
{
    const char *s = json_string_value(out->result);
    char *dumped;

    if (s) {
        return fl_xstrdup(s);
    }
    dumped = json_dumps(out->result, JSON_COMPACT);
    return dumped ? dumped : fl_xstrdup("");
}

static json_t *usage_of(const fl_llm_outcome *out)
{
    json_int_t in = json_integer_value(json_object_get(out->usage, "tokens_in"));
    json_int_t o = json_integer_value(json_object_get(out->usage, "tokens_out"));

    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", in, "completion_tokens", o, "total_tokens",
                     in + o);
}

/* The model that answered (the provider's word for it), else the one asked for. */
static const char *model_of(const gw_call *c, const fl_llm_outcome *out)
{
    const char *m = json_string_value(json_object_get(out->usage, "model"));

    return m && *m ? m : c->model;
}

int fl_gw__reply(gw_call *c, const fl_llm_outcome *out)
{
    char *text = text_of(out);
    const char *finish = json_string_value(json_object_get(out->usage, "finish_reason"));
    json_t *body = json_pack(
        "{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s, s:n}, s:n, s:s}], s:o, s:n, s:O}", "id", c->id,
        "object", "chat.completion", "created", (json_int_t)c->created, "model", model_of(c, out),
        "choices", "index", 0, "message", "role", "assistant", "content", text, "refusal",
        "logprobs", "finish_reason", fl_gw__finish_reason(finish), "usage", usage_of(out),
        "system_fingerprint", "x_flowd", out->usage);

    free(text);
    fl_req_header_add(c->r, "X-Flowd-Provider", "%s",
                      json_string_value(json_object_get(out->usage, "provider")));
    return fl_reply(c->r, 200, body);
}

/* The chain's error type -> status, OpenAI code. */
static int status_of(const char *type, const char **code)
{
    static const struct {
        const char *type, *code;
        int status;
    } map[] = {
        {"llm.rate_limited", "rate_limit_exceeded", 429},
        {"llm.budget_exceeded", "insufficient_quota", 429},
        {"llm.invalid_request", "invalid_request", 400},
        {"llm.invalid_output", "invalid_output", 502},
        {"llm.timeout", "timeout", 504},
    };

    for (size_t i = 0; type && i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(type, map[i].type) == 0) {
            *code = map[i].code;
            return map[i].status;
        }
    }
    *code = "service_unavailable";
    return 503;
}

int fl_gw__fail(gw_call *c, const fl_llm_outcome *out)
{
    const char *code;
    int status = status_of(out->error_type, &code);

    fl_log(FL_INFO, "gateway.failed", FL_STR("request_id", c->r->request_id),
           FL_STR("error", out->error_type), FL_STR("msg", out->message));
    if (status == 429 || status == 503) {
        fl_req_header_add(c->r, "Retry-After", "1");
    }
    return fl_openai_error(c->r, status, code, NULL, "%s", out->message);
}

/* ---- the stream ------------------------------------------------------------------------- */

static bool send_event(gw_call *c, json_t *data)
{
    char *text = json_dumps(data, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *frame = fl_xasprintf("data: %s\n\n", text ? text : "{}");
    bool ok = mg_send_chunk(c->r->conn, frame, (unsigned int)strlen(frame)) > 0;

    json_decref(data);
    free(text);
    free(frame);
    return ok;
}

/* A chat.completion.chunk with one choice (delta, finish) or none (choice NULL). */
static json_t *chunk(const gw_call *c, json_t *choice)
{
    json_t *ch = json_pack("{s:s, s:s, s:I, s:s, s:n, s:[]}", "id", c->id, "object",
                           "chat.completion.chunk", "created", (json_int_t)c->created, "model",
                           c->model, "system_fingerprint", "choices");

    if (choice) {
        json_array_append_new(json_object_get(ch, "choices"), choice);
    }
    if (c->include_usage) {
        json_object_set_new(ch, "usage", json_null()); /* as OpenAI: null until the last */
    }
    return ch;
}

static json_t *choice(json_t *delta, const char *finish)
{
    return json_pack("{s:i, s:o, s:n, s:s?}", "index", 0, "delta", delta, "logprobs",
                     "finish_reason", finish);
}

static bool start(gw_call *c)
{
    char head[1536];
    int n;

    if (c->started) {
        return true;
    }
    c->started = true;
    c->r->status = 200;
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n"
                 "Transfer-Encoding: chunked\r\nX-Request-Id: %s\r\n%s%s%s%s\r\n",
                 c->r->request_id, c->r->traceparent[0] ? "traceparent: " : "", c->r->traceparent,
                 c->r->traceparent[0] ? "\r\n" : "", c->r->extra);
    if (n < 0 || (size_t)n >= sizeof(head) || mg_write(c->r->conn, head, (size_t)n) != n) {
        return false;
    }
    return send_event(
        c, chunk(c, choice(json_pack("{s:s, s:s}", "role", "assistant", "content", ""), NULL)));
}

fl_rc fl_gw__delta(void *arg, const char *text, size_t len)
{
    gw_call *c = arg;
    json_t *s = json_stringn(text, len);

    if (!s) { /* not UTF-8: cannot be a JSON string (the chain's pieces always are) */
        return FL_OK;
    }
    if (!start(c) || !send_event(c, chunk(c, choice(json_pack("{s:o}", "content", s), NULL)))) {
        return FL_EIO;
    }
    return FL_OK;
}

int fl_gw__stream_end(gw_call *c, const fl_llm_outcome *out)
{
    const char *code;
    json_t *u;

    if (!out->ok) { /* the stream began, then broke off */
        (void)status_of(out->error_type, &code);
        (void)send_event(c, json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", out->message,
                                      "type", "server_error", "param", "code", code));
        (void)mg_send_chunk(c->r->conn, "", 0);
        return c->r->status;
    }
    if (!start(c)) {
        return c->r->status;
    }
    (void)send_event(
        c, chunk(c, choice(json_object(), fl_gw__finish_reason(json_string_value(
                                              json_object_get(out->usage, "finish_reason"))))));
    if (c->include_usage) {
        u = chunk(c, NULL);
        json_object_set_new(u, "usage", usage_of(out));
        (void)send_event(c, u);
    }
    (void)mg_send_chunk(c->r->conn, "data: [DONE]\n\n", 14);
    (void)mg_send_chunk(c->r->conn, "", 0);
    return c->r->status;
}
