/* engine/yaml_tree.c -- YAML text -> fl_yn tree (see engine/yaml_tree.h).
 *
 * A "billion laughs" file is refused after max_nodes, long before anything is expanded:
 * an alias only points at its anchor and counts that subtree's weight, the tree is never
 * copied. Anchors are registered only once their node is complete, so an alias cannot
 * reach into its own anchor (no cycles).
 *
 * Thread-safety: reentrant. */
#include "engine/yaml_tree.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/mem.h"

#define YAML_STR_TAG "tag:yaml.org,2002:str"

typedef struct yanchor {
    char *name;
    fl_yn *node;
} yanchor;

typedef struct ybuild {
    fl_yaml_tree *t;
    const fl_yaml_tree_opts *o;
    const char *text;
    size_t len;
    yaml_parser_t parser;
    yanchor *anchors;
    size_t nanchors;
    size_t nodes; /* aliases expanded */
} ybuild;

static void report(const fl_yaml_sink *sink, fl_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats here so that each loader's sink only has to file a finished message. */
static void report(const fl_yaml_sink *sink, fl_pos pos, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sink->fn(sink->ud, pos, msg);
}

static fl_pos mark_pos(yaml_mark_t m)
{
    return (fl_pos){.line = (unsigned)m.line + 1, .col = (unsigned)m.column + 1};
}

static fl_yn *node_new(fl_yaml_tree *t, fl_yn_kind kind, yaml_mark_t m)
{
    fl_yn *n = fl_xcalloc(1, sizeof(*n));

    n->kind = kind;
    n->pos = mark_pos(m);
    n->weight = 1;
    n->height = 1;
    if (t->narena == t->carena) {
        t->carena = t->carena ? t->carena * 2 : 64;
        t->arena = fl_xrealloc(t->arena, t->carena * sizeof(*t->arena));
    }
    t->arena[t->narena++] = n;
    return n;
}

void fl_yaml_tree_init(fl_yaml_tree *t)
{
    memset(t, 0, sizeof(*t));
}

void fl_yaml_tree_deinit(fl_yaml_tree *t)
{
    for (size_t i = 0; i < t->narena; i++) {
        free(t->arena[i]->value);
        free(t->arena[i]->items);
        free(t->arena[i]);
    }
    free(t->arena);
    fl_yaml_tree_init(t);
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
        report(&b->o->sink, mark_pos(p->problem_mark), "invalid YAML: %s %s",
               p->problem ? p->problem : "syntax error", p->context);
    } else {
        report(&b->o->sink, mark_pos(p->problem_mark), "invalid YAML: %s",
               p->problem ? p->problem : "syntax error");
    }
    return false;
}

static bool count_nodes(ybuild *b, size_t weight, yaml_mark_t m)
{
    b->nodes += weight;
    if (b->nodes <= b->o->max_nodes) {
        return true;
    }
    /* without aliases there is nothing to expand: the message does not mention it */
    if (b->o->alias_refusal) {
        report(&b->o->sink, mark_pos(m), "too many YAML nodes: more than %zu", b->o->max_nodes);
    } else {
        report(&b->o->sink, mark_pos(m), "too many YAML nodes (aliases expanded): more than %zu",
               b->o->max_nodes);
    }
    return false;
}

/* Records where the scalar's text starts when the source holds it verbatim on one line
 * (plain, or quoted without escapes), so an offset in the value is an offset in the line. */
static unsigned value_column(const ybuild *b, const yaml_event_t *ev)
{
    yaml_mark_t s = ev->start_mark, e = ev->end_mark;
    size_t q = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                       ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE
                   ? 1
                   : 0;

    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE && !q) {
        return 0;
    }
    if (s.line != e.line || e.index > b->len || e.index < s.index + 2 * q) {
        return 0;
    }
    if (e.index - s.index - 2 * q != ev->data.scalar.length ||
        memcmp(b->text + s.index + q, ev->data.scalar.value, ev->data.scalar.length) != 0) {
        return 0;
    }
    return (unsigned)(s.column + 1 + q);
}

static void register_anchor(ybuild *b, const yaml_char_t *name, fl_yn *n)
{
    /* with aliases refused no anchor can ever be looked up */
    if (!name || b->o->alias_refusal) {
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
        report(&b->o->sink, mark_pos(ev->start_mark), "unsupported YAML tag \"%s\"", tag);
    }
    n = node_new(b->t, FL_YN_SCALAR, ev->start_mark);
    n->len = ev->data.scalar.length;
    n->value = fl_xmalloc(n->len + 1);
    memcpy(n->value, ev->data.scalar.value, n->len);
    n->value[n->len] = '\0';
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag;
    n->val_col = value_column(b, ev);
    register_anchor(b, ev->data.scalar.anchor, n);
    return n;
}

