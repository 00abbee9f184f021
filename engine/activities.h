/* engine/activities.h -- the activity worker: runs `call:` actions at least once and
 * returns their outcome as events through the outbox.
 *
 * A claim thread takes due pending activities (`FOR UPDATE SKIP LOCKED`), marks them
 * running (up to `activities.concurrency` in flight plus a quarter of that claimed
 * ahead), and the worker thread starts each call: `http` on the shared curl-multi client
 * (core/http.h), `llm` through the provider chain (engine/llm/chain.h), and `flowd.purge`
 * (retention deletes in PostgreSQL). Every attempt carries the activity's idempotency key
 * (`Idempotency-Key` header for HTTP and LLM calls). A retryable failure is rescheduled
 * with the action's retry policy (core/backoff.h, honouring Retry-After); the final
 * result or failure is stored on the row (by a store thread, many outcomes per statement)
 * and, in the same transaction, an outbox row `flowd.activity.completed` or
 * `flowd.activity.failed` (id `activity:<activity id>`) goes to the internal topic keyed
 * by the instance key. A crash mid-call re-runs the attempt (at least once); a finished
 * call is never re-run. Rows claimed ahead and not started when the worker stops go back
 * to pending.
 *
 * Thread-safety: _new/_start/_stop/_free from the main thread; the worker owns its four
 * threads (fl-activities, fl-act-claim, fl-act-store, and its HTTP client's fl-http). */
#ifndef FL_ENGINE_ACTIVITIES_H
#define FL_ENGINE_ACTIVITIES_H

#include "core/config.h"
#include "core/err.h"
#include "core/pg.h"
#include "engine/llm/chain.h"

typedef struct fl_activities fl_activities;

/* llm: the process's LLM chain (engine/llm/chain.h), shared with the API's gateway.
 * Ownership: cfg, pool and llm are borrowed; *out is owned by the caller
 * (fl_activities_free). Errors: FL_EINTERNAL. */
fl_rc fl_activities_new(fl_activities **out, const fl_config *cfg, fl_pg_pool *pool,
                        fl_llm_chain *llm, fl_err *err);
fl_rc fl_activities_start(void *activities, fl_err *err); /* fl_app_start_fn */
void fl_activities_stop(void *activities);                /* fl_app_stop_fn; idempotent */
void fl_activities_free(fl_activities *activities);       /* NULL-safe; stops first */

#endif
