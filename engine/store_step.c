/* engine/store_step.c -- one instance step as batch statements: the instance row (insert,
 * or update guarded by its row version), its history row, and a statement per effect
 * that has a durable consequence (outbox, transcript, timers, activities), then the
 * NOTIFY that wakes API waiters once the batch commits.
 *
 * Design: effects are read in their order (docs/workflows.md "Effects and ids"), so the
 * outbox rows of one instance come out in the order the step produced them and the relay
 * publishes them in that order. Effects without a durable consequence here (log,
 * context, unhandled, child_start -- the engine starts same-key children as steps of
 * their own and sends others through fl_store_batch_add_outbox) are skipped.
 *
 * Thread-safety: a batch belongs to one thread; the store is only read. */
#include "engine/store_int.h"

#include "core/mem.h"
#include "core/metrics.h"

#include <stdlib.h>
#include <string.h>

/* What every statement of one step needs. */
typedef struct step_ctx {
    const fl_store *st;
    fl_store_batch *b;
    const fl_store_step *step;
    const fl_instance *in; /* step->after */
} step_ctx;

static const char *field_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static long long field_int(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

/* An effect lacked a field its kind always has: a machine bug, not bad input. */
static fl_rc bad_effect(const fl_effect *fx, const char *field, fl_err *err)
{
    return fl_err_set(err, FL_EINVAL, "cannot store effect \"%s\": field \"%s\" is missing",
                      fl_effect_kind_name(fx->kind), field);
}

static char *machine_json(const fl_instance *in)
{
    json_t *m = json_pack("{s:I, s:I, s:I, s:b, s:I}", "entered_at", (json_int_t)in->entered_at_ms,
                          "entry_seq", (json_int_t)in->entry_seq, "pc", (json_int_t)in->pc,
                          "waiting", (int)in->waiting, "seq", (json_int_t)in->seq);
    char *s = fl_store__json(m);

    json_decref(m);
    return s;
}

static const char *state_name(const step_ctx *c)
{
    return c->step->wf->states[c->in->state].name;
}

static void instance_write(const step_ctx *c)
{
    const fl_instance *in = c->in;

    if (!c->step->before) {
        char *p[10] = {fl_store__str(in->id),
                       fl_store__str(in->tenant),
                       fl_store__str(in->workflow),
                       fl_store__int(in->version),
                       fl_store__str(in->key),
                       fl_store__str(state_name(c)),
                       fl_store__str(fl_status_name(in->status)),
                       fl_store__json(in->ctx),
                       fl_store__json(in->usage),
                       machine_json(in)};
        fl_store__op_add_take(c->b, FL_STORE_INSTANCE_INSERT, 10, p);
    } else {
        char *p[7] = {fl_store__str(in->id),
                      fl_store__int(c->step->row_version),
                      fl_store__str(state_name(c)),
                      fl_store__str(fl_status_name(in->status)),
                      fl_store__json(in->ctx),
                      fl_store__json(in->usage),
                      machine_json(in)};
        fl_store__op_add_take(c->b, FL_STORE_INSTANCE_UPDATE, 7, p);
    }
}

/* One summary entry: the kind and the one or two fields that identify what happened,
 * never the data (context values and payloads may be large or personal). */
static json_t *summary_entry(const fl_effect *fx)
{
    static const char *const keep[] = {"from",     "to",   "type",     "timer",  "entry_seq",
                                       "activity", "call", "workflow", "status", "reason"};
    json_t *e = json_pack("{s:s}", "kind", fl_effect_kind_name(fx->kind));

    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        json_t *v = json_object_get(fx->data, keep[i]);
        if (v && !json_is_object(v) && !json_is_array(v)) {
            json_object_set_nocheck(e, keep[i], v);
        }
    }
    if (fx->kind == FL_EFFECT_CONTEXT) {
        json_t *keys = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(fx->data, "set"), k, v)
        {
            json_array_append_new(keys, json_string(k));
        }
        json_object_set_new_nocheck(e, "set", keys);
    }
    return e;
}

static void history_write(const step_ctx *c, const fl_effect *hist)
{
    const fl_effects *fx = c->step->effects;
    json_t *sum = json_array();
    char *p[8];

    for (size_t i = 0; i < fx->count; i++) {
        if (fx->items[i].kind != FL_EFFECT_HISTORY) {
            json_array_append_new(sum, summary_entry(&fx->items[i]));
        }
    }
    p[0] = fl_store__str(c->in->id);
    p[1] = fl_store__int(field_int(hist->data, "seq"));
    p[2] = fl_store__str(c->in->tenant);
    p[3] = fl_store__str(field_str(hist->data, "event_id"));
    p[4] = fl_store__str(field_str(hist->data, "event_type"));
    p[5] = fl_store__str(field_str(hist->data, "from"));
    p[6] = fl_store__str(field_str(hist->data, "to"));
    p[7] = fl_store__json(sum);
    json_decref(sum);
    fl_store__op_add_take(c->b, FL_STORE_HISTORY, 8, p);
    fl_metrics_engine_transition(c->step->wf->name, field_str(hist->data, "from"),
                                 field_str(hist->data, "to"), c->step->event->time,
                                 c->step->now_ms);
}

