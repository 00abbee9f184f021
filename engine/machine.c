/* engine/machine.c -- the pure step function: matching an event, firing transitions,
 * and committing (or rolling back) one step.
 *
 * Design: a step works on a copy of the instance and appends effects straight to the
 * caller's list; on any error it truncates the list back to where it was and frees the
 * copy, so a failed step leaves the caller's fx and *out untouched. Nothing here reads
 * a clock or a random source: time is `now_ms`, and the ids of timers and activities
 * derive from the instance id and its entry sequence (machine_actions.c), so the same
 * inputs give byte-identical effects and instances.
 *
 * The rules decided here (docs/workflows.md repeats them for authors):
 *   - an ended instance (status != running) handles nothing: unhandled "instance ended";
 *   - flowd.instance.cancel ends a running instance as cancelled without exit actions;
 *   - flowd.activity.completed resumes the entry list when it is for the pending call,
 *     and is "stale activity" otherwise (an earlier entry, or already delivered);
 *   - any other event is matched against the state's transitions in file order, then
 *     any_state (non-final states only); the first whose trigger matches and whose guard
 *     holds fires;
 *   - every handled step ends with CONTEXT (when ctx was written) and one HISTORY, and
 *     increments the instance's seq; an unhandled event leaves the instance as it was
 *     and gives only UNHANDLED.
 *
 * Thread-safety: an fl_machine belongs to one thread at a time (its Lua VM). */
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"
#include "engine/machine_int.h"

fl_rc fl_machine_new(fl_machine **out, const fl_expr_limits *limits, fl_err *err)
{
    fl_machine *m = fl_xcalloc(1, sizeof(*m));
    fl_rc rc;

    *out = NULL;
    m->no_data = json_object();
    rc = fl_expr_vm_new(&m->vm, limits, err);
    if (rc != FL_OK) {
        goto out;
    }
    *out = m;
    m = NULL;
out:
    fl_machine_free(m);
    return rc;
}

void fl_machine_free(fl_machine *m)
{
    if (m == NULL) {
        return;
    }
    fl_expr_vm_free(m->vm);
    fl_machine__cache_free(m);
    json_decref(m->no_data);
    free(m);
}

/* The scope's provider: the views of `event`, `instance` and `now` cost more than a whole
 * step without a guard, so each is built when an expression first reads it, then kept
 * for the rest of the step (`instance` is dropped when state or usage change). */
static const json_t *scope_provide(void *arg, const char *name)
{
    fl_step *st = arg;
    const json_t *v = NULL;
    char now[32];

    if (strcmp(name, "event") == 0) {
        if (st->event_json == NULL) {
            st->event_json = fl_machine__event_view(st);
        }
        v = st->event_json;
    } else if (strcmp(name, "instance") == 0) {
        if (st->inst_json == NULL) {
            st->inst_json = fl_instance__view(st->in, st->wf);
        }
        v = st->inst_json;
    } else if (strcmp(name, "now") == 0) {
        if (st->now_json == NULL) {
            fl_clock_format_rfc3339(st->now_ms, now, sizeof(now));
            st->now_json = json_string(now);
        }
        v = st->now_json;
    }
    return v;
}

/* ctx and result are passed as they are (result may be nil); the views already built in
 * this step are passed too, and the provider builds the others if an expression reads them. */
static void scope_get(fl_step *st, fl_expr_scope *sc)
{
    sc->ctx = st->in->ctx;
    sc->event = st->event_json;
    sc->result = st->result;
    sc->instance = st->inst_json;
    sc->now = st->now_json != NULL ? json_string_value(st->now_json) : NULL;
    sc->provide = scope_provide;
    sc->provide_arg = st;
}

fl_rc fl_machine__eval(fl_step *st, const fl_tmpl *t, json_t **out, fl_err *err)
{
    fl_expr_scope sc;
    fl_rc rc = FL_OK;

    if (fl_tmpl_is_constant(t)) {
        *out = json_deep_copy(fl_tmpl_source(t)); /* a copy: effects must not share the model */
    } else {
        scope_get(st, &sc);
        rc = fl_expr_eval(st->m->vm, t, &sc, out, err);
    }
    return rc;
}

