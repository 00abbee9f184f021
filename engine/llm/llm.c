/* engine/llm/llm.c -- the vendor-neutral parts of the provider interface (see llm.h):
 * reading a `call: llm` request, the answer buffer, json-mode output, classifying a
 * failed HTTP attempt, the wire buffers, and the adapter table. */
#include "engine/llm/llm.h"

#include "core/backoff.h"
#include "core/log.h"
#include "engine/llm/provider_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- request ---------------------------------------------------------------------------- */

static bool role_ok(const char *role)
{
    return role && (strcmp(role, "system") == 0 || strcmp(role, "user") == 0 ||
                    strcmp(role, "assistant") == 0);
}

static fl_rc read_messages(fl_llm_request *req, const json_t *messages, fl_err *err)
{
    size_t i;
    const json_t *m;

    if (messages && !json_is_array(messages)) {
        return fl_err_set(err, FL_EINVAL, "cannot call llm: messages is not a list");
    }
    req->messages = fl_xcalloc(json_array_size(messages) + 1, sizeof(*req->messages));
    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *content = json_string_value(json_object_get(m, "content"));

        if (!role_ok(role) || !content) {
            return fl_err_set(err, FL_EINVAL,
                              "cannot call llm: message %zu needs a role "
                              "(system, user or assistant) and a string content",
                              i + 1);
        }
        req->messages[req->n_messages++] = (fl_llm_message){role, content};
    }
    return FL_OK;
}

static fl_rc read_options(fl_llm_request *req, const json_t *args, fl_err *err)
{
    const json_t *max = json_object_get(args, "max_tokens");
    const json_t *temp = json_object_get(args, "temperature");
    const json_t *model = json_object_get(args, "model");

    if ((max && !json_is_integer(max)) || (temp && !json_is_number(temp)) ||
        (model && !json_is_string(model))) {
        return fl_err_set(err, FL_EINVAL,
                          "cannot call llm: max_tokens must be an integer, "
                          "temperature a number and model a string");
    }
    req->max_tokens = max && json_integer_value(max) > 0 ? (long)json_integer_value(max) : 0;
    req->temperature = temp ? json_number_value(temp) : -1.0;
    req->model = model && *json_string_value(model) ? json_string_value(model) : NULL;
    req->json = json_is_true(json_object_get(args, "json"));
    req->stream = json_is_true(json_object_get(args, "stream"));
    return FL_OK;
}

static bool has_text(const fl_llm_request *req)
{
    for (size_t i = 0; i < req->n_messages; i++) {
        if (strcmp(req->messages[i].role, "system") != 0 && *req->messages[i].content) {
            return true;
        }
    }
    return false;
}

fl_rc fl_llm_request_init(fl_llm_request *req, const json_t *args, const char *idempotency_key,
                          fl_err *err)
{
    const json_t *prompt = json_object_get(args, "prompt");
    fl_rc rc;

    memset(req, 0, sizeof(*req));
    req->args = args;
    req->idempotency_key = idempotency_key;
    req->temperature = -1.0;
    if (prompt && !json_is_string(prompt)) {
        return fl_err_set(err, FL_EINVAL, "cannot call llm: prompt is not a string");
    }
    rc = read_messages(req, json_object_get(args, "messages"), err);
    if (rc == FL_OK) {
        rc = read_options(req, args, err);
    }
    if (rc == FL_OK && prompt) {
        req->messages[req->n_messages++] = (fl_llm_message){"user", json_string_value(prompt)};
    }
    if (rc == FL_OK && !has_text(req)) {
        rc = fl_err_set(err, FL_EINVAL, "cannot call llm: neither a prompt nor a message given");
    }
    return rc;
}

void fl_llm_request_deinit(fl_llm_request *req)
{
    free(req->messages);
    memset(req, 0, sizeof(*req));
}

/* ---- response --------------------------------------------------------------------------- */

void fl_llm_response_init(fl_llm_response *r, size_t max_bytes)
{
    memset(r, 0, sizeof(*r));
    fl_buf_init(&r->text, max_bytes);
    r->tokens_in = -1;
    r->tokens_out = -1;
}

void fl_llm_response_deinit(fl_llm_response *r)
{
    fl_buf_deinit(&r->text);
}

