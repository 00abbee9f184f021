/* engine/workflow_yaml.c -- pass 1 of the workflow loader: YAML text -> fl_yn tree.
 *
 * libyaml's event parser feeds a recursive builder that enforces our own caps, because
 * libyaml 0.2.5 has none: nesting depth, and a node count in which every alias counts
 * the whole subtree it stands for. A "billion laughs" file is therefore refused after
 * max_nodes, long before anything is expanded (an alias only points at its anchor: the
 * tree is never copied). The builder also records where each scalar's text sits in the
 * source, so expression errors can point inside a scalar, and reports duplicate keys.
 *
 * Thread-safety: reentrant. */
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/mem.h"
#include "engine/workflow_int.h"

#define YAML_STR_TAG "tag:yaml.org,2002:str"

typedef struct anchor {
    char *name;
    fl_yn *node;
} yanchor;

typedef struct ybuild {
    fl_wf_ctx *c;
    yaml_parser_t parser;
    yanchor *anchors;
    size_t nanchors;
    size_t nodes; /* aliases expanded */
} ybuild;

static fl_pos mark_pos(yaml_mark_t m)
{
    return (fl_pos){.line = (unsigned)m.line + 1, .col = (unsigned)m.column + 1};
}

static fl_yn *node_new(fl_wf_ctx *c, fl_yn_kind kind, yaml_mark_t m)
{
    fl_yn *n = fl_xcalloc(1, sizeof(*n));

    n->kind = kind;
    n->pos = mark_pos(m);
    n->weight = 1;
    n->height = 1;
    if (c->narena == c->carena) {
        c->carena = c->carena ? c->carena * 2 : 64;
        c->arena = fl_xrealloc(c->arena, c->carena * sizeof(*c->arena));
    }
    c->arena[c->narena++] = n;
    return n;
}

void fl_wf__arena_free(fl_wf_ctx *c)
{
    for (size_t i = 0; i < c->narena; i++) {
        free(c->arena[i]->value);
        free(c->arena[i]->items);
        free(c->arena[i]);
    }
    free(c->arena);
    c->arena = NULL;
    c->narena = c->carena = 0;
}

/* Appends flat; a mapping's pairs are counted once it is complete (collection_node). */
static void push_child(fl_yn *parent, fl_yn *child)
{
    if (parent->n == parent->cap) {
        parent->cap = parent->cap ? parent->cap * 2 : 8;
        parent->items = fl_xrealloc(parent->items, parent->cap * sizeof(*parent->items));
    }
    parent->items[parent->n++] = child;
    parent->weight += child->weight;
    if (child->height + 1 > parent->height) {
        parent->height = child->height + 1;
    }
}

/* False (after reporting) when the event cannot be read: a YAML syntax error. */
static bool next_event(ybuild *b, yaml_event_t *ev)
{
    const yaml_parser_t *p = &b->parser;

    memset(ev, 0, sizeof(*ev));
    if (yaml_parser_parse(&b->parser, ev)) {
        return true;
    }
    memset(ev, 0, sizeof(*ev));
    if (p->context) {
        fl_wf__error(b->c, mark_pos(p->problem_mark), "invalid YAML: %s %s",
                     p->problem ? p->problem : "syntax error", p->context);
    } else {
        fl_wf__error(b->c, mark_pos(p->problem_mark), "invalid YAML: %s",
                     p->problem ? p->problem : "syntax error");
    }
    return false;
}

static bool count_nodes(ybuild *b, size_t weight, yaml_mark_t m)
{
    b->nodes += weight;
    if (b->nodes > b->c->lim->max_nodes) {
        fl_wf__error(b->c, mark_pos(m), "too many YAML nodes (aliases expanded): more than %zu",
                     b->c->lim->max_nodes);
        return false;
    }
    return true;
}

/* Records where the scalar's text starts when the source holds it verbatim on one line
 * (plain, or quoted without escapes), so an offset in the value is an offset in the line. */
static unsigned value_column(const fl_wf_ctx *c, const yaml_event_t *ev)
{
    yaml_mark_t s = ev->start_mark, e = ev->end_mark;
    size_t q = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                       ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE
                   ? 1
                   : 0;

    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE && !q) {
        return 0;
    }
    if (s.line != e.line || e.index > c->len || e.index < s.index + 2 * q) {
        return 0;
    }
    if (e.index - s.index - 2 * q != ev->data.scalar.length ||
        memcmp(c->text + s.index + q, ev->data.scalar.value, ev->data.scalar.length) != 0) {
        return 0;
    }
    return (unsigned)(s.column + 1 + q);
}

static void register_anchor(ybuild *b, const yaml_char_t *name, fl_yn *n)
{
    if (!name) {
        return;
    }
    b->anchors = fl_xrealloc(b->anchors, (b->nanchors + 1) * sizeof(*b->anchors));
    b->anchors[b->nanchors].name = fl_xstrdup((const char *)name);
    b->anchors[b->nanchors].node = n;
    b->nanchors++;
}

