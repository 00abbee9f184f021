/* consumers/engine.c -- the engine loop's lifecycle, its thread, polling and offsets
 * (consumers/engine.h). One batch is in consumers/engine_batch.c, one event in
 * consumers/engine_apply.c.
 *
 * Design: the loop thread owns the consumer, the machine (its Lua VM) and the registry.
 * Start checks what makes the process unfit to run at all (invalid shipped definitions,
 * unequal partition counts of the input topics) and fails; Postgres or Kafka being down
 * is not such a thing: the thread saves the shipped definitions with backoff before it
 * consumes, and the consumer reconnects by itself. Offsets of a batch are stored only
 * after its transaction committed, for every record of it (dead letters and duplicates
 * included); a batch that cannot commit is retried, never dropped.
 *
 * Thread-safety: see the header. `stopping` and `assigned` are the only shared fields;
 * the stop wait is a CLOCK_MONOTONIC condvar so backoff sleeps end at once (R9.7). */
#include <string.h>

#include "consumers/engine_int.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"

#define POLL_IDLE_MS 100

bool fl_engine__sleep(fl_engine *e, int64_t ms)
{
    struct timespec until = fl_clock_mono_deadline(ms);

    pthread_mutex_lock(&e->mu);
    if (!atomic_load(&e->stopping)) {
        pthread_cond_timedwait(&e->cv, &e->mu, &until);
    }
    pthread_mutex_unlock(&e->mu);
    return !atomic_load(&e->stopping);
}

static fl_ce_record record_of(const fl_kafka_msg *m, fl_ce_header *h, size_t max)
{
    fl_ce_record r = {.topic = fl_kafka_msg_topic(m),
                      .partition = fl_kafka_msg_partition(m),
                      .offset = fl_kafka_msg_offset(m),
                      .headers = h};

    r.key = fl_kafka_msg_key(m, &r.key_len);
    r.value = fl_kafka_msg_value(m, &r.value_len);
    while (r.nheaders < max &&
           fl_kafka_msg_header_at(m, r.nheaders, &h[r.nheaders].name,
                                  (const char **)&h[r.nheaders].value, &h[r.nheaders].len)) {
        r.nheaders++;
    }
    return r;
}

/* Decodes one record into it->ce, or gives it a dead-letter reason. Only the internal
 * topic (written by flowd's outbox) may carry the system tenant. */
static void decode(const fl_engine *e, fl_engine_item *it)
{
    fl_ce_header h[64];
    fl_ce_record rec = record_of(it->msg, h, 64);
    fl_ce_opts opts = {.default_tenant = e->cfg->engine.default_tenant,
                       .max_value_bytes = (size_t)e->cfg->engine.max_event_bytes};
    fl_ce_reason why = FL_CE_OK;
    fl_err err = FL_ERR_INIT;

    if (fl_cloudevent_decode(&it->ce, &rec, &opts, &why, &err) != FL_OK) {
        it->reason = fl_ce_reason_name(why);
        it->detail = fl_xstrdup(err.msg);
    } else if (strcmp(it->ce->tenant, FL_REGISTRY_SYSTEM_TENANT) == 0 &&
               strcmp(rec.topic, e->cfg->kafka.topics.internal) != 0) {
        it->reason = fl_ce_reason_name(FL_CE_BAD_TENANT);
        it->detail = fl_xstrdup("tenant \"system\" is reserved for flowd's own events");
    }
    if (it->ce) {
        fl_metrics_event_received("kafka", it->ce->type);
    }
}

static void batch_reset(fl_engine_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        fl_kafka_msg_free(b->items[i].msg);
        fl_cloudevent_free(b->items[i].ce);
        free(b->items[i].detail);
    }
    b->n = 0;
}

