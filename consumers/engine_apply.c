/* consumers/engine_apply.c -- applies one event to the instances of its key within a batch
 * (ARCHITECTURE.md section 2, "Triggers"; docs/workflows.md, "Children").
 *
 * Order for one event: step every running instance of the key (in creation order), then
 * start the workflows the type triggers that have no running instance with the key.
 * Commands are events too: flowd.instance.start starts the named workflow, .signal is
 * delivered as the event it carries, .cancel goes to the key's instances (optionally one
 * instance or workflow). A child started on the parent's key is started in the same batch;
 * on another key it goes out as flowd.instance.start through the outbox. The parent of a
 * child is remembered in the child's context under "_parent" ({id, key}), so that its end
 * can be reported to the parent's key (flowd.child.completed|failed) without a column.
 *
 * Thread-safety: the engine loop thread only. */
#include <stdlib.h>
#include <string.h>

#include "consumers/engine_int.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"

#define FL_EVENT_INSTANCE_SIGNAL  "flowd.instance.signal"
#define FL_EVENT_MESSAGE_RECEIVED "conversation.message.received"
#define PARENT_FIELD              "_parent"
#define MAX_CHILD_DEPTH           8

static fl_rc start_one(fl_engine *e, fl_engine_batch *b, const fl_workflow *wf, size_t group,
                       const fl_event *ev, const json_t *parent, int depth, fl_err *err);

static bool has_history(const fl_effects *fx)
{
    for (size_t i = 0; i < fx->count; i++) {
        if (fx->items[i].kind == FL_EFFECT_HISTORY) {
            return true;
        }
    }
    return false;
}

static const char *str_field(const json_t *o, const char *name)
{
    return json_string_value(json_object_get(o, name));
}

/* The child's start on another key: a flowd.instance.start on the internal topic. */
static void child_elsewhere(fl_engine *e, fl_engine_batch *b, const fl_instance *parent,
                            const json_t *cs, size_t i)
{
    char *id = fl_xasprintf("child:%s/%lld/%zu:start", parent->id, (long long)parent->seq, i);
    json_t *data =
        json_pack("{s:O, s:O, s:{s:s, s:s}}", "workflow", json_object_get(cs, "workflow"), "input",
                  json_object_get(cs, "input"), "parent", "id", parent->id, "key", parent->key);
    fl_store_outbox o = {id,
                         parent->tenant,
                         e->cfg->kafka.topics.internal,
                         str_field(cs, "key"),
                         FL_EVENT_INSTANCE_START,
                         data};

    fl_store_batch_add_outbox(e->store, b->sb, &o);
    json_decref(data);
    free(id);
}

static fl_rc child_start(fl_engine *e, fl_engine_batch *b, size_t lv, const json_t *cs, size_t i,
                         int depth, fl_err *err)
{
    const fl_instance *parent = b->live[lv].inst;
    const char *name = str_field(cs, "workflow"), *key = str_field(cs, "key");
    char *id = NULL;
    json_t *pj = NULL;
    const fl_workflow *wf;
    fl_rc rc = FL_OK;

    if (!name || !key || strcmp(key, parent->key) != 0) {
        child_elsewhere(e, b, parent, cs, i);
        goto out;
    }
    wf = fl_registry_get(e->reg, parent->tenant, name, 0);
    if (!wf) {
        fl_log(FL_WARN, "engine.child_unknown", FL_STR("instance_id", parent->id),
               FL_STR("workflow", name));
        goto out;
    }
    id = fl_xasprintf("child:%s/%lld/%zu:start", parent->id, (long long)parent->seq, i);
    pj = json_pack("{s:s, s:s}", "id", parent->id, "key", parent->key);
    fl_event ev = {id,   FL_EVENT_INSTANCE_START,     "flowd", parent->key, parent->tenant,
                   NULL, json_object_get(cs, "input")};
    rc = start_one(e, b, wf, b->live[lv].group, &ev, pj, depth + 1, err);
out:
    json_decref(pj);
    free(id);
    return rc;
}