static fl_yn *scalar_node(ybuild *b, const yaml_event_t *ev)
{
    const char *tag = (const char *)ev->data.scalar.tag;
    fl_yn *n;

    if (tag && strcmp(tag, YAML_STR_TAG) != 0 && strcmp(tag, "!") != 0) {
        fl_wf__error(b->c, mark_pos(ev->start_mark), "unsupported YAML tag \"%s\"", tag);
    }
    n = node_new(b->c, FL_YN_SCALAR, ev->start_mark);
    n->len = ev->data.scalar.length;
    n->value = fl_xmalloc(n->len + 1);
    memcpy(n->value, ev->data.scalar.value, n->len);
    n->value[n->len] = '\0';
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag;
    n->val_col = value_column(b->c, ev);
    register_anchor(b, ev->data.scalar.anchor, n);
    return n;
}

static fl_yn *alias_node(ybuild *b, const yaml_event_t *ev, int depth)
{
    const char *name = (const char *)ev->data.alias.anchor;

    /* the newest anchor of a name wins, as YAML says; an anchor is registered only when
     * its node is complete, so an alias cannot reach into its own anchor (no cycles) */
    for (size_t i = b->nanchors; i-- > 0;) {
        fl_yn *n = b->anchors[i].node;
        if (strcmp(b->anchors[i].name, name) != 0) {
            continue;
        }
        if (depth + n->height - 1 > b->c->lim->max_depth) {
            fl_wf__error(b->c, mark_pos(ev->start_mark), "YAML nesting deeper than %d levels",
                         b->c->lim->max_depth);
            return NULL;
        }
        return count_nodes(b, n->weight, ev->start_mark) ? n : NULL;
    }
    fl_wf__error(b->c, mark_pos(ev->start_mark), "undefined YAML alias \"%s\"", name);
    return NULL;
}

static fl_yn *parse_node(ybuild *b, yaml_event_t *ev, int depth);

static int by_key(const void *x, const void *y)
{
    const fl_yn *a = *(fl_yn *const *)x, *k = *(fl_yn *const *)y;
    int r;

    if (a->len != k->len) {
        return a->len < k->len ? -1 : 1;
    }
    r = memcmp(a->value, k->value, a->len);
    if (r != 0) {
        return r;
    }
    return a->pos.line != k->pos.line ? (a->pos.line < k->pos.line ? -1 : 1)
                                      : (a->pos.col > k->pos.col) - (a->pos.col < k->pos.col);
}

/* Sorting keeps this O(n log n): a mapping may have thousands of keys (states, context). */
static void check_duplicates(fl_wf_ctx *c, const fl_yn *map)
{
    fl_yn **keys = fl_xmalloc((map->n + 1) * sizeof(*keys));
    size_t nk = 0;

    for (size_t i = 0; i < map->n; i++) {
        if (map->items[2 * i]->kind == FL_YN_SCALAR) {
            keys[nk++] = map->items[2 * i];
        }
    }
    qsort(keys, nk, sizeof(*keys), by_key);
    for (size_t i = 1; i < nk; i++) {
        if (keys[i]->len == keys[i - 1]->len &&
            memcmp(keys[i]->value, keys[i - 1]->value, keys[i]->len) == 0) {
            fl_wf__error(c, keys[i]->pos, "duplicate key \"%s\"", keys[i]->value);
        }
    }
    free(keys);
}

/* Reads child events up to the collection's end event into n. */
static bool parse_children(ybuild *b, fl_yn *n, yaml_event_type_t end, int depth)
{
    yaml_event_t ev;
    fl_yn *child;

    for (;;) {
        if (!next_event(b, &ev)) {
            return false;
        }
        if (ev.type == end) {
            yaml_event_delete(&ev);
            return true;
        }
        child = parse_node(b, &ev, depth + 1);
        yaml_event_delete(&ev);
        if (!child) {
            return false;
        }
        push_child(n, child);
    }
}

static fl_yn *collection_node(ybuild *b, const yaml_event_t *ev, int depth)
{
    bool map = ev->type == YAML_MAPPING_START_EVENT;
    const yaml_char_t *anchor =
        map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
    fl_yn *n = node_new(b->c, map ? FL_YN_MAP : FL_YN_SEQ, ev->start_mark);

    if (!parse_children(b, n, map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT, depth)) {
        return NULL;
    }
    if (map) {
        n->n /= 2; /* libyaml always closes a pair before MAPPING_END */
        check_duplicates(b->c, n);
    }
    register_anchor(b, anchor, n);
    return n;
}

static fl_yn *parse_node(ybuild *b, yaml_event_t *ev, int depth)
{
    if (depth > b->c->lim->max_depth) {
        fl_wf__error(b->c, mark_pos(ev->start_mark), "YAML nesting deeper than %d levels",
                     b->c->lim->max_depth);
        return NULL;
    }
    if (ev->type == YAML_ALIAS_EVENT) {
        return alias_node(b, ev, depth);
    }
    if (!count_nodes(b, 1, ev->start_mark)) {
        return NULL;
    }
    if (ev->type == YAML_SCALAR_EVENT) {
        return scalar_node(b, ev);
    }
    return collection_node(b, ev, depth);
}

