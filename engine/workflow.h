/* engine/workflow.h -- the workflow definition model and its YAML loader.
 *
 * A definition is a state machine declared in YAML (docs/workflows.md). The loader
 * (libyaml, with its own caps on size, nesting depth and aliases, since libyaml 0.2.5
 * has none) builds this model and checks it: unknown or duplicate keys, missing fields,
 * bad durations and retry values, unknown states, unreachable states, states with no way
 * out, Lua that does not compile, and the rest listed in docs/workflows.md. It reports
 * every problem it finds, each with file:line:col, not just the first.
 *
 * The model is a transparent, immutable tree (like a parsed AST): the step function, the
 * validator and the graph renderer read it directly. It owns all its memory; free it
 * with fl_workflow_free. Indexes (state, action) are stable and used in instance state.
 *
 * Thread-safety: a loaded fl_workflow is immutable and may be shared by all threads. */
#ifndef FL_ENGINE_WORKFLOW_H
#define FL_ENGINE_WORKFLOW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/backoff.h"
#include "core/diag.h"
#include "core/err.h"
#include "engine/expr.h"

/* Where something was written, for messages. */
typedef struct fl_pos {
    unsigned line, col; /* 1-based */
} fl_pos;

typedef enum fl_trigger_kind {
    FL_TRIGGER_EVENT, /* event: TYPE */
    FL_TRIGGER_AFTER, /* after: DURATION since entering the state */
    FL_TRIGGER_AT,    /* at: RFC 3339 time (a template), plus offset */
    FL_TRIGGER_ERROR, /* error: TYPE | any -- an activity of the entry list failed */
    FL_TRIGGER_DONE   /* done: true -- the entry action list finished */
} fl_trigger_kind;

typedef enum fl_action_kind {
    /* immediate: allowed in entry, exit and do */
    FL_ACTION_SET,   /* set: {name: template, ...} */
    FL_ACTION_EMIT,  /* emit: {type, topic?, subject?, data?} */
    FL_ACTION_START, /* start: {workflow, input?, key?} */
    FL_ACTION_LOG,   /* log: {message, level?} */
    FL_ACTION_REPLY, /* reply: {content, agent?, usage?} */
    /* activity: allowed only in entry */
    FL_ACTION_CALL /* call: llm | http | flowd.<operation>, with: {...} */
} fl_action_kind;

/* The backoff kinds are core/backoff.h's, so the activity worker applies a definition's
 * retry policy without translating it. */
typedef fl_backoff_kind fl_backoff;

typedef struct fl_retry {
    int attempts; /* >= 1; 1 = no retry */
    fl_backoff backoff;
    int64_t delay_ms;
    int64_t max_delay_ms; /* 0 = none */
} fl_retry;

typedef struct fl_action {
    fl_action_kind kind;
    fl_pos pos;
    /* The action's argument object as a template: for set the {name: value} map; for
     * emit/start/log/reply their object; for call its `with` object (may be NULL). */
    fl_tmpl *args;
    /* call only */
    char *call;         /* "llm", "http", "flowd.purge", ... */
    char *into;         /* ctx field the result is written to, or NULL */
    fl_retry retry;     /* defaults: 1 attempt */
    int64_t timeout_ms; /* 0 = the engine's default */
} fl_action;

typedef struct fl_action_list {
    fl_action *items;
    size_t count;
} fl_action_list;

typedef struct fl_transition {
    fl_pos pos;
    fl_trigger_kind trigger;
    char *event;            /* FL_TRIGGER_EVENT: the CloudEvents type */
    int64_t after_ms;       /* FL_TRIGGER_AFTER */
    fl_tmpl *at;            /* FL_TRIGGER_AT: evaluates to an RFC 3339 string */
    int64_t offset_ms;      /* FL_TRIGGER_AT: added to `at` (may be negative) */
    char *error;            /* FL_TRIGGER_ERROR: an error type, or "any" */
    fl_tmpl *guard;         /* if:, or NULL */
    fl_tmpl *set;           /* set: {name: template}, or NULL */
    fl_action_list actions; /* do: (immediate actions only) */
    int target;             /* index into states, or -1 for an internal transition (no to:) */
} fl_transition;

