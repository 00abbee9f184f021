/* engine/cloudevent.c -- decoding and validating a consumed Kafka record as a CloudEvent.
 *
 * Both modes first collect the attributes as byte spans borrowed from the record (binary
 * mode: headers) or from the parsed envelope (structured mode), so one set of checks
 * applies to both and nothing is copied before the event is known to be valid. The
 * checks run in a fixed order, so a record with several faults always gets the same
 * reason: size, content type, envelope, required attributes, attribute text,
 * specversion, time, tenant, subject, key, data. The rules are listed in cloudevent.h.
 *
 * Thread-safety: reentrant; no state. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/mem.h"
#include "engine/cloudevent.h"

enum {
    A_SPECVERSION,
    A_ID,
    A_SOURCE,
    A_TYPE,
    A_SUBJECT,
    A_TIME,
    A_TENANT,
    A_CONTENT_TYPE,
    A_COUNT
};

/* The attributes with a field of their own, in check order, with their caps. */
static const struct {
    const char *name;
    size_t cap;
} attrs[A_COUNT] = {
    {"specversion", 16},
    {"id", FL_CE_MAX_ID},
    {"source", FL_CE_MAX_SOURCE},
    {"type", FL_CE_MAX_TYPE},
    {"subject", FL_CE_MAX_SUBJECT},
    {"time", 64},
    {"tenant", FL_CE_MAX_TENANT},
    {"datacontenttype", FL_CE_MAX_ATTRIBUTE},
};

typedef struct span {
    const char *p;
    size_t n;
    bool set;
} span;

/* What one decode collects before validation; spans borrow from the record or env. */
typedef struct raw {
    span a[A_COUNT];
    span ext_name[FL_CE_MAX_EXTENSIONS];
    span ext_val[FL_CE_MAX_EXTENSIONS];
    size_t next;
    char *scratch[FL_CE_MAX_EXTENSIONS + 1]; /* owned text of integer/boolean extensions */
    json_t *env;                             /* structured mode: the envelope */
    const json_t *data_json;                 /* structured mode: `data`, borrowed from env */
    span data;                               /* data bytes (binary value or data_base64) */
    span data_base64;                        /* structured mode: the data_base64 member */
    unsigned char *decoded;                  /* owned bytes decoded from data_base64 */
    bool structured;
} raw;

typedef struct dec {
    const fl_ce_record *rec;
    const fl_ce_opts *opts;
    fl_ce_reason reason;
    fl_err *err;
    raw r;
} dec;

/* Records the dead-letter reason and its detail; too_large maps to FL_ETOOBIG. */
__attribute__((format(printf, 3, 4))) static fl_rc fail(dec *d, fl_ce_reason reason,
                                                        const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    d->reason = reason;
    return fl_err_set(d->err, reason == FL_CE_TOO_LARGE ? FL_ETOOBIG : FL_EINVAL, "%s", msg);
}

static span span_of(const void *p, size_t n)
{
    return (span){.p = p, .n = n, .set = true};
}

/* The index of the attribute called `name` (n bytes), or A_COUNT. */
static int attr_index(const char *name, size_t n)
{
    for (int i = 0; i < A_COUNT; i++) {
        if (strlen(attrs[i].name) == n && memcmp(attrs[i].name, name, n) == 0) {
            return i;
        }
    }
    return A_COUNT;
}

static bool ext_name_ok(const char *name, size_t n)
{
    if (n == 0 || n > FL_CE_MAX_EXTENSION_NAME) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9'))) {
            return false;
        }
    }
    /* `data` names the payload in structured mode: as an extension it would be lost */
    return !(n == 4 && memcmp(name, "data", 4) == 0);
}

/* Adds an extension, refusing bad names, repeats and one too many. */
static fl_rc add_ext(dec *d, const char *name, size_t n, span value)
{
    if (!ext_name_ok(name, n)) {
        /* the name is quoted only when it is text: details end up in JSON logs and rows */
        if (memchr(name, '\0', n) != NULL || !fl_ce_utf8_valid(name, n)) {
            return fail(d, FL_CE_BAD_ATTRIBUTE, "an extension name is not [a-z0-9]{1,20}");
        }
        return fail(d, FL_CE_BAD_ATTRIBUTE, "extension name \"%.*s\" is not [a-z0-9]{1,20}",
                    (int)(n < 40 ? n : 40), name);
    }
    for (size_t i = 0; i < d->r.next; i++) {
        if (d->r.ext_name[i].n == n && memcmp(d->r.ext_name[i].p, name, n) == 0) {
            return fail(d, FL_CE_DUPLICATE_ATTRIBUTE, "attribute \"%.*s\" is given twice", (int)n,
                        name);
        }
    }
    if (d->r.next == FL_CE_MAX_EXTENSIONS) {
        return fail(d, FL_CE_TOO_MANY_EXTENSIONS, "more than %d extension attributes",
                    FL_CE_MAX_EXTENSIONS);
    }
    d->r.ext_name[d->r.next] = span_of(name, n);
    d->r.ext_val[d->r.next] = value;
    d->r.next++;
    return FL_OK;
}