/* The stream: exactly one document whose root is a mapping. */
static fl_yn *load_stream(ybuild *b)
{
    yaml_event_t ev;
    fl_yn *root = NULL;
    bool ok = true, docs = false, done = false;

    while (ok && !done) {
        if (!next_event(b, &ev)) {
            return NULL;
        }
        if (ev.type == YAML_DOCUMENT_START_EVENT && docs) {
            fl_wf__error(b->c, mark_pos(ev.start_mark), "only one YAML document is allowed");
            ok = false;
        } else if (ev.type == YAML_DOCUMENT_START_EVENT) {
            docs = true;
        } else if (ev.type == YAML_STREAM_END_EVENT) {
            done = true;
        } else if (ev.type != YAML_STREAM_START_EVENT && ev.type != YAML_DOCUMENT_END_EVENT) {
            root = parse_node(b, &ev, 1);
            ok = root != NULL;
        }
        yaml_event_delete(&ev);
    }
    return ok ? root : NULL;
}

fl_yn *fl_wf__yaml_load(fl_wf_ctx *c)
{
    ybuild b = {.c = c};
    fl_yn *root = NULL;
    size_t before = fl_wf__nerrors(c);

    if (!yaml_parser_initialize(&b.parser)) {
        fl_wf__error(c, (fl_pos){1, 1}, "cannot initialize the YAML parser");
        return NULL;
    }
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)c->text, c->len);
    root = load_stream(&b);
    yaml_parser_delete(&b.parser);
    for (size_t i = 0; i < b.nanchors; i++) {
        free(b.anchors[i].name);
    }
    free(b.anchors);
    if (!root && fl_wf__nerrors(c) == before) {
        fl_wf__error(c, (fl_pos){1, 1}, "the file is empty: a workflow definition is a mapping");
    } else if (root && (root->kind != FL_YN_MAP)) {
        fl_wf__error(c, root->pos, "a workflow definition must be a mapping of keys to values");
        root = NULL;
    }
    return root;
}

/* The value node of a key: it follows its key in items. */
fl_yn *fl_wf__get(const fl_yn *map, const char *key)
{
    fl_yn *k = fl_wf__key(map, key);

    for (size_t i = 0; k && i < map->n; i++) {
        if (map->items[2 * i] == k) {
            return map->items[2 * i + 1];
        }
    }
    return NULL;
}

bool fl_wf__is_null(const fl_yn *n)
{
    return n && n->kind == FL_YN_SCALAR && n->plain &&
           (!n->len || !strcmp(n->value, "~") || !strcmp(n->value, "null") ||
            !strcmp(n->value, "Null") || !strcmp(n->value, "NULL"));
}

/* Levenshtein distance, capped: only small distances matter for "did you mean". */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[64], prev, tmp;

    if (la >= 63 || lb >= 63) {
        return 99;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t best = prev + (a[i - 1] != b[j - 1]);
            best = row[j] + 1 < best ? row[j] + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            tmp = row[j];
            row[j] = best;
            prev = tmp;
        }
    }
    return row[lb];
}

static void unknown_key(fl_wf_ctx *c, const fl_yn *k, const char *const *allowed, const char *what)
{
    for (size_t i = 0; allowed[i]; i++) {
        size_t d = distance(k->value, allowed[i]);
        /* a short key such as `on` is too close to everything to guess from */
        if (d <= 2 && d * 3 <= k->len) {
            fl_wf__error(c, k->pos, "unknown key \"%s\" in %s (did you mean \"%s\"?)", k->value,
                         what, allowed[i]);
            return;
        }
    }
    fl_wf__error(c, k->pos, "unknown key \"%s\" in %s", k->value, what);
}

void fl_wf__check_keys(fl_wf_ctx *c, const fl_yn *map, const char *const *allowed, const char *what)
{
    for (size_t i = 0; map && map->kind == FL_YN_MAP && i < map->n; i++) {
        const fl_yn *k = map->items[2 * i];
        size_t j = 0;
        if (k->kind != FL_YN_SCALAR) {
            fl_wf__error(c, k->pos, "keys of %s must be strings", what);
            continue;
        }
        while (allowed[j] && strcmp(allowed[j], k->value) != 0) {
            j++;
        }
        if (!allowed[j]) {
            unknown_key(c, k, allowed, what);
        }
    }
}

fl_yn *fl_wf__key(const fl_yn *map, const char *key)
{
    size_t klen = strlen(key);

    if (!map || map->kind != FL_YN_MAP) {
        return NULL;
    }
    for (size_t i = 0; i < map->n; i++) {
        const fl_yn *k = map->items[2 * i];
        if (k->kind == FL_YN_SCALAR && k->len == klen && memcmp(k->value, key, klen) == 0) {
            return map->items[2 * i];
        }
    }
    return NULL;
}
