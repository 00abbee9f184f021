/* api/request.h -- one HTTP request as handlers see it, and every way to answer it.
 *
 * api/server.c builds an fl_req per request before the handler runs: request id
 * (X-Request-Id accepted when sane, else a new UUIDv7), W3C traceparent (accepted when
 * well-formed, else a new one), the caller (API key -> tenant, key id, scopes), the route
 * and its decoded path parameters. It has already answered 401/403/404/405/413/429 and
 * Idempotency-Key replays/conflicts, so a handler only does its own work.
 *
 * Answering. Every response goes through fl_req_send (the fl_reply_* helpers call it): it
 * adds Content-Length, Cache-Control: no-store, X-Request-Id, traceparent and the headers
 * collected with fl_req_header_add, and records the response when an Idempotency-Key is
 * active. Errors are RFC 9457 problem+json: {type, title, status, detail, instance} where
 * instance is "urn:request:<request id>".
 *
 * Helpers that may fail on the client's behalf (fl_req_json, fl_req_page, fl_req_db_*)
 * return false after they have answered; the handler then returns r->status:
 *
 *     json_t *body;
 *     if (!fl_req_json(r, &body)) {
 *         return r->status;
 *     }
 *
 * Thread-safety: an fl_req belongs to the worker thread serving it. */
#ifndef FL_API_REQUEST_H
#define FL_API_REQUEST_H

#include <civetweb.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "api/router.h"
#include "core/pg.h"

#define FL_REQ_ID_MAX 64 /* accepted X-Request-Id: 1..64 of [A-Za-z0-9._:-] */

/* Who is calling: set from the API key (empty strings and scope NONE on open routes). */
typedef struct fl_principal {
    char tenant[65];
    char key_id[40];
    fl_scope scope; /* the strongest scope the key holds */
} fl_principal;

typedef struct fl_idem fl_idem; /* api/idem.h: an in-flight Idempotency-Key record */

struct fl_req {
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    fl_api *api;
    const fl_route *route;
    fl_principal who;
    char request_id[FL_REQ_ID_MAX + 1];
    char traceparent[56]; /* "00-<32 hex>-<16 hex>-<2 hex>" */
    const char *params[FL_ROUTE_MAX_PARAMS];
    size_t nparams;
    int status;    /* the status sent; 0 before the response */
    fl_idem *idem; /* non-NULL while an Idempotency-Key response is being recorded */
    /* private to api/request.c */
    char *body;
    size_t body_len;
    size_t body_cap; /* body holds body_cap + 1 bytes */
    bool body_read;
    char extra[768];
    size_t extra_len;
    fl_route_match match; /* the route's decoded parameters live here */
};

/* ---- reading -------------------------------------------------------------------------- */

/* The i-th path parameter of the route pattern, percent-decoded. */
const char *fl_req_param(const fl_req *r, size_t i);

/* A request header, or NULL. Borrowed for the request. */
const char *fl_req_header(const fl_req *r, const char *name);

/* The query parameter `name`, decoded, into buf. Returns false when absent. A value that
 * does not fit buf counts as present and is cut; callers that care use a large buf. */
bool fl_req_query(const fl_req *r, const char *name, char *buf, size_t size);

/* The whole body, read once (later calls return the same bytes), capped by
 * http.max_body_bytes: over the cap it answers 413 with Connection: close without
 * reading the rest. *data is NUL-terminated and borrowed for the request. */
bool fl_req_body(fl_req *r, const char **data, size_t *len);

/* Lets go of r's body buffer at the end of the request (fl_dispatch): the worker thread
 * keeps one of up to 64 KB for its next request, larger ones are freed. */
void fl_req_body_release(fl_req *r);

/* The body as JSON: Content-Type must be application/json (415 otherwise), the text one
 * JSON value within api.max_json_depth, without duplicate keys (400 problem with
 * errors [{pointer, detail}] otherwise), and an object (400 otherwise).
 * Ownership: *out is a new reference. */
bool fl_req_json(fl_req *r, json_t **out);

/* ?wait= as milliseconds ("10s", "250ms", "30" = seconds), capped by api.max_wait; 0 when
 * absent. A malformed value answers 400. */
bool fl_req_wait_ms(fl_req *r, int *ms);

