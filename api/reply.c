/* api/reply.c -- answering a request: every response goes through fl_req_send, which adds
 * the headers every response carries and records it for an active Idempotency-Key. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/idem.h"
#include "api/request.h"
#include "core/log.h"
#include "core/mem.h"

void fl_req_header_add(fl_req *r, const char *name, const char *fmt, ...)
{
    char value[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    value[strcspn(value, "\r\n")] = '\0'; /* a header value never splits the response */
    n = snprintf(r->extra + r->extra_len, sizeof(r->extra) - r->extra_len, "%s: %s\r\n", name,
                 value);
    if (n > 0 && (size_t)n < sizeof(r->extra) - r->extra_len) {
        r->extra_len += (size_t)n;
    } else {
        r->extra[r->extra_len] = '\0'; /* dropped whole rather than cut in the middle */
        fl_log(FL_WARN, "http.header_dropped", FL_STR("header", name),
               FL_STR("request_id", r->request_id));
    }
}

/* fl_buf_appendf without its measuring pass and allocation when the text fits 2 KB. */
__attribute__((format(printf, 2, 3))) static void buf_printf(fl_buf *b, const char *fmt, ...)
{
    char small[2048];
    char *big;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t)n < sizeof(small)) {
        (void)fl_buf_append(b, small, (size_t)n, NULL);
        return;
    }
    big = fl_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    (void)fl_buf_append(b, big, (size_t)n, NULL);
    free(big);
}

/* Headers and body leave in one write: one segment for small responses. The header
 * block is formatted in one call (every response pays for it). */
int fl_req_send(fl_req *r, int status, const char *content_type, const char *body, size_t len)
{
    bool head = strcmp(r->ri->request_method, "HEAD") == 0;
    bool empty = status == 204 || status == 304; /* RFC 9110 15.3.5: no Content-Length */
    char length[64] = "";
    fl_buf out;

    if (r->idem) {
        fl_idem_record(r, status, content_type, body, len);
    }
    if (empty) {
        len = 0;
    } else {
        snprintf(length, sizeof(length), "%zu", len);
    }
    fl_buf_init(&out, SIZE_MAX);
    buf_printf(&out,
               "HTTP/1.1 %d %s\r\n%s%s%s%s%sCache-Control: no-store\r\n"
               "X-Request-Id: %s\r\n%s%s%s%s\r\n",
               status, mg_get_response_code_text(r->conn, status),
               empty ? "" : "Content-Type: ", empty ? "" : content_type,
               empty ? "" : "\r\nContent-Length: ", length, empty ? "" : "\r\n", r->request_id,
               r->traceparent[0] ? "traceparent: " : "", r->traceparent,
               r->traceparent[0] ? "\r\n" : "", r->extra);
    if (!head && len > 0) {
        (void)fl_buf_append(&out, body, len, NULL);
    }
    mg_write(r->conn, out.data, out.len);
    fl_buf_deinit(&out);
    r->status = status;
    return status;
}

/* Small bodies (most answers) are encoded into a stack buffer: json_dumps would grow a
 * heap buffer and copy it once more. */
int fl_reply(fl_req *r, int status, json_t *body)
{
    const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY;
    char small[4096];
    size_t n = body ? json_dumpb(body, small, sizeof(small), flags) : 0;
    char *text = NULL;

    if (n > sizeof(small)) {
        text = json_dumps(body, flags);
        n = text ? strlen(text) : 0;
    }
    json_decref(body);
    if (n == 0) {
        return fl_problem(r, 500, "cannot encode the response");
    }
    fl_req_send(r, status, "application/json", text ? text : small, n);
    free(text);
    return status;
}

/* ---- OpenAI's error shape (FL_ROUTE_OPENAI_ERRORS) ------------------------------------ */

/* The gateway's routes, and paths under /v1/ that matched none (an OpenAI client calling
 * an endpoint flowd lacks expects its own error shape, not problem+json). */
