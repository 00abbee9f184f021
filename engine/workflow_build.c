/* engine/workflow_build.c -- pass 2 of the workflow loader: the fl_yn tree -> the model.
 *
 * Each part is built on its own and a broken part is reported and left empty (a missing
 * target is -1, a bad duration 0), so the walk always reaches the end of the file and
 * reports every problem. Whether the result is usable is decided once, at the end, by
 * counting the problems (fl_workflow_parse).
 *
 * Thread-safety: reentrant. */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "engine/workflow_int.h"

static const char *const top_keys[] = {"workflow", "version", "description", "triggers",
                                       "initial",  "context", "any_state",   "states",
                                       "schedule", NULL};
static const char *const state_keys[] = {"entry", "exit", "transitions", "final", NULL};
static const char *const transition_keys[] = {"event", "after", "at", "offset", "error", "done",
                                              "if",    "set",   "do", "to",     NULL};
static const char *const trigger_keys[] = {"event", "after", "at", "error", "done", NULL};
static const char *const schedule_keys[] = {"cron", "every", NULL};

static bool valid_name(const char *s)
{
    if (!(*s >= 'a' && *s <= 'z')) {
        return false;
    }
    for (s++; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr("_.-", *s))) {
            return false;
        }
    }
    return true;
}

static void build_name(fl_wf_ctx *c, const fl_yn *n)
{
    const char *s = fl_wf__string(c, n, "workflow");

    if (!s) {
        return;
    }
    if (!valid_name(s)) {
        fl_wf__error(c, n->pos,
                     "bad workflow name \"%s\": use lower case letters, digits, _ . and -, "
                     "starting with a letter",
                     s);
    }
    c->wf->name = fl_xstrdup(s);
    c->wf->pos = n->pos;
}

static void build_version(fl_wf_ctx *c, const fl_yn *n)
{
    char *end = NULL;
    long v = 0;

    if (n->kind == FL_YN_SCALAR && n->plain && n->len && n->len < 10 &&
        strspn(n->value, "0123456789") == n->len) {
        v = strtol(n->value, &end, 10);
    }
    if (v < 1) {
        fl_wf__error(c, n->pos, "version must be a positive integer");
        return;
    }
    c->wf->version = (int)v;
}

static void build_triggers(fl_wf_ctx *c, const fl_yn *n)
{
    if (n->kind != FL_YN_SEQ) {
        fl_wf__error(c, n->pos, "triggers must be a list of event types");
        return;
    }
    c->wf->triggers = fl_xcalloc(n->n + 1, sizeof(char *));
    for (size_t i = 0; i < n->n; i++) {
        const char *s = fl_wf__string(c, n->items[i], "a trigger (an event type)");
        if (s) {
            c->wf->triggers[c->wf->ntriggers++] = fl_xstrdup(s);
        }
    }
}

static void build_context(fl_wf_ctx *c, const fl_yn *n)
{
    json_t *j;

    if (!n || fl_wf__is_null(n)) {
        return; /* stays {} */
    }
    if (n->kind != FL_YN_MAP) {
        /* `set` writes fields into the context, so it has to be an object */
        fl_wf__error(c, n->pos, "context must be a mapping of field names to values");
        return;
    }
    j = fl_wf__to_json(c, n, false);
    if (j) {
        json_decref(c->wf->context);
        c->wf->context = j;
    }
}

static void build_schedule(fl_wf_ctx *c, const fl_yn *n)
{
    const fl_yn *cron = fl_wf__get(n, "cron"), *every = fl_wf__get(n, "every");
    char why[200];
    size_t off = 0;
    const char *s;

    fl_wf__check_keys(c, n, schedule_keys, "schedule");
    if (n->kind != FL_YN_MAP || (cron != NULL) == (every != NULL)) {
        fl_wf__error(c, n->pos, "schedule must have exactly one of cron or every");
        c->wf->schedule.kind = FL_SCHEDULE_EVERY; /* it was meant to be scheduled */
        return;
    }
    if (every) {
        c->wf->schedule.kind = FL_SCHEDULE_EVERY;
        if (fl_wf__duration(c, every, false, "every", &c->wf->schedule.every_ms) &&
            c->wf->schedule.every_ms <= 0) {
            fl_wf__error(c, every->pos, "every must be longer than zero");
        }
        return;
    }
    c->wf->schedule.kind = FL_SCHEDULE_CRON;
    s = fl_wf__string(c, cron, "cron");
    if (s && !fl_wf__cron_valid(s, &off, why, sizeof(why))) {
        fl_wf__error(c, fl_wf__scalar_pos(c, cron, off), "bad cron expression \"%s\": %s", s, why);
    } else if (s) {
        c->wf->schedule.cron = fl_xstrdup(s);
    }
}

