/* api/body.c -- strict JSON request bodies (see api/body.h).
 *
 * jansson does the parsing: JSON_REJECT_DUPLICATES turns a repeated key into an error,
 * the EOF check stays on so trailing bytes after the value are an error, and jansson
 * already rejects invalid UTF-8 and "\u0000" (JSON_ALLOW_NUL is off). The nesting depth is
 * checked afterwards on the tree, with a recursion that stops one level past the limit,
 * so its own depth is bounded by the configured limit (and jansson's build cap of 2048);
 * the JSON Pointer of the offending value is only built once the check failed.
 *
 * Thread-safety: reentrant; no shared state. */
#include "api/body.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/bigstack.h"
#include "core/json_arena.h"
#include "core/mem.h"
#include "engine/cloudevent.h"

/* The longest prefix of s that is valid UTF-8: details quote client bytes cut at a byte
 * count, and jansson refuses a string that is not UTF-8, which would lose the error. */
static json_t *utf8_prefix(const char *s)
{
    size_t n = strlen(s);

    while (n > 0 && !fl_ce_utf8_valid(s, n)) {
        n--;
    }
    return json_stringn(s, n);
}

void fl_body_error(json_t **errors, const char *pointer, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (*errors == NULL) {
        *errors = json_array();
    }
    json_array_append_new(*errors,
                          json_pack("{s:o, s:o}", "pointer", utf8_prefix(pointer ? pointer : ""),
                                    "detail", utf8_prefix(detail)));
}

/* Appends "/" + token escaped per RFC 6901 (~ -> ~0, / -> ~1) to the pointer in b. */
static void pointer_push(fl_buf *b, const char *token)
{
    fl_buf_append(b, "/", 1, NULL);
    for (const char *p = token; *p != '\0'; p++) {
        if (*p == '~') {
            fl_buf_append(b, "~0", 2, NULL);
        } else if (*p == '/') {
            fl_buf_append(b, "~1", 2, NULL);
        } else {
            fl_buf_append(b, p, 1, NULL);
        }
    }
}

/* Whether v (at nesting level `depth`) and everything below it is at most max_depth
 * deep. The common case (it is) builds no pointer: deep_pointer finds it only after. */
static bool depth_ok(const json_t *v, int depth, int max_depth)
{
    const char *key;
    json_t *child;
    size_t i;

    if (!json_is_object(v) && !json_is_array(v)) {
        return true;
    }
    if (depth + 1 > max_depth) {
        return false;
    }
    if (json_is_array(v)) {
        json_array_foreach((json_t *)v, i, child)
        {
            if (!depth_ok(child, depth + 1, max_depth)) {
                return false;
            }
        }
        return true;
    }
    json_object_foreach((json_t *)v, key, child)
    {
        if (!depth_ok(child, depth + 1, max_depth)) {
            return false;
        }
    }
    return true;
}

/* As depth_ok, leaving in b the pointer of the first value nested deeper than max_depth. */
static bool deep_pointer(const json_t *v, int depth, int max_depth, fl_buf *b)
{
    if (!json_is_object(v) && !json_is_array(v)) {
        return true;
    }
    if (depth + 1 > max_depth) {
        return false;
    }
    size_t mark = b->len;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            char idx[24];
            snprintf(idx, sizeof idx, "%zu", i);
            pointer_push(b, idx);
            if (!deep_pointer(json_array_get(v, i), depth + 1, max_depth, b)) {
                return false;
            }
            b->len = mark;
            b->data[mark] = '\0';
        }
        return true;
    }
    const char *key;
    json_t *child;
    json_object_foreach((json_t *)v, key, child)
    {
        pointer_push(b, key);
        if (!deep_pointer(child, depth + 1, max_depth, b)) {
            return false;
        }
        b->len = mark;
        b->data[mark] = '\0';
    }
    return true;
}

typedef struct decode_job {
    const char *data;
    size_t len;
    int max_depth;
    json_t *out, *errors;
} decode_job;

/* The parse and, for a tree too deep, its freeing: both recurse as deep as the input is
 * nested (up to jansson's 2048 levels), hence fl_bigstack_run. A tree that passes is at
 * most max_depth deep, which any stack can free later. */
static void decode_deep(void *arg)
{
    decode_job *j = arg;
    json_error_t jerr;
    int depth = j->max_depth < 0 ? 0 : j->max_depth;
    json_t *v;

    /* the tree's many small blocks come from this thread's arena (core/json_arena.h) */
    fl_json_arena_begin();
    v = json_loadb(j->data != NULL ? j->data : "", j->data != NULL ? j->len : 0,
                   JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    fl_json_arena_end();
    if (v == NULL) {
        fl_body_error(&j->errors, "", "invalid JSON at line %d column %d: %s", jerr.line,
                      jerr.column, jerr.text);
        return;
    }
    if (!depth_ok(v, 0, depth)) {
        fl_buf ptr;
        fl_buf_init(&ptr, SIZE_MAX / 4);
        fl_buf_append(&ptr, "", 0, NULL);
        (void)deep_pointer(v, 0, depth, &ptr);
        fl_body_error(&j->errors, ptr.data, "nested deeper than %d levels", j->max_depth);
        fl_buf_deinit(&ptr);
        json_decref(v);
        return;
    }
    j->out = v;
}

bool fl_body_decode(const char *data, size_t len, int max_depth, json_t **out, json_t **errors)
{
    decode_job j = {data, len, max_depth, NULL, NULL};

    fl_bigstack_run(decode_deep, &j);
    *out = j.out;
    *errors = j.errors;
    return j.out != NULL;
}
