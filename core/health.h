/* core/health.h -- readiness: named checks re-run by one prober thread.
 *
 * /readyz must answer at once even while a dependency hangs, so checks do not run on
 * the request path: a prober thread runs every check each `interval_ms` and keeps the
 * last outcome; readers copy the snapshot. A check that has not run yet is not ready.
 *
 * Thread-safety: fl_health_add before fl_health_start only; fl_health_snapshot and
 * fl_health_ready from any thread (internal mutex). */
#ifndef FL_CORE_HEALTH_H
#define FL_CORE_HEALTH_H

#include <jansson.h>
#include <stdbool.h>

#include "core/err.h"

/* A check returns FL_OK when its dependency is usable, else fills err. It must bound its
 * own blocking time (the prober runs checks one after the other). */
typedef fl_rc (*fl_health_fn)(void *arg, fl_err *err);

typedef struct fl_health fl_health;

/* Ownership: *out is owned by the caller (fl_health_free). */
void fl_health_new(fl_health **out, int interval_ms);
void fl_health_free(fl_health *h); /* NULL-safe; stops the prober first */

/* Registers a check; `name` must be a static string ("postgres"). */
void fl_health_add(fl_health *h, const char *name, fl_health_fn fn, void *arg);

/* Runs every check once on the calling thread, then starts the prober thread.
 * Errors: FL_EINTERNAL when the thread cannot start. */
fl_rc fl_health_start(fl_health *h, fl_err *err);
void fl_health_stop(fl_health *h); /* idempotent; joins within about one check's bound */

bool fl_health_ready(fl_health *h);

/* {"status":"ready"|"unavailable","checks":{"postgres":{"status":"up"},
 *  "kafka":{"status":"down","error":"..."}}}. Ownership: new reference, caller decrefs. */
json_t *fl_health_snapshot(fl_health *h);

#endif
