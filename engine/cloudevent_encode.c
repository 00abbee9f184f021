/* engine/cloudevent_encode.c -- binary-mode encoding, the dead-letter description, and
 * the small text checks (UTF-8, RFC 3339, tenant, base64) that decoding shares.
 *
 * The encoder refuses what the decoder would dead-letter, so the outbox relay can never
 * publish an event that flowd itself would reject (decode(encode(x)) == x is tested).
 *
 * Thread-safety: reentrant; no state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "engine/cloudevent.h"

static const struct {
    const char *name;
    const char *text;
} reason_rows[] = {
#define X(code, name, text) {name, text},
    FL_CE_REASON_LIST(X)
#undef X
};

#define NREASONS (sizeof(reason_rows) / sizeof(reason_rows[0]))

const char *fl_ce_reason_name(fl_ce_reason r)
{
    return (size_t)r < NREASONS ? reason_rows[r].name : "?";
}

const char *fl_ce_reason_text(fl_ce_reason r)
{
    return (size_t)r < NREASONS ? reason_rows[r].text : "?";
}

/* The length of the UTF-8 sequence led by c and the lowest code point it may encode, so
 * overlong forms are refused; 0 for a byte that cannot lead. */
static int utf8_lead(unsigned char c, unsigned *cp, unsigned *min)
{
    if (c < 0x80) {
        *cp = c;
        *min = 0;
        return 1;
    }
    if ((c & 0xE0) == 0xC0) {
        *cp = c & 0x1Fu;
        *min = 0x80;
        return 2;
    }
    if ((c & 0xF0) == 0xE0) {
        *cp = c & 0x0Fu;
        *min = 0x800;
        return 3;
    }
    if ((c & 0xF8) == 0xF0) {
        *cp = c & 0x07u;
        *min = 0x10000;
        return 4;
    }
    return 0;
}

bool fl_ce_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    unsigned cp, min;
    int len;

    while (i < n) {
        len = utf8_lead(p[i], &cp, &min);
        if (len == 0 || (size_t)len > n - i) {
            return false;
        }
        for (int k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p[i + k] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += (size_t)len;
    }
    return true;
}

/* Reads exactly n decimal digits at *p. */
static bool digits(const char **p, int n, int *out)
{
    *out = 0;
    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9') {
            return false;
        }
        *out = *out * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return true;
}

