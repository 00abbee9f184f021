/* engine/timers.h -- durable timers and schedules: a poller that turns due rows into
 * events through the outbox.
 *
 * Each pass claims due timers (`FOR UPDATE SKIP LOCKED`, so several processes share the
 * work) and, in one transaction, marks them fired and writes an outbox row
 * `flowd.timer.fired` (id `timer:<timer id>`, data {timer}) on the internal topic, keyed
 * by the instance key. Due schedules likewise give `flowd.schedule.tick` (id
 * `schedule:<tenant>/<workflow>/<due ms>`, subject = the workflow name) and move next_at
 * on. Timers fire late rather than never: a pass after downtime fires everything due.
 *
 * Thread-safety: _new/_start/_stop/_free from the main thread; the poller owns its
 * thread (a CLOCK_MONOTONIC condvar wait, R9.7). */
#ifndef FL_ENGINE_TIMERS_H
#define FL_ENGINE_TIMERS_H

#include <stdint.h>

#include "core/config.h"
#include "core/err.h"
#include "core/pg.h"

typedef struct fl_timers fl_timers;

/* Ownership: cfg and pool are borrowed; *out is owned by the caller (fl_timers_free). */
fl_rc fl_timers_new(fl_timers **out, const fl_config *cfg, fl_pg_pool *pool, fl_err *err);
fl_rc fl_timers_start(void *timers, fl_err *err); /* fl_app_start_fn */
void fl_timers_stop(void *timers);                /* fl_app_stop_fn; idempotent, joins */
void fl_timers_free(fl_timers *timers);           /* NULL-safe; stops first */

/* The first time strictly after `after_ms` (Unix ms, UTC) that the five-field cron
 * expression matches, or -1 if none within five years. Pure; used for schedules. */
int64_t fl_cron_next(const char *cron, int64_t after_ms);

#endif
