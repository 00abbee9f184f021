/* consumers/engine_batch.c -- one batch of the engine loop: decode, inbox, load, apply,
 * commit, and the retries around them (consumers/engine.h).
 *
 * Design: an attempt rebuilds everything but the decoded events from the store, so any
 * failed attempt is simply thrown away and redone:
 * - a step that fails (FL_EINVAL) counts against its event and the batch is redone at
 *   once; an event at engine.max_step_attempts becomes a dead letter "step_failed";
 * - FL_ECONFLICT (row version, inbox race, a second running instance) is redone at once
 *   a few times, then with backoff;
 * - FL_EUNAVAIL / FL_ETIMEDOUT wait with backoff, forever: the batch is never dropped
 *   and its offsets are not stored until it commits;
 * - a batch that keeps failing with FL_EIO (a row the database refuses) is split into
 *   one transaction per event, and the event that still fails alone is dead-lettered
 *   ("store_failed"), so one poison event cannot stall its partitions.
 *
 * Thread-safety: the engine loop thread only. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/engine_int.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"

#define MAX_QUICK_CONFLICTS 5
#define MAX_IO_FAILURES     3
#define BACKOFF_FIRST_MS    100
#define BACKOFF_MAX_MS      5000

/* {name: value} of the record's headers; values that are not UTF-8 are left out. */
static json_t *headers_json(const fl_kafka_msg *m)
{
    json_t *h = json_object();
    const char *name, *value;
    size_t len;

    for (size_t i = 0; fl_kafka_msg_header_at(m, i, &name, &value, &len); i++) {
        json_t *v = value ? json_stringn(value, len) : json_null();
        if (v) {
            json_object_set_new(h, name, v);
        }
    }
    return h;
}

static void add_dead(fl_engine *e, fl_engine_batch *b, const fl_engine_item *it)
{
    size_t klen = 0, vlen = 0;
    const char *key = fl_kafka_msg_key(it->msg, &klen);
    char *k = key ? fl_xstrndup(key, klen) : NULL;
    json_t *h = headers_json(it->msg);
    fl_store_dead_letter dl = {
        .tenant = it->ce ? it->ce->tenant : e->cfg->engine.default_tenant,
        .topic = fl_kafka_msg_topic(it->msg),
        .partition = fl_kafka_msg_partition(it->msg),
        .offset = fl_kafka_msg_offset(it->msg),
        .key = k,
        .headers = h,
        .payload = fl_kafka_msg_value(it->msg, &vlen),
        .reason = it->reason,
        .detail = it->detail,
    };

    dl.payload_len = vlen;
    fl_store_batch_add_dead_letter(e->store, b->sb, &dl);
    fl_metrics_dead_letter(dl.topic, it->reason);
    fl_log(FL_WARN, "engine.dead_letter", FL_STR("reason", it->reason), FL_STR("topic", dl.topic),
           FL_INT("partition", dl.partition), FL_INT("offset", dl.offset),
           FL_STR("detail", it->detail ? it->detail : ""));
    json_decref(h);
    free(k);
}

static void live_clear(fl_engine_batch *b)
{
    for (size_t i = 0; i < b->nlive; i++) {
        fl_instance_free(b->live[i].inst);
    }
    b->nlive = 0;
}

/* Groups the applied events of [lo, hi) by (tenant, key). */
static void group_range(fl_engine_batch *b, size_t lo, size_t hi)
{
    size_t n = hi - lo;
    fl_store_key *in = fl_xcalloc(n + 1, sizeof(*in));
    size_t *group = fl_xcalloc(n + 1, sizeof(*group));

    for (size_t i = 0; i < n; i++) {
        const fl_engine_item *it = &b->items[lo + i];
        bool applied = it->ce && !it->reason && !it->skip;
        in[i] =
            applied ? (fl_store_key){it->ce->tenant, it->ce->subject} : (fl_store_key){NULL, NULL};
    }
    free(b->keys);
    b->keys = fl_xcalloc(n + 1, sizeof(*b->keys));
    b->nkeys = fl_engine__group(in, n, group, b->keys);
    for (size_t i = 0; i < n; i++) {
        b->items[lo + i].group = group[i];
    }
    free(group);
    free(in);
}

static const fl_workflow *resolve(void *arg, const char *tenant, const char *name, int version)
{
    return fl_registry_get(arg, tenant, name, version);
}

/* Loads the running instances of the batch's keys; an instance on a definition the cache
 * does not know makes it re-read the tenants' definitions once. */