/* Reports a child's end to its parent's key. */
static void child_finished(fl_engine *e, fl_engine_batch *b, const fl_engine_live *l,
                           const char *status)
{
    const json_t *p =
        json_is_object(l->inst->ctx) ? json_object_get(l->inst->ctx, PARENT_FIELD) : NULL;
    bool ok = strcmp(status, "completed") == 0;
    char *id;
    json_t *data;

    if (!str_field(p, "key")) {
        return; /* not a child */
    }
    id = fl_xasprintf("child:%s:%s", l->inst->id, ok ? "completed" : "failed");
    data = json_pack("{s:s, s:s, s:s, s:O}", "child", l->inst->id, "workflow", l->wf->name, "state",
                     l->wf->states[l->inst->state].name, "context", l->inst->ctx);
    fl_store_outbox o = {id,
                         l->inst->tenant,
                         e->cfg->kafka.topics.internal,
                         str_field(p, "key"),
                         ok ? FL_EVENT_CHILD_COMPLETED : FL_EVENT_CHILD_FAILED,
                         data};
    fl_store_batch_add_outbox(e->store, b->sb, &o);
    json_decref(data);
    free(id);
}

/* What a written step causes beyond the store's own rows: children and their ends. */
static fl_rc after_step(fl_engine *e, fl_engine_batch *b, size_t lv, const fl_effects *fx,
                        int depth, fl_err *err)
{
    fl_rc rc = FL_OK;

    for (size_t i = 0; i < fx->count && rc == FL_OK; i++) {
        const fl_effect *f = &fx->items[i];
        if (f->kind == FL_EFFECT_CHILD_START && depth < MAX_CHILD_DEPTH) {
            rc = child_start(e, b, lv, f->data, i, depth, err);
        } else if (f->kind == FL_EFFECT_CHILD_START) {
            fl_log(FL_WARN, "engine.child_depth", FL_STR("instance_id", b->live[lv].inst->id));
        } else if (f->kind == FL_EFFECT_FINISHED) {
            child_finished(e, b, &b->live[lv], str_field(f->data, "status"));
        }
    }
    return rc;
}

/* Queues the step that turned live[lv] into `after` and makes `after` current.
 * Ownership: takes after, even on failure. */
static fl_rc record(fl_engine *e, fl_engine_batch *b, size_t lv, const fl_event *ev,
                    fl_instance *after, const fl_effects *fx, int depth, fl_err *err)
{
    fl_engine_live *l = &b->live[lv];
    fl_store_step step = {ev, l->wf,    l->is_new ? NULL : l->inst, l->row_version, after,
                          fx, b->now_ms};
    fl_rc rc = fl_store_batch_add_step(e->store, b->sb, &step, err);

    fl_instance_free(l->inst);
    l->inst = after;
    if (rc != FL_OK || !has_history(fx)) {
        goto out;
    }
    l->row_version = l->is_new ? 1 : l->row_version + 1;
    l->is_new = false;
    b->steps++;
    rc = after_step(e, b, lv, fx, depth, err);
out:
    return rc;
}

static size_t live_add(fl_engine_batch *b, const fl_workflow *wf, size_t group)
{
    if (b->nlive == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->live = fl_xrealloc(b->live, b->cap * sizeof(*b->live));
    }
    b->live[b->nlive] = (fl_engine_live){NULL, wf, 0, true, group};
    return b->nlive++;
}

/* The instance's context with "_parent" set (copy on write: ctx is shared). */
static void set_parent(fl_instance *in, const json_t *parent)
{
    json_t *c;

    if (!parent || !json_is_object(in->ctx)) {
        return;
    }
    c = json_copy(in->ctx);
    json_object_set(c, PARENT_FIELD, (json_t *)parent);
    json_decref(in->ctx);
    in->ctx = c;
}