/* An outbox row produced by the step: id `<prefix>:<instance>/<seq>/<effect index>`. */
static void produced_add(const step_ctx *c, const char *prefix, size_t index,
                         const fl_store_outbox *o)
{
    char *id = fl_xasprintf("%s:%s/%lld/%zu", prefix, c->in->id, (long long)c->in->seq, index);
    char *p[7] = {id,
                  fl_store__str(c->in->tenant),
                  fl_store__str(o->topic),
                  fl_store__str(o->subject),
                  fl_store__str(o->type),
                  fl_store__json(o->data),
                  NULL};

    p[6] = fl_store__headers(c->st, id, o->type, o->subject, c->in->tenant, c->step->now_ms);
    fl_store__op_add_take(c->b, FL_STORE_OUTBOX, 7, p);
}

static fl_rc emit_write(const step_ctx *c, size_t i, fl_err *err)
{
    const fl_effect *fx = &c->step->effects->items[i];
    fl_store_outbox o = {.type = field_str(fx->data, "type"),
                         .topic = field_str(fx->data, "topic"),
                         .subject = field_str(fx->data, "subject"),
                         .data = json_object_get(fx->data, "data")};

    if (!o.type) {
        return bad_effect(fx, "type", err);
    }
    if (!o.subject) {
        o.subject = c->in->key; /* an emit without subject addresses its own key */
    }
    if (!o.topic && c->st->topic_for) {
        o.topic = c->st->topic_for(c->st->topic_arg, c->in->tenant, o.type);
    }
    if (!o.topic) {
        o.topic = c->st->default_topic;
    }
    produced_add(c, "emit", i, &o);
    return FL_OK;
}

/* flowd.instance.<what> on the workflow-events topic. */
static void lifecycle_write(const step_ctx *c, size_t i, const char *what, const json_t *from,
                            const char *to)
{
    char *type = fl_xasprintf("flowd.instance.%s", what);
    json_t *data = json_pack("{s:s, s:s, s:i, s:s, s:O?, s:s?, s:s, s:I}", "instance_id", c->in->id,
                             "workflow", c->in->workflow, "version", c->in->version, "key",
                             c->in->key, "from", from, "to", to, "status",
                             fl_status_name(c->in->status), "seq", (json_int_t)c->in->seq);
    fl_store_outbox o = {
        .type = type, .topic = c->st->wf_topic, .subject = c->in->key, .data = data};

    produced_add(c, "lifecycle", i, &o);
    json_decref(data);
    free(type);
}

static void reply_write(const step_ctx *c, const fl_effect *fx)
{
    const json_t *usage = json_object_get(fx->data, "usage");
    fl_store_message m = {.tenant = c->in->tenant,
                          .conversation = c->in->key, /* the conversation id is the key */
                          .role = "assistant",
                          .content = field_str(fx->data, "content"),
                          .agent = field_str(fx->data, "agent"),
                          .provider = field_str(usage, "provider"),
                          .model = field_str(usage, "model"),
                          .usage = usage};

    if (!m.content) {
        m.content = "";
    }
    fl_store_batch_add_message(c->b, &m);
}

static fl_rc timer_write(const step_ctx *c, const fl_effect *fx, fl_err *err)
{
    const char *id = field_str(fx->data, "timer");
    const char *transition = field_str(fx->data, "transition");
    char *p[8];

    if (!id || !transition) {
        return bad_effect(fx, id ? "transition" : "timer", err);
    }
    p[0] = fl_store__str(id);
    p[1] = fl_store__str(c->in->tenant);
    p[2] = fl_store__str(c->in->id);
    p[3] = fl_store__str(c->in->key);
    p[4] = fl_store__str(c->in->workflow);
    p[5] = fl_store__str(transition);
    p[6] = fl_store__int(field_int(fx->data, "entry_seq"));
    p[7] = fl_store__int(field_int(fx->data, "due_at_ms"));
    fl_store__op_add_take(c->b, FL_STORE_TIMER_ARM, 8, p);
    return FL_OK;
}

