/* api/dispatch.c -- the one civetweb request handler (see api/dispatch.h). */
#include "api/dispatch.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/idem.h"
#include "api/keys.h"
#include "api/ratelimit.h"
#include "api/request.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "engine/cloudevent.h"

/* 1..64 of [A-Za-z0-9._:-]: safe to echo, log and copy into Kafka headers. */
static bool request_id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > FL_REQ_ID_MAX) {
        return false;
    }
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == n;
}

static bool hex_run(const char *s, size_t n)
{
    bool nonzero = false;

    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
            return false;
        }
        nonzero = nonzero || s[i] != '0';
    }
    return nonzero;
}

/* W3C Trace Context version 00: "00-<32 hex>-<16 hex>-<2 hex>", ids not all zero. */
static bool traceparent_ok(const char *s)
{
    return s && strlen(s) == 55 && strncmp(s, "00-", 3) == 0 && hex_run(s + 3, 32) &&
           s[35] == '-' && hex_run(s + 36, 16) && s[52] == '-' && isxdigit((unsigned char)s[53]) &&
           isxdigit((unsigned char)s[54]);
}

static void hex_out(char *out, const unsigned char *b, size_t n)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
}

static void new_traceparent(char out[56])
{
    unsigned char b[24];

    fl_random_bytes(b, sizeof(b));
    memcpy(out, "00-", 3);
    hex_out(out + 3, b, 16);
    out[35] = '-';
    hex_out(out + 36, b + 16, 8);
    memcpy(out + 52, "-01", 4);
}

static void identify(fl_req *r)
{
    const char *id = mg_get_header(r->conn, "X-Request-Id");
    const char *tp = mg_get_header(r->conn, "traceparent");

    if (request_id_ok(id)) {
        memcpy(r->request_id, id, strlen(id) + 1); /* request_id_ok: it fits */
    } else {
        fl_ids_uuid7(r->api->ids, r->request_id);
    }
    if (traceparent_ok(tp)) {
        memcpy(r->traceparent, tp, sizeof(r->traceparent)); /* 55 bytes and NUL */
    } else {
        new_traceparent(r->traceparent);
    }
}

/* Path and query reach SQL as text parameters, which must be UTF-8: anything else is the
 * client's error (400), not a 500 from PostgreSQL. civetweb decoded the path already; the
 * query string is still encoded. */
static bool target_is_utf8(const fl_req *r)
{
    const char *path = r->ri->local_uri_raw ? r->ri->local_uri_raw : r->ri->local_uri;
    const char *qs = r->ri->query_string;
    char buf[8192];
    int n;

    if (!fl_ce_utf8_valid(path, strlen(path))) {
        return false;
    }
    if (!qs) {
        return true;
    }
    n = mg_url_decode(qs, (int)strlen(qs), buf, (int)sizeof(buf), 1);
    return n >= 0 && fl_ce_utf8_valid(buf, (size_t)n);
}

static bool route(fl_req *r)
{
    fl_route_match *m = &r->match;
    const char *path = r->ri->local_uri_raw ? r->ri->local_uri_raw : r->ri->local_uri;

    if (!target_is_utf8(r)) {
        fl_problem(r, 400, "the request path and query string must be UTF-8");
        return false;
    }
    if (fl_router_match(r->api->router, r->ri->request_method, path, m)) {
        r->route = m->route;
        memcpy(r->params, m->params, sizeof(r->params));
        r->nparams = m->nparams;
        return true;
    }
    if (m->allow[0]) {
        fl_req_header_add(r, "Allow", "%s", m->allow);
        fl_problem(r, 405, "%s is not allowed here; allowed: %s", r->ri->request_method, m->allow);
    } else {
        fl_problem(r, 404, "no resource at \"%s\"", path);
    }
    return false;
}

bool fl_req_authorize(fl_req *r, fl_scope need)
{
    fl_err err = FL_ERR_INIT;
    fl_rc rc = fl_keys_check(r->api->keys, mg_get_header(r->conn, "Authorization"), &r->who, &err);

    if (rc == FL_EUNAVAIL) {
        fl_problem_rc(r, rc, &err);
        return false;
    }
    if (rc != FL_OK) {
        fl_req_header_add(r, "WWW-Authenticate", "Bearer realm=\"flowd\"");
        fl_problem(r, 401, "%s", err.msg[0] ? err.msg : "a valid API key is required");
        return false;
    }
    if (r->who.scope < need) {
        fl_problem(r, 403, "this API key lacks the \"%s\" scope", fl_scope_name(need));
        return false;
    }
    return true;
}

