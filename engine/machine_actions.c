/* engine/machine_actions.c -- entering a state and running action lists: immediate
 * actions become effects, a call suspends the entry list, after:/at: arm timers.
 *
 * Ids are deterministic, so a replayed step produces the same ones and the engine can
 * use them as idempotency keys:
 *   timer    "<instance id>/<entry_seq>/s<i>"  transition i of the state
 *            "<instance id>/<entry_seq>/a<i>"  transition i of any_state
 *   activity "<instance id>/<entry_seq>/<i>"   entry action i of the state
 * The entry_seq in them is what makes a timer or a result of an earlier visit to the
 * same state stale.
 *
 * Thread-safety: as machine.c. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "engine/machine_int.h"

static void names_drop(fl_machine *m)
{
    for (size_t i = 0; i < m->nnames; i++) {
        json_decref(m->names[i]);
        json_decref(m->changed[i]);
    }
    free(m->names);
    free(m->changed);
    free(m->changed_from);
    m->names = NULL;
    m->changed = NULL;
    m->changed_from = NULL;
    m->nnames = 0;
    m->names_wf = NULL;
}

/* Not names_drop: the event view may be in use by the step that loads new names. */
void fl_machine__cache_free(fl_machine *m)
{
    names_drop(m);
    json_decref(m->type);
    m->type = NULL;
    json_decref(m->ev_view);
    m->ev_view = NULL;
}

static void names_load(fl_machine *m, const fl_workflow *wf)
{
    names_drop(m);
    m->names = fl_xcalloc(wf->nstates, sizeof(*m->names));
    m->changed = fl_xcalloc(wf->nstates, sizeof(*m->changed));
    m->changed_from = fl_xcalloc(wf->nstates, sizeof(*m->changed_from));
    for (size_t i = 0; i < wf->nstates; i++) {
        m->names[i] = json_string_nocheck(wf->states[i].name);
    }
    m->nnames = wf->nstates;
    m->names_wf = wf;
}

/* Makes m->names[state] (state >= 0) the name of that state of the step's definition. */
static void names_check(fl_step *st, int state)
{
    fl_machine *m = st->m;

    if (m->names_wf != st->wf || (size_t)state >= m->nnames ||
        strcmp(json_string_value(m->names[state]), st->wf->states[state].name) != 0) {
        names_load(m, st->wf);
    }
}

/* Effects are built with the _nocheck setters, not json_pack: on the hot path, parsing a
 * format and re-validating our own keys cost more than the rest of the step. Names from
 * the definition were validated as UTF-8 by the loader; strings from events are not
 * trusted and go through json_string. */
/* A state's name as a JSON string (new reference), or null for "no state yet". */
json_t *fl_machine__state_name(fl_step *st, int state)
{
    json_t *v = NULL;

    if (state >= 0) {
        names_check(st, state);
        v = json_incref(st->m->names[state]);
    }
    return v != NULL ? v : json_null();
}

json_t *fl_machine__state_changed(fl_step *st, int from, int to)
{
    fl_machine *m = st->m;

    if (from >= 0) {
        names_check(st, from);
    }
    names_check(st, to); /* after from's: a reload drops every cached effect */
    if (m->changed[to] == NULL || m->changed_from[to] != from) {
        json_decref(m->changed[to]);
        m->changed[to] = fl_machine__pair("from", fl_machine__state_name(st, from), "to",
                                          fl_machine__state_name(st, to));
        m->changed_from[to] = from;
    }
    return json_incref(m->changed[to]);
}

json_t *fl_machine__event_type(fl_step *st)
{
    fl_machine *m = st->m;
    json_t *v;

    if (m->type == NULL || strcmp(json_string_value(m->type), st->ev->type) != 0) {
        v = json_string(st->ev->type); /* from the event: not trusted to be UTF-8 */
        if (v != NULL) {
            json_decref(m->type);
            m->type = v;
        }
    } else {
        v = m->type;
    }
    /* NULL (not UTF-8) leaves the member out, as json_string would */
    return json_incref(v);
}

static const char *const view_keys[] = {"id", "type", "source", "subject", "tenant", "time"};

