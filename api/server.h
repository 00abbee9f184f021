/* api/server.h -- the HTTP server (civetweb): lifecycle and the route table.
 *
 * civetweb serves no files (no document_root), no CGI and no websockets: Debian's 1.15
 * is in the range of CVE-2025-55763. One catch-all civetweb handler dispatches through
 * api/router.h, so every route gets the same request id, auth, scope, rate-limit and
 * Idempotency-Key treatment (api/dispatch.c). tcp_nodelay and keep-alive are on
 * (ARCHITECTURE section 11: 182 req/s without tcp_nodelay, 32K+ with it); the worker
 * count is http.threads plus api.max_streams, so open streams never starve the API.
 *
 * Thread-safety: start/stop from the main thread; handlers run on civetweb's workers. */
#ifndef FL_API_SERVER_H
#define FL_API_SERVER_H

#include "api/router.h"
#include "core/config.h"
#include "core/err.h"
#include "core/health.h"
#include "core/kafka.h"
#include "core/pg.h"
#include "engine/llm/chain.h"

typedef struct fl_server fl_server;

/* What `flowd serve` lends the server; every pointer must outlive it. */
typedef struct fl_server_deps {
    const fl_config *cfg;
    fl_pg_pool *pool;
    fl_kafka_producer *producer;
    fl_health *health;
    fl_llm_chain *llm; /* the process's LLM chain (the gateway's), shared with activities */
} fl_server_deps;

/* Binds http.listen:http.port and starts the workers and the LISTEN hub.
 * Ownership: *out is owned by the caller (fl_server_stop).
 * Errors: FL_EUNAVAIL (cannot bind, e.g. the port is in use), FL_EINVAL. */
fl_rc fl_server_start(fl_server **out, const fl_server_deps *deps, fl_err *err);

/* Stops accepting, waits for the workers (mg_stop) and frees. NULL-safe. */
void fl_server_stop(fl_server *srv);

/* Adds every route group to rt (what the server serves; `flowd routes` lists it). */
void fl_server_add_routes(fl_router *rt);

#endif