/* Cursor pagination: ?limit= (1..200, default 50) and ?cursor= (opaque, made by
 * fl_page_cursor from the last row's sort key). A bad limit or cursor answers 400. */
typedef struct fl_page {
    int limit;
    bool has_cursor;
    char after[2][256]; /* the sort key decoded from the cursor, e.g. {created_at, id} */
} fl_page;
bool fl_req_page(fl_req *r, fl_page *p);

/* The opaque cursor for a sort key of one or two strings (b may be NULL).
 * Ownership: caller frees. */
char *fl_page_cursor(const char *a, const char *b);

/* {data, next_cursor, has_more} from rows fetched with LIMIT p->limit + 1: when the array
 * holds more than p->limit items the last one is dropped and next_cursor is made by
 * cursor_of(the last kept item). Ownership: takes `data`; returns a new object. */
json_t *fl_page_wrap(const fl_page *p, json_t *data, char *(*cursor_of)(const json_t *item));

/* The API key of the request (Authorization: Bearer) and its scope: 401 / 403 / 503 are
 * answered here (false). The dispatcher calls it for every route with a scope; a route
 * whose scope is a setting (/metrics, api.metrics_auth) calls it itself. Fills r->who. */
bool fl_req_authorize(fl_req *r, fl_scope need);

/* ---- streams ---------------------------------------------------------------------------- */

/* Counts one more open stream (SSE, long-poll) against api.max_streams; false = answered
 * 503 with Retry-After. Each successful enter needs one fl_req_stream_leave. */
bool fl_req_stream_enter(fl_req *r);
void fl_req_stream_leave(fl_req *r);

/* ---- Postgres ------------------------------------------------------------------------- */

/* Runs one parameterized statement on a pooled connection (acquire, exec, release) bounded
 * by db.connect_timeout. Connection trouble answers 503, anything else 500 (logged with the
 * request id). Ownership: *rows (may be NULL when unwanted) is the caller's. */
bool fl_req_db(fl_req *r, const char *sql, int nparams, const char *const *params,
               fl_pg_rows **rows);

/* As fl_req_db for a statement whose first row's first column is one JSON value (build it
 * with json_build_object / json_agg in SQL). *out is NULL when there is no row or the
 * value is SQL NULL. Ownership: new reference. */
bool fl_req_db_json(fl_req *r, const char *sql, int nparams, const char *const *params,
                    json_t **out);

/* ---- answering ------------------------------------------------------------------------ */

/* Adds one response header line ("Location: /api/v1/instances/x"); no CRLF in the value. */
void fl_req_header_add(fl_req *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sends status, the collected headers and body (HEAD: headers only). Returns status. */
int fl_req_send(fl_req *r, int status, const char *content_type, const char *body, size_t len);

/* Sends body as application/json. Takes `body` (decref'd), even on failure. */
int fl_reply(fl_req *r, int status, json_t *body);

/* Sends a problem+json; the title is the status's reason phrase. */
int fl_problem(fl_req *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A problem with `errors` (JSON validation: [{pointer, detail}]; YAML definitions:
 * [{line, col, message}]). Takes `errors`. */
int fl_problem_errors(fl_req *r, int status, const char *detail, json_t *errors);

/* A problem for an fl_rc (FL_ENOTFOUND -> 404, FL_EUNAVAIL -> 503, ...) with err->msg as
 * detail; 5xx details are logged and replaced by a generic text. */
int fl_problem_rc(fl_req *r, fl_rc rc, const fl_err *err);

/* An error in OpenAI's shape, {"error": {message, type, param, code}}, as the
 * OpenAI-compatible routes answer (FL_ROUTE_OPENAI_ERRORS; there, and on unmatched paths
 * under /v1/, the fl_problem* helpers above answer in this shape by themselves). type
 * follows the status (invalid_request_error, permission_error, rate_limit_error,
 * server_error); code NULL = the status's default (401 invalid_api_key, 429
 * rate_limit_exceeded, 500 internal_error, 503 service_unavailable, else null); param
 * may be NULL. */
int fl_openai_error(fl_req *r, int status, const char *code, const char *param, const char *fmt,
                    ...) __attribute__((format(printf, 5, 6)));

#endif
