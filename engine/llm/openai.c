/* engine/llm/openai.c -- OpenAI Chat Completions (POST {base_url}/chat/completions), and
 * every server that speaks it: DeepSeek, Groq, vLLM, llama.cpp's server, Ollama's /v1.
 *
 * Request: {model, messages, max_tokens?, temperature?, response_format: {type:
 * json_object}?, stream?, stream_options: {include_usage: true}?}, Authorization: Bearer.
 * Answer: {model, choices: [{message: {content}, finish_reason}], usage: {prompt_tokens,
 * completion_tokens}}. Stream: data-only SSE of chat.completion.chunk objects (choices[0]
 * .delta.content), a last chunk with usage and no choices, then `data: [DONE]`. */
#include "engine/llm/provider_int.h"

#include <string.h>

static fl_rc build(const fl_config_llm_provider *p, const fl_llm_request *req, bool stream,
                   fl_llm_wire *w, fl_err *err)
{
    json_t *body =
        json_pack("{s:s, s:o}", "model", fl_llm__model(p, req), "messages", fl_llm__messages(req));

    (void)err;
    if (req->max_tokens > 0) {
        json_object_set_new(body, "max_tokens", json_integer(req->max_tokens));
    }
    if (req->temperature >= 0) {
        json_object_set_new(body, "temperature", json_real(req->temperature));
    }
    if (req->json) {
        json_object_set_new(body, "response_format", json_pack("{s:s}", "type", "json_object"));
    }
    if (stream) {
        json_object_set_new(body, "stream", json_true());
        json_object_set_new(body, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    w->url = fl_llm__url(p->base_url, "chat/completions");
    w->body = fl_llm__dump_take(body);
    fl_llm_wire_header(w, "Content-Type", "application/json");
    fl_llm__bearer(w, p);
    if (stream) {
        fl_llm_wire_header(w, "Accept", "text/event-stream");
    }
    return FL_OK;
}

static void usage_of(const json_t *o, fl_llm_response *r)
{
    const json_t *u = json_object_get(o, "usage");

    r->tokens_in = fl_llm__count(json_object_get(u, "prompt_tokens"), r->tokens_in);
    r->tokens_out = fl_llm__count(json_object_get(u, "completion_tokens"), r->tokens_out);
    fl_llm__set_model(r, json_object_get(o, "model"));
}

static fl_rc parse(const char *body, size_t len, fl_llm_response *r, fl_err *err)
{
    json_t *o = NULL;
    const json_t *choice;
    fl_rc rc = fl_llm__load(body, len, &o, err);

    if (rc != FL_OK) {
        return rc;
    }
    choice = json_array_get(json_object_get(o, "choices"), 0);
    if (!json_is_object(choice)) {
        rc = fl_err_set(err, FL_EINVAL, "the answer has no choices");
        goto out;
    }
    rc = fl_llm__add(r, json_object_get(json_object_get(choice, "message"), "content"), err);
    fl_llm__set_finish(r, json_object_get(choice, "finish_reason"));
    usage_of(o, r);
    r->done = true;
out:
    json_decref(o);
    return rc;
}

static fl_rc frame(const fl_llm_frame *f, fl_llm_response *r, fl_err *err)
{
    json_t *o = NULL;
    const json_t *choice;
    fl_rc rc;

    if (f->data_len == 6 && memcmp(f->data, "[DONE]", 6) == 0) {
        r->done = true;
        return FL_OK;
    }
    rc = fl_llm__load(f->data, f->data_len, &o, err);
    if (rc != FL_OK) {
        return rc;
    }
    if (json_object_get(o, "error")) {
        json_decref(o);
        return fl_err_set(err, FL_EUNAVAIL, "the stream reported an error");
    }
    choice = json_array_get(json_object_get(o, "choices"), 0);
    rc = fl_llm__add(r, json_object_get(json_object_get(choice, "delta"), "content"), err);
    fl_llm__set_finish(r, json_object_get(choice, "finish_reason"));
    usage_of(o, r);
    json_decref(o);
    return rc;
}

const fl_llm_adapter fl_llm__openai = {"openai", FL_LLM_FRAMING_SSE, build, parse, frame};