static fl_rc guard_holds(fl_step *st, const fl_transition *t, bool *ok, fl_err *err)
{
    fl_expr_scope sc;
    const json_t *v;
    fl_rc rc = FL_OK;

    if (t->guard == NULL) {
        *ok = true;
    } else if (fl_tmpl_is_constant(t->guard)) {
        v = fl_tmpl_source(t->guard); /* Lua truthiness: only nil and false are false */
        *ok = !json_is_null(v) && !json_is_false(v);
    } else {
        scope_get(st, &sc);
        rc = fl_expr_eval_bool(st->m->vm, t->guard, &sc, ok, err);
    }
    return rc;
}

void fl_machine__effect(fl_step *st, fl_effect_kind kind, json_t *data)
{
    fl_effects_add_take(st->fx, kind, data);
}

/* Writes one top-level ctx field (takes `value`). The first write of a step swaps the
 * shared ctx for a shallow copy of its own; a ctx that is not an object (a definition
 * may declare any JSON value) is replaced by an object, since fields need one. */
void fl_machine__ctx_set(fl_step *st, const char *key, json_t *value)
{
    json_t *copy;

    if (!st->ctx_owned || !json_is_object(st->in->ctx)) {
        copy = json_is_object(st->in->ctx) ? json_copy(st->in->ctx) : json_object();
        json_decref(st->in->ctx);
        st->in->ctx = copy;
        st->ctx_owned = true;
    }
    if (st->set == NULL) {
        st->set = json_object();
    }
    json_object_set(st->set, key, value);
    json_object_set_new(st->in->ctx, key, value);
}

/* Every expression error names where it happened: the state, what was evaluated and
 * the line:col of it in the definition, then the evaluator's own message. */
void fl_machine__locate(fl_err *err, const fl_step *st, const char *what, fl_pos pos,
                        const fl_err *cause)
{
    const char *state = st->in->state >= 0 ? st->wf->states[st->in->state].name : "";

    fl_err_set(err, FL_EINVAL, "state \"%s\": %s at %u:%u: %s", state, what, pos.line, pos.col,
               cause->msg);
}

static bool timer_matches(fl_step *st, char list, size_t index)
{
    char id[256];
    bool ok;

    fl_machine__timer_id(st->in, list, index, id, sizeof(id));
    ok = strcmp(id, st->timer) == 0;
    if (ok) {
        st->timer_known = true;
    }
    return ok;
}

/* after:/at: match only the timer armed for that very transition by the current entry;
 * error: only a failure of the pending call; done: only when the list just finished. */
static bool trigger_matches(fl_step *st, const fl_transition *t, char list, size_t index,
                            fl_match kind)
{
    bool ok = false;

    if (kind == FL_MATCH_DONE) {
        ok = t->trigger == FL_TRIGGER_DONE;
    } else if (t->trigger == FL_TRIGGER_EVENT) {
        ok = strcmp(t->event, st->ev->type) == 0;
    } else if (t->trigger == FL_TRIGGER_AFTER || t->trigger == FL_TRIGGER_AT) {
        ok = st->timer != NULL && timer_matches(st, list, index);
    } else if (t->trigger == FL_TRIGGER_ERROR) {
        ok =
            st->error != NULL && (strcmp(t->error, "any") == 0 || strcmp(t->error, st->error) == 0);
    }
    return ok;
}

static fl_rc find_in(fl_step *st, const fl_transition_list *l, char list, fl_match kind,
                     const fl_transition **found, fl_err *err)
{
    fl_err cause;
    bool ok = false;
    fl_rc rc = FL_OK;

    fl_machine__err_clear(&cause);
    for (size_t i = 0; i < l->count && !ok; i++) {
        if (!trigger_matches(st, &l->items[i], list, i, kind)) {
            continue;
        }
        rc = guard_holds(st, &l->items[i], &ok, &cause);
        if (rc != FL_OK) {
            fl_machine__locate(err, st, "if of the transition", l->items[i].pos, &cause);
            goto out;
        }
        if (ok) {
            *found = &l->items[i];
        }
    }
out:
    return rc;
}

