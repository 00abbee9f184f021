/* api/request.c -- reading a request: parameters, headers, query, body, ?wait=, streams.
 * Answering is api/reply.c; pagination api/page.c; Postgres helpers api/request_db.c. */
#include "api/request.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/body.h"
#include "core/config.h"
#include "core/mem.h"

const char *fl_req_param(const fl_req *r, size_t i)
{
    return i < r->nparams ? r->params[i] : "";
}

const char *fl_req_header(const fl_req *r, const char *name)
{
    return mg_get_header(r->conn, name);
}

bool fl_req_query(const fl_req *r, const char *name, char *buf, size_t size)
{
    const char *qs = r->ri->query_string;
    int n;

    if (!qs || size == 0) {
        return false;
    }
    n = mg_get_var(qs, strlen(qs), name, buf, size);
    if (n == -2) {
        buf[size - 1] = '\0'; /* present but too long: cut, as documented */
        return true;
    }
    return n >= 0;
}

static int too_large(fl_req *r, long long max)
{
    fl_req_header_add(r, "Connection", "close");
    /* the unread rest makes civetweb close the connection after the response */
    return fl_problem(r, 413, "the request body is over the limit of %lld bytes", max);
}

/* Each worker thread keeps its last body buffer for the next request: a fresh ~4 KB
 * block per request sent glibc into malloc_consolidate every time (the body parse
 * leaves many small chunks in its fastbins), which cost more than reading the body. */
enum { BODY_FIRST = 4096, BODY_KEEP = 64 * 1024 };
static _Thread_local char *kept_body;
static _Thread_local size_t kept_cap;

/* Reads at most max + 1 bytes, so a chunked body over the cap is recognised. */
static bool read_all(fl_req *r, long long max)
{
    size_t cap = kept_body ? kept_cap : BODY_FIRST, len = 0;
    char *buf = kept_body ? kept_body : fl_xmalloc(cap + 1);

    kept_body = NULL;
    for (;;) {
        int n;

        if (len == cap) {
            cap *= 2;
            buf = fl_xrealloc(buf, cap + 1);
        }
        n = mg_read(r->conn, buf + len, cap - len);
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
        if ((long long)len > max) {
            free(buf);
            too_large(r, max);
            return false;
        }
    }
    buf[len] = '\0';
    r->body = buf;
    r->body_len = len;
    r->body_cap = cap;
    return true;
}

void fl_req_body_release(fl_req *r)
{
    if (r->body != NULL && kept_body == NULL && r->body_cap <= BODY_KEEP) {
        kept_body = r->body;
        kept_cap = r->body_cap;
    } else {
        free(r->body);
    }
    r->body = NULL;
}

bool fl_req_body(fl_req *r, const char **data, size_t *len)
{
    long long max = r->api->cfg->http.max_body_bytes;

    if (!r->body_read) {
        if (r->ri->content_length > max) {
            too_large(r, max);
            return false;
        }
        if (!read_all(r, max)) {
            return false;
        }
        r->body_read = true;
    }
    *data = r->body;
    *len = r->body_len;
    return true;
}

/* application/json, or any application/<x>+json, parameters ignored. */
static bool is_json_type(const char *ct)
{
    size_t n;

    if (!ct) {
        return false;
    }
    n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) {
        n--;
    }
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0) {
        return true;
    }
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(ct + n - 5, "+json", 5) == 0;
}

bool fl_req_json(fl_req *r, json_t **out)
{
    const char *data;
    size_t len;
    json_t *errors = NULL;

    *out = NULL;
    if (!is_json_type(fl_req_header(r, "Content-Type"))) {
        fl_problem(r, 415, "the body must be application/json");
        return false;
    }
    if (!fl_req_body(r, &data, &len)) {
        return false;
    }
    if (!fl_body_decode(data, len, r->api->cfg->api.max_json_depth, out, &errors)) {
        fl_problem_errors(r, 400, "the body is not valid JSON", errors);
        return false;
    }
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        fl_body_error(&errors, "", "the body must be a JSON object");
        fl_problem_errors(r, 400, "the body must be a JSON object", errors);
        return false;
    }
    return true;
}

/* "10s", "250ms", or a bare number of seconds ("30"). */
static bool parse_wait(const char *s, long long *ms)
{
    char *end;
    long long secs;

    if (*s >= '0' && *s <= '9') {
        secs = strtoll(s, &end, 10);
        if (*end == '\0' && secs <= 86400) {
            *ms = secs * 1000;
            return true;
        }
    }
    return fl_config_parse_duration(s, ms);
}

bool fl_req_wait_ms(fl_req *r, int *ms)
{
    char buf[32];
    long long v = 0;
    int cap = r->api->cfg->api.max_wait_ms;

    *ms = 0;
    if (!fl_req_query(r, "wait", buf, sizeof(buf))) {
        return true;
    }
    if (!parse_wait(buf, &v) || v < 0) {
        fl_problem(r, 400, "wait must be a duration such as 10s or 500ms, got \"%s\"", buf);
        return false;
    }
    *ms = v > cap ? cap : (int)v;
    return true;
}

bool fl_req_stream_enter(fl_req *r)
{
    int max = r->api->cfg->api.max_streams;

    if (atomic_fetch_add(&r->api->streams, 1) >= max) {
        atomic_fetch_sub(&r->api->streams, 1);
        fl_req_header_add(r, "Retry-After", "1");
        fl_problem(r, 503, "too many open streams (api.max_streams = %d)", max);
        return false;
    }
    return true;
}

void fl_req_stream_leave(fl_req *r)
{
    atomic_fetch_sub(&r->api->streams, 1);
}