/* Stores attribute i, or refuses it when it was already given. */
static fl_rc set_attr(dec *d, int i, span value)
{
    if (d->r.a[i].set) {
        return fail(d, FL_CE_DUPLICATE_ATTRIBUTE, "attribute \"%s\" is given twice", attrs[i].name);
    }
    d->r.a[i] = value;
    return FL_OK;
}

/* The media type of a content type, without parameters or blanks, compared
 * case-insensitively (RFC 9110 section 8.3.1). */
static bool media_is(span ct, const char *type)
{
    const char *end = memchr(ct.p, ';', ct.n);
    size_t n = end ? (size_t)(end - ct.p) : ct.n;
    const char *p = ct.p;

    while (n > 0 && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t')) {
        n--;
    }
    if (type[0] == '+') { /* a structured-syntax suffix: "+json" */
        return n > strlen(type) && strncasecmp(p + n - strlen(type), type, strlen(type)) == 0;
    }
    return n == strlen(type) && strncasecmp(p, type, n) == 0;
}

static bool media_is_json(const span *ct)
{
    return !ct->set || media_is(*ct, "application/json") || media_is(*ct, "+json");
}

/* Finds the content-type header, which decides the mode. */
static fl_rc find_content_type(dec *d)
{
    const fl_ce_header *h;
    fl_rc rc = FL_OK;

    for (size_t i = 0; i < d->rec->nheaders && rc == FL_OK; i++) {
        h = &d->rec->headers[i];
        if (h->name != NULL && strcasecmp(h->name, "content-type") == 0) {
            if (h->value == NULL) {
                rc = fail(d, FL_CE_BAD_CONTENT_TYPE, "header content-type has no value");
            } else {
                rc = set_attr(d, A_CONTENT_TYPE, span_of(h->value, h->len));
            }
        }
    }
    return rc;
}

/* Binary mode: every ce_<name> header is an attribute or an extension. */
static fl_rc collect_headers(dec *d)
{
    const fl_ce_header *h;
    size_t n;
    int i;
    fl_rc rc = FL_OK;

    for (size_t k = 0; k < d->rec->nheaders && rc == FL_OK; k++) {
        h = &d->rec->headers[k];
        if (h->name == NULL || strncmp(h->name, "ce_", 3) != 0) {
            continue; /* content-type was read by find_content_type; others are not ours */
        }
        if (h->value == NULL) {
            return fail(d, FL_CE_BAD_ATTRIBUTE, "header %.40s has no value",
                        fl_ce_utf8_valid(h->name, strlen(h->name)) ? h->name : "ce_?");
        }
        n = strlen(h->name + 3);
        i = attr_index(h->name + 3, n);
        if (i != A_COUNT) {
            rc = set_attr(d, i, span_of(h->value, h->len));
        } else {
            rc = add_ext(d, h->name + 3, n, span_of(h->value, h->len));
        }
    }
    d->r.data = span_of(d->rec->value, d->rec->value ? d->rec->value_len : 0);
    return rc;
}

/* The text of a structured-mode extension value: strings as they are, integers and
 * booleans as their JSON text (the CloudEvents type system allows both). */
static fl_rc ext_value(dec *d, const char *key, const json_t *v, span *out)
{
    char *text = NULL;

    if (json_is_string(v)) {
        *out = span_of(json_string_value(v), json_string_length(v));
        return FL_OK;
    }
    if (json_is_integer(v)) {
        text = fl_xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_boolean(v)) {
        text = fl_xstrdup(json_is_true(v) ? "true" : "false");
    } else {
        return fail(d, FL_CE_BAD_ATTRIBUTE, "attribute \"%.40s\" is not a string", key);
    }
    d->r.scratch[d->r.next] = text; /* add_ext fills slot next (or fails; freed anyway) */
    *out = span_of(text, strlen(text));
    return FL_OK;
}