static bool openai_shape(const fl_req *r)
{
    const char *path = r->ri->local_uri_raw ? r->ri->local_uri_raw : r->ri->local_uri;

    if (r->route) {
        return (r->route->flags & FL_ROUTE_OPENAI_ERRORS) != 0;
    }
    return path && strncmp(path, "/v1/", 4) == 0;
}

static const char *openai_type(int status)
{
    return status == 403   ? "permission_error"
           : status == 429 ? "rate_limit_error"
           : status >= 500 ? "server_error"
                           : "invalid_request_error";
}

static const char *openai_code(int status)
{
    return status == 401   ? "invalid_api_key"
           : status == 403 ? "insufficient_permissions"
           : status == 429 ? "rate_limit_exceeded"
           : status == 503 ? "service_unavailable"
           : status >= 500 ? "internal_error"
                           : NULL;
}

int fl_openai_error(fl_req *r, int status, const char *code, const char *param, const char *fmt,
                    ...)
{
    char msg[512];
    va_list ap;
    json_t *e;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* s? packs NULL as null: OpenAI sends param and code as null when they do not apply */
    e = json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", msg, "type",
                  openai_type(status), "param", param, "code", code ? code : openai_code(status));
    return fl_reply(r, status, e);
}

/* A validation error's first pointer as OpenAI names a parameter: "/messages/0/role" ->
 * "messages.[0].role". */
static void openai_param(const json_t *errors, char *out, size_t size)
{
    const char *p = json_string_value(json_object_get(json_array_get(errors, 0), "pointer"));
    size_t n = 0;

    out[0] = '\0';
    for (; p && *p && n + 8 < size; p++) {
        const char *seg = p + 1;
        size_t len = strcspn(seg, "/");
        bool index = len > 0 && strspn(seg, "0123456789") == len;

        n += (size_t)snprintf(out + n, size - n, index ? "%s[%.*s]" : "%s%.*s", n ? "." : "",
                              (int)len, seg);
        p += len;
    }
}

static int send_problem(fl_req *r, int status, const char *detail, json_t *errors)
{
    json_t *p;
    char *text;
    char param[128];

    if (openai_shape(r)) {
        openai_param(errors, param, sizeof(param));
        json_decref(errors);
        return fl_openai_error(r, status, NULL, param[0] ? param : NULL, "%s", detail);
    }
    p = json_pack("{s:s,s:s,s:i}", "type", "about:blank", "title",
                  mg_get_response_code_text(r->conn, status), "status", status);
    json_object_set_new(p, "detail", json_string(detail));
    json_object_set_new(p, "instance", json_sprintf("urn:request:%s", r->request_id));
    if (errors) {
        json_object_set_new(p, "errors", errors);
    }
    text = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(p);
    fl_req_send(r, status, "application/problem+json", text ? text : "{}", text ? strlen(text) : 2);
    free(text);
    return status;
}

int fl_problem(fl_req *r, int status, const char *fmt, ...)
{
    char detail[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    return send_problem(r, status, detail, NULL);
}

int fl_problem_errors(fl_req *r, int status, const char *detail, json_t *errors)
{
    return send_problem(r, status, detail, errors ? errors : json_array());
}

int fl_problem_rc(fl_req *r, fl_rc rc, const fl_err *err)
{
    int status = fl_rc_http_status(rc);
    const char *msg = err && err->msg[0] ? err->msg : fl_rc_text(rc);

    if (status < 500) {
        return send_problem(r, status, msg, NULL);
    }
    fl_log(status == 503 ? FL_WARN : FL_ERROR, "http.failed", FL_STR("request_id", r->request_id),
           FL_STR("error", msg));
    if (status == 503) {
        fl_req_header_add(r, "Retry-After", "1");
        return send_problem(r, 503, "a dependency is unavailable; retry shortly", NULL);
    }
    return send_problem(r, status, "internal error; see the server log for this request id", NULL);
}