/* The trigger keys of a transition, in file order: exactly one is allowed. */
static const fl_yn *find_trigger(fl_wf_ctx *c, const fl_yn *n)
{
    const fl_yn *first = NULL;

    for (size_t i = 0; i < n->n; i++) {
        const fl_yn *k = n->items[2 * i];
        size_t j = 0;
        while (k->kind == FL_YN_SCALAR && trigger_keys[j] && strcmp(trigger_keys[j], k->value)) {
            j++;
        }
        if (k->kind != FL_YN_SCALAR || !trigger_keys[j]) {
            continue;
        }
        if (first) {
            fl_wf__error(c, k->pos,
                         "a transition has exactly one trigger, but \"%s\" and \"%s\" "
                         "are both given",
                         first->value, k->value);
            continue;
        }
        first = k;
    }
    if (!first) {
        fl_wf__error(c, n->pos,
                     "a transition needs a trigger: one of event, after, at, error or done");
    }
    return first;
}

static void build_trigger(fl_wf_ctx *c, const fl_yn *n, const fl_yn *key, fl_transition *t)
{
    const fl_yn *v = fl_wf__get(n, key->value);
    const char *s;

    if (!strcmp(key->value, "event")) {
        t->trigger = FL_TRIGGER_EVENT;
        s = fl_wf__string(c, v, "event");
        t->event = s ? fl_xstrdup(s) : NULL;
    } else if (!strcmp(key->value, "after")) {
        t->trigger = FL_TRIGGER_AFTER;
        fl_wf__duration(c, v, false, "after", &t->after_ms);
    } else if (!strcmp(key->value, "at")) {
        t->trigger = FL_TRIGGER_AT;
        if (fl_wf__string(c, v, "at")) {
            t->at = fl_wf__tmpl(c, v);
        }
    } else if (!strcmp(key->value, "error")) {
        t->trigger = FL_TRIGGER_ERROR;
        s = fl_wf__string(c, v, "error (an error type or any)");
        t->error = s ? fl_xstrdup(s) : NULL;
    } else {
        t->trigger = FL_TRIGGER_DONE;
        if (v->kind != FL_YN_SCALAR || !v->plain || strcmp(v->value, "true") != 0) {
            fl_wf__error(c, v->pos, "done must be true");
        }
    }
}

static void build_guard(fl_wf_ctx *c, const fl_yn *n, fl_transition *t)
{
    if (n->kind != FL_YN_SCALAR || !fl_expr_has_template(n->value)) {
        /* a constant string would always be true: surely a forgotten ${ } */
        fl_wf__error(c, n->pos, "if must be an expression: ${ ... }");
        return;
    }
    t->guard = fl_wf__tmpl(c, n);
}

static void build_target(fl_wf_ctx *c, const fl_yn *n, fl_transition *t)
{
    const char *s = fl_wf__string(c, n, "to (a state name)");

    if (!s) {
        c->unresolved = true;
        return;
    }
    t->target = fl_workflow_state_index(c->wf, s);
    if (t->target < 0) {
        fl_wf__error(c, n->pos, "transition target \"%s\" is not a state", s);
        c->unresolved = true;
    }
}

/* Everything of a transition but its trigger. */
static void build_transition_rest(fl_wf_ctx *c, const fl_yn *n, const fl_yn *trig, fl_transition *t)
{
    const fl_yn *offset = fl_wf__get(n, "offset"), *guard = fl_wf__get(n, "if");
    const fl_yn *set = fl_wf__get(n, "set"), *to = fl_wf__get(n, "to");

    if (offset && (!trig || strcmp(trig->value, "at") != 0)) {
        fl_wf__error(c, fl_wf__key(n, "offset")->pos, "offset is only allowed with at");
    } else if (offset) {
        fl_wf__duration(c, offset, true, "offset", &t->offset_ms);
    }
    if (guard) {
        build_guard(c, guard, t);
    }
    if (set) {
        t->set = fl_wf__set_map(c, set);
    }
    fl_wf__action_list(c, fl_wf__get(n, "do"), &t->actions, FL_WF_IN_DO);
    if (to) {
        build_target(c, to, t);
    }
}

static void build_transition(fl_wf_ctx *c, const fl_yn *n, fl_transition *t)
{
    const fl_yn *trig;

    t->pos = n->pos;
    t->target = -1;
    if (n->kind != FL_YN_MAP) {
        fl_wf__error(c, n->pos, "a transition must be a mapping such as {event: x, to: y}");
        return;
    }
    fl_wf__check_keys(c, n, transition_keys, "a transition");
    trig = find_trigger(c, n);
    if (trig) {
        build_trigger(c, n, trig, t);
    }
    build_transition_rest(c, n, trig, t);
}

static void build_transitions(fl_wf_ctx *c, const fl_yn *n, fl_transition_list *out)
{
    if (!n || fl_wf__is_null(n)) {
        return;
    }
    if (n->kind != FL_YN_SEQ) {
        fl_wf__error(c, n->pos, "transitions must be a list");
        return;
    }
    out->items = fl_xcalloc(n->n + 1, sizeof(*out->items));
    out->count = n->n;
    for (size_t i = 0; i < n->n; i++) {
        build_transition(c, n->items[i], &out->items[i]);
    }
}

