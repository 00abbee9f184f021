/* engine/llm/provider_util.c -- the helpers the adapters share (see provider_int.h). */
#include "engine/llm/provider_int.h"

#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_ONLY "Answer with one JSON object and nothing else."

char *fl_llm__url(const char *base, const char *path)
{
    size_t n = strlen(base);

    while (n && base[n - 1] == '/') {
        n--;
    }
    while (*path == '/') {
        path++;
    }
    return fl_xasprintf("%.*s/%s", (int)n, base, path);
}

char *fl_llm__dump_take(json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT);

    json_decref(body);
    fl_assert(s != NULL); /* jansson fails only on OOM */
    return s;
}

const char *fl_llm__model(const fl_config_llm_provider *p, const fl_llm_request *req)
{
    return req->model ? req->model : p->model;
}

char *fl_llm__system_text(const fl_llm_request *req, bool json_hint)
{
    fl_buf b;

    fl_buf_init(&b, SIZE_MAX);
    for (size_t i = 0; i < req->n_messages; i++) {
        if (strcmp(req->messages[i].role, "system") == 0) {
            (void)fl_buf_appendf(&b, NULL, "%s%s", b.len ? "\n\n" : "", req->messages[i].content);
        }
    }
    if (json_hint) {
        (void)fl_buf_appendf(&b, NULL, "%s%s", b.len ? "\n\n" : "", JSON_ONLY);
    }
    if (b.len == 0) {
        fl_buf_deinit(&b);
        return NULL;
    }
    return fl_buf_steal(&b);
}

fl_rc fl_llm__load(const char *data, size_t len, json_t **out, fl_err *err)
{
    json_error_t je;

    *out = json_loadb(data, len, 0, &je);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return fl_err_set(err, FL_EINVAL, "the provider's answer is not a JSON object");
    }
    return FL_OK;
}

void fl_llm__set_model(fl_llm_response *r, const json_t *v)
{
    if (json_is_string(v)) {
        snprintf(r->model, sizeof(r->model), "%s", json_string_value(v));
    }
}

void fl_llm__set_finish(fl_llm_response *r, const json_t *v)
{
    if (json_is_string(v)) {
        snprintf(r->finish_reason, sizeof(r->finish_reason), "%s", json_string_value(v));
    }
}

fl_rc fl_llm__add(fl_llm_response *r, const json_t *text, fl_err *err)
{
    if (!json_is_string(text)) {
        return FL_OK;
    }
    return fl_llm_response_add_text(r, json_string_value(text), json_string_length(text), err);
}

long long fl_llm__count(const json_t *v, long long keep)
{
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (long long)json_integer_value(v)
                                                            : keep;
}

json_t *fl_llm__messages(const fl_llm_request *req)
{
    json_t *a = json_array();

    for (size_t i = 0; i < req->n_messages; i++) {
        json_array_append_new(a, json_pack("{s:s, s:s}", "role", req->messages[i].role, "content",
                                           req->messages[i].content));
    }
    return a;
}

void fl_llm__bearer(fl_llm_wire *w, const fl_config_llm_provider *p)
{
    char *auth;

    if (!*p->api_key) {
        return;
    }
    auth = fl_xasprintf("Bearer %s", p->api_key);
    fl_llm_wire_header(w, "Authorization", auth);
    memset(auth, 0, strlen(auth)); /* it holds the key */
    free(auth);
}

fl_rc fl_llm__parse_shape(const fl_llm__shape *shape, const char *body, size_t len,
                          fl_llm_response *r, fl_err *err)
{
    json_t *o = NULL;
    const json_t *v;
    fl_rc rc = fl_llm__load(body, len, &o, err);

    if (rc == FL_OK) {
        v = json_object_get(o, shape->key);
        if (v == NULL || json_typeof(v) != shape->type) {
            rc = fl_err_set(err, FL_EINVAL, "%s", shape->missing);
        }
    }
    if (rc == FL_OK) {
        rc = shape->apply(o, r, err);
        r->done = true;
    }
    json_decref(o);
    return rc;
}

fl_rc fl_llm__frame_shape(const fl_llm__shape *shape, const fl_llm_frame *f, fl_llm_response *r,
                          fl_err *err)
{
    json_t *o = NULL;
    fl_rc rc = fl_llm__load(f->data, f->data_len, &o, err);

    if (rc == FL_OK && json_object_get(o, "error")) {
        rc = fl_err_set(err, FL_EUNAVAIL, "the stream reported an error");
    }
    if (rc == FL_OK) {
        rc = shape->apply(o, r, err);
    }
    json_decref(o);
    return rc;
}