static fl_rc start_one(fl_engine *e, fl_engine_batch *b, const fl_workflow *wf, size_t group,
                       const fl_event *ev, const json_t *parent, int depth, fl_err *err)
{
    char id[FL_UUID_STRLEN + 1];
    fl_instance_init init = {id, b->keys[group].key, b->keys[group].tenant};
    fl_instance *inst = NULL;
    fl_effects fx;
    size_t lv;
    fl_rc rc;

    fl_effects_init(&fx);
    fl_ids_uuid7(e->ids, id);
    rc = fl_machine_start(e->machine, wf, &init, ev, b->now_ms, &inst, &fx, err);
    if (rc != FL_OK) {
        goto out;
    }
    set_parent(inst, parent);
    lv = live_add(b, wf, group);
    b->started++;
    rc = record(e, b, lv, ev, inst, &fx, depth, err);
out:
    fl_effects_deinit(&fx);
    return rc;
}

static fl_rc step_one(fl_engine *e, fl_engine_batch *b, size_t lv, const fl_event *ev, fl_err *err)
{
    fl_instance *after = NULL;
    fl_effects fx;
    fl_rc rc;

    double t0 = fl_metrics_now();

    fl_effects_init(&fx);
    rc = fl_machine_step(e->machine, b->live[lv].wf, b->live[lv].inst, ev, b->now_ms, &after, &fx,
                         err);
    fl_metrics_engine_step(b->live[lv].wf->name, fl_metrics_now() - t0);
    if (rc == FL_OK) {
        rc = record(e, b, lv, ev, after, &fx, 0, err);
    }
    fl_effects_deinit(&fx);
    return rc;
}

static bool running(const fl_engine_live *l)
{
    return l->inst && l->inst->status == FL_STATUS_RUNNING;
}

/* True when a running instance of workflow `name` has the group's key. */
static bool has_running(const fl_engine_batch *b, size_t group, const char *name)
{
    for (size_t i = 0; i < b->nlive; i++) {
        if (b->live[i].group == group && running(&b->live[i]) &&
            strcmp(b->live[i].wf->name, name) == 0) {
            return true;
        }
    }
    return false;
}

#define MAX_TRIGGERED 64

/* The workflows ev->type starts for its tenant; re-reads the tenant's definitions first
 * when none is cached (a definition is in effect once its PUT returned). */
static fl_rc triggered(fl_engine *e, const fl_event *ev, const fl_workflow **wfs, size_t *n,
                       fl_err *err)
{
    fl_rc rc = FL_OK;

    *n = fl_registry_triggered(e->reg, ev->tenant, ev->type, wfs, MAX_TRIGGERED);
    if (*n == 0 && fl_registry_may_refresh(e->reg, ev->tenant, ev->type,
                                           fl_clock_mono_ms(fl_clock_system()))) {
        rc = fl_registry_refresh(e->reg, e->store, ev->tenant, err);
        if (rc == FL_OK) {
            *n = fl_registry_triggered(e->reg, ev->tenant, ev->type, wfs, MAX_TRIGGERED);
        }
    }
    if (*n > MAX_TRIGGERED) {
        *n = MAX_TRIGGERED;
    }
    return rc;
}

/* Steps the running instances of the group, then starts what the type triggers. */
static fl_rc deliver(fl_engine *e, fl_engine_batch *b, size_t group, const fl_event *ev,
                     fl_err *err)
{
    const fl_workflow *wfs[MAX_TRIGGERED];
    const fl_workflow *sched;
    size_t n0 = b->nlive, n = 0; /* instances this event starts are not stepped with it */
    fl_rc rc = FL_OK;

    for (size_t i = 0; i < n0 && rc == FL_OK; i++) {
        if (b->live[i].group == group && running(&b->live[i])) {
            rc = step_one(e, b, i, ev, err);
        }
    }
    if (rc == FL_OK) {
        rc = triggered(e, ev, wfs, &n, err);
    }
    for (size_t i = 0; i < n && rc == FL_OK; i++) {
        if (!has_running(b, group, wfs[i]->name)) {
            rc = start_one(e, b, wfs[i], group, ev, NULL, 0, err);
        }
    }
    /* a scheduled workflow is a singleton keyed by its name: its first tick starts it */
    sched = strcmp(ev->type, FL_EVENT_SCHEDULE_TICK) == 0
                ? fl_registry_scheduled(e->reg, ev->tenant, ev->subject)
                : NULL;
    if (rc == FL_OK && sched && !has_running(b, group, sched->name)) {
        rc = start_one(e, b, sched, group, ev, NULL, 0, err);
    }
    return rc;
}

