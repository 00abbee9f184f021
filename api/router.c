/* api/router.c -- matching (method, path) against the route table.
 *
 * A few dozen routes: a linear scan over pre-split patterns costs well under a
 * microsecond and keeps the precedence rule (literal beats parameter, segment by segment
 * from the left) obvious. */
#include "api/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"

#define MAX_SEGS 12

typedef struct entry {
    const fl_route *route;
    char *segs[MAX_SEGS]; /* "{name}" for parameters */
    size_t nsegs;
} entry;

struct fl_router {
    entry *items;
    size_t n, cap;
};

static bool is_param(const char *seg)
{
    return seg[0] == '{';
}

/* Splits "/a/{b}/c" into owned segments; false when malformed. */
static bool split_pattern(const char *pattern, entry *e)
{
    const char *p = pattern;

    if (*p != '/') {
        return false;
    }
    while (*p == '/' && p[1] != '\0') {
        const char *end = strchr(p + 1, '/');
        size_t len = end ? (size_t)(end - p - 1) : strlen(p + 1);

        if (len == 0 || e->nsegs == MAX_SEGS) {
            return false;
        }
        e->segs[e->nsegs++] = fl_xstrndup(p + 1, len);
        p += len + 1;
    }
    return *p == '\0' || strcmp(p, "/") == 0;
}

fl_router *fl_router_new(void)
{
    return fl_xcalloc(1, sizeof(fl_router));
}

void fl_router_free(fl_router *rt)
{
    if (!rt) {
        return;
    }
    for (size_t i = 0; i < rt->n; i++) {
        for (size_t s = 0; s < rt->items[i].nsegs; s++) {
            free(rt->items[i].segs[s]);
        }
    }
    free(rt->items);
    free(rt);
}

static bool same_route(const fl_route *a, const fl_route *b)
{
    return strcmp(a->method, b->method) == 0 && strcmp(a->pattern, b->pattern) == 0;
}

void fl_router_add(fl_router *rt, const fl_route *routes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        entry e = {.route = &routes[i]};

        if (!split_pattern(routes[i].pattern, &e)) {
            fl_log(FL_ERROR, "http.route_malformed", FL_STR("pattern", routes[i].pattern));
            abort();
        }
        for (size_t j = 0; j < rt->n; j++) {
            if (same_route(rt->items[j].route, &routes[i])) {
                fl_log(FL_ERROR, "http.route_duplicate", FL_STR("method", routes[i].method),
                       FL_STR("pattern", routes[i].pattern));
                abort();
            }
        }
        if (rt->n == rt->cap) {
            rt->cap = rt->cap ? rt->cap * 2 : 64;
            rt->items = fl_xrealloc(rt->items, rt->cap * sizeof(entry));
        }
        rt->items[rt->n++] = e;
    }
}

/* The request path split in place into segments (path is a copy). */
typedef struct path_segs {
    char *segs[MAX_SEGS];
    size_t n;
    char copy[1024];
} path_segs;

static bool split_path(const char *path, path_segs *ps)
{
    char *p, *save = NULL;

    size_t len = strlen(path);

    if (len >= sizeof(ps->copy) || path[0] != '/') {
        return false;
    }
    memcpy(ps->copy, path, len + 1);
    ps->n = 0;
    for (p = strtok_r(ps->copy, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
        if (ps->n == MAX_SEGS) {
            return false;
        }
        ps->segs[ps->n++] = p;
    }
    return true;
}

/* Ranks how e matches ps: -1 no match; else a bitmask with one bit per segment from the
 * left (most significant first) set where the segment is a literal, so a higher rank is
 * the more specific pattern. */
static long rank(const entry *e, const path_segs *ps)
{
    long r = 0;

    if (e->nsegs != ps->n) {
        return -1;
    }
    for (size_t i = 0; i < e->nsegs; i++) {
        r <<= 1;
        if (!is_param(e->segs[i])) {
            if (strcmp(e->segs[i], ps->segs[i]) != 0) {
                return -1;
            }
            r |= 1;
        }
    }
    return r;
}

static bool method_is(const fl_route *rt, const char *method)
{
    if (strcmp(rt->method, method) == 0) {
        return true;
    }
    return strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0;
}

/* Copies the parameters of e from ps into m->buf. civetweb hands over the path already
 * percent-decoded (local_uri_raw is decoded too), so decoding again here would turn a
 * literal "%41" in an id into "A". */
static bool bind_params(const entry *e, const path_segs *ps, fl_route_match *m)
{
    size_t used = 0;

    m->nparams = 0;
    for (size_t i = 0; i < e->nsegs; i++) {
        size_t n;

        if (!is_param(e->segs[i]) || m->nparams == FL_ROUTE_MAX_PARAMS) {
            continue;
        }
        n = strlen(ps->segs[i]);
        if (n + 1 > sizeof(m->buf) - used) {
            return false;
        }
        memcpy(m->buf + used, ps->segs[i], n + 1);
        m->params[m->nparams++] = m->buf + used;
        used += n + 1;
    }
    return true;
}

static void append_allow(fl_route_match *m, const char *method)
{
    size_t len = strlen(m->allow);

    if (strstr(m->allow, method)) {
        return;
    }
    snprintf(m->allow + len, sizeof(m->allow) - len, "%s%s", len ? ", " : "", method);
}

bool fl_router_match(const fl_router *rt, const char *method, const char *path, fl_route_match *m)
{
    path_segs ps;
    long best = -1;
    const entry *hit = NULL;

    memset(m, 0, sizeof(*m));
    if (!split_path(path, &ps)) {
        return false;
    }
    for (size_t i = 0; i < rt->n; i++) {
        best = rank(&rt->items[i], &ps) > best ? rank(&rt->items[i], &ps) : best;
    }
    for (size_t i = 0; best >= 0 && i < rt->n; i++) {
        if (rank(&rt->items[i], &ps) != best) {
            continue;
        }
        if (method_is(rt->items[i].route, method)) {
            hit = &rt->items[i];
        }
        append_allow(m, rt->items[i].route->method);
        if (strcmp(rt->items[i].route->method, "GET") == 0) {
            append_allow(m, "HEAD");
        }
    }
    if (!hit) {
        return false;
    }
    if (!bind_params(hit, &ps, m)) {
        m->allow[0] = '\0'; /* a path too long to hold names no resource: 404 */
        return false;
    }
    m->route = hit->route;
    return true;
}

static int by_pattern(const void *a, const void *b)
{
    const fl_route *x = *(const fl_route *const *)a, *y = *(const fl_route *const *)b;
    int c = strcmp(x->pattern, y->pattern);

    return c ? c : strcmp(x->method, y->method);
}

void fl_router_list(const fl_router *rt, fl_buf *out)
{
    const fl_route **sorted = fl_xcalloc(rt->n ? rt->n : 1, sizeof(*sorted));
    size_t n = 0;

    for (size_t i = 0; i < rt->n; i++) {
        if (!(rt->items[i].route->flags & FL_ROUTE_HIDDEN)) {
            sorted[n++] = rt->items[i].route;
        }
    }
    qsort(sorted, n, sizeof(*sorted), by_pattern);
    for (size_t i = 0; i < n; i++) {
        (void)fl_buf_appendf(out, NULL, "%s %s\n", sorted[i]->method, sorted[i]->pattern);
    }
    free(sorted);
}
