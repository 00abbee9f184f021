/* api/ce_http.c -- the CloudEvents HTTP binding: mode detection, binary mode, and the
 * bridge to the engine's decoder (engine/cloudevent.h) that every mode goes through.
 *
 * Binary mode turns the request into the Kafka record the engine would see: each
 * `ce-<name>` header (any case) becomes `ce_<name>` in lower case with its value
 * percent-decoded, Content-Type becomes `content-type`, the body the value. Structured
 * and batch mode live in ce_http_json.c.
 *
 * Thread-safety: reentrant; no shared state. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/body.h"
#include "api/ce_http_int.h"
#include "core/mem.h"

static const char *const required[] = {"specversion", "id", "source", "type"};

bool fl_ce_http_media_is(const char *content_type, const char *type)
{
    const char *p = content_type;
    size_t n;

    if (p == NULL) {
        return false;
    }
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    n = strcspn(p, ";");
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t')) {
        n--;
    }
    return n == strlen(type) && strncasecmp(p, type, n) == 0;
}

static bool is_ce_header(const char *name)
{
    return name != NULL && strncasecmp(name, "ce-", 3) == 0;
}

fl_ce_http_mode fl_ce_http_mode_of(const fl_ce_http_request *req)
{
    const char *ct = req->content_type;

    if (fl_ce_http_media_is(ct, "application/cloudevents-batch+json")) {
        return FL_CE_HTTP_BATCH;
    }
    if (fl_ce_http_media_is(ct, "application/cloudevents+json")) {
        return FL_CE_HTTP_STRUCTURED;
    }
    if (ct != NULL && strncasecmp(ct + strspn(ct, " \t"), "application/cloudevents", 23) == 0) {
        return FL_CE_HTTP_UNSUPPORTED; /* another event format (+xml, +avro, ...) */
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        if (is_ce_header(req->headers[i].name)) {
            return FL_CE_HTTP_BINARY;
        }
    }
    return FL_CE_HTTP_UNSUPPORTED;
}