/* Fills the batch: up to batch_size records. The first is waited for (POLL_IDLE_MS at a
 * time, so the loop sees a stop); after it, the batch takes only what the consumer has
 * already buffered and closes as soon as nothing more is there, or batch_wait after its
 * first record. So a lone event is committed at once, and under load a batch holds
 * whatever arrived while the previous one was committed: its size follows the rate
 * instead of every batch waiting out a fixed window (docs/benchmarks.md, S3).
 * Errors: FL_EUNAVAIL (the consumer failed for good). */
static fl_rc poll_batch(fl_engine *e, fl_err *err)
{
    fl_engine_batch *b = &e->batch;
    const fl_clock *clk = fl_clock_system();
    int64_t deadline = 0;
    fl_rc rc = FL_OK;

    while (rc == FL_OK && !atomic_load(&e->stopping)) {
        int wait = fl_engine__fill_wait(b->n, (size_t)e->cfg->engine.batch_size,
                                        fl_clock_mono_ms(clk), deadline, POLL_IDLE_MS);
        fl_kafka_msg *m = NULL;
        if (wait < 0) {
            break;
        }
        rc = fl_kafka_consumer_poll(e->consumer, wait, &m, err);
        atomic_store(&e->assigned, fl_kafka_consumer_assigned(e->consumer));
        if (!m) {
            break; /* idle: let the loop check for stop; or nothing more buffered */
        }
        if (b->n == 0) {
            deadline = fl_clock_mono_ms(clk) + e->cfg->engine.batch_wait_ms;
        }
        b->items[b->n] = (fl_engine_item){.msg = m};
        decode(e, &b->items[b->n++]);
    }
    return rc;
}

static void store_offsets(fl_engine *e)
{
    fl_err err = FL_ERR_INIT;

    for (size_t i = 0; i < e->batch.n; i++) {
        /* FL_ECONFLICT: revoked meanwhile; the new owner redelivers and the inbox dedupes */
        fl_kafka_consumer_store_offset(e->consumer, e->batch.items[i].msg, &err);
    }
}

/* Saves the shipped definitions (and schedules) before consuming, waiting for Postgres. */
static bool save_shipped(fl_engine *e)
{
    int64_t wait_ms = 200;
    fl_err err = FL_ERR_INIT;

    while (fl_registry_save_shipped(e->reg, e->store, fl_clock_now_ms(fl_clock_system()), &err) !=
           FL_OK) {
        fl_log(FL_WARN, "engine.definitions_unsaved", FL_STR("error", err.msg));
        if (!fl_engine__sleep(e, wait_ms)) {
            return false;
        }
        wait_ms = wait_ms < 5000 ? wait_ms * 2 : 5000;
        err = (fl_err)FL_ERR_INIT;
    }
    return true;
}

