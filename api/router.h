/* api/router.h -- the route table: (method, path pattern) -> handler, scope and flags.
 *
 * Patterns are full paths whose segments are literals or `{name}` parameters:
 * "/api/v1/instances/{id}/signal". A parameter matches one non-empty segment and reaches
 * the handler as civetweb decoded it (fl_req_param; civetweb percent-decodes the whole
 * path before any handler runs, so an encoded "/" splits segments and an encoded NUL ends
 * the path). Literal segments win over parameters, so
 * "/api/v1/conversations/create" and "/api/v1/conversations/{id}" can coexist. A path
 * that matches with another method is a 405 with `Allow`; no match is a 404.
 *
 * Each group of routes lives in its own api/routes_<group>.c and registers itself with
 * one function declared in api/routes.h; api/server.c calls them all. `flowd routes`
 * prints the table, which the OpenAPI consistency test compares with api/openapi.yaml.
 *
 * Thread-safety: add routes before the server starts; lookups are read-only after. */
#ifndef FL_API_ROUTER_H
#define FL_API_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/mem.h"

typedef struct fl_req fl_req;

/* What a caller's key must grant. Scopes are cumulative: admin implies write implies read. */
typedef enum fl_scope {
    FL_SCOPE_NONE = 0, /* no key needed (/livez, /readyz, /openapi.json, /docs) */
    FL_SCOPE_READ,
    FL_SCOPE_WRITE,
    FL_SCOPE_ADMIN
} fl_scope;

enum {
    /* The route honours Idempotency-Key (every state-changing POST). */
    FL_ROUTE_IDEMPOTENT = 1u << 0,
    /* The route may hold its worker (SSE, ?wait=): counted against api.max_streams by the
     * handler itself (fl_req_stream_enter), since a plain GET of the same route may not. */
    FL_ROUTE_STREAM = 1u << 1,
    /* Not listed by `flowd routes` / not required in the OpenAPI document (HEAD twins). */
    FL_ROUTE_HIDDEN = 1u << 2,
    /* Errors in OpenAI's shape {"error": {message, type, param, code}} instead of
     * problem+json (the OpenAI-compatible /v1/ routes): api/reply.c's problem writer
     * honours it, so the dispatcher's own 401/403/429/503 take that shape too. */
    FL_ROUTE_OPENAI_ERRORS = 1u << 3,
};

/* Handles one request. Returns the HTTP status it sent (fl_req_send and the fl_reply_*
 * helpers return it). */
typedef int (*fl_handler_fn)(fl_req *r);

typedef struct fl_route {
    const char *method;  /* "GET", "POST", "PUT", "DELETE" (GET also answers HEAD) */
    const char *pattern; /* "/api/v1/instances/{id}" */
    fl_handler_fn handler;
    fl_scope scope;
    unsigned flags;
} fl_route;

#define FL_ROUTE_MAX_PARAMS 4

typedef struct fl_router fl_router;

fl_router *fl_router_new(void);
void fl_router_free(fl_router *rt); /* NULL-safe */

/* Adds n routes. The array must outlive the router (routes are static tables).
 * A malformed pattern or a duplicate (method, pattern) aborts: it is a programming error. */
void fl_router_add(fl_router *rt, const fl_route *routes, size_t n);

/* The outcome of a lookup. */
typedef struct fl_route_match {
    const fl_route *route;                   /* NULL: no route for this method */
    const char *params[FL_ROUTE_MAX_PARAMS]; /* decoded, pointing into buf */
    size_t nparams;
    char allow[64]; /* when route is NULL but the path exists: "GET, POST" */
    char buf[1024];
} fl_route_match;

/* Finds the route for method + path (without query string, as civetweb decoded it).
 * Returns true when a route matched; false with m->allow set when only other methods
 * match (405), false with m->allow empty when nothing matches (404). */
bool fl_router_match(const fl_router *rt, const char *method, const char *path, fl_route_match *m);

/* Appends "METHOD pattern\n" for every non-hidden route, sorted by pattern then method. */
void fl_router_list(const fl_router *rt, fl_buf *out);

#endif
