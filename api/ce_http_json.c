/* api/ce_http_json.c -- structured and batch mode of the CloudEvents HTTP binding.
 *
 * The body is parsed once with api/body.h (duplicate keys, depth), each envelope is
 * checked for the four required attributes so every missing one gets its own pointer,
 * its `tenant` member is dropped (the caller's tenant is set instead), and it is then
 * handed, already parsed (fl_ce_opts.parsed_envelope), to the engine's decoder as a
 * structured-mode record, so the rules are the engine's (ce_http.h) and the envelope is
 * neither serialized nor parsed a second time.
 *
 * Thread-safety: reentrant; no shared state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/body.h"
#include "api/ce_http_int.h"
#include "core/mem.h"

static const char structured_type[] = "application/cloudevents+json";

/* Checks and decodes one envelope; base is "" (structured) or "/<index>" (batch). */
static void decode_envelope(ce_ctx *c, json_t *env, const char *base)
{
    static const char *const required[] = {"specversion", "id", "source", "type"};
    fl_ce_header h = {
        .name = "content-type", .value = structured_type, .len = sizeof(structured_type) - 1};
    fl_ce_record rec = {.topic = "http", .partition = -1, .offset = -1};
    bool missing = false;

    if (!json_is_object(env)) {
        ce_fail(c, base, NULL, "%s",
                base[0] ? "a batch item must be a CloudEvent JSON object"
                        : "the body must be a CloudEvent JSON object");
        return;
    }
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        const json_t *v = json_object_get(env, required[i]);
        if (v == NULL || json_is_null(v)) {
            ce_fail(c, base, required[i], "missing required attribute \"%s\"", required[i]);
            missing = true;
        }
    }
    if (missing) {
        return;
    }
    json_object_del(env, "tenant"); /* the caller's tenant wins (ce_http.h) */
    rec.headers = &h;
    rec.nheaders = 1;
    c->envelope = env;
    ce_decode_record(c, &rec, base);
    c->envelope = NULL;
}

static void decode_batch(ce_ctx *c, json_t *doc)
{
    char base[32];
    size_t i;
    json_t *env;

    if (!json_is_array(doc)) {
        ce_fail(c, "", NULL, "a batch must be a JSON array of CloudEvents");
        return;
    }
    if (json_array_size(doc) > FL_CE_HTTP_MAX_BATCH) {
        c->too_many = true;
        ce_fail(c, "", NULL, "a batch holds at most %d events, this one %zu", FL_CE_HTTP_MAX_BATCH,
                json_array_size(doc));
        return;
    }
    json_array_foreach(doc, i, env)
    {
        snprintf(base, sizeof(base), "/%zu", i);
        decode_envelope(c, env, base);
    }
}

void ce_decode_json(ce_ctx *c, const fl_ce_http_request *req, bool batch)
{
    json_t *doc;
    json_t *errs;

    if (!fl_body_decode(req->body, req->body_len, c->opts->max_depth, &doc, &errs)) {
        ce_fail_json(c, errs);
        return;
    }
    if (batch) {
        decode_batch(c, doc);
    } else {
        decode_envelope(c, doc, "");
    }
    json_decref(doc);
}