static void build_final(fl_wf_ctx *c, const fl_yn *n, fl_state *st)
{
    if (n->kind == FL_YN_SCALAR && n->plain && !strcmp(n->value, "true")) {
        st->final = FL_FINAL_COMPLETED;
    } else if (n->kind == FL_YN_SCALAR && !strcmp(n->value, "failed")) {
        st->final = FL_FINAL_FAILED;
    } else {
        fl_wf__error(c, n->pos, "final must be true or failed");
        st->final = FL_FINAL_COMPLETED; /* meant to be final: no "no way out" echo */
    }
}

static void build_state(fl_wf_ctx *c, const fl_yn *n, fl_state *st)
{
    const fl_yn *final = fl_wf__get(n, "final"), *tr = fl_wf__get(n, "transitions");
    const fl_yn *ex = fl_wf__get(n, "exit");

    if (fl_wf__is_null(n)) {
        return; /* `idle:` with nothing under it */
    }
    if (n->kind != FL_YN_MAP) {
        fl_wf__error(c, n->pos, "state \"%s\" must be a mapping", st->name);
        return;
    }
    fl_wf__check_keys(c, n, state_keys, "a state");
    if (final) {
        build_final(c, final, st);
    }
    if (st->final && tr && !fl_wf__is_null(tr)) {
        fl_wf__error(c, fl_wf__key(n, "transitions")->pos,
                     "final state \"%s\" cannot have transitions: the instance ends there",
                     st->name);
    }
    if (st->final && ex && !fl_wf__is_null(ex)) {
        fl_wf__error(c, fl_wf__key(n, "exit")->pos,
                     "final state \"%s\" cannot have exit actions: it is never left", st->name);
    }
    fl_wf__action_list(c, fl_wf__get(n, "entry"), &st->entry,
                       st->final ? FL_WF_IN_FINAL_ENTRY : FL_WF_IN_ENTRY);
    fl_wf__action_list(c, ex, &st->exit, FL_WF_IN_EXIT);
    build_transitions(c, tr, &st->transitions);
}

/* Names first, so that every `to:` can be resolved while the states are built. */
static void collect_states(fl_wf_ctx *c, const fl_yn *n)
{
    fl_workflow *wf = c->wf;

    if (n->kind != FL_YN_MAP || n->n == 0) {
        fl_wf__error(c, n->pos, "states must be a mapping of state names to states");
        return;
    }
    if (n->n > c->lim->max_states) {
        fl_wf__error(c, n->pos, "too many states: %zu, at most %zu", n->n, c->lim->max_states);
        return;
    }
    wf->states = fl_xcalloc(n->n, sizeof(*wf->states));
    for (size_t i = 0; i < n->n; i++) {
        const char *name = fl_wf__string(c, n->items[2 * i], "a state name");
        if (name && fl_workflow_state_index(wf, name) < 0) {
            wf->states[wf->nstates].name = fl_xstrdup(name);
            wf->states[wf->nstates].pos = n->items[2 * i]->pos;
            wf->nstates++;
        }
    }
}

static void build_states(fl_wf_ctx *c, const fl_yn *root)
{
    const fl_yn *states = fl_wf__get(root, "states"), *initial = fl_wf__get(root, "initial");
    const char *s;

    if (states) {
        collect_states(c, states);
        for (size_t i = 0; i < c->wf->nstates; i++) {
            build_state(c, fl_wf__get(states, c->wf->states[i].name), &c->wf->states[i]);
        }
    }
    c->wf->initial = -1;
    s = initial ? fl_wf__string(c, initial, "initial") : NULL;
    if (s) {
        c->wf->initial = fl_workflow_state_index(c->wf, s);
        c->initial_pos = initial->pos;
    }
    if (s && c->wf->initial < 0) {
        fl_wf__error(c, initial->pos, "initial state \"%s\" is not a state", s);
    }
    if (c->wf->initial < 0) {
        c->unresolved = true;
    }
    build_transitions(c, fl_wf__get(root, "any_state"), &c->wf->any_state);
}

static void build_header(fl_wf_ctx *c, const fl_yn *root)
{
    static const char *const required[] = {"workflow", "version", "initial", "states", NULL};
    const fl_yn *v;

    for (size_t i = 0; required[i]; i++) {
        if (!fl_wf__get(root, required[i])) {
            fl_wf__error(c, root->pos, "missing required key \"%s\"", required[i]);
        }
    }
    v = fl_wf__get(root, "workflow");
    if (v) {
        build_name(c, v);
    }
    v = fl_wf__get(root, "version");
    if (v) {
        build_version(c, v);
    }
    v = fl_wf__get(root, "description");
    if (v && fl_wf__string(c, v, "description")) {
        c->wf->description = fl_xstrdup(v->value);
    }
    v = fl_wf__get(root, "triggers");
    if (v) {
        build_triggers(c, v);
    }
    build_context(c, fl_wf__get(root, "context"));
}

void fl_wf__build(fl_wf_ctx *c, const fl_yn *root)
{
    const fl_yn *schedule = fl_wf__get(root, "schedule");

    fl_wf__check_keys(c, root, top_keys, "the workflow");
    build_header(c, root);
    if (schedule) {
        build_schedule(c, schedule);
    }
    build_states(c, root);
}