static bool expect(const char **p, const char *one_of)
{
    if (**p == '\0' || strchr(one_of, **p) == NULL) {
        return false;
    }
    (*p)++;
    return true;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

/* RFC 3339 section 5.6 date-time: full-date "T" partial-time time-offset. */
bool fl_ce_time_valid(const char *s)
{
    const char *p = s;
    int y, mo, d, h, mi, sec, oh = 0, om = 0;
    bool ok;

    ok = digits(&p, 4, &y) && expect(&p, "-") && digits(&p, 2, &mo) && expect(&p, "-") &&
         digits(&p, 2, &d) && expect(&p, "Tt") && digits(&p, 2, &h) && expect(&p, ":") &&
         digits(&p, 2, &mi) && expect(&p, ":") && digits(&p, 2, &sec);
    ok = ok && mo >= 1 && mo <= 12 && d >= 1 && d <= days_in_month(y, mo) && h < 24 && mi < 60 &&
         sec <= 60;
    if (ok && *p == '.') {
        p++;
        ok = *p >= '0' && *p <= '9';
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (ok && (*p == 'Z' || *p == 'z')) {
        return p[1] == '\0';
    }
    ok = ok && expect(&p, "+-") && digits(&p, 2, &oh) && expect(&p, ":") && digits(&p, 2, &om);
    return ok && *p == '\0' && oh < 24 && om < 60;
}

bool fl_ce_tenant_valid(const char *s)
{
    static const char more[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
    size_t n = strlen(s);

    if (n == 0 || n > FL_CE_MAX_TENANT || s[0] == '.' || s[0] == '_' || s[0] == '-') {
        return false;
    }
    return strspn(s, more) == n;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *fl_ce_base64_encode(const void *data, size_t n)
{
    const unsigned char *p = data;
    char *out = fl_xmalloc((n + 2) / 3 * 4 + 1);
    size_t o = 0;
    unsigned v;

    for (size_t i = 0; i < n; i += 3) {
        v = (unsigned)p[i] << 16;
        v |= i + 1 < n ? (unsigned)p[i + 1] << 8 : 0;
        v |= i + 2 < n ? p[i + 2] : 0;
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static int b64_value(char c)
{
    const char *at = c != '\0' ? strchr(b64, c) : NULL;

    return at ? (int)(at - b64) : -1;
}

/* Decodes one 4-character group; pad = how many '=' end it (only in the last group). */
static bool b64_group(const char *s, bool last, unsigned char *out, size_t *o)
{
    int v[4], pad = 0;

    for (int k = 0; k < 4; k++) {
        v[k] = b64_value(s[k]);
        if (v[k] < 0 && last && k >= 2 && s[k] == '=' && (k == 3 || s[3] == '=')) {
            v[k] = 0;
            pad++;
        } else if (v[k] < 0) {
            return false;
        }
    }
    /* canonical form: the bits dropped by padding must be zero */
    if ((pad == 1 && (v[2] & 3) != 0) || (pad == 2 && (v[1] & 15) != 0)) {
        return false;
    }
    out[(*o)++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
    if (pad < 2) {
        out[(*o)++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
    }
    if (pad < 1) {
        out[(*o)++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
    }
    return true;
}

unsigned char *fl_ce_base64_decode(const char *s, size_t n, size_t *out_len)
{
    unsigned char *out = NULL;
    size_t o = 0;

    if (n % 4 != 0) {
        goto out;
    }
    out = fl_xmalloc(n / 4 * 3 + 1);
    for (size_t i = 0; i < n; i += 4) {
        if (!b64_group(s + i, i + 4 == n, out, &o)) {
            free(out);
            out = NULL;
            goto out;
        }
    }
    *out_len = o;
out:
    return out;
}

/* Adds one header whose name and value the struct owns, both in one allocation
 * ("<prefix><name>\0<value>\0"): the API encodes ~10 headers per request. */
static void add_header(fl_ce_encoded *enc, const char *prefix, const char *name, const char *value)
{
    size_t np = strlen(prefix), nn = strlen(name), nv = strlen(value);
    char *buf = fl_xmalloc(np + nn + 1 + nv + 1);

    memcpy(buf, prefix, np);
    memcpy(buf + np, name, nn + 1);
    memcpy(buf + np + nn + 1, value, nv + 1);
    enc->owned[enc->nowned++] = buf;
    enc->headers[enc->nheaders++] =
        (fl_ce_header){.name = buf, .value = buf + np + nn + 1, .len = nv};
}

/* The checks the decoder makes on the core attributes of ev. */
static fl_rc check_event(const fl_event *ev, fl_err *err)
{
    const char *req[] = {ev->id, ev->source, ev->type, ev->tenant};
    const char *what[] = {"id", "source", "type", "tenant"};
    fl_rc rc = FL_OK;

    for (int i = 0; i < 4 && rc == FL_OK; i++) {
        if (req[i] == NULL || req[i][0] == '\0') {
            rc = fl_err_set(err, FL_EINVAL, "event has no %s", what[i]);
        }
    }
    if (rc == FL_OK && (strlen(ev->id) > FL_CE_MAX_ID || strlen(ev->type) > FL_CE_MAX_TYPE ||
                        strlen(ev->source) > FL_CE_MAX_SOURCE)) {
        rc = fl_err_set(err, FL_EINVAL, "event id, type or source is over its cap");
    } else if (rc == FL_OK && ev->subject != NULL &&
               (ev->subject[0] == '\0' || strlen(ev->subject) > FL_CE_MAX_SUBJECT)) {
        rc = fl_err_set(err, FL_EINVAL, "event subject is empty or over %d bytes",
                        FL_CE_MAX_SUBJECT);
    } else if (rc == FL_OK && ev->time != NULL && !fl_ce_time_valid(ev->time)) {
        rc = fl_err_set(err, FL_EINVAL, "event time \"%.64s\" is not RFC 3339", ev->time);
    } else if (rc == FL_OK && !fl_ce_tenant_valid(ev->tenant)) {
        rc = fl_err_set(err, FL_EINVAL, "event tenant \"%.64s\" is not valid", ev->tenant);
    }
    return rc;
}

static bool ext_name_valid(const char *name)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = strlen(name);

    return n >= 1 && n <= FL_CE_MAX_EXTENSION_NAME && strspn(name, chars) == n;
}

/* Extras must be extensions the decoder keeps: valid, unique, not a core attribute. */
static fl_rc check_extra(const fl_ce_attr *extra, size_t nextra, fl_err *err)
{
    static const char *const core[] = {"id",      "source",     "type",   "specversion",
                                       "subject", "time",       "tenant", "datacontenttype",
                                       "data",    "data_base64"};
    fl_rc rc = FL_OK;

    if (nextra > FL_CE_MAX_EXTENSIONS) {
        rc = fl_err_set(err, FL_EINVAL, "more than %d extensions", FL_CE_MAX_EXTENSIONS);
    }
    for (size_t i = 0; i < nextra && rc == FL_OK; i++) {
        if (!ext_name_valid(extra[i].name) || extra[i].value == NULL || extra[i].value[0] == '\0' ||
            strlen(extra[i].value) > FL_CE_MAX_ATTRIBUTE) {
            rc = fl_err_set(err, FL_EINVAL, "extension \"%.32s\" is not valid", extra[i].name);
        }
        for (size_t k = 0; k < sizeof(core) / sizeof(core[0]) && rc == FL_OK; k++) {
            if (strcmp(extra[i].name, core[k]) == 0) {
                rc = fl_err_set(err, FL_EINVAL, "extension \"%s\" is a core attribute", core[k]);
            }
        }
        for (size_t k = 0; k < i && rc == FL_OK; k++) {
            if (strcmp(extra[i].name, extra[k].name) == 0) {
                rc = fl_err_set(err, FL_EINVAL, "extension \"%s\" is given twice", extra[i].name);
            }
        }
    }
    return rc;
}

/* The value: the caller's JSON text of ev->data when given (borrowed), else ev->data
 * serialized (owned). */
static void set_value(fl_ce_encoded *out, const fl_event *ev, const char *data_text,
                      size_t data_len)
{
    char *text;

    add_header(out, "", "content-type", "application/json");
    if (data_text != NULL) {
        out->value = data_text;
        out->value_len = data_len;
        return;
    }
    text = json_dumps(ev->data, JSON_COMPACT | JSON_ENCODE_ANY);
    fl_assert(text != NULL); /* only fails on OOM */
    out->owned[out->nowned++] = text;
    out->value = text;
    out->value_len = strlen(text);
}

fl_rc fl_cloudevent_encode_text(const fl_event *ev, const fl_ce_attr *extra, size_t nextra,
                                const char *data_text, size_t data_len, fl_ce_encoded *out,
                                fl_err *err)
{
    const char *names[] = {"id", "source", "type", "subject", "time", "tenant"};
    const char *values[] = {ev->id, ev->source, ev->type, ev->subject, ev->time, ev->tenant};
    fl_rc rc;

    memset(out, 0, sizeof(*out));
    rc = check_event(ev, err);
    if (rc == FL_OK) {
        rc = check_extra(extra, nextra, err);
    }
    if (rc != FL_OK) {
        goto out;
    }
    add_header(out, "ce_", "specversion", "1.0");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (values[i] != NULL) {
            add_header(out, "ce_", names[i], values[i]);
        }
    }
    for (size_t i = 0; i < nextra; i++) {
        add_header(out, "ce_", extra[i].name, extra[i].value);
    }
    if (ev->data != NULL) {
        set_value(out, ev, data_text, data_len);
    }
    if (ev->subject != NULL) {
        out->key = out->headers[4].value; /* ce_subject: specversion, id, source, type first */
        out->key_len = out->headers[4].len;
    }
out:
    return rc;
}

fl_rc fl_cloudevent_encode(const fl_event *ev, const fl_ce_attr *extra, size_t nextra,
                           fl_ce_encoded *out, fl_err *err)
{
    return fl_cloudevent_encode_text(ev, extra, nextra, NULL, 0, out, err);
}

void fl_ce_encoded_deinit(fl_ce_encoded *enc)
{
    if (enc == NULL) {
        return;
    }
    for (size_t i = 0; i < enc->nowned; i++) {
        free(enc->owned[i]); /* the headers and a serialized value */
    }
    memset(enc, 0, sizeof(*enc));
}

/* Sets `field` to the bytes as text when they are UTF-8 without NUL, else
 * `<field>_base64`; sets nothing for NULL. */
static void set_bytes(json_t *o, const char *field, const void *p, size_t n)
{
    char name[32];
    char *b;

    if (p == NULL) {
        return;
    }
    if (memchr(p, '\0', n) == NULL && fl_ce_utf8_valid(p, n)) {
        json_object_set_new(o, field, json_stringn(p, n));
        return;
    }
    snprintf(name, sizeof(name), "%s_base64", field);
    b = fl_ce_base64_encode(p, n);
    json_object_set_new(o, name, json_string(b));
    free(b);
}

/* The detail as valid UTF-8: messages quote values cut at a byte count, which may split
 * the last character, so the longest valid prefix is kept. */
static json_t *detail_json(const char *detail)
{
    size_t n = detail ? strlen(detail) : 0;

    while (n > 0 && !fl_ce_utf8_valid(detail, n)) {
        n--;
    }
    return json_stringn(detail ? detail : "", n);
}

json_t *fl_cloudevent_dead_letter_json(fl_ce_reason reason, const char *detail,
                                       const fl_ce_record *rec)
{
    json_t *headers = json_array();
    const fl_ce_header *hd;
    json_t *h;
    json_t *j;

    for (size_t i = 0; i < rec->nheaders; i++) {
        hd = &rec->headers[i];
        h = json_object();
        set_bytes(h, "name", hd->name ? hd->name : "", hd->name ? strlen(hd->name) : 0);
        set_bytes(h, "value", hd->value, hd->len);
        json_array_append_new(headers, h);
    }
    j = json_pack("{s:s, s:s, s:o, s:I, s:I, s:o}", "reason", fl_ce_reason_name(reason), "text",
                  fl_ce_reason_text(reason), "detail", detail_json(detail), "partition",
                  (json_int_t)rec->partition, "offset", (json_int_t)rec->offset, "headers",
                  headers);
    fl_assert(j != NULL); /* every member above is valid: only OOM could fail */
    set_bytes(j, "topic", rec->topic ? rec->topic : "", rec->topic ? strlen(rec->topic) : 0);
    set_bytes(j, "key", rec->key, rec->key_len);
    return j;
}