/* One envelope member: an attribute, the data, or an extension; null means absent. */
static fl_rc envelope_member(dec *d, const char *key, size_t klen, const json_t *v)
{
    int i = attr_index(key, klen);
    span s;
    fl_rc rc;

    if (json_is_null(v)) {
        return FL_OK;
    }
    if (strcmp(key, "data") == 0) {
        d->r.data_json = v;
        return FL_OK;
    }
    if (strcmp(key, "data_base64") == 0 || i != A_COUNT) {
        if (!json_is_string(v)) {
            return fail(d, FL_CE_BAD_ATTRIBUTE, "attribute \"%s\" is not a string", key);
        }
        s = span_of(json_string_value(v), json_string_length(v));
        if (i == A_COUNT) {
            d->r.data_base64 = s;
            return FL_OK;
        }
        return set_attr(d, i, s);
    }
    rc = ext_value(d, key, v, &s);
    if (rc == FL_OK) {
        rc = add_ext(d, key, klen, s);
    }
    return rc;
}

/* Structured mode: the value is the envelope, one JSON object. */
static fl_rc collect_envelope(dec *d)
{
    json_error_t jerr;
    const char *key;
    size_t klen;
    fl_rc rc = FL_OK;

    d->r.a[A_CONTENT_TYPE] = (span){0}; /* the envelope's datacontenttype, not the header */
    if (d->opts->parsed_envelope != NULL) {
        d->r.env = json_incref(d->opts->parsed_envelope); /* parsed by the caller */
    } else {
        d->r.env = json_loadb(d->rec->value ? d->rec->value : "", d->rec->value_len,
                              JSON_REJECT_DUPLICATES, &jerr);
    }
    if (d->r.env == NULL) {
        return fail(d, FL_CE_NOT_JSON, "envelope: %d:%d: %s", jerr.line, jerr.column, jerr.text);
    }
    if (!json_is_object(d->r.env)) {
        return fail(d, FL_CE_NOT_JSON, "envelope is not an object (batches are not supported)");
    }
    for (void *it = json_object_iter(d->r.env); it != NULL && rc == FL_OK;
         it = json_object_iter_next(d->r.env, it)) {
        key = json_object_iter_key(it);
        klen = json_object_iter_key_len(it);
        if (strlen(key) != klen) {
            return fail(d, FL_CE_BAD_ATTRIBUTE, "an attribute name contains a NUL byte");
        }
        rc = envelope_member(d, key, klen, json_object_iter_value(it));
    }
    if (rc == FL_OK && d->r.data_json != NULL && d->r.data_base64.set) {
        rc = fail(d, FL_CE_BAD_ATTRIBUTE, "data and data_base64 are both present");
    }
    return rc;
}

/* Attribute text: non-empty UTF-8 without NUL, under its cap. */
static fl_rc check_text(dec *d, const char *name, span s, size_t cap)
{
    if (s.n == 0 || memchr(s.p, '\0', s.n) != NULL || !fl_ce_utf8_valid(s.p, s.n)) {
        return fail(d, FL_CE_BAD_ATTRIBUTE,
                    "attribute \"%s\" is not a non-empty UTF-8 string without NUL", name);
    }
    if (s.n > cap) {
        return fail(d, FL_CE_ATTRIBUTE_TOO_LONG, "attribute \"%s\" is %zu bytes, over %zu", name,
                    s.n, cap);
    }
    return FL_OK;
}

/* Presence, specversion and the text of every attribute and extension. */
static fl_rc check_attrs(dec *d)
{
    const span *a = d->r.a;
    char name[FL_CE_MAX_EXTENSION_NAME + 1];
    fl_rc rc = FL_OK;

    for (int i = A_SPECVERSION; i <= A_TYPE && rc == FL_OK; i++) {
        if (!a[i].set) {
            rc = fail(d, FL_CE_MISSING_ATTRIBUTE, "missing attribute \"%s\"", attrs[i].name);
        }
    }
    for (int i = 0; i < A_COUNT && rc == FL_OK; i++) {
        if (a[i].set) {
            rc = check_text(d, attrs[i].name, a[i], attrs[i].cap);
        }
    }
    if (rc == FL_OK && !(a[A_SPECVERSION].n == 3 && memcmp(a[A_SPECVERSION].p, "1.0", 3) == 0)) {
        rc = fail(d, FL_CE_BAD_SPECVERSION, "specversion is \"%.*s\", not \"1.0\"",
                  (int)(a[A_SPECVERSION].n < 16 ? a[A_SPECVERSION].n : 16), a[A_SPECVERSION].p);
    }
    for (size_t i = 0; i < d->r.next && rc == FL_OK; i++) {
        snprintf(name, sizeof(name), "%.*s", (int)d->r.ext_name[i].n, d->r.ext_name[i].p);
        rc = check_text(d, name, d->r.ext_val[i], FL_CE_MAX_ATTRIBUTE);
    }
    return rc;
}