static fl_rc load_live(fl_engine *e, fl_engine_batch *b, fl_err *err)
{
    fl_store_resolver res = {resolve, e->reg};
    fl_store_instances list = {0};
    fl_rc rc = FL_OK;

    if (b->nkeys == 0) {
        goto out;
    }
    rc = fl_store_instances_load(e->store, b->keys, b->nkeys, &res, &list, err);
    if (rc == FL_ENOTFOUND) {
        fl_store_instances_deinit(&list);
        rc = FL_OK;
        for (size_t k = 0; rc == FL_OK && k < b->nkeys; k++) {
            rc = fl_registry_refresh(e->reg, e->store, b->keys[k].tenant, err);
        }
        rc = rc == FL_OK ? fl_store_instances_load(e->store, b->keys, b->nkeys, &res, &list, err)
                         : rc;
        rc = rc == FL_ENOTFOUND ? FL_EIO : rc; /* still unknown: the row is the problem */
    }
    for (size_t i = 0; rc == FL_OK && i < list.count; i++) {
        fl_engine_live *l;
        if (b->nlive == b->cap) {
            b->cap = b->cap ? 2 * b->cap : 64;
            b->live = fl_xrealloc(b->live, b->cap * sizeof(*b->live));
        }
        l = &b->live[b->nlive++];
        *l = (fl_engine_live){list.items[i].inst, list.items[i].wf, list.items[i].row_version,
                              false, list.items[i].key_index};
        list.items[i].inst = NULL; /* now owned by the batch */
    }
out:
    fl_store_instances_deinit(&list);
    return rc;
}

/* The distinct tenants of the decoded events of [lo, hi), plus the system tenant (shipped
 * definitions saved by other processes). Ownership: the array is the caller's, the
 * strings borrowed. */
static size_t range_tenants(const fl_engine_batch *b, size_t lo, size_t hi, const char ***out)
{
    const char **t = fl_xcalloc(hi - lo + 1, sizeof(*t));
    size_t n = 0;

    t[n++] = FL_REGISTRY_SYSTEM_TENANT;
    for (size_t i = lo; i < hi; i++) {
        const fl_cloudevent *ce = b->items[i].reason ? NULL : b->items[i].ce;
        size_t j = 0;
        while (ce && j < n && strcmp(t[j], ce->tenant) != 0) {
            j++;
        }
        if (ce && j == n) {
            t[n++] = ce->tenant;
        }
    }
    *out = t;
    return n;
}

/* Re-reads the definitions of the tenants whose stored count moved since last read. */
static fl_rc refresh_stale(fl_engine *e, const char *const *tenants, const int64_t *counts,
                           size_t n, fl_err *err)
{
    fl_rc rc = FL_OK;

    for (size_t i = 0; rc == FL_OK && i < n; i++) {
        if (fl_registry_is_stale(e->reg, tenants[i], counts[i])) {
            rc = fl_registry_refresh(e->reg, e->store, tenants[i], err);
            if (rc == FL_OK) {
                fl_registry_set_seen(e->reg, tenants[i], counts[i]);
            }
        }
    }
    return rc;
}

/* One query before the events of [lo, hi) are applied: marks those the inbox has seen
 * (or that the range gives twice), and counts each of their tenants' stored definitions.
 * A definition is in effect for every event produced after its PUT returned: a tenant
 * whose count moved since it was last read is read again. (The count is taken after
 * the events were polled, so it sees every definition committed before they were
 * produced.) */
static fl_rc look_up(fl_engine *e, fl_engine_batch *b, size_t lo, size_t hi, fl_err *err)
{
    size_t n = hi - lo;
    fl_store_event_ref *refs = fl_xcalloc(n + 1, sizeof(*refs));
    bool *seen = fl_xcalloc(n + 1, sizeof(*seen)), *dup = fl_xcalloc(n + 1, sizeof(*dup));
    fl_store_batch_lookup q = {refs, n, seen, NULL, 0, NULL};
    const char **tenants = NULL;
    fl_rc rc;

    for (size_t i = 0; i < n; i++) {
        const fl_cloudevent *ce = b->items[lo + i].reason ? NULL : b->items[lo + i].ce;
        refs[i] = ce ? (fl_store_event_ref){ce->tenant, ce->source, ce->id}
                     : (fl_store_event_ref){"", "", NULL};
    }
    q.ntenants = range_tenants(b, lo, hi, &tenants);
    q.tenants = tenants;
    q.counts_out = fl_xcalloc(q.ntenants, sizeof(*q.counts_out));
    fl_engine__dedupe(refs, n, dup);
    rc = fl_store_lookup(e->store, &q, err);
    for (size_t i = 0; rc == FL_OK && i < n; i++) {
        b->items[lo + i].skip = refs[i].id && (seen[i] || dup[i]);
    }
    rc = rc == FL_OK ? refresh_stale(e, tenants, q.counts_out, q.ntenants, err) : rc;
    free(q.counts_out);
    free(tenants);
    free(dup);
    free(seen);
    free(refs);
    return rc;
}

/* Applies one event, or queues it as a dead letter. A failed step is remembered on the
 * event and fails the attempt (FL_EINVAL). */
