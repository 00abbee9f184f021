/* engine/llm/anthropic.c -- Anthropic Messages API (POST {base_url}/v1/messages).
 *
 * Request: {model, max_tokens (required: 1024 when the call gives none), system?,
 * messages: [{role: user|assistant, content}], temperature?, stream?} with x-api-key and
 * anthropic-version headers. No JSON mode: json asks for it in the system prompt.
 * Answer: {model, content: [{type: text, text}], stop_reason, usage: {input_tokens,
 * output_tokens}}. Stream: named-event SSE -- message_start (model, input tokens),
 * content_block_delta (delta.text), message_delta (stop_reason, output tokens),
 * message_stop (the end), ping, error. */
#include "engine/llm/provider_int.h"

#include <stdlib.h>
#include <string.h>

#define API_VERSION        "2023-06-01"
#define DEFAULT_MAX_TOKENS 1024

static json_t *messages_of(const fl_llm_request *req)
{
    json_t *a = json_array();

    for (size_t i = 0; i < req->n_messages; i++) {
        if (strcmp(req->messages[i].role, "system") != 0) {
            json_array_append_new(a, json_pack("{s:s, s:s}", "role", req->messages[i].role,
                                               "content", req->messages[i].content));
        }
    }
    return a;
}

static fl_rc build(const fl_config_llm_provider *p, const fl_llm_request *req, bool stream,
                   fl_llm_wire *w, fl_err *err)
{
    char *system = fl_llm__system_text(req, req->json);
    json_t *body =
        json_pack("{s:s, s:I, s:o}", "model", fl_llm__model(p, req), "max_tokens",
                  (json_int_t)(req->max_tokens > 0 ? req->max_tokens : DEFAULT_MAX_TOKENS),
                  "messages", messages_of(req));

    (void)err;
    if (system) {
        json_object_set_new(body, "system", json_string(system));
    }
    if (req->temperature >= 0) {
        json_object_set_new(body, "temperature", json_real(req->temperature));
    }
    if (stream) {
        json_object_set_new(body, "stream", json_true());
    }
    free(system);
    w->url = fl_llm__url(p->base_url, "v1/messages");
    w->body = fl_llm__dump_take(body);
    fl_llm_wire_header(w, "Content-Type", "application/json");
    fl_llm_wire_header(w, "anthropic-version", API_VERSION);
    if (*p->api_key) {
        fl_llm_wire_header(w, "x-api-key", p->api_key);
    }
    if (stream) {
        fl_llm_wire_header(w, "Accept", "text/event-stream");
    }
    return FL_OK;
}

static void usage_of(const json_t *u, fl_llm_response *r)
{
    r->tokens_in = fl_llm__count(json_object_get(u, "input_tokens"), r->tokens_in);
    r->tokens_out = fl_llm__count(json_object_get(u, "output_tokens"), r->tokens_out);
}

static fl_rc parse(const char *body, size_t len, fl_llm_response *r, fl_err *err)
{
    json_t *o = NULL;
    size_t i;
    const json_t *block;
    fl_rc rc = fl_llm__load(body, len, &o, err);

    if (rc != FL_OK) {
        return rc;
    }
    if (!json_is_array(json_object_get(o, "content"))) {
        json_decref(o);
        return fl_err_set(err, FL_EINVAL, "the answer has no content");
    }
    json_array_foreach(json_object_get(o, "content"), i, block)
    {
        const char *type = json_string_value(json_object_get(block, "type"));

        if (rc == FL_OK && type && strcmp(type, "text") == 0) {
            rc = fl_llm__add(r, json_object_get(block, "text"), err);
        }
    }
    fl_llm__set_model(r, json_object_get(o, "model"));
    fl_llm__set_finish(r, json_object_get(o, "stop_reason"));
    usage_of(json_object_get(o, "usage"), r);
    r->done = true;
    json_decref(o);
    return rc;
}

static bool is(const fl_llm_frame *f, const char *name)
{
    return f->event_len == strlen(name) && memcmp(f->event, name, f->event_len) == 0;
}

static fl_rc apply(const fl_llm_frame *f, const json_t *o, fl_llm_response *r, fl_err *err)
{
    const json_t *msg = json_object_get(o, "message");

    if (is(f, "message_start")) {
        fl_llm__set_model(r, json_object_get(msg, "model"));
        usage_of(json_object_get(msg, "usage"), r);
    } else if (is(f, "content_block_delta")) {
        return fl_llm__add(r, json_object_get(json_object_get(o, "delta"), "text"), err);
    } else if (is(f, "message_delta")) {
        fl_llm__set_finish(r, json_object_get(json_object_get(o, "delta"), "stop_reason"));
        usage_of(json_object_get(o, "usage"), r);
    } else if (is(f, "message_stop")) {
        r->done = true;
    } else if (is(f, "error")) {
        return fl_err_set(err, FL_EUNAVAIL, "the stream reported an error");
    }
    return FL_OK; /* ping, content_block_start/stop and future events */
}

static fl_rc frame(const fl_llm_frame *f, fl_llm_response *r, fl_err *err)
{
    json_t *o = NULL;
    fl_rc rc;

    if (f->data_len == 0) {
        return FL_OK;
    }
    rc = fl_llm__load(f->data, f->data_len, &o, err);
    if (rc == FL_OK) {
        rc = apply(f, o, r, err);
    }
    json_decref(o);
    return rc;
}

const fl_llm_adapter fl_llm__anthropic = {"anthropic", FL_LLM_FRAMING_SSE, build, parse, frame};
