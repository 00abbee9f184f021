/* api/ce_http.h -- the CloudEvents HTTP protocol binding 1.0: an HTTP request (as plain
 * data: content type, header list, body bytes) decoded into validated CloudEvents.
 *
 * Modes (binding section 3), chosen from the Content-Type media type, compared
 * case-insensitively without parameters:
 * - application/cloudevents-batch+json: batch mode, the body is a JSON array of envelopes;
 * - application/cloudevents+json: structured mode, the body is one JSON envelope;
 * - any other application/cloudevents... type (another event format): unsupported (415);
 * - anything else with at least one `ce-` header: binary mode, the attributes are the
 *   `ce-<name>` headers (names case-insensitive, values percent-decoded as section 3.1.3.2
 *   says), the body is the data and Content-Type its datacontenttype;
 * - anything else: not a CloudEvent (415).
 *
 * Decision: one set of rules. Every event goes through engine/cloudevent.h's decoder,
 * the same code the engine uses on a Kafka record: binary headers become `ce_<name>`
 * record headers, an envelope becomes a structured-mode record. So what the API accepts
 * is exactly what the engine would accept (attribute caps, specversion "1.0", RFC 3339
 * time, extension names, data rules), with three differences made here:
 * - the body is first parsed with api/body.h (duplicate keys, api.max_json_depth), so JSON
 *   errors carry pointers into the body;
 * - a missing id, source, type or specversion is reported for each attribute at once;
 * - the tenant is never taken from the client: a `ce-tenant` header or `tenant` member is
 *   dropped and the caller's tenant set instead.
 * A subject is not required here (the caller knows the topic and decides).
 *
 * Errors: a problem `errors` array [{pointer, detail}]. Pointers name the attribute in the
 * event as a JSON envelope would hold it: "/source" (binary and structured mode),
 * "/0/source" (batch item 0); JSON syntax errors point into the body ("" = the whole).
 *
 * Thread-safety: reentrant; no shared state. */
#ifndef FL_API_CE_HTTP_H
#define FL_API_CE_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "engine/cloudevent.h"

#define FL_CE_HTTP_MAX_BATCH  1000 /* events in one batch-mode request */
#define FL_CE_HTTP_MAX_ERRORS 100  /* entries in the errors array (the rest is counted) */

/* One request header; both strings NUL-terminated and borrowed. */
typedef struct fl_ce_http_header {
    const char *name;
    const char *value;
} fl_ce_http_header;

/* The parts of an HTTP request the binding reads. Every pointer is borrowed. */
typedef struct fl_ce_http_request {
    const char *content_type; /* the Content-Type header, or NULL */
    const fl_ce_http_header *headers;
    size_t nheaders;
    const char *body; /* may be NULL when body_len is 0 */
    size_t body_len;
} fl_ce_http_request;

typedef enum fl_ce_http_mode {
    FL_CE_HTTP_UNSUPPORTED = 0, /* not a CloudEvent, or an event format other than JSON */
    FL_CE_HTTP_BINARY,
    FL_CE_HTTP_STRUCTURED,
    FL_CE_HTTP_BATCH
} fl_ce_http_mode;

typedef struct fl_ce_http_opts {
    const char *tenant; /* required: the caller's tenant, set on every event */
    int max_depth;      /* JSON nesting allowed in the body (api.max_json_depth) */
} fl_ce_http_opts;

/* The decoded events, in request order. Owns every event. */
typedef struct fl_ce_http_events {
    fl_ce_http_mode mode;
    fl_cloudevent **events;
    size_t n;
    /* Binary mode with JSON data: the body, which is the JSON text events[0]->data was
     * parsed from (borrowed from the request), so it can be produced as it is rather
     * than serialized again. NULL otherwise. */
    const char *data_text;
    size_t data_text_len;
} fl_ce_http_events;

/* The mode of a request, from its content type and headers (see above). */
fl_ce_http_mode fl_ce_http_mode_of(const fl_ce_http_request *req);

/* The media type without parameters or blanks equals `type` (case-insensitive). */
bool fl_ce_http_media_is(const char *content_type, const char *type);

/* Decodes every event of the request. On FL_OK *out holds at least one event (a batch
 * may be empty: n == 0) and *errors is NULL. On failure *out is empty, err->msg is the
 * problem's detail and *errors (a new array) says what is wrong where.
 * Ownership: *out must be released with fl_ce_http_events_free (also after a failure).
 * Errors: FL_EINVAL (400), FL_ETOOBIG (over FL_CE_HTTP_MAX_BATCH events; 413). A request
 * whose mode is FL_CE_HTTP_UNSUPPORTED is FL_EINVAL too: check the mode first for a 415. */
fl_rc fl_ce_http_decode(const fl_ce_http_request *req, const fl_ce_http_opts *opts,
                        fl_ce_http_events *out, json_t **errors, fl_err *err);

void fl_ce_http_events_free(fl_ce_http_events *ev); /* NULL-safe; leaves *ev empty */

#endif