/* Key, scope and rate: false when answered. */
static bool admit(fl_req *r)
{
    int retry = 0;

    if (r->route->scope == FL_SCOPE_NONE) {
        return true;
    }
    if (!fl_req_authorize(r, r->route->scope)) {
        return false;
    }
    if (!fl_ratelimit_take(r->api->limiter, r->who.key_id, &retry)) {
        fl_req_header_add(r, "Retry-After", "%d", retry);
        fl_problem(r, 429, "rate limit of %d requests per second exceeded",
                   r->api->cfg->api.rate_limit);
        return false;
    }
    return true;
}

static void log_request(const fl_req *r, int64_t started_ms)
{
    int64_t ms = fl_clock_mono_ms(fl_clock_system()) - started_ms;

    /* successes at debug: at tens of thousands of requests a second, a line each is the
     * bottleneck; /metrics counts them */
    fl_log(r->status >= 500   ? FL_WARN
           : r->status >= 400 ? FL_INFO
                              : FL_DEBUG,
           "http.request", FL_STR("method", r->ri->request_method),
           FL_STR("route", r->route ? r->route->pattern : "-"), FL_INT("status", r->status),
           FL_INT("duration_ms", ms), FL_STR("request_id", r->request_id),
           FL_STR("trace_id", r->traceparent), FL_STR("tenant", r->who.tenant));
    /* the route pattern, never the raw path: unmatched paths would make labels unbounded */
    fl_metrics_http_request(r->ri->request_method, r->route ? r->route->pattern : "unmatched",
                            r->status, (double)ms / 1e3);
}

static void serve(fl_req *r)
{
    const char *idem_key;

    if (!route(r) || !admit(r)) {
        return;
    }
    idem_key = mg_get_header(r->conn, "Idempotency-Key");
    if ((r->route->flags & FL_ROUTE_IDEMPOTENT) && idem_key &&
        fl_idem_begin(r, idem_key) == FL_IDEM_ANSWERED) {
        return;
    }
    r->route->handler(r);
    if (r->status == 0) {
        fl_problem(r, 500, "the handler sent no response");
    }
    if (r->idem) {
        fl_idem_finish(r);
    }
}

/* Each worker thread reuses one request block. Not the stack: civetweb's workers run on
 * 100 KB stacks (Debian's build) that jansson's recursive parser needs for nested bodies;
 * not a fresh heap block: one of this size per request sent glibc into
 * malloc_consolidate every time, which cost more than the rest of the dispatch. */
static _Thread_local fl_req *kept_req;

int fl_dispatch(struct mg_connection *conn, void *cbdata)
{
    int64_t started = fl_clock_mono_ms(fl_clock_system());
    fl_req *r = kept_req ? kept_req : fl_xmalloc(sizeof(*r));
    int status;

    kept_req = NULL;
    memset(r, 0, sizeof(*r));
    r->conn = conn;
    r->ri = mg_get_request_info(conn);
    r->api = cbdata;
    identify(r);
    serve(r);
    log_request(r, started);
    fl_req_body_release(r);
    status = r->status;
    kept_req = r;
    return status;
}

/* civetweb answers some requests itself before any handler runs (a malformed request
 * line or header, a header block over api.max_header_bytes): those get a problem+json
 * too, so clients see one error format. The connection is closed: after a request that
 * did not parse, where the next one starts is unknowable. */
int fl_dispatch_error(struct mg_connection *conn, int status, const char *errmsg, fl_api *api)
{
    char id[FL_UUID_STRLEN + 1];
    json_t *p;
    char *text;

    fl_ids_uuid7(api->ids, id);
    p = json_pack("{s:s,s:s,s:i,s:s,s:s+}", "type", "about:blank", "title",
                  mg_get_response_code_text(conn, status), "status", status, "detail",
                  errmsg && *errmsg ? errmsg : "the request could not be read", "instance",
                  "urn:request:", id);
    text = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(p);
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\n"
              "Content-Length: %zu\r\nCache-Control: no-store\r\nX-Request-Id: %s\r\n"
              "Connection: close\r\n\r\n%s",
              status, mg_get_response_code_text(conn, status), text ? strlen(text) : 2, id,
              text ? text : "{}");
    free(text);
    fl_log(FL_INFO, "http.rejected", FL_INT("status", status), FL_STR("request_id", id),
           FL_STR("error", errmsg));
    return 0;
}