fl_rc fl_llm_response_add_text(fl_llm_response *r, const char *text, size_t len, fl_err *err)
{
    if (len == 0) {
        return FL_OK;
    }
    r->got_text = true;
    return fl_buf_append(&r->text, text, len, err);
}

/* Models often wrap JSON in a Markdown fence even when asked not to. */
static void unfence(const char **p, size_t *len)
{
    const char *s = *p;
    size_t n = *len;

    while (n && strchr(" \t\r\n", *s)) {
        s++;
        n--;
    }
    while (n && strchr(" \t\r\n", s[n - 1])) {
        n--;
    }
    if (n >= 6 && strncmp(s, "```", 3) == 0 && strncmp(s + n - 3, "```", 3) == 0) {
        const char *nl = memchr(s, '\n', n - 3);

        if (nl) {
            n -= (size_t)(nl + 1 - s) + 3;
            s = nl + 1;
        }
    }
    *p = s;
    *len = n;
}

fl_rc fl_llm_response_json(const fl_llm_response *r, json_t **out, fl_err *err)
{
    const char *s = r->text.data ? r->text.data : "";
    size_t n = r->text.len;
    json_t *j;

    unfence(&s, &n);
    j = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        *out = NULL;
        return fl_err_set(err, FL_EINVAL, "the answer is not the JSON object asked for");
    }
    *out = j;
    return FL_OK;
}

/* ---- errors ----------------------------------------------------------------------------- */

const char *fl_llm_err_kind_name(fl_llm_err_kind kind)
{
    static const char *const names[] = {"none",     "timeout",        "rate_limited", "unavailable",
                                        "rejected", "invalid_output", "too_large"};

    return (size_t)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "error";
}

static void transport(const fl_http_response *resp, fl_llm_error *e)
{
    e->kind = resp->err.code == FL_ETIMEDOUT ? FL_LLM_ERR_TIMEOUT
              : resp->err.code == FL_ETOOBIG ? FL_LLM_ERR_TOO_LARGE
                                             : FL_LLM_ERR_UNAVAILABLE;
    e->retryable = e->kind != FL_LLM_ERR_TOO_LARGE;
    snprintf(e->msg, sizeof(e->msg), "%s", resp->err.msg);
}

void fl_llm_error_from_http(const fl_http_response *resp, int64_t now_ms, fl_llm_error *e)
{
    int64_t after = -1;

    memset(e, 0, sizeof(*e));
    e->retry_after_ms = -1;
    e->status = resp->status;
    if (resp->err.code != FL_OK) {
        transport(resp, e);
        return;
    }
    if (resp->retry_after &&
        fl_backoff_parse_retry_after(resp->retry_after, now_ms, &after, NULL) == FL_OK) {
        e->retry_after_ms = after;
    }
    e->retryable = fl_backoff_status_is_retryable(resp->status);
    e->kind = resp->status == 429 ? FL_LLM_ERR_RATE_LIMITED
              : e->retryable      ? FL_LLM_ERR_UNAVAILABLE
                                  : FL_LLM_ERR_REJECTED;
    snprintf(e->msg, sizeof(e->msg), "HTTP status %ld", resp->status);
}

/* ---- wire and adapters ------------------------------------------------------------------ */

void fl_llm_wire_header(fl_llm_wire *w, const char *name, const char *value)
{
    fl_assert(w->n_headers < FL_LLM_WIRE_MAX_HEADERS);
    w->values[w->n_headers] = fl_xstrdup(value);
    w->headers[w->n_headers] = (fl_http_header){name, w->values[w->n_headers]};
    w->n_headers++;
}

void fl_llm_wire_deinit(fl_llm_wire *w)
{
    if (!w) {
        return;
    }
    for (size_t i = 0; i < w->n_headers; i++) {
        /* a key must not linger in freed memory */
        memset(w->values[i], 0, strlen(w->values[i]));
        free(w->values[i]);
    }
    free(w->url);
    free(w->body);
    memset(w, 0, sizeof(*w));
}

const fl_llm_adapter *fl_llm_adapter_get(const char *kind)
{
    static const fl_llm_adapter *const all[] = {&fl_llm__openai, &fl_llm__anthropic,
                                                &fl_llm__gemini, &fl_llm__ollama};

    for (size_t i = 0; kind && i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(all[i]->kind, kind) == 0) {
            return all[i];
        }
    }
    return NULL;
}