/* Updates the kept view in place when it has exactly the members this event gives, in
 * the same order, so the result is what fl_event_to_json would build; false when it
 * does not fit (or a new value is not UTF-8) and must be built afresh. */
static bool view_update(json_t *view, const fl_event *ev)
{
    const char *f[6] = {ev->id, ev->type, ev->source, ev->subject, ev->tenant, ev->time};
    void *it = json_object_iter(view);
    json_t *v;
    bool ok = true;

    for (int i = 0; i < 6 && ok; i++) {
        if (f[i] == NULL) {
            continue;
        }
        ok = it != NULL && strcmp(json_object_iter_key(it), view_keys[i]) == 0;
        if (ok && strcmp(json_string_value(json_object_iter_value(it)), f[i]) != 0) {
            v = json_string(f[i]);
            ok = v != NULL && json_object_iter_set_new(view, it, v) == 0;
        }
        it = ok ? json_object_iter_next(view, it) : NULL;
    }
    return ok && it == NULL;
}

json_t *fl_machine__event_view(fl_step *st)
{
    fl_machine *m = st->m;

    if (m->ev_view == NULL || !view_update(m->ev_view, st->ev)) {
        json_decref(m->ev_view);
        m->ev_view =
            fl_event_to_json(&(fl_event){st->ev->id, st->ev->type, st->ev->source, st->ev->subject,
                                         st->ev->tenant, st->ev->time, NULL});
    }
    if (st->ev->data != NULL && !json_is_null(st->ev->data)) {
        json_object_set_nocheck(m->ev_view, "data", (json_t *)st->ev->data);
    } else {
        json_object_set_nocheck(m->ev_view, "data", m->no_data);
    }
    return m->ev_view;
}

void fl_machine__event_done(fl_step *st)
{
    if (st->event_json != NULL) {
        json_object_del(st->event_json, "data");
    }
}

json_t *fl_machine__pair(const char *k1, json_t *v1, const char *k2, json_t *v2)
{
    json_t *o = json_object();

    json_object_set_new_nocheck(o, k1, v1);
    if (k2 != NULL) {
        json_object_set_new_nocheck(o, k2, v2);
    }
    return o;
}

void fl_machine__timer_id(const fl_instance *in, char list, size_t index, char *out, size_t size)
{
    snprintf(out, size, "%s/%lld/%c%zu", in->id, (long long)in->entry_seq, list, index);
}

void fl_machine__activity_id(const fl_instance *in, size_t action, char *out, size_t size)
{
    snprintf(out, size, "%s/%lld/%zu", in->id, (long long)in->entry_seq, action);
}

static bool list_has_timers(const fl_transition_list *l)
{
    bool found = false;

    for (size_t i = 0; i < l->count && !found; i++) {
        found = l->items[i].trigger == FL_TRIGGER_AFTER || l->items[i].trigger == FL_TRIGGER_AT;
    }
    return found;
}

/* Whether an entry into `state` arms timers: its own after:/at: transitions, and those of
 * any_state unless it is final. */
bool fl_machine__has_timers(const fl_workflow *wf, int state)
{
    const fl_state *s = &wf->states[state];

    return list_has_timers(&s->transitions) ||
           (s->final == FL_FINAL_NONE && list_has_timers(&wf->any_state));
}

/* Leaves the default in place when the action gave no value for key. */
static void set_default(json_t *o, const char *key, json_t *def)
{
    if (json_object_get(o, key) == NULL) {
        json_object_set_new_nocheck(o, key, def);
    } else {
        json_decref(def);
    }
}

static fl_rc need_string(const json_t *o, const char *key, fl_err *err)
{
    fl_rc rc = FL_OK;

    if (!json_is_string(json_object_get(o, key))) {
        rc = fl_err_set(err, FL_EINVAL, "%s must give a string", key);
    }
    return rc;
}

/* Turns the evaluated argument object of an immediate action into its effect. The
 * object is this step's own, so defaults are filled in place:
 *   emit  -> EMIT {type, topic (only if given), subject (default: the instance key), data}
 *   start -> CHILD_START {workflow, key (default: the parent's key), input (default {})}
 *   log   -> LOG {level (default "info"), message}
 *   reply -> REPLY {content, agent?, usage?} */
