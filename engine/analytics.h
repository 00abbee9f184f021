/* engine/analytics.h -- the business.analytics worker: every analytics.interval, one
 * aggregate CloudEvent per tenant that had activity in the period just ended.
 *
 * Periods are aligned to the Unix epoch in multiples of the interval and read from
 * Postgres's clock, so every process of a cluster agrees on them. A pass claims the
 * period that just ended by inserting its analytics_periods row and, in the same
 * statement (one transaction), writes the outbox rows `flowd.analytics.aggregate`
 * (id `analytics:<tenant>:<period start ms>`, subject and ce_tenant = the tenant, data =
 * the period's counters) for topics.business_analytics: a second process's claim
 * conflicts and writes nothing, so each period is emitted once (ARCHITECTURE.md section 2:
 * nothing that writes Postgres produces to Kafka directly; the relay publishes them).
 * A period during which no process ran is not emitted later: the counters stay
 * available from the analytics endpoints.
 *
 * Thread-safety: _new/_start/_stop/_free from the main thread; the worker owns its
 * thread (a CLOCK_MONOTONIC condvar wait, R9.7). */
#ifndef FL_ENGINE_ANALYTICS_H
#define FL_ENGINE_ANALYTICS_H

#include <stdint.h>

#include "core/config.h"
#include "core/err.h"
#include "core/pg.h"

#define FL_EVENT_ANALYTICS_AGGREGATE "flowd.analytics.aggregate"

typedef struct fl_analytics fl_analytics;

/* Ownership: cfg and pool are borrowed; *out is owned by the caller (fl_analytics_free).
 * With workers.analytics_interval_ms == 0 the worker exists but never starts a thread. */
fl_rc fl_analytics_new(fl_analytics **out, const fl_config *cfg, fl_pg_pool *pool, fl_err *err);
fl_rc fl_analytics_start(void *analytics, fl_err *err); /* fl_app_start_fn */
void fl_analytics_stop(void *analytics);                /* fl_app_stop_fn; idempotent, joins */
void fl_analytics_free(fl_analytics *analytics);        /* NULL-safe; stops first */

/* One pass: claims the period that ended last and writes its events. *emitted_out is the
 * number of tenants that got one (0 when another process had claimed the period). Used
 * by the thread and by tests. Errors: those of fl_pg_acquire / fl_pg_exec. */
fl_rc fl_analytics_pass(fl_analytics *a, int *emitted_out, fl_err *err);

/* Milliseconds from now_ms (Unix ms) until the next multiple of interval_ms plus a short
 * grace, so a pass runs just after its period ended. Pure. */
int64_t fl_analytics_next_delay(int64_t now_ms, int64_t interval_ms);

#endif
