/* core/http_xfer.c -- one transfer of core/http: request validation, easy handle set-up,
 * capped body capture, and the translation of curl's result into fl_rc and a message
 * (R4.3: CURLcode stops here). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/http_int.h"
#include "core/log.h"

int64_t fl_http__mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void must(CURLcode cc)
{
    /* setopt fails only on a bad option (programmer error) or OOM, which aborts (R5.1) */
    fl_assert(cc == CURLE_OK);
}

/* RFC 9110 token characters: methods and header names may use nothing else, so a
 * workflow cannot smuggle a second header or request line in through them. */
static bool is_token(const char *s)
{
    if (s == NULL || *s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL) {
            return false;
        }
    }
    return true;
}

static bool is_field_value(const char *s)
{
    return s != NULL && strpbrk(s, "\r\n") == NULL;
}

/* scheme://host[:port]/path -- no user info, no query, no fragment: those may hold keys. */
static fl_rc safe_url(const char *url, char **out, fl_err *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    fl_rc rc = FL_OK;
    CURLUcode uc;

    fl_assert(u != NULL);
    uc = curl_url_set(u, CURLUPART_URL, url != NULL ? url : "", 0);
    if (uc != CURLUE_OK) {
        rc = fl_err_set(err, FL_EINVAL, "invalid URL: %s", curl_url_strerror(uc));
        goto out;
    }
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_get(u, CURLUPART_PORT, &port, 0); /* only when the URL names one */
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    if (scheme == NULL || host == NULL ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        rc = fl_err_set(err, FL_EINVAL, "unsupported URL scheme \"%s\": use http or https",
                        scheme != NULL ? scheme : "");
        goto out;
    }
    *out = fl_xasprintf("%s://%s%s%s%s", scheme, host, port != NULL ? ":" : "",
                        port != NULL ? port : "", path != NULL ? path : "/");
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
    return rc;
}

static fl_rc add_header(fl_http__xfer *x, const char *name, const char *value, fl_err *err)
{
    char *line;

    if (!is_token(name) || !is_field_value(value)) {
        return fl_err_set(err, FL_EINVAL, "invalid header \"%s\" in request to \"%s\"",
                          is_token(name) ? name : "(bad name)", x->url_safe);
    }
    /* "Name;" is curl's spelling of a header sent with an empty value */
    line = *value != '\0' ? fl_xasprintf("%s: %s", name, value) : fl_xasprintf("%s;", name);
    x->headers = curl_slist_append(x->headers, line);
    free(line);
    fl_assert(x->headers != NULL); /* only NULL on OOM */
    return FL_OK;
}

static fl_rc build_headers(fl_http__xfer *x, const fl_http_request *req, fl_err *err)
{
    fl_rc rc = FL_OK;

    for (size_t i = 0; i < req->n_headers && rc == FL_OK; i++) {
        rc = add_header(x, req->headers[i].name, req->headers[i].value, err);
    }
    if (rc == FL_OK && req->idempotency_key != NULL) {
        rc = add_header(x, "Idempotency-Key", req->idempotency_key, err);
    }
    if (rc == FL_OK) {
        /* no "Expect: 100-continue" round trip (a one-second stall on servers that
         * ignore it) before large bodies */
        x->headers = curl_slist_append(x->headers, "Expect:");
        fl_assert(x->headers != NULL);
    }
    return rc;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    fl_http__xfer *x = userdata;
    size_t n = size * nmemb;
    fl_rc rc;

    if (n > x->max - x->received) {
        fl_err_set(&x->abort_err, FL_ETOOBIG, "response from \"%s\" is too large: over %zu bytes",
                   x->url_safe, x->max);
        return 0; /* not n: curl aborts the transfer */
    }
    x->received += n;
    if (x->on_data == NULL) {
        rc = fl_buf_append(&x->body, ptr, n, NULL); /* fits: body.max == max */
        fl_assert(rc == FL_OK);
        return n;
    }
    rc = x->on_data(x->arg, ptr, n);
    if (rc != FL_OK) {
        fl_err_set(&x->abort_err, rc, "transfer from \"%s\" stopped by its data callback: %s",
                   x->url_safe, fl_rc_text(rc));
        return 0;
    }
    return n;
}

static void setup_method(CURL *e, const fl_http_request *req)
{
    const char *method = req->method != NULL ? req->method : "GET";
    bool has_body = req->body != NULL || strcmp(method, "POST") == 0;

    if (strcmp(method, "HEAD") == 0) {
        must(curl_easy_setopt(e, CURLOPT_NOBODY, 1L));
        return;
    }
    if (has_body) {
        must(curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len));
        /* copied: the caller's buffer is only borrowed for the submit call */
        must(curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body != NULL ? req->body : ""));
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) {
        must(curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method));
    } else if (strcmp(method, "GET") == 0 && has_body) {
        must(curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "GET"));
    }
}

static void setup_transport(fl_http__xfer *x, const fl_http_opts *opts, const char *url)
{
    CURL *e = x->easy;
    bool https = strncmp(url, "https:", 6) == 0 || strncmp(url, "HTTPS:", 6) == 0;

    must(curl_easy_setopt(e, CURLOPT_URL, url));
    must(curl_easy_setopt(e, CURLOPT_PRIVATE, x));
    must(curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L)); /* threads: no SIGALRM for DNS */
    must(curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https"));
    must(curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf));
    must(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body));
    must(curl_easy_setopt(e, CURLOPT_WRITEDATA, x));
    must(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, x->timeout_ms));
    must(curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, opts->connect_timeout_ms));
    /* refused up front when the server announces a larger Content-Length */
    must(curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max));
    must(curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "")); /* the cap counts decoded bytes */
    must(curl_easy_setopt(e, CURLOPT_USERAGENT, opts->user_agent));
    must(curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                          opts->h2_prior_knowledge ? (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
                                                   : (long)CURL_HTTP_VERSION_2TLS));
    if (https || opts->h2_prior_knowledge) {
        /* wait for a connection that may multiplex rather than open one per request */
        must(curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L));
    }
    must(curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers));
}