static fl_rc find(fl_step *st, fl_match kind, const fl_transition **found, fl_err *err)
{
    const fl_state *s = &st->wf->states[st->in->state];
    fl_rc rc;

    *found = NULL;
    rc = find_in(st, &s->transitions, 's', kind, found, err);
    if (rc == FL_OK && *found == NULL && s->final == FL_FINAL_NONE) {
        rc = find_in(st, &st->wf->any_state, 'a', kind, found, err);
    }
    return rc;
}

/* set: {name: value} writes each key into ctx at the top level. */
static fl_rc apply_set(fl_step *st, const fl_transition *t, fl_err *err)
{
    fl_err cause;
    json_t *v = NULL;
    const char *key;
    json_t *value;
    fl_rc rc = FL_OK;

    fl_machine__err_clear(&cause);
    if (t->set == NULL) {
        goto out;
    }
    rc = fl_machine__eval(st, t->set, &v, &cause);
    if (rc == FL_OK && !json_is_object(v)) {
        rc = fl_err_set(&cause, FL_EINVAL, "set must give an object");
    }
    if (rc != FL_OK) {
        fl_machine__locate(err, st, "set of the transition", t->pos, &cause);
        goto out;
    }
    json_object_foreach(v, key, value)
    {
        fl_machine__ctx_set(st, key, json_incref(value));
    }
out:
    json_decref(v);
    return rc;
}

/* External (target >= 0): source exit, set, do, cancel the source's timers, enter the
 * target. Internal (no to:): set and do only -- no exit, no entry, the timers and any
 * pending call of the state are untouched. */
fl_rc fl_machine__fire(fl_step *st, const fl_transition *t, fl_err *err)
{
    fl_instance *in = st->in;
    fl_rc rc = FL_OK;

    if (t->target >= 0) {
        rc = fl_machine__run_immediate(st, &st->wf->states[in->state].exit, "exit action", err);
        if (rc != FL_OK) {
            goto out;
        }
    }
    rc = apply_set(st, t, err);
    if (rc != FL_OK) {
        goto out;
    }
    rc = fl_machine__run_immediate(st, &t->actions, "do action", err);
    if (rc != FL_OK || t->target < 0) {
        goto out;
    }
    /* Only an entry that armed timers has timers to cancel: the effect would be noise. */
    if (fl_machine__has_timers(st->wf, in->state)) {
        fl_machine__effect(st, FL_EFFECT_TIMER_CANCEL,
                           fl_machine__pair("entry_seq", json_integer(in->entry_seq), NULL, NULL));
    }
    rc = fl_machine__enter(st, t->target, err);
out:
    return rc;
}

/* Runs the entry list from pc; when it has finished, done: transitions are tried once,
 * right then (also at once on entry when the list has nothing to wait for). A done:
 * whose guard is false is not tried again later: the state waits for other events. */
fl_rc fl_machine__settle(fl_step *st, fl_err *err)
{
    const fl_transition *t = NULL;
    fl_rc rc;

    rc = fl_machine__run_entry(st, err);
    if (rc != FL_OK || st->in->waiting) {
        goto out;
    }
    rc = find(st, FL_MATCH_DONE, &t, err);
    if (rc == FL_OK && t != NULL) {
        rc = fl_machine__fire(st, t, err);
    }
out:
    return rc;
}

/* Ends the instance. Its list will never resume, so it no longer waits. */
void fl_machine__finish(fl_step *st, fl_status status)
{
    st->in->status = status;
    st->in->waiting = false;
    fl_machine__effect(
        st, FL_EFFECT_FINISHED,
        fl_machine__pair("status", json_string_nocheck(fl_status_name(status)), NULL, NULL));
}

static void unhandled(fl_step *st, const char *reason)
{
    st->unhandled = true;
    fl_machine__effect(st, FL_EFFECT_UNHANDLED,
                       json_pack("{s:s?, s:s?, s:s}", "event_id", st->ev->id, "event_type",
                                 st->ev->type, "reason", reason));
}

static void cancel_timers(fl_step *st)
{
    if (fl_machine__has_timers(st->wf, st->in->state)) {
        fl_machine__effect(
            st, FL_EFFECT_TIMER_CANCEL,
            fl_machine__pair("entry_seq", json_integer(st->in->entry_seq), NULL, NULL));
    }
}

