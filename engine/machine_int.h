/* engine/machine_int.h -- private to the step function (machine.c, machine_actions.c,
 * instance.c). Nothing outside engine/machine*.c and engine/instance.c includes it.
 *
 * One step works on an fl_step: a working copy of the instance, the caller's effect list
 * (with the count it had on entry, so a failed step can be rolled back), and lazily built
 * views for expressions. Lazy, because most steps in a busy engine have no guard at all:
 * building the `event` and `instance` JSON for every step would cost more than the step.
 * The expression VM asks for a view (fl_expr_scope.provide) only when an expression reads
 * the variable, so an expression that never reads `instance` never builds it.
 *
 * Copy-on-write context: an instance's ctx and usage are immutable values that copies of
 * the instance share by reference. The first write of a step replaces in->ctx by a
 * shallow copy (json_copy), which the step then owns and may change; nested values are
 * never changed in place, only replaced at the top level, so sharing them is safe.
 *
 * Thread-safety: an fl_step lives on one thread's stack for one step. */
#ifndef FL_ENGINE_MACHINE_INT_H
#define FL_ENGINE_MACHINE_INT_H

#include "engine/machine.h"

/* A chain of done: transitions that has not settled after this many transitions in one
 * step is a definition bug (a -> b -> a with nothing to wait for), not a workload. */
#define FL_MACHINE_MAX_HOPS 100
#define FL_MACHINE_TRACE    8

struct fl_machine {
    fl_expr_vm *vm;
    /* The state names of the last definition stepped, as JSON strings that effects share
     * by reference: every step names two states twice (STATE_CHANGED and HISTORY), and
     * four fewer allocations per step is a fifth of its cost. Checked by name on use, so
     * a new definition at a freed one's address cannot return a wrong name. */
    const fl_workflow *names_wf;
    json_t **names;
    size_t nnames;
    /* Per target state, the last STATE_CHANGED data built ({from: changed_from[i], to:
     * i}): a state is mostly entered from the same one, and the value never changes. */
    json_t **changed;
    int *changed_from;
    /* The last event type seen, as a JSON string every HISTORY effect shares: a busy
     * engine sees a handful of types over and over. */
    json_t *type;
    /* The `event` view of expressions, kept between steps and updated in place: most of
     * its members (type, source, subject, tenant) repeat from one event to the next, and
     * building it from nothing costs more than the guard that reads it. It holds the
     * event's data only during a step. */
    json_t *ev_view;
    /* What `event.data` reads when an event carries no data (or null): an empty object,
     * so `event.data.x` is nil rather than an error that would dead-letter the event. */
    json_t *no_data;
};

/* What kind of trigger the current lookup is for. */
typedef enum fl_match {
    FL_MATCH_EVENT, /* the step's event: event:, after:/at: (timer), error: (failure) */
    FL_MATCH_DONE   /* the entry list just finished: done: only */
} fl_match;

typedef struct fl_step {
    fl_machine *m;
    const fl_workflow *wf;
    fl_instance *in; /* the working copy (owned until committed) */
    const fl_event *ev;
    int64_t now_ms;
    fl_effects *fx;     /* the caller's list; effects are appended in order */
    size_t fx_base;     /* fx->count on entry: a failed step truncates back to it */
    json_t *set;        /* the ctx fields written in this step, or NULL */
    bool ctx_owned;     /* in->ctx is this step's own (shallow) copy */
    json_t *result;     /* the last activity result of the running entry list, or NULL */
    const char *timer;  /* data.timer of a flowd.timer.fired event, or NULL */
    const char *error;  /* data.error of a failure of the pending activity, or NULL */
    bool timer_known;   /* the timer id is one armed by the current entry */
    json_t *event_json; /* views for expressions, NULL until needed: the machine's */
    json_t *inst_json;  /* (borrowed), and this step's (dropped on state or usage change) */
    json_t *now_json;   /* RFC 3339 of now_ms (this step's), NULL until an expression reads it */
    int from;           /* the state before the step; -1 when starting */
    bool unhandled;     /* the event changed nothing: no history, no seq */
    int hops;           /* external transitions fired in this step */
    int trace[FL_MACHINE_TRACE]; /* the last states entered, for the loop message */
} fl_step;

/* Clears an fl_err the cheap way: FL_ERR_INIT zeroes its 256-byte message, which the
 * lookups of every step would pay for although only a failure ever reads it. */
static inline void fl_machine__err_clear(fl_err *e)
{
    e->code = FL_OK;
    e->msg[0] = '\0';
}

/* machine.c */
fl_rc fl_machine__fire(fl_step *st, const fl_transition *t, fl_err *err);
fl_rc fl_machine__settle(fl_step *st, fl_err *err);
void fl_machine__finish(fl_step *st, fl_status status);
fl_rc fl_machine__eval(fl_step *st, const fl_tmpl *t, json_t **out, fl_err *err);
void fl_machine__effect(fl_step *st, fl_effect_kind kind, json_t *data);
void fl_machine__ctx_set(fl_step *st, const char *key, json_t *value);
void fl_machine__locate(fl_err *err, const fl_step *st, const char *what, fl_pos pos,
                        const fl_err *cause);

/* machine_actions.c */
void fl_machine__cache_free(fl_machine *m); /* names, type and event view */
json_t *fl_machine__state_name(fl_step *st, int state);
/* STATE_CHANGED data {from, to} (new reference to a value shared between steps). */
json_t *fl_machine__state_changed(fl_step *st, int from, int to);
/* The step's event type as a JSON string (new reference; NULL if it is not UTF-8). */
json_t *fl_machine__event_type(fl_step *st);
/* The `event` view for this step (borrowed from the machine until fl_machine__event_done). */
json_t *fl_machine__event_view(fl_step *st);
/* Drops the step's event data from the view, so nothing of the event outlives the step. */
void fl_machine__event_done(fl_step *st);
/* {k1: v1, k2: v2} (k2 may be NULL); takes v1 and v2. */
json_t *fl_machine__pair(const char *k1, json_t *v1, const char *k2, json_t *v2);
fl_rc fl_machine__run_immediate(fl_step *st, const fl_action_list *list, const char *what,
                                fl_err *err);
fl_rc fl_machine__run_entry(fl_step *st, fl_err *err);
fl_rc fl_machine__enter(fl_step *st, int target, fl_err *err);
bool fl_machine__has_timers(const fl_workflow *wf, int state);
void fl_machine__timer_id(const fl_instance *in, char list, size_t index, char *out, size_t size);
void fl_machine__activity_id(const fl_instance *in, size_t action, char *out, size_t size);

/* instance.c */
/* Copies the four identity strings into a new shared block owned by in (in->ids). */
void fl_instance__set_ids(fl_instance *in, const char *id, const char *key, const char *tenant,
                          const char *workflow);
json_t *fl_instance__view(const fl_instance *in, const fl_workflow *wf);
bool fl_machine__parse_rfc3339(const char *s, int64_t *ms);

#endif
