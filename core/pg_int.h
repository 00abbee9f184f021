/* core/pg_int.h -- what the two halves of the pg module share: core/pg.c (the pool) and
 * core/pg_exec.c (statements on a pooled connection). It holds the struct of a pooled
 * connection, the deadline and socket-wait helpers, and the reduction of a libpq message
 * to its reason. Private to the module: only core/pg*.c include it; everything else goes
 * through core/pg.h (R1.1). The functions are module-private, hence fl_pg__ (R2.1).
 *
 * Thread-safety: an fl_pg_conn is touched only by the thread that holds it (its idle-list
 * link only under the pool's mutex); the helpers keep no state and are thread-safe. */
#ifndef FL_CORE_PG_INT_H
#define FL_CORE_PG_INT_H

#include "core/pg.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#define FL_PG_TARGET_MAX 160 /* "host:port" of a connection */
#define FL_PG_REASON_MAX 200 /* one reduced libpq message */

struct fl_pg_conn {
    PGconn *pg;                    /* NULL until connected */
    bool broken;                   /* abandoned mid-query: close on release */
    char target[FL_PG_TARGET_MAX]; /* "host:port" for messages */
    fl_pg_conn *next;              /* idle list link; guarded by pool->mu */
};

/* A deadline of 0 means "none"; otherwise an absolute CLOCK_MONOTONIC time in ms.
 * Returns the deadline timeout_ms from now, or 0 when timeout_ms <= 0. */
long long fl_pg__deadline_in(int timeout_ms);

/* Waits until the socket of pg is ready for `events` (POLLIN, POLLOUT) or the deadline
 * (0 = none) passes. Returns 1 when ready, 0 at the deadline, -1 when the socket is gone. */
int fl_pg__wait_socket(PGconn *pg, short events, long long deadline);

/* Reduces a libpq message to its reason: the first line, without the "connection to
 * server at ... failed: " preamble and the severity prefix, starting in lower case
 * (STYLE.md R4.4). Writes at most size bytes (FL_PG_REASON_MAX is enough) to out. */
void fl_pg__reason_format(const char *msg, char *out, size_t size);

#endif
