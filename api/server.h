/* api/server.h -- the HTTP server (civetweb): lifecycle and the route table.
 *
 * civetweb serves no files (no document_root), no CGI and no websockets: Debian's 1.15
 * is in the range of CVE-2025-55763. tcp_nodelay and keep-alive are on (ARCHITECTURE
 * section 11: 182 req/s without tcp_nodelay, 32K+ with it).
 *
 * Thread-safety: start/stop from the main thread; handlers run on civetweb's workers and
 * only read what the server was started with. */
#ifndef FL_API_SERVER_H
#define FL_API_SERVER_H

#include "core/config.h"
#include "core/err.h"
#include "core/health.h"

typedef struct fl_server fl_server;

/* Binds cfg->listen:cfg->port and starts the workers. The health object is borrowed and
 * must outlive the server.
 * Ownership: *out is owned by the caller (fl_server_stop).
 * Errors: FL_EUNAVAIL (cannot bind, e.g. the port is in use). */
fl_rc fl_server_start(fl_server **out, const fl_config_http *cfg, fl_health *health, fl_err *err);

/* Stops accepting, waits for the workers (mg_stop) and frees. NULL-safe. */
void fl_server_stop(fl_server *srv);

#endif
