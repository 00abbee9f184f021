/* core/yaml_json.c -- YAML (libyaml's event parser) -> jansson, with our own caps.
 *
 * The event parser, not libyaml's document loader: the loader builds the whole node graph
 * (aliases included) before we could refuse anything, while events let the builder stop
 * at the first node past a cap. Recursion depth is bounded by max_depth.
 *
 * Thread-safety: reentrant. */
#include "core/yaml_json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/mem.h"

#define TAG_STR "tag:yaml.org,2002:str"

typedef struct yj {
    yaml_parser_t parser;
    fl_yaml_json_limits lim;
    size_t nodes;
    fl_err *err;
} yj;

static fl_rc fail(const yj *y, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static fl_rc fail(const yj *y, yaml_mark_t m, const char *fmt, ...)
{
    char msg[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return fl_err_set(y->err, FL_EINVAL, "%zu:%zu: %s", m.line + 1, m.column + 1, msg);
}

/* On failure the event is left zeroed, so yaml_event_delete() on it stays safe. */
static fl_rc next_event(yj *y, yaml_event_t *ev)
{
    const yaml_parser_t *p = &y->parser;

    memset(ev, 0, sizeof(*ev));
    if (yaml_parser_parse(&y->parser, ev)) {
        return FL_OK;
    }
    memset(ev, 0, sizeof(*ev));
    if (p->context) {
        return fail(y, p->problem_mark, "invalid YAML: %s %s",
                    p->problem ? p->problem : "syntax error", p->context);
    }
    return fail(y, p->problem_mark, "invalid YAML: %s", p->problem ? p->problem : "syntax error");
}

static bool all_of(const char *s, const char *set)
{
    return *s && strspn(s, set) == strlen(s);
}

static bool is_one_of(const char *s, const char *const *words)
{
    for (; *words; words++) {
        if (strcmp(s, *words) == 0) {
            return true;
        }
    }
    return false;
}

/* The core schema's float: [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
static bool is_float(const char *s)
{
    size_t i = (*s == '-' || *s == '+') ? 1 : 0, digits = strspn(s + i, "0123456789");

    i += digits;
    if (s[i] == '.') {
        size_t frac = strspn(s + i + 1, "0123456789");
        if (!digits && !frac) {
            return false;
        }
        i += 1 + frac;
    } else if (!digits) {
        return false;
    }
    if (s[i] == 'e' || s[i] == 'E') {
        i++;
        i += (s[i] == '-' || s[i] == '+') ? 1 : 0;
        digits = strspn(s + i, "0123456789");
        if (!digits) {
            return false;
        }
        i += digits;
    }
    return s[i] == '\0';
}

/* Integer forms of the core schema: [-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+. Returns the
 * base to convert with and where the digits start, or 0 when s is no integer. */
static int int_base(const char *s, const char **digits)
{
    const char *d = (*s == '-' || *s == '+') ? s + 1 : s;

    if (strncmp(s, "0o", 2) == 0 && all_of(s + 2, "01234567")) {
        *digits = s + 2;
        return 8;
    }
    if (strncmp(s, "0x", 2) == 0 && all_of(s + 2, "0123456789abcdefABCDEF")) {
        *digits = s + 2;
        return 16;
    }
    *digits = s;
    return all_of(d, "0123456789") ? 10 : 0;
}

static fl_rc resolve_number(const yj *y, const yaml_event_t *ev, const char *s, json_t **out)
{
    const char *digits;
    int base = int_base(s, &digits);
    char *end;

    errno = 0;
    if (base) {
        long long v = strtoll(digits, &end, base);
        if (errno == ERANGE) {
            return fail(y, ev->start_mark, "integer out of range: %.40s", s);
        }
        *out = json_integer(v);
        return FL_OK;
    }
    double d = strtod(s, &end);
    if (errno == ERANGE && isinf(d)) {
        return fail(y, ev->start_mark, "number out of range: %.40s", s);
    }
    *out = json_real(d);
    return FL_OK;
}

/* A plain, untagged scalar by the YAML 1.2 core schema. *out stays NULL for a string. */
static fl_rc resolve_plain(const yj *y, const yaml_event_t *ev, json_t **out)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    static const char *const specials[] = {".inf",  ".Inf",  ".INF",  "+.inf", "+.Inf",
                                           "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
                                           ".NaN",  ".NAN",  NULL};
    const char *s = (const char *)ev->data.scalar.value;
    const char *digits;

    *out = NULL;
    if (is_one_of(s, nulls)) {
        *out = json_null();
    } else if (is_one_of(s, trues) || is_one_of(s, falses)) {
        *out = json_boolean(is_one_of(s, trues));
    } else if (is_one_of(s, specials)) {
        return fail(y, ev->start_mark, "%s has no JSON representation (quote it)", s);
    } else if (int_base(s, &digits) || is_float(s)) {
        return resolve_number(y, ev, s, out);
    }
    return FL_OK;
}

static fl_rc scalar_value(const yj *y, const yaml_event_t *ev, json_t **out)
{
    const char *tag = (const char *)ev->data.scalar.tag;
    const char *s = (const char *)ev->data.scalar.value;
    fl_rc rc;

    *out = NULL;
    if (tag && strcmp(tag, TAG_STR) != 0 && strcmp(tag, "!") != 0) {
        return fail(y, ev->start_mark, "unsupported YAML tag \"%.60s\"", tag);
    }
    if (!tag && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        rc = resolve_plain(y, ev, out);
        if (rc != FL_OK || *out) {
            return rc;
        }
    }
    *out = json_stringn(s, ev->data.scalar.length);
    if (!*out) {
        return fail(y, ev->start_mark, "string is not valid UTF-8");
    }
    return FL_OK;
}

static fl_rc parse_node(yj *y, yaml_event_t *ev, int depth, json_t **out);

/* Counts one node and checks the depth a collection would open at. */
static fl_rc admit(yj *y, const yaml_event_t *ev, int depth)
{
    if (++y->nodes > y->lim.max_nodes) {
        return fail(y, ev->start_mark, "more than %zu YAML nodes", y->lim.max_nodes);
    }
    if ((ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT) &&
        depth >= y->lim.max_depth) {
        return fail(y, ev->start_mark, "YAML nesting deeper than %d levels", y->lim.max_depth);
    }
    return FL_OK;
}

/* Reads the children of a sequence up to its end event. */
static fl_rc parse_sequence(yj *y, int depth, json_t *arr)
{
    yaml_event_t ev;
    json_t *item = NULL;
    fl_rc rc;

    for (;;) {
        rc = next_event(y, &ev);
        if (rc != FL_OK || ev.type == YAML_SEQUENCE_END_EVENT) {
            break;
        }
        rc = parse_node(y, &ev, depth + 1, &item);
        if (rc != FL_OK) {
            break;
        }
        json_array_append_new(arr, item);
        item = NULL;
    }
    yaml_event_delete(&ev);
    return rc;
}

/* Reads one key (a scalar that does not repeat an earlier key of the mapping) into
 * *key, consuming *ev. */
static fl_rc parse_key(yj *y, yaml_event_t *ev, int depth, const json_t *obj, char **key)
{
    const char *tag = (const char *)ev->data.scalar.tag;
    const char *s = (const char *)ev->data.scalar.value;
    json_t *probe = NULL;
    fl_rc rc = FL_OK;

    if (ev->type == YAML_ALIAS_EVENT) {
        rc = fail(y, ev->start_mark, "YAML aliases are not allowed");
    } else if (ev->type != YAML_SCALAR_EVENT) {
        rc = fail(y, ev->start_mark, "mapping keys must be scalars");
    } else if (tag && strcmp(tag, TAG_STR) != 0 && strcmp(tag, "!") != 0) {
        rc = fail(y, ev->start_mark, "unsupported YAML tag \"%.60s\"", tag);
    } else if (strlen(s) != ev->data.scalar.length) {
        rc = fail(y, ev->start_mark, "mapping key contains a NUL character");
    } else if (json_object_get(obj, s)) {
        rc = fail(y, ev->start_mark, "duplicate key \"%.60s\"", s);
    } else {
        probe = json_string(s); /* jansson's own UTF-8 check, as set_new would do */
        rc = probe ? admit(y, ev, depth) : fail(y, ev->start_mark, "key is not valid UTF-8");
    }
    if (rc == FL_OK) {
        *key = fl_xstrdup(s);
    }
    json_decref(probe);
    yaml_event_delete(ev);
    return rc;
}

/* Reads key/value pairs up to the mapping's end event. */
static fl_rc parse_mapping(yj *y, int depth, json_t *obj)
{
    yaml_event_t ev;
    json_t *value = NULL;
    char *key = NULL;
    fl_rc rc;

    for (;;) {
        rc = next_event(y, &ev);
        if (rc != FL_OK || ev.type == YAML_MAPPING_END_EVENT) {
            break;
        }
        rc = parse_key(y, &ev, depth + 1, obj, &key);
        rc = rc == FL_OK ? next_event(y, &ev) : rc;
        rc = rc == FL_OK ? parse_node(y, &ev, depth + 1, &value) : rc;
        if (rc != FL_OK) {
            break;
        }
        json_object_set_new(obj, key, value); /* key checked: cannot fail */
        free(key);
        key = NULL;
    }
    free(key);
    yaml_event_delete(&ev);
    return rc;
}

/* Turns the node that starts with *ev (consumed here) into *out. */
static fl_rc parse_node(yj *y, yaml_event_t *ev, int depth, json_t **out)
{
    json_t *v = NULL;
    fl_rc rc;

    *out = NULL;
    rc = ev->type == YAML_ALIAS_EVENT
             ? fail(y, ev->start_mark, "YAML aliases are not allowed (*%.60s)",
                    (const char *)ev->data.alias.anchor)
             : admit(y, ev, depth);
    if (rc != FL_OK) {
        goto out;
    }
    if (ev->type == YAML_SCALAR_EVENT) {
        rc = scalar_value(y, ev, &v);
    } else if (ev->type == YAML_SEQUENCE_START_EVENT) {
        v = json_array();
        rc = parse_sequence(y, depth, v);
    } else if (ev->type == YAML_MAPPING_START_EVENT) {
        v = json_object();
        rc = parse_mapping(y, depth, v);
    } else {
        rc = fail(y, ev->start_mark, "unexpected YAML event");
    }
    if (rc == FL_OK) {
        *out = v;
        v = NULL;
    }
out:
    json_decref(v);
    yaml_event_delete(ev);
    return rc;
}

/* After STREAM-START: an empty stream (null) or exactly one document. */
static fl_rc parse_stream(yj *y, json_t **out)
{
    yaml_event_t ev;
    fl_rc rc = next_event(y, &ev);

    if (rc != FL_OK || ev.type == YAML_STREAM_END_EVENT) {
        *out = rc == FL_OK ? json_null() : NULL;
        goto out;
    }
    yaml_event_delete(&ev); /* DOCUMENT-START */
    rc = next_event(y, &ev);
    rc = rc == FL_OK ? parse_node(y, &ev, 0, out) : rc;
    rc = rc == FL_OK ? next_event(y, &ev) : rc; /* DOCUMENT-END */
    if (rc == FL_OK) {
        yaml_event_delete(&ev);
        rc = next_event(y, &ev);
    }
    if (rc == FL_OK && ev.type != YAML_STREAM_END_EVENT) {
        rc = fail(y, ev.start_mark, "expected a single YAML document");
    }
    if (rc != FL_OK) {
        json_decref(*out);
        *out = NULL;
    }
out:
    yaml_event_delete(&ev);
    return rc;
}

fl_rc fl_yaml_json_parse(const char *text, size_t len, const fl_yaml_json_limits *lim, json_t **out,
                         fl_err *err)
{
    yj y = {.err = err};
    yaml_event_t ev;
    fl_rc rc;

    *out = NULL;
    y.lim.max_bytes = lim && lim->max_bytes ? lim->max_bytes : FL_YAML_JSON_MAX_BYTES;
    y.lim.max_depth = lim && lim->max_depth > 0 ? lim->max_depth : FL_YAML_JSON_MAX_DEPTH;
    y.lim.max_nodes = lim && lim->max_nodes ? lim->max_nodes : FL_YAML_JSON_MAX_NODES;
    if (len > y.lim.max_bytes) {
        return fl_err_set(err, FL_ETOOBIG, "1:1: YAML text of %zu bytes exceeds %zu", len,
                          y.lim.max_bytes);
    }
    if (!yaml_parser_initialize(&y.parser)) {
        return fl_err_set(err, FL_EINTERNAL, "1:1: cannot initialize the YAML parser");
    }
    yaml_parser_set_input_string(&y.parser, (const unsigned char *)text, len);
    rc = next_event(&y, &ev); /* STREAM-START */
    yaml_event_delete(&ev);
    if (rc == FL_OK) {
        rc = parse_stream(&y, out);
    }
    yaml_parser_delete(&y.parser);
    return rc;
}