fl_rc fl_http__xfer_new(const fl_http_opts *opts, const fl_http_request *req, fl_http_done_fn done,
                        void *arg, fl_http__xfer **out, fl_err *err)
{
    fl_http__xfer *x = fl_xcalloc(1, sizeof(*x));
    fl_rc rc;

    *out = NULL;
    x->started_ms = fl_http__mono_ms();
    x->done = done;
    x->on_data = req->on_data;
    x->arg = arg;
    x->max =
        req->max_response_bytes > 0 ? req->max_response_bytes : opts->default_max_response_bytes;
    x->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : opts->default_timeout_ms;
    fl_buf_init(&x->body, x->max);
    rc = safe_url(req->url, &x->url_safe, err);
    if (rc != FL_OK) {
        goto out;
    }
    if (req->method != NULL && !is_token(req->method)) {
        rc = fl_err_set(err, FL_EINVAL, "invalid method for request to \"%s\"", x->url_safe);
        goto out;
    }
    rc = build_headers(x, req, err);
    if (rc != FL_OK) {
        goto out;
    }
    x->easy = curl_easy_init();
    fl_assert(x->easy != NULL); /* only NULL on OOM */
    setup_transport(x, opts, req->url);
    setup_method(x->easy, req);
    *out = x;
    x = NULL;
out:
    fl_http__xfer_free(x);
    return rc;
}

void fl_http__xfer_free(fl_http__xfer *x)
{
    if (x == NULL) {
        return;
    }
    curl_easy_cleanup(x->easy); /* its connection stays in the multi's cache */
    curl_slist_free_all(x->headers);
    fl_buf_deinit(&x->body);
    free(x->url_safe);
    free(x);
}

/* curl's explanation, with the first letter lowered for the PostgreSQL message style. */
static void reason(const fl_http__xfer *x, CURLcode cc, char *out, size_t size)
{
    long os_errno = 0;

    curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &os_errno);
    if (cc == CURLE_COULDNT_CONNECT && os_errno != 0) {
        snprintf(out, size, "%s", strerror((int)os_errno));
    } else {
        snprintf(out, size, "%s", x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(cc));
    }
    out[0] = (char)tolower((unsigned char)out[0]);
}

static void map_result(const fl_http__xfer *x, CURLcode cc, fl_err *e)
{
    char why[CURL_ERROR_SIZE + 64];

    reason(x, cc, why, sizeof(why));
    switch (cc) {
    case CURLE_OK:
        break;
    case CURLE_OPERATION_TIMEDOUT: /* curl says which phase and after how long */
        fl_err_set(e, FL_ETIMEDOUT, "could not complete request to \"%s\": %s", x->url_safe, why);
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
        fl_err_set(e, FL_EUNAVAIL, "could not connect to \"%s\": %s", x->url_safe, why);
        break;
    case CURLE_FILESIZE_EXCEEDED:
        fl_err_set(e, FL_ETOOBIG, "response from \"%s\" is too large: over %zu bytes", x->url_safe,
                   x->max);
        break;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        /* the server or the network dropped the connection: worth another attempt */
        fl_err_set(e, FL_EUNAVAIL, "could not complete request to \"%s\": %s", x->url_safe, why);
        break;
    default:
        fl_err_set(e, FL_EIO, "could not complete request to \"%s\": %s", x->url_safe, why);
        break;
    }
}

static char *header_dup(CURL *e, const char *name)
{
    struct curl_header *h = NULL;

    /* -1: the last response, the one the body belongs to */
    if (curl_easy_header(e, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK) {
        return NULL;
    }
    return fl_xstrdup(h->value);
}

static void fill_response(fl_http__xfer *x, fl_http_response *resp)
{
    long version = 0;

    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &version);
    resp->http_version = version == CURL_HTTP_VERSION_2_0 ? 2 : version == 0 ? 0 : 1;
    resp->content_type = header_dup(x->easy, "Content-Type");
    resp->retry_after = header_dup(x->easy, "Retry-After");
}

void fl_http__xfer_complete(fl_http__xfer *x, CURLcode cc, const fl_err *why)
{
    fl_http_response resp;

    memset(&resp, 0, sizeof(resp));
    if (why != NULL) {
        resp.err = *why;
    } else if (x->abort_err.code != FL_OK) {
        resp.err = x->abort_err; /* our write callback stopped it: that is the reason */
    } else {
        map_result(x, cc, &resp.err);
    }
    fill_response(x, &resp);
    if (resp.err.code != FL_OK) {
        fl_buf_reset(&x->body); /* a cut-off body must not pass for a whole one */
    }
    resp.body_len = x->body.len;
    resp.body = fl_buf_steal(&x->body);
    resp.total_ms = fl_http__mono_ms() - x->started_ms;
    fl_log(FL_DEBUG, "http.request", FL_STR("url", x->url_safe), FL_INT("status", resp.status),
           FL_INT("ms", resp.total_ms), FL_STR("error", resp.err.msg));
    x->done(x->arg, &resp);
    fl_http_response_deinit(&resp);
    fl_http__xfer_free(x);
}

void fl_http_response_deinit(fl_http_response *resp)
{
    if (resp == NULL) {
        return;
    }
    free(resp->content_type);
    free(resp->retry_after);
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
}