static void *loop(void *arg)
{
    fl_engine *e = arg;
    fl_err err = FL_ERR_INIT;

    if (!save_shipped(e)) {
        return NULL;
    }
    fl_log(FL_INFO, "engine.consuming", FL_STR("group", e->cfg->engine.group));
    while (!atomic_load(&e->stopping)) {
        if (poll_batch(e, &err) != FL_OK) {
            fl_log(FL_ERROR, "engine.consumer_failed", FL_STR("error", err.msg));
            atomic_store(&e->assigned, 0);
            break;
        }
        /* process retries until the batch commits; it fails only when the engine is
         * stopping, and then no offset is stored: the batch is redelivered later */
        if (e->batch.n && fl_engine__process(e) == FL_OK) {
            store_offsets(e);
        }
        batch_reset(&e->batch);
    }
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

fl_rc fl_engine_new(fl_engine **out, const fl_config *cfg, fl_pg_pool *pool, fl_store *store,
                    fl_err *err)
{
    fl_workflow_limits lim = FL_WORKFLOW_LIMITS_DEFAULT;
    fl_expr_limits xlim = FL_EXPR_LIMITS_DEFAULT;
    fl_engine *e = fl_xcalloc(1, sizeof(*e));
    fl_rc rc;

    *out = NULL;
    e->cfg = cfg;
    e->pool = pool;
    e->store = store;
    e->reg = fl_registry_new(&lim);
    e->ids = fl_ids_new(fl_clock_system());
    e->batch.sb = fl_store_batch_new();
    e->batch.items = fl_xcalloc((size_t)cfg->engine.batch_size, sizeof(*e->batch.items));
    pthread_mutex_init(&e->mu, NULL);
    fl_clock_cond_init(&e->cv);
    rc = fl_registry_load_dir(e->reg, cfg->engine.workflows_dir, err);
    if (rc == FL_OK) {
        rc = fl_machine_new(&e->machine, &xlim, err);
    }
    if (rc != FL_OK) {
        goto out;
    }
    *out = e;
    e = NULL;
out:
    fl_engine_free(e);
    return rc;
}

/* Equal partition counts on every input topic make one process own a key on all of them
 * (ARCHITECTURE.md section 2). Unequal counts are fatal; an unreachable cluster is not
 * (the topics are checked by `flowd topics ensure` and by the row-version guard). */
static fl_rc check_partitions(const fl_engine *e, const char *const *topics, size_t n, fl_err *err)
{
    fl_kafka_producer *p = NULL;
    int first = -1, count = 0;
    fl_err why = FL_ERR_INIT;
    fl_rc rc = fl_kafka_producer_open(&p, &e->cfg->kafka, err);

    for (size_t i = 0; rc == FL_OK && i < n; i++) {
        if (fl_kafka_partition_count(p, topics[i], e->cfg->kafka.metadata_timeout_ms, &count,
                                     &why) != FL_OK) {
            fl_log(FL_WARN, "engine.partitions_unchecked", FL_STR("topic", topics[i]),
                   FL_STR("error", why.msg));
            break;
        }
        if (first >= 0 && count != first) {
            rc = fl_err_set(err, FL_EINVAL,
                            "cannot run the engine: topic \"%s\" has %d partitions, \"%s\" has %d",
                            topics[i], count, topics[0], first);
        }
        first = first < 0 ? count : first;
    }
    fl_kafka_producer_close(p, 0);
    return rc;
}

fl_rc fl_engine_start(void *engine, fl_err *err)
{
    fl_engine *e = engine;
    const fl_config_topics *t = &e->cfg->kafka.topics;
    const char *topics[] = {t->conversation_events, t->flowd_events, t->appointment_events,
                            t->order_events, t->internal};
    size_t n = sizeof(topics) / sizeof(topics[0]);
    fl_rc rc = check_partitions(e, topics, n, err);

    if (rc == FL_OK) {
        rc = fl_kafka_consumer_open(&e->consumer, &e->cfg->kafka, &e->cfg->engine, topics, n, err);
    }
    if (rc != FL_OK) {
        goto out;
    }
    atomic_store(&e->stopping, false);
    if (pthread_create(&e->thread, NULL, loop, e) != 0) {
        rc = fl_err_set(err, FL_EINTERNAL, "could not start the engine thread");
        goto out;
    }
    e->started = true;
out:
    return rc;
}

void fl_engine_stop(void *engine)
{
    fl_engine *e = engine;

    if (!e) {
        return;
    }
    pthread_mutex_lock(&e->mu);
    atomic_store(&e->stopping, true);
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (e->started) {
        pthread_join(e->thread, NULL);
        e->started = false;
    }
    atomic_store(&e->assigned, 0);
    fl_kafka_consumer_close(e->consumer, e->cfg->shutdown_timeout_ms / 2);
    e->consumer = NULL;
}

void fl_engine_free(fl_engine *e)
{
    if (!e) {
        return;
    }
    fl_engine_stop(e);
    batch_reset(&e->batch);
    free(e->batch.items);
    free(e->batch.keys);
    free(e->batch.live);
    fl_store_batch_free(e->batch.sb);
    fl_machine_free(e->machine);
    fl_ids_free(e->ids);
    fl_registry_free(e->reg);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

int fl_engine_assigned(const fl_engine *engine)
{
    return atomic_load(&((fl_engine *)engine)->assigned);
}