static void timer_cancel_write(const step_ctx *c, const fl_effect *fx)
{
    char *p[2] = {fl_store__str(c->in->id), fl_store__int(field_int(fx->data, "entry_seq"))};

    fl_store__op_add_take(c->b, FL_STORE_TIMER_CANCEL, 2, p);
}

static fl_rc activity_write(const step_ctx *c, const fl_effect *fx, fl_err *err)
{
    const char *id = field_str(fx->data, "activity");
    const char *call = field_str(fx->data, "call");
    long long action = field_int(fx->data, "action");
    long long entry = field_int(fx->data, "entry_seq");
    char *p[12];

    if (!id || !call) {
        return bad_effect(fx, id ? "call" : "activity", err);
    }
    p[0] = fl_store__str(id);
    p[1] = fl_store__str(c->in->tenant);
    p[2] = fl_store__str(c->in->id);
    p[3] = fl_store__str(c->in->key);
    p[4] = fl_store__int(entry);
    p[5] = fl_store__int(action);
    p[6] = fl_store__str(call);
    p[7] = json_object_get(fx->data, "with") ? fl_store__json(json_object_get(fx->data, "with"))
                                             : fl_xstrdup("{}");
    p[8] = fl_store__str(field_str(fx->data, "into"));
    p[9] = fl_store__json(json_object_get(fx->data, "retry"));
    p[10] = fl_store__int(field_int(fx->data, "timeout_ms"));
    p[11] = fl_xasprintf("%s:%lld:%lld", c->in->id, action, entry); /* issue 4, item 6 */
    fl_store__op_add_take(c->b, FL_STORE_ACTIVITY, 12, p);
    return FL_OK;
}

static fl_rc effect_write(const step_ctx *c, size_t i, fl_err *err)
{
    const fl_effect *fx = &c->step->effects->items[i];
    const json_t *from = json_object_get(fx->data, "from");

    switch (fx->kind) {
    case FL_EFFECT_EMIT:
        return emit_write(c, i, err);
    case FL_EFFECT_REPLY:
        reply_write(c, fx);
        return FL_OK;
    case FL_EFFECT_TIMER_ARM:
        return timer_write(c, fx, err);
    case FL_EFFECT_TIMER_CANCEL:
        timer_cancel_write(c, fx);
        return FL_OK;
    case FL_EFFECT_ACTIVITY_START:
        return activity_write(c, fx, err);
    case FL_EFFECT_STATE_CHANGED:
        lifecycle_write(c, i, json_is_null(from) ? "started" : "transitioned", from,
                        field_str(fx->data, "to"));
        return FL_OK;
    case FL_EFFECT_FINISHED:
        fl_metrics_workflow_completed(c->step->wf->name, field_str(fx->data, "status")
                                                             ? field_str(fx->data, "status")
                                                             : "completed");
        lifecycle_write(c, i,
                        field_str(fx->data, "status") ? field_str(fx->data, "status") : "completed",
                        NULL, NULL);
        return FL_OK;
    default:
        return FL_OK; /* no durable consequence here: see the file comment */
    }
}

/* The NOTIFY payload stays small (the limit is 8000 bytes): who changed, not how. */
static void notify_write(const step_ctx *c)
{
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:I}", "tenant", c->in->tenant, "instance_id", c->in->id,
                  "workflow", c->in->workflow, "key", c->in->key, "seq", (json_int_t)c->in->seq);
    char *p[1] = {fl_store__json(j)};

    json_decref(j);
    fl_store__op_add_take(c->b, FL_STORE_NOTIFY, 1, p);
}

static const fl_effect *history_of(const fl_effects *fx)
{
    for (size_t i = fx->count; i > 0; i--) {
        if (fx->items[i - 1].kind == FL_EFFECT_HISTORY) {
            return &fx->items[i - 1];
        }
    }
    return NULL;
}

fl_rc fl_store_batch_add_step(fl_store *st, fl_store_batch *b, const fl_store_step *step,
                              fl_err *err)
{
    step_ctx c = {st, b, step, step->after};
    const fl_effect *hist = history_of(step->effects);
    size_t mark = b->count;
    fl_rc rc = FL_OK;

    if (!hist) {
        goto out; /* unhandled: the instance did not change */
    }
    instance_write(&c);
    for (size_t i = 0; i < step->effects->count && rc == FL_OK; i++) {
        rc = effect_write(&c, i, err);
    }
    if (rc != FL_OK) {
        goto out;
    }
    history_write(&c, hist);
    notify_write(&c);
    b->nsteps++;
out:
    if (rc != FL_OK) {
        fl_store__truncate(b, mark); /* a step is queued whole or not at all */
    }
    return rc;
}