static fl_rc apply(fl_step *st, const fl_action *a, json_t *args, fl_err *err)
{
    const char *key;
    json_t *v;
    fl_rc rc = FL_OK;

    if (a->kind == FL_ACTION_SET) {
        json_object_foreach(args, key, v)
        {
            fl_machine__ctx_set(st, key, json_incref(v));
        }
    } else if (a->kind == FL_ACTION_EMIT) {
        rc = need_string(args, "type", err);
        set_default(args, "subject", json_string(st->in->key));
        set_default(args, "data", json_null());
        fl_machine__effect(st, FL_EFFECT_EMIT, json_incref(args));
    } else if (a->kind == FL_ACTION_START) {
        rc = need_string(args, "workflow", err);
        set_default(args, "key", json_string(st->in->key));
        set_default(args, "input", json_object());
        fl_machine__effect(st, FL_EFFECT_CHILD_START, json_incref(args));
    } else if (a->kind == FL_ACTION_LOG) {
        set_default(args, "level", json_string("info"));
        fl_machine__effect(st, FL_EFFECT_LOG, json_incref(args));
    } else {
        fl_machine__effect(st, FL_EFFECT_REPLY, json_incref(args));
    }
    return rc;
}

static fl_rc run_action(fl_step *st, const fl_action *a, const char *what, fl_err *err)
{
    fl_err cause;
    json_t *args = NULL;
    fl_rc rc;

    fl_machine__err_clear(&cause);
    rc = fl_machine__eval(st, a->args, &args, &cause);
    if (rc == FL_OK && !json_is_object(args)) {
        rc = fl_err_set(&cause, FL_EINVAL, "the action must give an object");
    }
    if (rc == FL_OK) {
        rc = apply(st, a, args, &cause);
    }
    if (rc != FL_OK) {
        fl_machine__locate(err, st, what, a->pos, &cause);
    }
    json_decref(args);
    return rc;
}

/* exit and do lists (and entry lists of final states): immediate actions only, which
 * the validator guarantees. */
fl_rc fl_machine__run_immediate(fl_step *st, const fl_action_list *list, const char *what,
                                fl_err *err)
{
    fl_rc rc = FL_OK;

    for (size_t i = 0; i < list->count && rc == FL_OK; i++) {
        rc = run_action(st, &list->items[i], what, err);
    }
    return rc;
}

static const char *backoff_name(fl_backoff b)
{
    return b == FL_BACKOFF_EXPONENTIAL ? "exponential" : "fixed";
}

/* ACTIVITY_START {activity, call, with, into?, retry, timeout_ms, entry_seq, action}; the
 * list then waits (pc stays on the call) for flowd.activity.completed or .failed. */
static fl_rc start_call(fl_step *st, const fl_action *a, fl_err *err)
{
    fl_err cause;
    json_t *with = NULL;
    char id[256];
    fl_rc rc = FL_OK;

    fl_machine__err_clear(&cause);
    if (a->args != NULL) {
        rc = fl_machine__eval(st, a->args, &with, &cause);
    }
    if (rc != FL_OK) {
        fl_machine__locate(err, st, "entry action", a->pos, &cause);
        goto out;
    }
    fl_machine__activity_id(st->in, st->in->pc, id, sizeof(id));
    fl_machine__effect(
        st, FL_EFFECT_ACTIVITY_START,
        json_pack("{s:s, s:s, s:o, s:s*, s:{s:i, s:s, s:I, s:I}, s:I, s:I, s:I}", "activity", id,
                  "call", a->call, "with", with != NULL ? with : json_object(), "into", a->into,
                  "retry", "attempts", a->retry.attempts, "backoff", backoff_name(a->retry.backoff),
                  "delay_ms", (json_int_t)a->retry.delay_ms, "max_delay_ms",
                  (json_int_t)a->retry.max_delay_ms, "timeout_ms", (json_int_t)a->timeout_ms,
                  "entry_seq", (json_int_t)st->in->entry_seq, "action", (json_int_t)st->in->pc));
    with = NULL; /* now owned by the effect ("o" steals) */
    st->in->waiting = true;
out:
    json_decref(with);
    return rc;
}

