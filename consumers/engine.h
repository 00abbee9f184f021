/* consumers/engine.h -- the engine loop: consumes the engine's input topics and applies
 * each event to its workflow instances exactly once (ARCHITECTURE.md section 2).
 *
 * Per batch (what the consumer has buffered, up to engine.batch_size events, filled for
 * at most engine.batch_wait): decode CloudEvents
 * (undecodable, invalid, subject-less or over-size events are dead letters), drop those
 * the inbox has seen, load the running instances of each (tenant, key), start instances
 * of workflows whose triggers list the type (no running instance of that workflow has the
 * key), run the pure step, and write everything in ONE transaction (engine/store.h);
 * commit, and only then store the Kafka offsets. A step that keeps failing is retried
 * engine.max_step_attempts times, then dead-lettered; the partition keeps moving.
 * Postgres down: consumption pauses and retries with backoff; nothing is acknowledged.
 *
 * Thread-safety: _new/_start/_stop/_free from the main thread; the loop owns its thread;
 * fl_engine_assigned may be called from any thread (readiness). */
#ifndef FL_CONSUMERS_ENGINE_H
#define FL_CONSUMERS_ENGINE_H

#include "core/config.h"
#include "core/err.h"
#include "core/pg.h"
#include "engine/store.h"

typedef struct fl_engine fl_engine;

/* Loads the shipped definitions of cfg->engine.workflows_dir (saved as shipped, tenant
 * "system"), checks that the input topics have equal partition counts (at start).
 * Ownership: cfg, pool and store are borrowed; *out is owned by the caller
 * (fl_engine_free). Errors: FL_EINVAL (a shipped definition is invalid: every problem is
 * logged), FL_EUNAVAIL. */
fl_rc fl_engine_new(fl_engine **out, const fl_config *cfg, fl_pg_pool *pool, fl_store *store,
                    fl_err *err);
fl_rc fl_engine_start(void *engine, fl_err *err); /* fl_app_start_fn */
void fl_engine_stop(void *engine);                /* fl_app_stop_fn; idempotent, joins */
void fl_engine_free(fl_engine *engine);           /* NULL-safe; stops first */

/* Partitions currently assigned (readiness: the engine role is ready when > 0). */
int fl_engine_assigned(const fl_engine *engine);

#endif
