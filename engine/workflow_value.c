/* engine/workflow_value.c -- scalars and values of the workflow loader: YAML 1.2 core
 * resolution into JSON, templates (every string checked by fl_expr_check, with the
 * problem located inside the scalar when the source holds its text verbatim), strings,
 * identifiers and durations, and the error sink.
 *
 * Thread-safety: reentrant. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/workflow_int.h"

void fl_wf__error(fl_wf_ctx *c, fl_pos pos, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fl_diags_add(c->diags, c->path, pos.line, pos.col, "%s", msg);
}

size_t fl_wf__nerrors(const fl_wf_ctx *c)
{
    return c->diags->count + c->diags->dropped - c->diags_at_start;
}

fl_pos fl_wf__scalar_pos(const fl_wf_ctx *c, const fl_yn *n, size_t off)
{
    fl_pos p = n->pos;

    (void)c;
    if (!n->val_col || n->kind != FL_YN_SCALAR) {
        return p;
    }
    p.col = n->val_col;
    /* libyaml counts columns in characters: skip UTF-8 continuation bytes */
    for (size_t i = 0; i < off && i < n->len; i++) {
        if (((unsigned char)n->value[i] & 0xC0) != 0x80) {
            p.col++;
        }
    }
    return p;
}

static bool all_digits(const char *s, const char *set)
{
    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        if (!strchr(set, *s)) {
            return false;
        }
    }
    return true;
}

/* YAML 1.2 core schema: [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+. */
static bool is_int(const char *s, int *base)
{
    if (s[0] == '0' && s[1] == 'o') {
        *base = 8;
        return all_digits(s + 2, "01234567");
    }
    if (s[0] == '0' && s[1] == 'x') {
        *base = 16;
        return all_digits(s + 2, "0123456789abcdefABCDEF");
    }
    *base = 10;
    return all_digits(s + (*s == '-' || *s == '+'), "0123456789");
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool is_float(const char *s)
{
    size_t digits = 0;

    s += *s == '-' || *s == '+';
    for (; *s >= '0' && *s <= '9'; s++) {
        digits++;
    }
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++) {
            digits++;
        }
    }
    if (!digits) {
        return false;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        s += *s == '-' || *s == '+';
        return all_digits(s, "0123456789");
    }
    return *s == '\0';
}

static bool is_special_float(const char *s)
{
    static const char *const names[] = {".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN", NULL};

    s += *s == '-' || *s == '+';
    for (size_t i = 0; names[i]; i++) {
        if (!strcmp(s, names[i])) {
            return true;
        }
    }
    return false;
}

static json_t *plain_number(fl_wf_ctx *c, const fl_yn *n)
{
    const char *s = n->value;
    int base;

    errno = 0;
    if (is_int(s, &base)) {
        long long v = strtoll(base == 10 ? s : s + 2, NULL, base);
        if (errno == ERANGE) {
            fl_wf__error(c, n->pos, "integer %s is out of range", s);
            return NULL;
        }
        return json_integer(v);
    }
    if (is_special_float(s)) {
        fl_wf__error(c, n->pos, "%s cannot be represented in JSON", s);
        return NULL;
    }
    if (is_float(s)) {
        double d = strtod(s, NULL);
        if (!isfinite(d)) {
            fl_wf__error(c, n->pos, "number %s is out of range", s);
            return NULL;
        }
        return json_real(d);
    }
    return json_stringn(n->value, n->len);
}

json_t *fl_wf__scalar_json(fl_wf_ctx *c, const fl_yn *n)
{
    json_t *j;

    if (n->plain) {
        if (fl_wf__is_null(n)) {
            return json_null();
        }
        if (!strcmp(n->value, "true") || !strcmp(n->value, "True") || !strcmp(n->value, "TRUE")) {
            return json_true();
        }
        if (!strcmp(n->value, "false") || !strcmp(n->value, "False") ||
            !strcmp(n->value, "FALSE")) {
            return json_false();
        }
        j = plain_number(c, n);
    } else {
        j = json_stringn(n->value, n->len);
    }
    return j;
}