/* Is the event's data.activity the call the list waits on? */
static bool is_pending(const fl_step *st)
{
    const char *got = json_string_value(json_object_get(st->ev->data, "activity"));
    char want[256];
    bool ok = false;

    if (st->in->waiting && got != NULL) {
        fl_machine__activity_id(st->in, st->in->pc, want, sizeof(want));
        ok = strcmp(got, want) == 0;
    }
    return ok;
}

static json_int_t int_field(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* Adds an activity's data.usage to the instance's running totals (a new value: usage is
 * shared copy-on-write like ctx). */
static void add_usage(fl_step *st, const json_t *u)
{
    const json_t *cur = st->in->usage;
    json_t *sum;

    if (!json_is_object(u)) {
        return; /* the call reported no usage */
    }
    sum = json_pack("{s:I, s:I, s:f}", "tokens_in",
                    int_field(cur, "tokens_in") + int_field(u, "tokens_in"), "tokens_out",
                    int_field(cur, "tokens_out") + int_field(u, "tokens_out"), "cost",
                    json_number_value(json_object_get(cur, "cost")) +
                        json_number_value(json_object_get(u, "cost")));
    json_decref(st->in->usage);
    st->in->usage = sum;
    json_decref(st->inst_json); /* instance.usage changed */
    st->inst_json = NULL;
}

/* The pending call finished: bind result, write into, count usage, resume the list. */
static fl_rc on_completed(fl_step *st, fl_err *err)
{
    const json_t *data = st->ev->data;
    const fl_action *a;
    const json_t *r;
    fl_rc rc = FL_OK;

    if (!is_pending(st)) {
        unhandled(st, "stale activity");
        goto out;
    }
    a = &st->wf->states[st->in->state].entry.items[st->in->pc];
    r = json_object_get(data, "result");
    /* a copy: the instance must not share nodes with the caller's event */
    st->result = r != NULL ? json_deep_copy(r) : json_null();
    if (a->into != NULL) {
        fl_machine__ctx_set(st, a->into, json_incref(st->result));
    }
    add_usage(st, json_object_get(data, "usage"));
    st->in->pc++;
    st->in->waiting = false;
    rc = fl_machine__settle(st, err);
out:
    return rc;
}

/* A matched transition. After an internal error: transition the failed call counts as
 * handled: the list goes on after it (result null, into not written), then done: is
 * tried -- otherwise the list would wait forever for a call that has ended. */
static fl_rc fire_matched(fl_step *st, const fl_transition *t, fl_err *err)
{
    fl_rc rc;
    bool resume = st->error != NULL && t->target < 0;

    rc = fl_machine__fire(st, t, err);
    if (rc == FL_OK && resume) {
        st->in->pc++;
        st->in->waiting = false;
        rc = fl_machine__settle(st, err);
    }
    return rc;
}

/* Any other event: a failure of the pending call, a timer, or an ordinary event. */
static fl_rc on_event(fl_step *st, fl_err *err)
{
    const char *type = st->ev->type;
    const fl_transition *t = NULL;
    fl_rc rc = FL_OK;

    if (strcmp(type, FL_EVENT_ACTIVITY_FAILED) == 0) {
        if (!is_pending(st)) {
            unhandled(st, "stale activity");
            goto out;
        }
        st->error = json_string_value(json_object_get(st->ev->data, "error"));
        st->error = st->error != NULL ? st->error : "";
    } else if (strcmp(type, FL_EVENT_TIMER_FIRED) == 0) {
        st->timer = json_string_value(json_object_get(st->ev->data, "timer"));
    }
    rc = find(st, FL_MATCH_EVENT, &t, err);
    if (rc != FL_OK) {
        goto out;
    }
    if (t != NULL) {
        rc = fire_matched(st, t, err);
    } else if (st->error != NULL) {
        cancel_timers(st); /* an error nothing catches fails the instance */
        fl_machine__finish(st, FL_STATUS_FAILED);
    } else if (st->timer != NULL && !st->timer_known) {
        unhandled(st, "stale timer");
    } else {
        unhandled(st, "no transition matched");
    }
out:
    return rc;
}

static void step_init(fl_step *st, fl_machine *m, const fl_workflow *wf, fl_instance *in,
                      const fl_event *ev, int64_t now_ms, fl_effects *fx)
{
    memset(st, 0, sizeof(*st));
    st->m = m;
    st->wf = wf;
    st->in = in;
    st->ev = ev;
    st->now_ms = now_ms;
    st->fx = fx;
    st->fx_base = fx->count;
    st->from = in->state;
}

/* A handled step records what it wrote and one history entry. */
static void step_record(fl_step *st)
{
    json_t *h;

    if (st->set != NULL) {
        fl_machine__effect(st, FL_EFFECT_CONTEXT, json_pack("{s:O}", "set", st->set));
    }
    st->in->seq++;
    h = json_object();
    json_object_set_new_nocheck(h, "seq", json_integer(st->in->seq));
    json_object_set_new_nocheck(h, "event_id", st->ev->id ? json_string(st->ev->id) : json_null());
    json_object_set_new_nocheck(h, "event_type", fl_machine__event_type(st));
    json_object_set_new_nocheck(h, "from", fl_machine__state_name(st, st->from));
    json_object_set_new_nocheck(h, "to", fl_machine__state_name(st, st->in->state));
    fl_machine__effect(st, FL_EFFECT_HISTORY, h);
}

/* Commits a successful step (*out gets the working copy) or rolls a failed one back. */
static fl_rc step_end(fl_step *st, fl_rc rc, fl_instance **out)
{
    if (rc == FL_OK) {
        if (!st->unhandled) {
            step_record(st);
        }
        *out = st->in;
        st->in = NULL;
    } else {
        fl_effects_truncate(st->fx, st->fx_base);
    }
    fl_instance_free(st->in);
    json_decref(st->set);
    json_decref(st->result);
    fl_machine__event_done(st); /* the view itself is the machine's */
    json_decref(st->inst_json);
    json_decref(st->now_json);
    return rc;
}

fl_rc fl_machine_step(fl_machine *m, const fl_workflow *wf, const fl_instance *in,
                      const fl_event *ev, int64_t now_ms, fl_instance **out, fl_effects *fx,
                      fl_err *err)
{
    fl_step st;
    fl_rc rc = FL_OK;

    step_init(&st, m, wf, fl_instance_dup(in), ev, now_ms, fx);
    if (in->status != FL_STATUS_RUNNING) {
        unhandled(&st, "instance ended");
    } else if (strcmp(ev->type, FL_EVENT_INSTANCE_CANCEL) == 0) {
        cancel_timers(&st); /* no exit actions: a cancel is not a transition */
        fl_machine__finish(&st, FL_STATUS_CANCELLED);
    } else if (strcmp(ev->type, FL_EVENT_ACTIVITY_COMPLETED) == 0) {
        rc = on_completed(&st, err);
    } else {
        rc = on_event(&st, err);
    }
    return step_end(&st, rc, out);
}

/* The new instance is "before its initial state" (state -1, entry_seq 0) until
 * fl_machine__enter moves it in, so start and transitions share one entry path: the
 * effects are STATE_CHANGED {from: null, to: initial}, the entry's own, and HISTORY
 * {from: null}. The starting event is the `event` of the entry actions and is not
 * matched against transitions. */
fl_rc fl_machine_start(fl_machine *m, const fl_workflow *wf, const fl_instance_init *init,
                       const fl_event *ev, int64_t now_ms, fl_instance **out, fl_effects *fx,
                       fl_err *err)
{
    fl_instance *in = fl_xcalloc(1, sizeof(*in));
    fl_step st;

    fl_instance__set_ids(in, init->id, init->key, init->tenant, wf->name);
    in->version = wf->version;
    in->state = -1;
    in->status = FL_STATUS_RUNNING;
    in->ctx = wf->context != NULL ? json_deep_copy(wf->context) : json_object();
    in->usage = json_pack("{s:i, s:i, s:f}", "tokens_in", 0, "tokens_out", 0, "cost", 0.0);
    in->entered_at_ms = now_ms;
    step_init(&st, m, wf, in, ev, now_ms, fx);
    st.ctx_owned = true; /* a fresh deep copy nobody else holds */
    return step_end(&st, fl_machine__enter(&st, wf->initial, err), out);
}
