/* engine/llm/ollama.c -- Ollama's native chat API (POST {base_url}/api/chat).
 *
 * Request: {model, messages, stream (always said: Ollama streams unless told not to),
 * format: "json"?, options: {num_predict?, temperature?}}. Answer: {model, message:
 * {role, content}, done: true, done_reason, prompt_eval_count, eval_count}. Stream:
 * NDJSON, one such object per line with the next piece of message.content, the last one
 * with done: true and the counts. */
#include "engine/llm/provider_int.h"

static fl_rc build(const fl_config_llm_provider *p, const fl_llm_request *req, bool stream,
                   fl_llm_wire *w, fl_err *err)
{
    json_t *options = json_object();
    json_t *body = json_pack("{s:s, s:o, s:b}", "model", fl_llm__model(p, req), "messages",
                             fl_llm__messages(req), "stream", (int)stream);

    (void)err;
    if (req->max_tokens > 0) {
        json_object_set_new(options, "num_predict", json_integer(req->max_tokens));
    }
    if (req->temperature >= 0) {
        json_object_set_new(options, "temperature", json_real(req->temperature));
    }
    json_object_set_new(body, "options", options);
    if (req->json) {
        json_object_set_new(body, "format", json_string("json"));
    }
    w->url = fl_llm__url(p->base_url, "api/chat");
    w->body = fl_llm__dump_take(body);
    fl_llm_wire_header(w, "Content-Type", "application/json");
    fl_llm__bearer(w, p); /* Ollama behind an authenticating proxy */
    return FL_OK;
}

static fl_rc apply(const json_t *o, fl_llm_response *r, fl_err *err)
{
    fl_rc rc = fl_llm__add(r, json_object_get(json_object_get(o, "message"), "content"), err);

    fl_llm__set_model(r, json_object_get(o, "model"));
    if (json_is_true(json_object_get(o, "done"))) {
        r->done = true;
        fl_llm__set_finish(r, json_object_get(o, "done_reason"));
        r->tokens_in = fl_llm__count(json_object_get(o, "prompt_eval_count"), r->tokens_in);
        r->tokens_out = fl_llm__count(json_object_get(o, "eval_count"), r->tokens_out);
    }
    return rc;
}

static const fl_llm__shape shape = {"message", JSON_OBJECT, "the answer has no message", apply};

static fl_rc parse(const char *body, size_t len, fl_llm_response *r, fl_err *err)
{
    return fl_llm__parse_shape(&shape, body, len, r, err);
}

static fl_rc frame(const fl_llm_frame *f, fl_llm_response *r, fl_err *err)
{
    return fl_llm__frame_shape(&shape, f, r, err);
}

const fl_llm_adapter fl_llm__ollama = {"ollama", FL_LLM_FRAMING_NDJSON, build, parse, frame};