/* Runs the current state's entry list from pc until it ends or a call suspends it. */
fl_rc fl_machine__run_entry(fl_step *st, fl_err *err)
{
    const fl_action_list *l = &st->wf->states[st->in->state].entry;
    const fl_action *a;
    fl_rc rc = FL_OK;

    while (rc == FL_OK && !st->in->waiting && st->in->pc < l->count) {
        a = &l->items[st->in->pc];
        if (a->kind == FL_ACTION_CALL) {
            rc = start_call(st, a, err);
        } else {
            rc = run_action(st, a, "entry action", err);
            if (rc == FL_OK) {
                st->in->pc++;
            }
        }
    }
    return rc;
}

/* Reads exactly n digits. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    bool ok = true;

    for (int i = 0; i < n && ok; i++) {
        ok = isdigit((unsigned char)(*p)[i]) != 0;
        v = v * 10 + ((*p)[i] - '0');
    }
    if (ok) {
        *p += n;
        *out = v;
    }
    return ok;
}

/* `Z`, or +hh:mm / -hh:mm, as seconds east of UTC; nothing may follow. */
static bool parse_zone(const char *p, int *offset_s)
{
    int h = 0, m = 0, sign = *p == '-' ? -1 : 1;
    bool ok;

    if (*p == 'Z' || *p == 'z') {
        ok = p[1] == '\0';
    } else {
        ok = *p == '+' || *p == '-';
        if (ok) {
            p++;
            ok = digits(&p, 2, &h) && *p == ':';
        }
        if (ok) {
            p++;
            ok = digits(&p, 2, &m) && *p == '\0' && h < 24 && m < 60;
        }
    }
    *offset_s = sign * (h * 3600 + m * 60);
    return ok;
}

/* An optional ".ddd...": milliseconds are kept, finer digits dropped. */
static bool parse_fraction(const char **p, int *ms)
{
    int n = 0, v = 0;
    bool ok = true;

    if (**p == '.') {
        for ((*p)++; isdigit((unsigned char)**p); (*p)++, n++) {
            v = n < 3 ? v * 10 + (**p - '0') : v;
        }
        ok = n > 0;
        for (; n < 3; n++) {
            v *= 10;
        }
    }
    *ms = v;
    return ok;
}

/* RFC 3339: 2026-01-05T10:00:00Z, with an optional fraction and a numeric offset. */
bool fl_machine__parse_rfc3339(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    int f[6] = {0}, frac = 0, zone = 0;
    const char *p = s;
    bool ok;

    ok = digits(&p, 4, &f[0]) && *p++ == '-' && digits(&p, 2, &f[1]) && *p++ == '-' &&
         digits(&p, 2, &f[2]) && (*p == 'T' || *p == 't' || *p == ' ');
    ok = ok && (p++, digits(&p, 2, &f[3])) && *p++ == ':' && digits(&p, 2, &f[4]) && *p++ == ':' &&
         digits(&p, 2, &f[5]);
    ok = ok && parse_fraction(&p, &frac) && parse_zone(p, &zone) && f[1] >= 1 && f[1] <= 12 &&
         f[2] >= 1 && f[2] <= 31 && f[3] < 24 && f[4] < 60 && f[5] <= 60;
    if (ok) {
        tm.tm_year = f[0] - 1900;
        tm.tm_mon = f[1] - 1;
        tm.tm_mday = f[2];
        tm.tm_hour = f[3];
        tm.tm_min = f[4];
        tm.tm_sec = f[5];
        *ms = ((int64_t)timegm(&tm) - zone) * 1000 + frac;
    }
    return ok;
}

/* When an at: transition's timer is due: its template must give an RFC 3339 string. */
static fl_rc at_due(fl_step *st, const fl_transition *t, int64_t *due, fl_err *err)
{
    fl_err cause;
    json_t *v = NULL;
    fl_rc rc;

    fl_machine__err_clear(&cause);
    rc = fl_machine__eval(st, t->at, &v, &cause);
    if (rc == FL_OK &&
        !(json_is_string(v) && fl_machine__parse_rfc3339(json_string_value(v), due))) {
        rc = fl_err_set(&cause, FL_EINVAL, "at must give an RFC 3339 time");
    }
    if (rc != FL_OK) {
        fl_machine__locate(err, st, "at of the transition", t->pos, &cause);
    } else {
        *due += t->offset_ms;
    }
    json_decref(v);
    return rc;
}

