/* engine/activities_call.c -- the pure half of the activity worker: a claimed row's
 * retry policy, the HTTP request its arguments describe, what an answer means (result,
 * or an error type and whether another attempt may help), and the payloads and headers
 * of the result events. No I/O here, so all of it is unit-tested without a network. */
#include "engine/activities_int.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void fl_activities__outcome_deinit(fl_act_outcome *o)
{
    json_decref(o->result);
    json_decref(o->usage);
    o->result = NULL;
    o->usage = NULL;
}

void fl_activities__job_free(fl_act_job *job)
{
    if (!job) {
        return;
    }
    free(job->id);
    free(job->tenant);
    free(job->key);
    free(job->call);
    free(job->idempotency_key);
    json_decref(job->args);
    fl_activities__outcome_deinit(&job->outcome);
    fl_http_response_deinit(&job->resp);
    fl_llm_call_free(job->llm);
    fl_activities__deltas_free(job->deltas);
    free(job);
}

void fl_activities__fail(fl_act_outcome *o, const char *type, bool retryable, const char *fmt, ...)
{
    va_list ap;

    fl_activities__outcome_deinit(o);
    o->ok = false;
    o->error_type = type;
    o->retryable = retryable;
    va_start(ap, fmt);
    vsnprintf(o->message, sizeof(o->message), fmt, ap);
    va_end(ap);
}

static int64_t int_field(const json_t *o, const char *name, int64_t def)
{
    const json_t *v = json_object_get(o, name);

    return json_is_integer(v) && json_integer_value(v) >= 0 ? (int64_t)json_integer_value(v) : def;
}

void fl_activities__retry_parse(const json_t *retry, fl_backoff_policy *p, int *attempts)
{
    const char *backoff = json_string_value(json_object_get(retry, "backoff"));
    int64_t n = int_field(retry, "attempts", 1);

    *p = (fl_backoff_policy)FL_BACKOFF_POLICY_INIT;
    p->kind =
        backoff && strcmp(backoff, "exponential") == 0 ? FL_BACKOFF_EXPONENTIAL : FL_BACKOFF_FIXED;
    p->delay_ms = int_field(retry, "delay_ms", 0);
    p->max_delay_ms = int_field(retry, "max_delay_ms", 0);
    /* a little jitter spreads retries of many activities that failed together */
    p->jitter = 0.2;
    *attempts = n < 1 ? 1 : n > 1000 ? 1000 : (int)n;
}

/* Header values must be strings; numbers and booleans are written as JSON. */
static const char *header_value(const json_t *v, char *buf, size_t size)
{
    char *s;

    if (json_is_string(v)) {
        return json_string_value(v);
    }
    s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(buf, size, "%s", s ? s : "");
    free(s);
    return buf;
}

static bool has_content_type(const fl_http_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(h[i].name, "content-type") == 0) {
            return true;
        }
    }
    return false;
}

/* Header values that are not strings are rendered into `scratch`, one slot each. */
#define HEADER_SCRATCH 128

static fl_http_header *headers_of(const json_t *headers, size_t *n_out, char **scratch_out)
{
    size_t n = json_object_size(headers);
    fl_http_header *h = fl_xcalloc(n + 1, sizeof(*h)); /* + a Content-Type */
    char *scratch = fl_xcalloc(n + 1, HEADER_SCRATCH);
    const char *name;
    const json_t *v;
    size_t i = 0;

    json_object_foreach((json_t *)headers, name, v)
    {
        h[i].name = name;
        h[i].value = header_value(v, scratch + i * HEADER_SCRATCH, HEADER_SCRATCH);
        i++;
    }
    *n_out = i;
    *scratch_out = scratch;
    return h;
}

void fl_activities__http_bufs_deinit(fl_act_http_bufs *b)
{
    free(b->headers);
    free(b->scratch);
    free(b->body);
    memset(b, 0, sizeof(*b));
}

