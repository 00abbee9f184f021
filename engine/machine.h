/* engine/machine.h -- the pure step function of a workflow instance.
 *
 *   (definition, instance, event, now) -> (new instance, effects)
 *
 * It performs no I/O and includes no libpq, librdkafka or curl header: every consequence
 * of a step is an fl_effect that the engine persists in one transaction (ARCHITECTURE.md
 * section 2). The same inputs give the same outputs, byte for byte: ids of timers and
 * activities derive from the instance id and its entry sequence, JSON is built in a
 * fixed order, and time comes only from `now_ms`.
 *
 * Semantics (docs/workflows.md has them in full): an event is matched against the
 * current state's transitions in file order, then any_state; the first whose trigger
 * matches and whose guard holds fires: source exit actions, the transition's set then
 * do, target entry actions. No match = unhandled (an effect, not an error). Entry lists
 * run in order; a call suspends the list until its result event arrives. Timers are
 * armed on entry and cancelled on exit; results and timers of an earlier entry are stale
 * and ignored.
 *
 * Thread-safety: an fl_machine (it owns a Lua VM) belongs to one thread at a time;
 * definitions and instances passed in are only read. */
#ifndef FL_ENGINE_MACHINE_H
#define FL_ENGINE_MACHINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "engine/expr.h"
#include "engine/workflow.h"

/* Event types the engine itself produces (through the outbox) and the machine reads. */
#define FL_EVENT_INSTANCE_START  "flowd.instance.start"
#define FL_EVENT_INSTANCE_CANCEL "flowd.instance.cancel"
#define FL_EVENT_TIMER_FIRED     "flowd.timer.fired" /* data: {timer} */
#define FL_EVENT_ACTIVITY_COMPLETED \
    "flowd.activity.completed"                           /* data: {activity, result, usage?} */
#define FL_EVENT_ACTIVITY_FAILED "flowd.activity.failed" /* data: {activity, error, message} */
#define FL_EVENT_CHILD_COMPLETED "flowd.child.completed"
#define FL_EVENT_CHILD_FAILED    "flowd.child.failed"
#define FL_EVENT_SCHEDULE_TICK   "flowd.schedule.tick"

typedef enum fl_status {
    FL_STATUS_RUNNING,
    FL_STATUS_COMPLETED,
    FL_STATUS_FAILED,
    FL_STATUS_CANCELLED
} fl_status;

const char *fl_status_name(fl_status s); /* "running", "completed", ... */

/* The block that holds an instance's four identity strings (private to instance.c). */
typedef struct fl_instance_ids fl_instance_ids;

/* One instance's state. The engine stores it as a row (fl_instance_to_json /
 * fl_instance_from_json give the row's JSON form). */
typedef struct fl_instance {
    /* id, key, tenant and workflow never change over an instance's life: they point into
     * one reference-counted block that fl_instance_dup shares instead of copying (a step
     * would otherwise spend a tenth of its time copying them). Read-only. */
    const char *id;  /* UUIDv7, given by the engine */
    const char *key; /* the CloudEvents subject that addresses it */
    const char *tenant;
    const char *workflow; /* definition name and version it runs on */
    fl_instance_ids *ids; /* owns the four strings above */
    int version;
    int state; /* index into the definition's states */
    fl_status status;
    /* ctx and usage are owned references to values that are never changed in place:
     * fl_instance_dup shares them, and the step function replaces them (copy on write).
     * Code that wants another context must set a new value, not edit this one. */
    json_t *ctx;           /* the context */
    json_t *usage;         /* {tokens_in, tokens_out (integers), cost (real)} */
    int64_t entered_at_ms; /* when the current state was entered */
    int64_t entry_seq;     /* counts state entries; tags the timers and activities of one */
    size_t pc;             /* next entry action to run; == entry.count when the list is done */
    bool waiting;          /* suspended on the call at entry.items[pc] */
    int64_t seq;           /* history sequence of the last step */
} fl_instance;

void fl_instance_free(fl_instance *in); /* NULL-safe */
fl_instance *fl_instance_dup(const fl_instance *in);

/* The instance as JSON (sorted keys): id, key, tenant, workflow, version, state (name),
 * status, context, usage, entered_at (ms), entry_seq, pc, waiting, seq.
 * Ownership: new reference. */
json_t *fl_instance_to_json(const fl_instance *in, const fl_workflow *wf);

/* The inverse. Errors: FL_EINVAL (a field is missing or the state is not in wf). */
fl_rc fl_instance_from_json(const json_t *j, const fl_workflow *wf, fl_instance **out, fl_err *err);

