/* api/page.c -- cursor pagination: ?limit= and an opaque ?cursor=.
 *
 * The cursor is the last row's sort key as a JSON array of strings, base64url without
 * padding: opaque to clients (they must not build one), trivially checked here, and a
 * change of the key's shape later only needs a new array length. */
#include <stdlib.h>
#include <string.h>

#include "api/request.h"
#include "core/bigstack.h"
#include "core/mem.h"
#include "engine/cloudevent.h"

#define DEFAULT_LIMIT 50
#define MAX_LIMIT     200

static void to_url_alphabet(char *s)
{
    for (; *s; s++) {
        *s = *s == '+' ? '-' : *s == '/' ? '_' : *s;
    }
    /* padding is dropped by the caller */
}

char *fl_page_cursor(const char *a, const char *b)
{
    json_t *key = b ? json_pack("[s,s]", a, b) : json_pack("[s]", a);
    char *text = json_dumps(key, JSON_COMPACT);
    char *out = fl_ce_base64_encode(text, strlen(text));

    json_decref(key);
    free(text);
    to_url_alphabet(out);
    out[strcspn(out, "=")] = '\0';
    return out;
}

typedef struct cursor_parse {
    const unsigned char *raw;
    size_t len;
    json_t *key;
} cursor_parse;

/* Clients write cursors, and jansson parses and frees recursively: a cursor of nested
 * brackets is parsed, and freed unless it is our flat array, on a large stack. */
static void parse_cursor(void *arg)
{
    cursor_parse *c = arg;
    size_t n;
    bool flat;

    c->key = json_loadb((const char *)c->raw, c->len, JSON_REJECT_DUPLICATES, NULL);
    n = json_array_size(c->key);
    flat = n >= 1 && n <= 2;
    for (size_t i = 0; i < n; i++) {
        flat = flat && json_is_string(json_array_get(c->key, i));
    }
    if (!flat) {
        json_decref(c->key);
        c->key = NULL;
    }
}

/* The sort key of a cursor into p->after; false when it is not one of ours. */
static bool decode_cursor(const char *c, fl_page *p)
{
    size_t n = strlen(c), len = 0;
    char *std = fl_xmalloc(n + 4);
    unsigned char *raw;
    json_t *key;
    bool ok = false;

    for (size_t i = 0; i < n; i++) {
        std[i] = c[i] == '-' ? '+' : c[i] == '_' ? '/' : c[i];
    }
    for (; n % 4; n++) {
        std[n] = '=';
    }
    raw = fl_ce_base64_decode(std, n, &len);
    key = NULL;
    if (raw) {
        cursor_parse cp = {raw, len, NULL};

        fl_bigstack_run(parse_cursor, &cp);
        key = cp.key;
    }
    if (key) {
        ok = true;
        for (size_t i = 0; i < json_array_size(key); i++) {
            const char *s = json_string_value(json_array_get(key, i));

            ok = ok && s && strlen(s) < sizeof(p->after[0]);
            if (ok) {
                memcpy(p->after[i], s, strlen(s) + 1);
            }
        }
    }
    json_decref(key);
    free(raw);
    free(std);
    return ok;
}

bool fl_req_page(fl_req *r, fl_page *p)
{
    char buf[1024];
    char *end;
    long v;

    memset(p, 0, sizeof(*p));
    p->limit = DEFAULT_LIMIT;
    if (fl_req_query(r, "limit", buf, sizeof(buf))) {
        v = strtol(buf, &end, 10);
        if (end == buf || *end != '\0' || v < 1 || v > MAX_LIMIT) {
            fl_problem(r, 400, "limit must be an integer from 1 to %d", MAX_LIMIT);
            return false;
        }
        p->limit = (int)v;
    }
    if (fl_req_query(r, "cursor", buf, sizeof(buf)) && buf[0]) {
        if (!decode_cursor(buf, p)) {
            fl_problem(r, 400, "cursor is not one this server issued");
            return false;
        }
        p->has_cursor = true;
    }
    return true;
}

json_t *fl_page_wrap(const fl_page *p, json_t *data, char *(*cursor_of)(const json_t *item))
{
    bool more = json_array_size(data) > (size_t)p->limit;
    json_t *page = json_object();

    if (more) {
        char *c;

        json_array_remove(data, json_array_size(data) - 1);
        c = cursor_of(json_array_get(data, json_array_size(data) - 1));
        json_object_set_new(page, "data", data);
        json_object_set_new(page, "next_cursor", json_string(c));
        free(c);
    } else {
        json_object_set_new(page, "data", data);
        json_object_set_new(page, "next_cursor", json_null());
    }
    json_object_set_new(page, "has_more", json_boolean(more));
    return page;
}