/* TIMER_ARM {timer, due_at_ms, entry_seq, transition ("s<i>" or "a<i>", as in the id)}.
 * An at: time already past is armed as it is, with due_at_ms <= now: the timer service
 * delivers it at once, so "fires at once" needs no special path here. */
static fl_rc arm_list(fl_step *st, const fl_transition_list *l, char list, fl_err *err)
{
    const fl_transition *t;
    char id[256], which[32];
    int64_t due = 0;
    fl_rc rc = FL_OK;

    for (size_t i = 0; i < l->count && rc == FL_OK; i++) {
        t = &l->items[i];
        if (t->trigger == FL_TRIGGER_AFTER) {
            due = st->now_ms + t->after_ms;
        } else if (t->trigger == FL_TRIGGER_AT) {
            rc = at_due(st, t, &due, err);
        } else {
            continue;
        }
        if (rc == FL_OK) {
            fl_machine__timer_id(st->in, list, i, id, sizeof(id));
            snprintf(which, sizeof(which), "%c%zu", list, i);
            fl_machine__effect(st, FL_EFFECT_TIMER_ARM,
                               json_pack("{s:s, s:I, s:I, s:s}", "timer", id, "due_at_ms",
                                         (json_int_t)due, "entry_seq",
                                         (json_int_t)st->in->entry_seq, "transition", which));
        }
    }
    return rc;
}

static fl_rc loop_error(fl_step *st, fl_err *err)
{
    char path[200] = "";
    size_t len = 0;
    int s;

    for (int i = 0; i < FL_MACHINE_TRACE; i++) {
        s = st->trace[(st->hops + i) % FL_MACHINE_TRACE];
        len += (size_t)snprintf(path + len, len < sizeof(path) ? sizeof(path) - len : 0, "%s\"%s\"",
                                i > 0 ? " -> " : "", st->wf->states[s].name);
        len = len < sizeof(path) ? len : sizeof(path);
    }
    return fl_err_set(err, FL_EINVAL,
                      "done: transitions loop through %s ... without settling after %d "
                      "transitions",
                      path, FL_MACHINE_MAX_HOPS);
}

/* Enters `target`: STATE_CHANGED, a new entry_seq (which makes the old entry's timers
 * and results stale), then a final state runs its entry actions (immediate only) and
 * ends the instance -- no timers -- while any other state arms its timers and runs its
 * entry list. The result of an earlier list is not visible in the new one. */
fl_rc fl_machine__enter(fl_step *st, int target, fl_err *err)
{
    fl_instance *in = st->in;
    const fl_state *s = &st->wf->states[target];
    fl_rc rc;

    if (st->hops >= FL_MACHINE_MAX_HOPS) {
        rc = loop_error(st, err);
        goto out;
    }
    st->trace[st->hops++ % FL_MACHINE_TRACE] = target;
    fl_machine__effect(st, FL_EFFECT_STATE_CHANGED,
                       fl_machine__state_changed(st, in->state, target));
    in->state = target;
    in->entry_seq++;
    in->entered_at_ms = st->now_ms;
    in->pc = 0;
    in->waiting = false;
    json_decref(st->result);
    st->result = NULL;
    json_decref(st->inst_json); /* instance.state changed */
    st->inst_json = NULL;
    if (s->final != FL_FINAL_NONE) {
        rc = fl_machine__run_immediate(st, &s->entry, "entry action", err);
        if (rc == FL_OK) {
            in->pc = s->entry.count;
            fl_machine__finish(st, s->final == FL_FINAL_FAILED ? FL_STATUS_FAILED
                                                               : FL_STATUS_COMPLETED);
        }
        goto out;
    }
    rc = arm_list(st, &s->transitions, 's', err);
    if (rc == FL_OK) {
        rc = arm_list(st, &st->wf->any_state, 'a', err);
    }
    if (rc == FL_OK) {
        rc = fl_machine__settle(st, err);
    }
out:
    return rc;
}