typedef struct fl_transition_list {
    fl_transition *items;
    size_t count;
} fl_transition_list;

typedef enum fl_final { FL_FINAL_NONE, FL_FINAL_COMPLETED, FL_FINAL_FAILED } fl_final;

typedef struct fl_state {
    char *name;
    fl_pos pos;
    fl_final final;
    fl_action_list entry;
    fl_action_list exit;
    fl_transition_list transitions;
} fl_state;

typedef enum fl_schedule_kind {
    FL_SCHEDULE_NONE,
    FL_SCHEDULE_CRON,
    FL_SCHEDULE_EVERY
} fl_schedule_kind;

typedef struct fl_schedule {
    fl_schedule_kind kind;
    char *cron;       /* five-field cron expression, validated */
    int64_t every_ms; /* FL_SCHEDULE_EVERY */
} fl_schedule;

typedef struct fl_workflow {
    char *path;  /* the file it was loaded from, for messages */
    char *name;  /* [a-z][a-z0-9_.-]* */
    int version; /* >= 1 */
    char *description;
    char **triggers; /* event types that start a new instance for an unknown key */
    size_t ntriggers;
    int initial;     /* index into states */
    json_t *context; /* the initial context (any JSON value; an object when absent: {}) */
    fl_transition_list any_state;
    fl_state *states; /* in file order */
    size_t nstates;
    fl_schedule schedule;
    fl_pos pos; /* of the `workflow:` name, for problems found across a set of files */
} fl_workflow;

/* Caps for untrusted definitions (R5.2). */
typedef struct fl_workflow_limits {
    size_t max_bytes; /* file size */
    int max_depth;    /* YAML nesting */
    size_t max_nodes; /* YAML nodes, aliases included */
    size_t max_states;
} fl_workflow_limits;

#define FL_WORKFLOW_LIMITS_DEFAULT {1 << 20, 32, 100000, 1000}

/* Parses and checks one definition. `path` names the text in messages. Every problem is
 * appended to diags (sorted by position).
 * Ownership: *out is owned by the caller (fl_workflow_free); NULL unless FL_OK.
 * Errors: FL_EINVAL (at least one problem in diags), FL_ETOOBIG (over max_bytes; also in
 * diags). */
fl_rc fl_workflow_parse(const char *text, size_t len, const char *path,
                        const fl_workflow_limits *lim, fl_workflow **out, fl_diags *diags);

/* fl_workflow_parse on the contents of a file. Errors: as parse, plus FL_ENOTFOUND and
 * FL_EIO (in diags, without a line). */
fl_rc fl_workflow_load(const char *path, const fl_workflow_limits *lim, fl_workflow **out,
                       fl_diags *diags);

/* Checks what spans definitions loaded together: names are unique per (name, version),
 * and a `start:` whose workflow is a constant names one of them. Errors: FL_EINVAL. */
fl_rc fl_workflow_check_set(fl_workflow *const *wfs, size_t n, fl_diags *diags);

/* A copy of a definition's text whose top-level `version:` value says `version`, every
 * other byte unchanged (comments and layout kept): the API stores versions it numbers.
 * Ownership: *out is owned by the caller (free()), NUL-terminated; NULL unless FL_OK.
 * Errors: FL_EINVAL (no top-level `version:` scalar). */
fl_rc fl_workflow_set_version(const char *text, size_t len, int version, char **out, fl_err *err);

void fl_workflow_free(fl_workflow *wf); /* NULL-safe */

/* Lookups. Return -1 when there is no such state. */
int fl_workflow_state_index(const fl_workflow *wf, const char *name);

/* True when some `triggers:` entry is `type`. */
bool fl_workflow_is_triggered_by(const fl_workflow *wf, const char *type);

/* Durations as definitions write them: 500ms 30s 15m 48h 7d, or ISO 8601 (PT48H, P1DT2H,
 * PT0.5S). A leading '-' is allowed when `allow_negative` (at's offset).
 * Returns false when malformed. */
bool fl_workflow_parse_duration(const char *s, bool allow_negative, int64_t *ms);

#endif