/* Time, tenant, subject and key: the rules that give an event its place. */
static fl_rc check_routing(dec *d)
{
    const span *a = d->r.a;
    const fl_ce_record *rec = d->rec;
    char text[FL_CE_MAX_TENANT + 1];

    if (a[A_TIME].set) {
        snprintf(text, sizeof(text), "%.*s", (int)a[A_TIME].n, a[A_TIME].p);
        if (!fl_ce_time_valid(text)) {
            return fail(d, FL_CE_BAD_TIME, "time \"%s\" is not RFC 3339", text);
        }
    }
    if (a[A_TENANT].set) {
        snprintf(text, sizeof(text), "%.*s", (int)a[A_TENANT].n, a[A_TENANT].p);
        if (!fl_ce_tenant_valid(text)) {
            return fail(d, FL_CE_BAD_TENANT, "tenant \"%s\" is not valid", text);
        }
    }
    if (!a[A_SUBJECT].set && !d->opts->allow_no_subject) {
        return fail(d, FL_CE_NO_SUBJECT, "the event has no subject");
    }
    if (rec->key == NULL && d->opts->require_key) {
        return fail(d, FL_CE_NO_KEY, "the record has no key");
    }
    if (rec->key != NULL && a[A_SUBJECT].set &&
        (rec->key_len != a[A_SUBJECT].n || memcmp(rec->key, a[A_SUBJECT].p, rec->key_len) != 0)) {
        return fail(d, FL_CE_KEY_SUBJECT_MISMATCH, "the key differs from subject \"%.*s\"",
                    (int)(a[A_SUBJECT].n < 64 ? a[A_SUBJECT].n : 64), a[A_SUBJECT].p);
    }
    return FL_OK;
}