static bool check_expr(fl_wf_ctx *c, const fl_yn *n)
{
    size_t off = 0;
    fl_err err = FL_ERR_INIT;

    if (fl_expr_check(n->value, &off, &err) == FL_OK) {
        return true;
    }
    fl_wf__error(c, fl_wf__scalar_pos(c, n, off), "invalid expression: %s", err.msg);
    return false;
}

static json_t *conv(fl_wf_ctx *c, const fl_yn *n, bool exprs, bool *ok);

static json_t *conv_scalar(fl_wf_ctx *c, const fl_yn *n, bool exprs, bool *ok)
{
    json_t *j = fl_wf__scalar_json(c, n);

    if (!j) {
        *ok = false;
        return json_null();
    }
    if (exprs && json_is_string(j) && !check_expr(c, n)) {
        *ok = false;
    }
    return j;
}

/* Goes on after a bad item, so every problem of a value is reported; the result is
 * then partial and `ok` is false. */
static json_t *conv(fl_wf_ctx *c, const fl_yn *n, bool exprs, bool *ok)
{
    json_t *j;

    if (n->kind == FL_YN_SCALAR) {
        return conv_scalar(c, n, exprs, ok);
    }
    if (n->kind == FL_YN_SEQ) {
        j = json_array();
        for (size_t i = 0; i < n->n; i++) {
            json_array_append_new(j, conv(c, n->items[i], exprs, ok));
        }
        return j;
    }
    j = json_object();
    for (size_t i = 0; i < n->n; i++) {
        const fl_yn *k = n->items[2 * i];
        json_t *v = conv(c, n->items[2 * i + 1], exprs, ok);
        if (k->kind != FL_YN_SCALAR || json_object_set_new(j, k->value, v) != 0) {
            fl_wf__error(c, k->pos, "keys must be strings");
            *ok = false;
            if (k->kind != FL_YN_SCALAR) {
                json_decref(v);
            }
        }
    }
    return j;
}

json_t *fl_wf__to_json(fl_wf_ctx *c, const fl_yn *n, bool exprs)
{
    bool ok = true;
    json_t *j = conv(c, n, exprs, &ok);

    if (!j || !ok) {
        json_decref(j);
        return NULL;
    }
    return j;
}

fl_tmpl *fl_wf__tmpl(fl_wf_ctx *c, const fl_yn *n)
{
    json_t *j = fl_wf__to_json(c, n, true);
    fl_tmpl *t = NULL;
    fl_err err = FL_ERR_INIT;

    if (j && fl_tmpl_new(j, &t, &err) != FL_OK) {
        fl_wf__error(c, n->pos, "invalid template: %s", err.msg);
        t = NULL;
    }
    json_decref(j);
    return t;
}

const char *fl_wf__string(fl_wf_ctx *c, const fl_yn *n, const char *what)
{
    if (!n || n->kind != FL_YN_SCALAR || fl_wf__is_null(n) || !n->len ||
        strlen(n->value) != n->len) {
        fl_wf__error(c, n ? n->pos : (fl_pos){1, 1}, "%s must be a non-empty string", what);
        return NULL;
    }
    return n->value;
}

bool fl_wf__is_identifier(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_')) {
        return false;
    }
    for (s++; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_')) {
            return false;
        }
    }
    return true;
}

bool fl_wf__duration(fl_wf_ctx *c, const fl_yn *n, bool allow_negative, const char *what,
                     int64_t *ms)
{
    const char *s = fl_wf__string(c, n, what);

    if (!s) {
        return false;
    }
    if (*s == '-' && !allow_negative && fl_workflow_parse_duration(s + 1, false, ms)) {
        fl_wf__error(c, n->pos, "%s cannot be negative", what);
        return false;
    }
    if (!fl_workflow_parse_duration(s, allow_negative, ms)) {
        fl_wf__error(c, n->pos,
                     "%s: bad duration \"%s\" (expected e.g. 500ms, 30s, 15m, 48h, 7d or PT48H)",
                     what, s);
        return false;
    }
    return true;
}