static fl_rc item_apply(fl_engine *e, fl_engine_batch *b, fl_engine_item *it, fl_err *err)
{
    fl_rc rc = FL_OK;

    if (it->ce && !it->reason && it->attempts >= e->cfg->engine.max_step_attempts) {
        it->reason = "step_failed";
    }
    if (!it->ce || it->reason) {
        add_dead(e, b, it);
        b->dead++;
    } else if (it->skip) {
        fl_log(FL_DEBUG, "engine.duplicate", FL_STR("tenant", it->ce->tenant),
               FL_STR("source", it->ce->source), FL_STR("id", it->ce->id));
        b->skipped++;
    } else {
        rc = fl_engine__apply(e, b, it, err);
    }
    if (rc == FL_EINVAL) {
        it->attempts++;
        free(it->detail);
        it->detail = fl_xstrdup(err->msg);
        fl_log(FL_WARN, "engine.step_failed", FL_STR("tenant", it->ce->tenant),
               FL_STR("type", it->ce->type), FL_STR("id", it->ce->id),
               FL_INT("attempt", it->attempts), FL_STR("error", err->msg));
    }
    return rc;
}

/* One attempt at the events [lo, hi): everything from the store, then one commit. */
static fl_rc attempt(fl_engine *e, fl_engine_batch *b, size_t lo, size_t hi, fl_err *err)
{
    fl_rc rc;

    fl_store_batch_clear(b->sb);
    live_clear(b);
    b->dead = b->skipped = b->steps = b->started = 0;
    b->now_ms = fl_clock_now_ms(fl_clock_system());
    rc = look_up(e, b, lo, hi, err);
    if (rc != FL_OK) {
        goto out;
    }
    group_range(b, lo, hi);
    rc = load_live(e, b, err);
    for (size_t i = lo; i < hi && rc == FL_OK; i++) {
        rc = item_apply(e, b, &b->items[i], err);
    }
    if (rc == FL_OK) {
        rc = fl_store_batch_commit(e->store, b->sb, err);
    }
out:
    live_clear(b);
    return rc;
}

/* Redoes [lo, hi) until it commits. Returns FL_OK, FL_EIO (keeps failing that way) or
 * FL_EUNAVAIL (the engine is stopping). */
static fl_rc run_range(fl_engine *e, fl_engine_batch *b, size_t lo, size_t hi)
{
    int conflicts = 0, io = 0;
    int64_t wait_ms = BACKOFF_FIRST_MS;
    fl_err err = FL_ERR_INIT;
    fl_rc rc;

    for (;;) {
        err = (fl_err)FL_ERR_INIT;
        rc = attempt(e, b, lo, hi, &err);
        if (rc == FL_OK || rc == FL_EINVAL) {
            if (rc == FL_OK) {
                break;
            }
            continue; /* the failed event counts its attempt; redo at once */
        }
        if (rc == FL_EIO && ++io >= MAX_IO_FAILURES) {
            break;
        }
        if (rc == FL_ECONFLICT && ++conflicts <= MAX_QUICK_CONFLICTS) {
            fl_log(FL_DEBUG, "engine.batch_conflict", FL_STR("error", err.msg));
            continue;
        }
        fl_log(FL_WARN, "engine.batch_retry", FL_STR("code", fl_rc_name(rc)),
               FL_STR("error", err.msg), FL_INT("wait_ms", wait_ms));
        if (!fl_engine__sleep(e, wait_ms)) {
            rc = FL_EUNAVAIL;
            break;
        }
        wait_ms = wait_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : wait_ms * 2;
    }
    if (rc == FL_EIO) {
        fl_log(FL_ERROR, "engine.batch_failed", FL_STR("error", err.msg),
               FL_INT("events", (long long)(hi - lo)));
        free(b->items[lo].detail);
        b->items[lo].detail = fl_xstrdup(err.msg);
    }
    return rc;
}

/* Dead-letters event i, which the store refuses. The dead letter must be written before
 * the partition moves on: storing a later offset would skip the event for good, so this
 * retries until it commits or the engine stops. Returns FL_OK or FL_EUNAVAIL. */
static fl_rc store_failed(fl_engine *e, fl_engine_batch *b, size_t i)
{
    fl_rc rc;

    b->items[i].reason = "store_failed";
    for (;;) {
        rc = run_range(e, b, i, i + 1);
        if (rc != FL_EIO) {
            return rc;
        }
        if (!fl_engine__sleep(e, BACKOFF_MAX_MS)) {
            return FL_EUNAVAIL;
        }
    }
}

/* The batch one event per transaction; an event that fails alone is dead-lettered. */
static fl_rc run_singly(fl_engine *e, fl_engine_batch *b)
{
    fl_rc rc = FL_OK;

    for (size_t i = 0; i < b->n && rc == FL_OK; i++) {
        rc = run_range(e, b, i, i + 1);
        if (rc == FL_EIO) {
            rc = store_failed(e, b, i);
        }
    }
    return rc;
}

fl_rc fl_engine__process(fl_engine *e)
{
    fl_engine_batch *b = &e->batch;
    fl_rc rc = run_range(e, b, 0, b->n);

    if (rc == FL_EIO && b->n > 1) {
        rc = run_singly(e, b);
    } else if (rc == FL_EIO) {
        rc = store_failed(e, b, 0);
    }
    if (rc == FL_OK) {
        fl_log(FL_DEBUG, "engine.batch", FL_INT("events", (long long)b->n),
               FL_INT("steps", b->steps), FL_INT("started", b->started),
               FL_INT("duplicates", b->skipped), FL_INT("dead_letters", b->dead));
    }
    return rc;
}