/* Data bytes as JSON: parsed when the content type is JSON, else text or base64. */
static fl_rc data_from_bytes(dec *d, span bytes, json_t **out, bool *b64)
{
    json_error_t jerr;
    char *text;

    if (bytes.n == 0) {
        return FL_OK; /* no data */
    }
    if (media_is_json(&d->r.a[A_CONTENT_TYPE]) && !d->r.structured && d->opts->parsed_value) {
        *out = json_incref(d->opts->parsed_value); /* parsed by the caller (cloudevent.h) */
    } else if (media_is_json(&d->r.a[A_CONTENT_TYPE])) {
        *out = json_loadb(bytes.p, bytes.n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
        if (*out == NULL) {
            return fail(d, FL_CE_INVALID_DATA_JSON, "data: %d:%d: %s", jerr.line, jerr.column,
                        jerr.text);
        }
    } else if (memchr(bytes.p, '\0', bytes.n) == NULL && fl_ce_utf8_valid(bytes.p, bytes.n)) {
        *out = json_stringn(bytes.p, bytes.n);
    } else {
        text = fl_ce_base64_encode(bytes.p, bytes.n);
        *out = json_string(text);
        free(text);
        *b64 = true;
    }
    fl_assert(*out != NULL); /* text was checked above: only OOM could fail */
    return FL_OK;
}

/* The data of either mode; data_base64 is decoded first. */
static fl_rc decode_data(dec *d, json_t **out, bool *b64)
{
    span b = d->r.data_base64;

    if (d->r.data_json != NULL) {
        *out = json_incref((json_t *)d->r.data_json);
        return FL_OK;
    }
    if (b.set) {
        d->r.decoded = fl_ce_base64_decode(b.p, b.n, &d->r.data.n);
        if (d->r.decoded == NULL) {
            return fail(d, FL_CE_INVALID_DATA_BASE64, "data_base64 is not padded base64");
        }
        d->r.data.p = (const char *)d->r.decoded;
        d->r.data.set = true;
    }
    return data_from_bytes(d, d->r.data, out, b64);
}

static char *dup_span(span s)
{
    return s.set ? fl_xstrndup(s.p, s.n) : NULL;
}

/* Copies the validated attributes into a new event, which takes data. */
static fl_cloudevent *build(dec *d, json_t *data, bool b64)
{
    fl_cloudevent *ce = fl_xcalloc(1, sizeof(*ce));
    const span *a = d->r.a;

    ce->id = dup_span(a[A_ID]);
    ce->source = dup_span(a[A_SOURCE]);
    ce->type = dup_span(a[A_TYPE]);
    ce->specversion = dup_span(a[A_SPECVERSION]);
    ce->subject = dup_span(a[A_SUBJECT]);
    ce->time = dup_span(a[A_TIME]);
    ce->content_type = dup_span(a[A_CONTENT_TYPE]);
    ce->tenant_defaulted = !a[A_TENANT].set;
    ce->tenant = a[A_TENANT].set ? dup_span(a[A_TENANT]) : fl_xstrdup(d->opts->default_tenant);
    ce->structured = d->r.structured;
    for (size_t i = 0; i < d->r.next; i++) {
        ce->exts[i].name = dup_span(d->r.ext_name[i]);
        ce->exts[i].value = dup_span(d->r.ext_val[i]);
    }
    ce->nexts = d->r.next;
    ce->data = data;
    ce->data_base64 = b64;
    return ce;
}

/* The mode from the content type, then the attributes of that mode. */
static fl_rc collect(dec *d)
{
    span ct;
    fl_rc rc = find_content_type(d);

    if (rc != FL_OK) {
        return rc;
    }
    ct = d->r.a[A_CONTENT_TYPE];
    if (ct.set && media_is(ct, "application/cloudevents-batch+json")) {
        return fail(d, FL_CE_BAD_CONTENT_TYPE, "batch mode is not defined for Kafka");
    }
    d->r.structured = ct.set && media_is(ct, "application/cloudevents+json");
    return d->r.structured ? collect_envelope(d) : collect_headers(d);
}

static void raw_deinit(raw *r)
{
    for (size_t i = 0; i < FL_CE_MAX_EXTENSIONS + 1; i++) {
        free(r->scratch[i]);
    }
    free(r->decoded);
    json_decref(r->env);
}

fl_rc fl_cloudevent_decode(fl_cloudevent **out, const fl_ce_record *rec, const fl_ce_opts *opts,
                           fl_ce_reason *reason, fl_err *err)
{
    dec d = {.rec = rec, .opts = opts, .reason = FL_CE_OK, .err = err};
    size_t cap = opts->max_value_bytes ? opts->max_value_bytes : FL_CE_DEFAULT_MAX_VALUE;
    json_t *data = NULL;
    bool b64 = false;
    fl_rc rc;

    *out = NULL;
    fl_assert(opts->default_tenant != NULL);
    if (rec->value != NULL && rec->value_len > cap) {
        rc = fail(&d, FL_CE_TOO_LARGE, "value is %zu bytes, over %zu", rec->value_len, cap);
        goto out;
    }
    rc = collect(&d);
    if (rc == FL_OK) {
        rc = check_attrs(&d);
    }
    if (rc == FL_OK) {
        rc = check_routing(&d);
    }
    if (rc == FL_OK) {
        rc = decode_data(&d, &data, &b64);
    }
    if (rc == FL_OK) {
        *out = build(&d, data, b64);
        data = NULL;
    }
out:
    json_decref(data);
    raw_deinit(&d.r);
    *reason = d.reason;
    return rc;
}

void fl_cloudevent_free(fl_cloudevent *ce)
{
    if (ce == NULL) {
        return;
    }
    free(ce->id);
    free(ce->source);
    free(ce->type);
    free(ce->specversion);
    free(ce->subject);
    free(ce->tenant);
    free(ce->time);
    free(ce->content_type);
    json_decref(ce->data);
    for (size_t i = 0; i < ce->nexts; i++) {
        free(ce->exts[i].name);
        free(ce->exts[i].value);
    }
    free(ce);
}

fl_event fl_cloudevent_event(const fl_cloudevent *ce)
{
    return (fl_event){.id = ce->id,
                      .type = ce->type,
                      .source = ce->source,
                      .subject = ce->subject,
                      .tenant = ce->tenant,
                      .time = ce->time,
                      .data = ce->data};
}

const char *fl_cloudevent_extension(const fl_cloudevent *ce, const char *name)
{
    for (size_t i = 0; i < ce->nexts; i++) {
        if (strcmp(ce->exts[i].name, name) == 0) {
            return ce->exts[i].value;
        }
    }
    return NULL;
}

const char *fl_cloudevent_traceparent(const fl_cloudevent *ce)
{
    return fl_cloudevent_extension(ce, "traceparent");
}