void ce_fail(ce_ctx *c, const char *base, const char *attr, const char *fmt, ...)
{
    char detail[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    /* quoted client bytes may be cut inside a character: keep the valid prefix */
    for (size_t n = strlen(detail); n > 0 && !fl_ce_utf8_valid(detail, n); n--) {
        detail[n - 1] = '\0';
    }
    if (c->nerrors == 0) {
        snprintf(c->first, sizeof(c->first), "%s", detail);
    }
    c->nerrors++;
    if (c->nerrors > FL_CE_HTTP_MAX_ERRORS) {
        return;
    }
    char *ptr = fl_xasprintf("%s%s%s", base, attr && attr[0] ? "/" : "", attr ? attr : "");
    fl_body_error(&c->errors, ptr, "%s", detail);
    free(ptr);
}

void ce_fail_json(ce_ctx *c, json_t *errors)
{
    size_t i;
    json_t *e;

    json_array_foreach(errors, i, e)
    {
        ce_fail(c, json_string_value(json_object_get(e, "pointer")), NULL, "%s",
                json_string_value(json_object_get(e, "detail")));
    }
    json_decref(errors);
}

/* The attribute an engine error message names in its first "quoted" word, when that word
 * is an attribute name; the reason alone names it otherwise. */
static void reason_attr(fl_ce_reason reason, const char *msg, char *out, size_t size)
{
    const char *q = strchr(msg, '"');
    size_t n = q ? strspn(q + 1, "abcdefghijklmnopqrstuvwxyz0123456789_") : 0;

    out[0] = '\0';
    if (reason == FL_CE_BAD_SPECVERSION) {
        snprintf(out, size, "specversion");
    } else if (reason == FL_CE_BAD_TIME) {
        snprintf(out, size, "time");
    } else if (reason == FL_CE_INVALID_DATA_JSON) {
        snprintf(out, size, "data");
    } else if (reason == FL_CE_INVALID_DATA_BASE64) {
        snprintf(out, size, "data_base64");
    } else if (reason == FL_CE_NO_SUBJECT) {
        snprintf(out, size, "subject");
    } else if (n > 0 && q[1 + n] == '"') {
        snprintf(out, size, "%.*s", (int)n, q + 1);
    }
}

bool ce_decode_record(ce_ctx *c, const fl_ce_record *rec, const char *base)
{
    fl_ce_opts o = {.default_tenant = c->opts->tenant,
                    .max_value_bytes = SIZE_MAX,
                    .allow_no_subject = true,
                    .parsed_value = c->parsed,
                    .parsed_envelope = c->envelope};
    fl_err err = FL_ERR_INIT;
    fl_ce_reason reason;
    fl_cloudevent *ev;
    char attr[32];

    if (fl_cloudevent_decode(&ev, rec, &o, &reason, &err) != FL_OK) {
        reason_attr(reason, err.msg, attr, sizeof(attr));
        ce_fail(c, base, attr, "%s", err.msg);
        return false;
    }
    c->out->events = fl_xrealloc(c->out->events, (c->out->n + 1) * sizeof(*c->out->events));
    c->out->events[c->out->n++] = ev;
    return true;
}

static int hex(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    return ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* Percent-decodes s (binding 3.1.3.2) into a new string of *n bytes; NULL when a '%' is
 * not followed by two hex digits. */
static char *pct_decode(const char *s, size_t *n)
{
    char *out = fl_xmalloc(strlen(s) + 1);
    size_t o = 0;

    for (const char *p = s; *p != '\0'; p++) {
        if (*p != '%') {
            out[o++] = *p;
        } else if (hex(p[1]) >= 0 && hex(p[2]) >= 0) {
            out[o++] = (char)(hex(p[1]) * 16 + hex(p[2]));
            p += 2;
        } else {
            free(out);
            return NULL;
        }
    }
    out[o] = '\0';
    *n = o;
    return out;
}

/* The record headers of a binary-mode request; owned strings go to `owned`. */
typedef struct bin {
    fl_ce_header h[65]; /* 64 ce- headers + content-type */
    size_t nh;
    char *owned[128];
    size_t nowned;
    bool seen[4]; /* the required attributes, in `required` order */
} bin;

static char *keep(bin *b, char *s)
{
    b->owned[b->nowned++] = s;
    return s;
}

/* Adds the header `ce-<rest>` as `ce_<rest in lower case>`, unless it is the tenant. */
static void bin_add(ce_ctx *c, bin *b, const fl_ce_http_header *hd)
{
    size_t len;
    char *name, *value;

    if (strcasecmp(hd->name + 3, "tenant") == 0) {
        return; /* the caller's tenant wins (ce_http.h) */
    }
    if (b->nh == 64) {
        ce_fail(c, "", NULL, "more than 64 ce- headers");
        return;
    }
    len = strlen(hd->name);
    name = keep(b, fl_xmalloc(len + 1));
    memcpy(name, "ce_", 3);
    for (size_t i = 3; i <= len; i++) {
        char ch = hd->name[i];
        name[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    }
    value = pct_decode(hd->value ? hd->value : "", &len);
    if (value == NULL) {
        bool sane = name[3] != '\0' &&
                    strspn(name + 3, "abcdefghijklmnopqrstuvwxyz0123456789") == strlen(name + 3);
        ce_fail(c, "", sane ? name + 3 : NULL, "header %.40s is not percent-encoded correctly",
                sane ? hd->name : "ce-?");
        return;
    }
    for (int i = 0; i < 4; i++) {
        b->seen[i] = b->seen[i] || strcmp(name + 3, required[i]) == 0;
    }
    b->h[b->nh++] = (fl_ce_header){.name = name, .value = keep(b, value), .len = len};
}

/* Data declared JSON (or undeclared) must pass the body rules: depth, duplicate keys.
 * The parsed value is kept in c for the engine's decoder. */
static void bin_check_data(ce_ctx *c, const fl_ce_http_request *req)
{
    const char *ct = req->content_type;
    const char *semi;
    size_t n;
    json_t *v, *errs;

    if (req->body_len == 0) {
        return;
    }
    if (ct != NULL && !fl_ce_http_media_is(ct, "application/json")) {
        semi = ct + strcspn(ct, ";");
        n = (size_t)(semi - ct);
        while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) {
            n--;
        }
        if (n < 5 || strncasecmp(ct + n - 5, "+json", 5) != 0) {
            return; /* text or bytes: the engine's decoder keeps them as a string */
        }
    }
    if (!fl_body_decode(req->body, req->body_len, c->opts->max_depth, &v, &errs)) {
        ce_fail_json(c, errs);
        return;
    }
    c->parsed = v;
}

static void decode_binary(ce_ctx *c, const fl_ce_http_request *req)
{
    bin b = {.nh = 0};
    fl_ce_record rec = {.topic = "http", .partition = -1, .offset = -1};
    size_t before = c->nerrors;

    for (size_t i = 0; i < req->nheaders && b.nowned + 2 <= 128; i++) {
        if (is_ce_header(req->headers[i].name)) {
            bin_add(c, &b, &req->headers[i]);
        }
    }
    for (int i = 0; i < 4; i++) {
        if (!b.seen[i]) {
            ce_fail(c, "", required[i], "missing required attribute \"%s\" (header ce-%s)",
                    required[i], required[i]);
        }
    }
    bin_check_data(c, req);
    if (req->content_type != NULL && c->nerrors == before) {
        b.h[b.nh++] = (fl_ce_header){
            .name = "content-type", .value = req->content_type, .len = strlen(req->content_type)};
    }
    if (c->nerrors == before) {
        rec.headers = b.h;
        rec.nheaders = b.nh;
        rec.value = req->body_len > 0 ? req->body : NULL;
        rec.value_len = req->body_len;
        if (ce_decode_record(c, &rec, "") && c->parsed != NULL &&
            c->out->events[0]->data == c->parsed) {
            c->out->data_text = req->body; /* the decoder took the body's parse */
            c->out->data_text_len = req->body_len;
        }
    }
    for (size_t i = 0; i < b.nowned; i++) {
        free(b.owned[i]);
    }
    json_decref(c->parsed);
    c->parsed = NULL;
}

fl_rc fl_ce_http_decode(const fl_ce_http_request *req, const fl_ce_http_opts *opts,
                        fl_ce_http_events *out, json_t **errors, fl_err *err)
{
    ce_ctx c = {.opts = opts, .out = out};
    fl_ce_http_mode mode = fl_ce_http_mode_of(req);

    memset(out, 0, sizeof(*out));
    *errors = NULL;
    out->mode = mode;
    if (mode == FL_CE_HTTP_BINARY) {
        decode_binary(&c, req);
    } else if (mode == FL_CE_HTTP_UNSUPPORTED) {
        ce_fail(&c, "", NULL, "the request is not a CloudEvent in a supported mode");
    } else {
        ce_decode_json(&c, req, mode == FL_CE_HTTP_BATCH);
    }
    if (c.nerrors == 0) {
        return FL_OK;
    }
    fl_ce_http_events_free(out);
    out->mode = mode;
    *errors = c.errors;
    if (c.too_many) {
        return fl_err_set(err, FL_ETOOBIG, "%s", c.first);
    }
    if (c.nerrors == 1) {
        return fl_err_set(err, FL_EINVAL, "%s", c.first);
    }
    return fl_err_set(err, FL_EINVAL, "%zu problems in the CloudEvents, the first: %s", c.nerrors,
                      c.first);
}

void fl_ce_http_events_free(fl_ce_http_events *ev)
{
    if (ev == NULL) {
        return;
    }
    for (size_t i = 0; i < ev->n; i++) {
        fl_cloudevent_free(ev->events[i]);
    }
    free(ev->events);
    memset(ev, 0, sizeof(*ev));
}
