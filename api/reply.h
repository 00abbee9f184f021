/* api/reply.h -- writing HTTP responses: JSON bodies and RFC 9457 problem+json.
 *
 * Every response carries Content-Length (keep-alive needs it) and Cache-Control:
 * no-store. Handlers return the status these functions return, as civetweb expects.
 *
 * Thread-safety: stateless; one connection is used by one worker thread. */
#ifndef FL_API_REPLY_H
#define FL_API_REPLY_H

#include <civetweb.h>
#include <jansson.h>

/* Sends `body` as application/json. Ownership: takes `body` (decref'd), even on failure.
 * Returns status. */
int fl_reply_json_take(struct mg_connection *conn, int status, json_t *body);

/* Sends an application/problem+json body {type, title, status, detail}; `extra`
 * headers (may be NULL) are complete "Name: value\r\n" lines. Returns status. */
int fl_reply_problem(struct mg_connection *conn, int status, const char *title, const char *detail,
                     const char *extra);

#endif
