/* core/http.h -- the outbound HTTP client (libcurl multi) shared by HTTP activities and
 * the LLM providers: many requests in flight on one thread, connections and DNS answers
 * reused across requests, HTTP/2 (multiplexed) where a TLS server offers it, a per-request
 * timeout and response size cap, and an optional streaming mode for SSE/NDJSON bodies.
 * Redirects are not followed and only http/https are allowed: a workflow's URL must not
 * turn into a file:// read or a hop to an internal address.
 *
 * Precondition (R8.1): main() has called curl_global_init(CURL_GLOBAL_DEFAULT) before
 * fl_http_new and calls curl_global_cleanup() after the last fl_http_free. libcurl
 * offers no way to check this, so it is a documented contract, not an assertion.
 *
 * Thread-safety: fl_http_submit and fl_http_call_sync may be called from any thread.
 * The client owns one thread (http_main); every done/on_data callback runs on it, so
 * callbacks must be short and must never block: hand the response to your own thread.
 * A callback may call fl_http_submit, but never fl_http_call_sync (it would wait for
 * itself) nor fl_http_stop.
 *
 * Messages never contain request bodies, header values, URL user info or query strings
 * (they may carry API keys): URLs appear as scheme://host:port/path. */
#ifndef FL_CORE_HTTP_H
#define FL_CORE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct fl_http fl_http; /* opaque */

typedef struct fl_http_opts {
    long max_host_connections;  /* per host; requests beyond it queue for a free one */
    long max_total_connections; /* 0 = no limit */
    long connect_timeout_ms;
    long default_timeout_ms;           /* when a request says 0; always > 0 */
    size_t default_max_response_bytes; /* when a request says 0 */
    long stop_grace_ms;      /* fl_http_stop lets in-flight requests run this long, then aborts */
    bool h2_prior_knowledge; /* h2c to http:// URLs without upgrade (e.g. a local vLLM) */
    const char *user_agent;  /* copied at start */
} fl_http_opts;

#define FL_HTTP_OPTS_INIT                   \
    {.max_host_connections = 8,             \
     .max_total_connections = 0,            \
     .connect_timeout_ms = 5000,            \
     .default_timeout_ms = 30000,           \
     .default_max_response_bytes = 4 << 20, \
     .stop_grace_ms = 1000,                 \
     .h2_prior_knowledge = false,           \
     .user_agent = "flowd"}

typedef struct fl_http_header {
    const char *name;
    const char *value;
} fl_http_header;

/* Streaming: called on the client thread with each decoded body chunk as it arrives,
 * instead of collecting the body. A return other than FL_OK aborts the transfer, which
 * then completes with that code. The response size cap still applies. */
typedef fl_rc (*fl_http_data_fn)(void *arg, const char *data, size_t len);

typedef struct fl_http_request {
    const char *method; /* NULL = "GET" */
    const char *url;
    const fl_http_header *headers;
    size_t n_headers;
    const void *body; /* copied at submit */
    size_t body_len;
    long timeout_ms;             /* whole transfer; 0 = opts.default_timeout_ms */
    size_t max_response_bytes;   /* decoded body; 0 = opts.default_max_response_bytes */
    const char *idempotency_key; /* sent as Idempotency-Key when non-NULL */
    fl_http_data_fn on_data;     /* optional streaming mode (then body stays empty) */
} fl_http_request;

typedef struct fl_http_response {
    fl_err err;         /* err.code FL_OK when a response arrived, whatever its status */
    long status;        /* HTTP status, 0 when none arrived */
    int http_version;   /* 1 or 2; 0 when none */
    char *content_type; /* NULL when absent */
    char *retry_after;  /* raw Retry-After value (see fl_backoff_parse_retry_after) */
    char *body;         /* NUL-terminated; empty in streaming mode */
    size_t body_len;
    int64_t total_ms; /* from submit to completion, queueing included */
} fl_http_response;

/* Called exactly once per request that fl_http_submit accepted, on the client thread.
 * Ownership: resp is borrowed for the call; take a field by moving it out and setting it
 * to NULL (`mine = resp->body; resp->body = NULL;`). */
typedef void (*fl_http_done_fn)(void *arg, fl_http_response *resp);

/* Creates the client (its multi handle); no thread yet. Requests submitted before
 * fl_http_start wait in the queue.
 * Ownership: *out is owned by the caller (fl_http_free); opts is copied. */
void fl_http_new(fl_http **out, const fl_http_opts *opts);
void fl_http_free(fl_http *client); /* NULL-safe; stops the client first */

/* Starts the client thread. Errors: FL_EINTERNAL when the thread cannot start. */
fl_rc fl_http_start(fl_http *client, fl_err *err);

/* Refuses new requests, lets in-flight ones finish for up to opts.stop_grace_ms, then
 * completes the rest with FL_EUNAVAIL "... the HTTP client is stopping" and joins the
 * thread. Every accepted request has had its done callback when this returns.
 * Idempotent; a stopped client does not start again. */
void fl_http_stop(fl_http *client);

/* Queues one request. Ownership: borrows req (everything is copied) and arg until done.
 * Errors: FL_EINVAL (bad method, URL or header), FL_EUNAVAIL (stopping). On error, done
 * is never called. */
fl_rc fl_http_submit(fl_http *client, const fl_http_request *req, fl_http_done_fn done, void *arg,
                     fl_err *err);

/* Submits and waits for the completion (tests, CLI tools; never on the client thread).
 * Returns resp->err.code; *resp is filled in either case.
 * Ownership: *resp is owned by the caller (fl_http_response_deinit). */
fl_rc fl_http_call_sync(fl_http *client, const fl_http_request *req, fl_http_response *resp,
                        fl_err *err);

/* Frees the fields of a response filled by fl_http_call_sync. NULL-safe. */
void fl_http_response_deinit(fl_http_response *resp);

#endif