/* flowd.instance.start {workflow, version?, input, parent?}: the named workflow, started
 * by an event whose data is the input (docs/workflows.md, "start"). */
static fl_rc cmd_start(fl_engine *e, fl_engine_batch *b, size_t group, const fl_event *ev,
                       fl_err *err)
{
    const char *name = str_field(ev->data, "workflow");
    int version = (int)json_integer_value(json_object_get(ev->data, "version"));
    const json_t *parent = json_object_get(ev->data, "parent");
    const fl_workflow *wf = name ? fl_registry_get(e->reg, ev->tenant, name, version) : NULL;
    fl_event start = *ev;
    fl_rc rc = FL_OK;

    if (!wf && name &&
        fl_registry_may_refresh(e->reg, ev->tenant, name, fl_clock_mono_ms(fl_clock_system()))) {
        rc = fl_registry_refresh(e->reg, e->store, ev->tenant, err);
        wf = rc == FL_OK ? fl_registry_get(e->reg, ev->tenant, name, version) : NULL;
    }
    if (rc != FL_OK || !wf || has_running(b, group, wf->name)) {
        fl_log(FL_DEBUG, "engine.start_ignored", FL_STR("tenant", ev->tenant),
               FL_STR("workflow", name ? name : ""), FL_STR("key", ev->subject));
        return rc;
    }
    start.data = json_object_get(ev->data, "input");
    return start_one(e, b, wf, group, &start, json_is_object(parent) ? parent : NULL, 0, err);
}

/* flowd.instance.cancel {instance_id?, workflow?}: the key's matching instances. */
static fl_rc cmd_cancel(fl_engine *e, fl_engine_batch *b, size_t group, const fl_event *ev,
                        fl_err *err)
{
    const char *id = str_field(ev->data, "instance_id");
    const char *name = str_field(ev->data, "workflow");
    size_t n0 = b->nlive;
    fl_rc rc = FL_OK;

    for (size_t i = 0; i < n0 && rc == FL_OK; i++) {
        const fl_engine_live *l = &b->live[i];
        if (l->group != group || !running(l) || (id && strcmp(l->inst->id, id) != 0) ||
            (name && strcmp(l->wf->name, name) != 0)) {
            continue;
        }
        rc = step_one(e, b, i, ev, err);
    }
    return rc;
}

/* The user's message goes into the transcript (the engine is its only writer). */
static void add_user_message(fl_engine_batch *b, const fl_event *ev)
{
    const char *content = str_field(ev->data, "content");
    fl_store_message m = {.tenant = ev->tenant,
                          .conversation = ev->subject,
                          .role = "user",
                          .content = content,
                          .message_id = str_field(ev->data, "message_id")};

    if (content) {
        fl_store_batch_add_message(b->sb, &m);
    }
}

fl_rc fl_engine__apply(fl_engine *e, fl_engine_batch *b, fl_engine_item *it, fl_err *err)
{
    fl_event ev = fl_cloudevent_event(it->ce);
    fl_event sig = ev;
    fl_rc rc;

    if (strcmp(ev.type, FL_EVENT_INSTANCE_START) == 0) {
        rc = cmd_start(e, b, it->group, &ev, err);
    } else if (strcmp(ev.type, FL_EVENT_INSTANCE_CANCEL) == 0) {
        rc = cmd_cancel(e, b, it->group, &ev, err);
    } else if (strcmp(ev.type, FL_EVENT_INSTANCE_SIGNAL) == 0) {
        /* delivered as the event it carries; a signal without a type matches nothing */
        sig.type = str_field(ev.data, "type") ? str_field(ev.data, "type") : ev.type;
        sig.data = json_object_get(ev.data, "data");
        rc = deliver(e, b, it->group, &sig, err);
    } else {
        if (strcmp(ev.type, FL_EVENT_MESSAGE_RECEIVED) == 0) {
            add_user_message(b, &ev);
        }
        rc = deliver(e, b, it->group, &ev, err);
    }
    if (rc == FL_OK) {
        fl_store_batch_add_event(b->sb, &ev); /* the inbox row, once per event */
    }
    return rc;
}