static fl_yn *alias_node(ybuild *b, const yaml_event_t *ev, int depth)
{
    const char *name = (const char *)ev->data.alias.anchor;

    /* the newest anchor of a name wins, as YAML says */
    for (size_t i = b->nanchors; i-- > 0;) {
        fl_yn *n = b->anchors[i].node;
        if (strcmp(b->anchors[i].name, name) != 0) {
            continue;
        }
        if (depth + n->height - 1 > b->o->max_depth) {
            report(&b->o->sink, mark_pos(ev->start_mark), "YAML nesting deeper than %d levels",
                   b->o->max_depth);
            return NULL;
        }
        return count_nodes(b, n->weight, ev->start_mark) ? n : NULL;
    }
    report(&b->o->sink, mark_pos(ev->start_mark), "undefined YAML alias \"%s\"", name);
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
static void check_duplicates(const ybuild *b, const fl_yn *map)
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
            report(&b->o->sink, keys[i]->pos, "duplicate key \"%s\"", keys[i]->value);
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
    fl_yn *n = node_new(b->t, map ? FL_YN_MAP : FL_YN_SEQ, ev->start_mark);

    if (!parse_children(b, n, map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT, depth)) {
        return NULL;
    }
    if (map) {
        n->n /= 2; /* libyaml always closes a pair before MAPPING_END */
        check_duplicates(b, n);
    }
    register_anchor(b, anchor, n);
    return n;
}

static fl_yn *parse_node(ybuild *b, yaml_event_t *ev, int depth)
{
    /* a refused alias is reported as such, whatever its depth */
    if (ev->type == YAML_ALIAS_EVENT && b->o->alias_refusal) {
        report(&b->o->sink, mark_pos(ev->start_mark), "%s", b->o->alias_refusal);
        return NULL;
    }
    if (depth > b->o->max_depth) {
        report(&b->o->sink, mark_pos(ev->start_mark), "YAML nesting deeper than %d levels",
               b->o->max_depth);
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

/* The stream: at most one document. */
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
            report(&b->o->sink, mark_pos(ev.start_mark), "only one YAML document is allowed");
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

fl_yn *fl_yaml_tree_parse(fl_yaml_tree *t, const char *text, size_t len,
                          const fl_yaml_tree_opts *opts)
{
    ybuild b = {.t = t, .o = opts, .text = text, .len = len};
    fl_yn *root;

    if (!yaml_parser_initialize(&b.parser)) {
        report(&opts->sink, (fl_pos){1, 1}, "cannot initialize the YAML parser");
        return NULL;
    }
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)text, len);
    root = load_stream(&b);
    yaml_parser_delete(&b.parser);
    for (size_t i = 0; i < b.nanchors; i++) {
        free(b.anchors[i].name);
    }
    free(b.anchors);
    return root;
}

fl_yn *fl_yaml_tree_key(const fl_yn *map, const char *key)
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

/* The value node of a key: it follows its key in items. */
fl_yn *fl_yaml_tree_get(const fl_yn *map, const char *key)
{
    const fl_yn *k = fl_yaml_tree_key(map, key);

    for (size_t i = 0; k && i < map->n; i++) {
        if (map->items[2 * i] == k) {
            return map->items[2 * i + 1];
        }
    }
    return NULL;
}

bool fl_yaml_tree_is_null(const fl_yn *n)
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

static void unknown_key(const fl_yn *k, const char *const *allowed, const char *what,
                        const fl_yaml_sink *sink)
{
    for (size_t i = 0; allowed[i]; i++) {
        size_t d = distance(k->value, allowed[i]);
        /* a short key such as `on` is too close to everything to guess from */
        if (d <= 2 && d * 3 <= k->len) {
            report(sink, k->pos, "unknown key \"%s\" in %s (did you mean \"%s\"?)", k->value, what,
                   allowed[i]);
            return;
        }
    }
    report(sink, k->pos, "unknown key \"%s\" in %s", k->value, what);
}

void fl_yaml_tree_check_keys(const fl_yn *map, const char *const *allowed, const char *what,
                             const fl_yaml_sink *sink)
{
    for (size_t i = 0; map && map->kind == FL_YN_MAP && i < map->n; i++) {
        const fl_yn *k = map->items[2 * i];
        size_t j = 0;
        if (k->kind != FL_YN_SCALAR) {
            report(sink, k->pos, "keys of %s must be strings", what);
            continue;
        }
        while (allowed[j] && strcmp(allowed[j], k->value) != 0) {
            j++;
        }
        if (!allowed[j]) {
            unknown_key(k, allowed, what, sink);
        }
    }
}
