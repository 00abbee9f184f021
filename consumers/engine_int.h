/* consumers/engine_int.h -- what the files of the engine loop share: consumers/engine.c
 * (lifecycle, the thread, polling, offsets), consumers/engine_batch.c (one batch:
 * decode, inbox, load, commit, retries), consumers/engine_apply.c (one event: steps,
 * starts, commands, children) and consumers/engine_group.c (the pure grouping of a
 * batch). Private to the module (R1.1): functions are fl_engine__x (R2.1).
 *
 * A batch keeps its consumed messages and decoded events across retries; the in-batch
 * instance state (`live`) is rebuilt from the store on every attempt, so a failed attempt
 * leaves nothing behind.
 *
 * Thread-safety: everything here belongs to the loop thread, except `assigned` and
 * `stopping` (atomics). */
#ifndef FL_CONSUMERS_ENGINE_INT_H
#define FL_CONSUMERS_ENGINE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "consumers/engine.h"
#include "core/ids.h"
#include "core/kafka.h"
#include "engine/cloudevent.h"
#include "engine/machine.h"
#include "engine/registry.h"

/* One consumed record of the batch. */
typedef struct fl_engine_item {
    fl_kafka_msg *msg;  /* owned */
    fl_cloudevent *ce;  /* owned; NULL when the record is a dead letter */
    const char *reason; /* dead-letter reason (static), or NULL */
    char *detail;       /* owned; dead-letter detail */
    bool skip;          /* already in the inbox, or a duplicate within the batch */
    int attempts;       /* steps of this event that failed, across attempts */
    size_t group;       /* index into the batch's keys */
} fl_engine_item;

/* One instance the batch has loaded or started. */
typedef struct fl_engine_live {
    fl_instance *inst; /* owned: the state after the batch's steps so far */
    const fl_workflow *wf;
    int64_t row_version; /* of the row as the batch's writes leave it */
    bool is_new;         /* not in the store yet: its first write is the INSERT */
    size_t group;
} fl_engine_live;

typedef struct fl_engine_batch {
    fl_engine_item *items;
    size_t n;
    fl_store_key *keys; /* distinct (tenant, subject) of the applied events */
    size_t nkeys;
    fl_engine_live *live;
    size_t nlive, cap;
    fl_store_batch *sb;
    int64_t now_ms;
    /* counts of the attempt, for the batch's log line */
    long long dead, skipped, steps, started;
} fl_engine_batch;

struct fl_engine {
    const fl_config *cfg;
    fl_pg_pool *pool;
    fl_store *store;
    fl_registry *reg;
    fl_machine *machine;
    fl_ids *ids;
    fl_kafka_consumer *consumer;
    fl_engine_batch batch;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu; /* with cv: wakes backoff sleeps on stop */
    pthread_cond_t cv;  /* CLOCK_MONOTONIC */
    atomic_bool stopping;
    atomic_int assigned;
};

/* engine_batch.c: applies and commits the polled batch; returns when it is committed
 * (FL_OK) or the engine is stopping (FL_EUNAVAIL: offsets must not be stored). */
fl_rc fl_engine__process(fl_engine *e);

/* Sleeps up to ms, waking early when the engine stops. Returns false when stopping. */
bool fl_engine__sleep(fl_engine *e, int64_t ms);

/* engine_apply.c: applies one decoded event to the batch's instances.
 * Errors: FL_EINVAL (a step failed: err says why), the store's (re-reads). */
fl_rc fl_engine__apply(fl_engine *e, fl_engine_batch *b, fl_engine_item *it, fl_err *err);

/* engine_group.c (pure). How long the next poll of a batch that holds n records may
 * wait, in ms: idle_ms for an empty batch, 0 (only what is already buffered) for a
 * started one until its fill deadline, -1 when the batch is to close (full, or the
 * deadline is reached). */
int fl_engine__fill_wait(size_t n, size_t batch_size, int64_t now_ms, int64_t deadline_ms,
                         int idle_ms);

/* engine_group.c (pure). Gives each of the n (tenant, key) pairs its group: keys_out gets
 * the distinct pairs in first-seen order (pointers borrowed from in), group_out[i] the
 * index of in[i]. Pairs with a NULL key get group SIZE_MAX. Returns the count. */
size_t fl_engine__group(const fl_store_key *in, size_t n, size_t *group_out,
                        fl_store_key *keys_out);

/* engine_group.c (pure). dup_out[i] = true when an earlier refs[j] is the same
 * (tenant, source, id): one transaction must not insert one inbox row twice. Entries
 * with a NULL id are never duplicates. */
void fl_engine__dedupe(const fl_store_event_ref *refs, size_t n, bool *dup_out);

#endif