fl_rc fl_activities__http_request(const fl_act_job *job, long default_timeout_ms,
                                  fl_http_request *req, fl_act_http_bufs *bufs, fl_err *err)
{
    const json_t *method = json_object_get(job->args, "method");
    const json_t *body = json_object_get(job->args, "body");
    const char *url = json_string_value(json_object_get(job->args, "url"));
    size_t n = 0;

    memset(bufs, 0, sizeof(*bufs));
    memset(req, 0, sizeof(*req));
    if (!url || (method && !json_is_string(method))) {
        return fl_err_set(err, FL_EINVAL, "cannot call http: %s",
                          url ? "method is not a string" : "url is missing");
    }
    req->method = method ? json_string_value(method) : "GET";
    req->url = url;
    bufs->headers = headers_of(json_object_get(job->args, "headers"), &n, &bufs->scratch);
    if (body && !json_is_null(body)) {
        bufs->body = json_is_string(body) ? fl_xstrdup(json_string_value(body))
                                          : json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        fl_assert(bufs->body != NULL); /* jansson fails only on OOM */
        req->body = bufs->body;
        req->body_len = strlen(bufs->body);
        if (!json_is_string(body) && !has_content_type(bufs->headers, n)) {
            bufs->headers[n++] = (fl_http_header){"Content-Type", "application/json"};
        }
    }
    req->headers = bufs->headers;
    req->n_headers = n;
    req->timeout_ms = job->timeout_ms > 0 ? job->timeout_ms : default_timeout_ms;
    req->idempotency_key = job->idempotency_key;
    return FL_OK;
}

/* The body as JSON when it says it is JSON and parses; else as a string (null when it is
 * not UTF-8, which a JSON string cannot carry). */
static json_t *body_of(const fl_http_response *resp)
{
    json_t *body = NULL;
    const char *body_text = resp->body ? resp->body : "";

    if (resp->content_type && strstr(resp->content_type, "json") && resp->body_len > 0) {
        body = json_loadb(body_text, resp->body_len, JSON_DECODE_ANY, NULL);
    }
    if (!body) {
        body = json_stringn(body_text, resp->body_len);
    }
    return body ? body : json_null();
}

static void transport_failure(const fl_http_response *resp, fl_act_outcome *o)
{
    switch (resp->err.code) {
    case FL_ETIMEDOUT:
        fl_activities__fail(o, "http.timeout", true, "%s", resp->err.msg);
        break;
    case FL_EUNAVAIL:
        fl_activities__fail(o, "http.connect", true, "%s", resp->err.msg);
        break;
    case FL_ETOOBIG:
        fl_activities__fail(o, "http.too_large", false, "%s", resp->err.msg);
        break;
    default:
        fl_activities__fail(o, "http.error", false, "%s", resp->err.msg);
        break;
    }
}

void fl_activities__http_outcome(fl_http_response *resp, int64_t now_ms, fl_act_outcome *o)
{
    int64_t after = -1;

    if (resp->err.code != FL_OK) {
        transport_failure(resp, o);
        o->retry_after_ms = -1;
        return;
    }
    if (resp->retry_after &&
        fl_backoff_parse_retry_after(resp->retry_after, now_ms, &after, NULL) != FL_OK) {
        after = -1;
    }
    if (resp->status >= 200 && resp->status < 300) {
        fl_activities__outcome_deinit(o);
        o->ok = true;
        o->result = json_pack("{s:I, s:{s:s?}, s:o}", "status", (json_int_t)resp->status, "headers",
                              "content-type", resp->content_type, "body", body_of(resp));
        return;
    }
    fl_activities__fail(o, "http.status", fl_backoff_status_is_retryable(resp->status),
                        "HTTP status %ld", resp->status);
    o->retry_after_ms = after;
}

void fl_activities__llm_outcome(fl_llm_call *call, fl_act_outcome *o)
{
    fl_llm_outcome out;

    fl_llm_call_outcome(call, &out);
    o->retry_after_ms = -1;
    if (!out.ok) {
        fl_activities__fail(o, out.error_type, out.retryable, "%s", out.message);
        json_decref(out.usage); /* the fallbacks are in the message */
        return;
    }
    fl_activities__outcome_deinit(o);
    o->ok = true;
    o->result = out.result;
    o->usage = out.usage;
}

json_t *fl_activities__completed_data(const char *id, const json_t *result, const json_t *usage)
{
    json_t *data = json_pack("{s:s, s:O}", "activity", id, "result", result ? result : json_null());

    if (usage) {
        json_object_set(data, "usage", (json_t *)usage);
    }
    return data;
}

json_t *fl_activities__failed_data(const char *id, const char *type, const char *message)
{
    return json_pack("{s:s, s:s, s:s}", "activity", id, "error", type, "message", message);
}

char *fl_activities__headers(const char *id, const char *type, const char *subject,
                             const char *tenant, int64_t time_ms)
{
    char when[40];
    json_t *h;
    char *s;

    /* the store's shape (engine/store_batch.c), so the relay treats every row alike */
    fl_clock_format_rfc3339(time_ms, when, sizeof(when));
    h = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "ce_id", id, "ce_source", "flowd",
                  "ce_type", type, "ce_specversion", "1.0", "ce_time", when, "ce_subject",
                  subject ? subject : "", "ce_tenant", tenant ? tenant : "", "content-type",
                  "application/json");
    s = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
    fl_assert(s != NULL);
    json_decref(h);
    return s;
}
