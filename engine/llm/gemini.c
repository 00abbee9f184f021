/* engine/llm/gemini.c -- Google Gemini (POST {base_url}/models/{model}:generateContent,
 * or :streamGenerateContent?alt=sse), the key in the x-goog-api-key header (never in the
 * URL, which may be logged).
 *
 * Request: {contents: [{role: user|model, parts: [{text}]}], systemInstruction?: {parts:
 * [{text}]}, generationConfig: {maxOutputTokens?, temperature?, responseMimeType:
 * application/json?}}. Answer: {candidates: [{content: {parts: [{text}]}, finishReason}],
 * usageMetadata: {promptTokenCount, candidatesTokenCount}, modelVersion}. Stream:
 * data-only SSE, each event one such answer carrying the next piece; it simply ends. */
#include "engine/llm/provider_int.h"

#include <stdlib.h>
#include <string.h>

static json_t *contents_of(const fl_llm_request *req)
{
    json_t *a = json_array();

    for (size_t i = 0; i < req->n_messages; i++) {
        const char *role = req->messages[i].role;

        if (strcmp(role, "system") != 0) {
            json_array_append_new(a, json_pack("{s:s, s:[{s:s}]}", "role",
                                               strcmp(role, "assistant") == 0 ? "model" : "user",
                                               "parts", "text", req->messages[i].content));
        }
    }
    return a;
}

static json_t *config_of(const fl_llm_request *req)
{
    json_t *c = json_object();

    if (req->max_tokens > 0) {
        json_object_set_new(c, "maxOutputTokens", json_integer(req->max_tokens));
    }
    if (req->temperature >= 0) {
        json_object_set_new(c, "temperature", json_real(req->temperature));
    }
    if (req->json) {
        json_object_set_new(c, "responseMimeType", json_string("application/json"));
    }
    return c;
}

/* The model goes into the URL path: no '/', '?', '#', '%' or spaces. */
static bool model_ok(const char *m)
{
    return *m && strcspn(m, "/?#% \t\r\n") == strlen(m);
}

static fl_rc build(const fl_config_llm_provider *p, const fl_llm_request *req, bool stream,
                   fl_llm_wire *w, fl_err *err)
{
    const char *model = fl_llm__model(p, req);
    char *system = fl_llm__system_text(req, false);
    json_t *body;
    char *path;

    if (!model_ok(model)) {
        free(system);
        return fl_err_set(err, FL_EINVAL, "cannot call gemini: invalid model name");
    }
    body =
        json_pack("{s:o, s:o}", "contents", contents_of(req), "generationConfig", config_of(req));
    if (system) {
        json_object_set_new(body, "systemInstruction",
                            json_pack("{s:[{s:s}]}", "parts", "text", system));
    }
    free(system);
    path = fl_xasprintf("models/%s:%s", model,
                        stream ? "streamGenerateContent?alt=sse" : "generateContent");
    w->url = fl_llm__url(p->base_url, path);
    free(path);
    w->body = fl_llm__dump_take(body);
    fl_llm_wire_header(w, "Content-Type", "application/json");
    if (*p->api_key) {
        fl_llm_wire_header(w, "x-goog-api-key", p->api_key);
    }
    return FL_OK;
}

/* One answer (whole, or one stream piece) into r. */
static fl_rc apply(const json_t *o, fl_llm_response *r, fl_err *err)
{
    const json_t *cand = json_array_get(json_object_get(o, "candidates"), 0);
    const json_t *u = json_object_get(o, "usageMetadata");
    const json_t *part;
    size_t i;
    fl_rc rc = FL_OK;

    json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), i, part)
    {
        if (rc == FL_OK) {
            rc = fl_llm__add(r, json_object_get(part, "text"), err);
        }
    }
    fl_llm__set_finish(r, json_object_get(cand, "finishReason"));
    fl_llm__set_model(r, json_object_get(o, "modelVersion"));
    r->tokens_in = fl_llm__count(json_object_get(u, "promptTokenCount"), r->tokens_in);
    r->tokens_out = fl_llm__count(json_object_get(u, "candidatesTokenCount"), r->tokens_out);
    return rc;
}

static const fl_llm__shape shape = {"candidates", JSON_ARRAY, "the answer has no candidates",
                                    apply};

static fl_rc parse(const char *body, size_t len, fl_llm_response *r, fl_err *err)
{
    return fl_llm__parse_shape(&shape, body, len, r, err);
}

static fl_rc frame(const fl_llm_frame *f, fl_llm_response *r, fl_err *err)
{
    fl_rc rc = fl_llm__frame_shape(&shape, f, r, err);

    if (rc == FL_OK) {
        /* no end marker: a piece with a finish reason is the last one */
        r->done = r->done || r->finish_reason[0] != '\0';
    }
    return rc;
}

const fl_llm_adapter fl_llm__gemini = {"gemini", FL_LLM_FRAMING_SSE, build, parse, frame};
