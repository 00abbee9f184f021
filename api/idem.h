/* api/idem.h -- Idempotency-Key on state-changing POSTs (issue 5 "Rules").
 *
 * Records live in table idempotency_keys (schemas/sql/003_api.sql), scoped to the API key
 * and kept api.idempotency_ttl. api/server.c drives it for routes flagged
 * FL_ROUTE_IDEMPOTENT when the header is present:
 *   begin:  INSERT a 'running' row with the SHA-256 of method + path + body
 *           -> new: run the handler; same key + same hash + finished: replay the stored
 *           response with `Idempotent-Replayed: true`; same key + other hash: 422;
 *           same key still running: 409. An expired row is taken over.
 *   finish: store status, headers worth replaying (Location, Content-Type) and body;
 *           a 5xx or a response never sent deletes the row instead, so a retry runs again.
 *
 * Thread-safety: every function may be called from any thread; an fl_idem belongs to one
 * request. */
#ifndef FL_API_IDEM_H
#define FL_API_IDEM_H

#include "api/request.h"

typedef enum fl_idem_outcome {
    FL_IDEM_PROCEED,  /* run the handler; r->idem records its response */
    FL_IDEM_ANSWERED, /* begin answered already (replay, 409, 422, 503) */
} fl_idem_outcome;

/* Validates the header (1..255 printable ASCII, else 400) and begins. */
fl_idem_outcome fl_idem_begin(fl_req *r, const char *idempotency_key);

/* Called by fl_req_send for the response being recorded. */
void fl_idem_record(fl_req *r, int status, const char *content_type, const char *body, size_t len);

/* Ends the request: stores the recorded response, or deletes the row when there is none
 * or it was a 5xx. Frees r->idem. */
void fl_idem_finish(fl_req *r);

#endif
