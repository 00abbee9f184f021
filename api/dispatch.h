/* api/dispatch.h -- the one civetweb request handler: everything every route shares.
 *
 * Order: request id and traceparent -> route (404/405) -> API key (401) -> scope (403) ->
 * rate limit (429) -> Idempotency-Key (replay/409/422) -> the handler -> idempotency
 * record -> one log line. A handler that returns without answering is answered 500.
 *
 * Thread-safety: runs on civetweb's workers; cbdata is the server's fl_api. */
#ifndef FL_API_DISPATCH_H
#define FL_API_DISPATCH_H

#include <civetweb.h>

#include "api/api.h"

int fl_dispatch(struct mg_connection *conn, void *cbdata);

/* civetweb's http_error callback: the errors it raises before dispatch (malformed request,
 * headers too large) as problem+json. Returns 0 (handled). */
int fl_dispatch_error(struct mg_connection *conn, int status, const char *errmsg, fl_api *api);

#endif