/* A CloudEvent as the machine sees it. Every pointer is borrowed for the step. */
typedef struct fl_event {
    const char *id;
    const char *type;
    const char *source;
    const char *subject;
    const char *tenant;
    const char *time; /* RFC 3339 */
    const json_t *data;
} fl_event;

/* The event as the `event` variable of expressions. Ownership: new reference. */
json_t *fl_event_to_json(const fl_event *ev);

typedef enum fl_effect_kind {
    FL_EFFECT_STATE_CHANGED, /* {from, to} */
    FL_EFFECT_CONTEXT,       /* {set: {name: value}} -- the fields a step wrote */
    FL_EFFECT_HISTORY,       /* {seq, event_id, event_type, from, to, note?} */
    FL_EFFECT_EMIT,          /* {type, topic?, subject, data} */
    FL_EFFECT_REPLY,         /* {content, agent?, usage?} */
    FL_EFFECT_TIMER_ARM,     /* {timer, due_at_ms, entry_seq, transition} */
    FL_EFFECT_TIMER_CANCEL,  /* {entry_seq}: every timer armed by that entry */
    FL_EFFECT_ACTIVITY_START, /* {activity, call, with, into?, retry, timeout_ms, entry_seq, action} */
    FL_EFFECT_CHILD_START,    /* {workflow, key, input} */
    FL_EFFECT_LOG,            /* {level, message} */
    FL_EFFECT_FINISHED,       /* {status} */
    FL_EFFECT_UNHANDLED       /* {event_id, event_type, reason} */
} fl_effect_kind;

const char *fl_effect_kind_name(fl_effect_kind k); /* "state_changed", ... */

/* data is an owned reference to a value that is never changed in place: effects share
 * parts of it (state names, event types, whole STATE_CHANGED values) with each other and
 * with later steps, as instances share ctx. Code that wants another value copies it. */
typedef struct fl_effect {
    fl_effect_kind kind;
    json_t *data; /* owned reference; read-only */
} fl_effect;

typedef struct fl_effects {
    fl_effect *items;
    size_t count;
    size_t cap;
} fl_effects;

void fl_effects_init(fl_effects *fx);
void fl_effects_deinit(fl_effects *fx); /* frees every effect; the list can be reused */
/* Frees every effect but keeps the array, so a loop that reuses the list allocates once. */
void fl_effects_clear(fl_effects *fx);
/* Frees the effects past the first `count`. */
void fl_effects_truncate(fl_effects *fx, size_t count);
/* Appends one effect. Ownership: takes `data`, even on failure (it cannot fail). */
void fl_effects_add_take(fl_effects *fx, fl_effect_kind kind, json_t *data);

/* [{"kind": "...", ...data}, ...] with sorted keys, for tests and logs. New reference. */
json_t *fl_effects_to_json(const fl_effects *fx);

typedef struct fl_machine fl_machine;

/* Ownership: *out is owned by the caller (fl_machine_free). Errors: FL_EINTERNAL. */
fl_rc fl_machine_new(fl_machine **out, const fl_expr_limits *limits, fl_err *err);
void fl_machine_free(fl_machine *m); /* NULL-safe */

/* Who a new instance is: given by the engine. */
typedef struct fl_instance_init {
    const char *id;
    const char *key;
    const char *tenant;
} fl_instance_init;

/* Creates an instance of wf in its initial state, started by `ev` (bound as `event` in
 * the initial entry actions; it is not matched again), and runs its entry.
 * Ownership: *out is owned by the caller; effects are appended to fx.
 * Errors: FL_EINVAL (an expression failed: err says where; nothing is appended). */
fl_rc fl_machine_start(fl_machine *m, const fl_workflow *wf, const fl_instance_init *init,
                       const fl_event *ev, int64_t now_ms, fl_instance **out, fl_effects *fx,
                       fl_err *err);

/* Delivers ev to the instance `in`. *out is the instance after the step (a new object,
 * even when nothing changed); effects are appended to fx. An event that matches nothing,
 * a stale timer or activity result, or any event for an ended instance gives an
 * FL_EFFECT_UNHANDLED effect and FL_OK.
 * Errors: FL_EINVAL (a guard or action expression failed, or a chain of done:
 * transitions did not settle) -- the engine retries, then dead-letters the event. */
fl_rc fl_machine_step(fl_machine *m, const fl_workflow *wf, const fl_instance *in,
                      const fl_event *ev, int64_t now_ms, fl_instance **out, fl_effects *fx,
                      fl_err *err);

#endif
