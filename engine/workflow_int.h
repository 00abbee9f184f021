/* engine/workflow_int.h -- private to the workflow loader (engine/workflow*.c).
 *
 * Loading happens in three passes, each in its own file:
 *   1. workflow_yaml.c turns the text into a tree of fl_yn nodes, each with its line:col
 *      (engine/yaml_tree.c, shared with the agent profile loader). This is where the caps
 *      live (size, depth, nodes with aliases expanded) and where duplicate keys are found.
 *      A YAML syntax error ends this pass: libyaml cannot resume after one, so it is the
 *      only problem reported then.
 *   2. workflow_build.c / workflow_action.c walk that tree into the fl_workflow model.
 *      Every problem is added to the diags and the walk goes on (a broken part is left
 *      empty), so one run reports everything.
 *   3. workflow_check.c checks the state graph (reachability, ways out, finals).
 * workflow_time.c parses durations and cron expressions.
 *
 * Thread-safety: everything works on a caller-owned fl_wf_ctx; reentrant. */
#ifndef FL_ENGINE_WORKFLOW_INT_H
#define FL_ENGINE_WORKFLOW_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/diag.h"
#include "engine/workflow.h"
#include "engine/yaml_tree.h"

typedef struct fl_wf_ctx {
    const char *path;
    const char *text;
    size_t len;
    const fl_workflow_limits *lim;
    fl_diags *diags;
    size_t diags_at_start; /* count + dropped when this parse began */
    fl_yaml_tree tree;     /* owns every fl_yn of this parse */
    fl_workflow *wf;
    bool unresolved;    /* a `to:` or `initial` names no state: graph checks would only echo it */
    fl_pos initial_pos; /* of the `initial:` value */
} fl_wf_ctx;

/* Adds one problem at pos. */
void fl_wf__error(fl_wf_ctx *c, fl_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The number of problems this parse has reported so far. */
size_t fl_wf__nerrors(const fl_wf_ctx *c);

/* Pass 1. Returns the root node (a mapping) or NULL after reporting why. */
fl_yn *fl_wf__yaml_load(fl_wf_ctx *c);
void fl_wf__arena_free(fl_wf_ctx *c);

/* Tree helpers. */
fl_yn *fl_wf__get(const fl_yn *map, const char *key); /* the value, or NULL */
fl_yn *fl_wf__key(const fl_yn *map, const char *key); /* the key node, or NULL */
bool fl_wf__is_null(const fl_yn *n);
/* Reports every key of map that is not in allowed (NULL-terminated); `what` names the
 * mapping in the message ("a transition"). */
void fl_wf__check_keys(fl_wf_ctx *c, const fl_yn *map, const char *const *allowed,
                       const char *what);
/* A scalar's JSON value (YAML 1.2 core schema for plain scalars). NULL after an error. */
json_t *fl_wf__scalar_json(fl_wf_ctx *c, const fl_yn *n);
/* Any node as JSON; with `exprs`, every string is checked as a template. NULL on error. */
json_t *fl_wf__to_json(fl_wf_ctx *c, const fl_yn *n, bool exprs);
/* A node as a compiled template (strings checked); NULL after an error. */
fl_tmpl *fl_wf__tmpl(fl_wf_ctx *c, const fl_yn *n);
/* The string of a string scalar, or NULL after reporting "`what` must be a string". */
const char *fl_wf__string(fl_wf_ctx *c, const fl_yn *n, const char *what);
/* Position of byte `off` of a scalar's text (its start when the text does not map 1:1). */
fl_pos fl_wf__scalar_pos(const fl_wf_ctx *c, const fl_yn *n, size_t off);
bool fl_wf__is_identifier(const char *s);
/* A duration scalar; reports and returns false when bad. */
bool fl_wf__duration(fl_wf_ctx *c, const fl_yn *n, bool allow_negative, const char *what,
                     int64_t *ms);

/* Pass 2. */
void fl_wf__build(fl_wf_ctx *c, const fl_yn *root);
void fl_wf__action_list(fl_wf_ctx *c, const fl_yn *n, fl_action_list *out, int where);
void fl_wf__action_list_free(fl_action_list *l);
/* A `set:` mapping (context field -> template) as one template; NULL after an error. */
fl_tmpl *fl_wf__set_map(fl_wf_ctx *c, const fl_yn *n);
/* `where` of an action list. */
enum { FL_WF_IN_ENTRY, FL_WF_IN_FINAL_ENTRY, FL_WF_IN_EXIT, FL_WF_IN_DO };

/* Pass 3. */
void fl_wf__check_graph(fl_wf_ctx *c);

/* workflow_time.c: a five-field cron expression; on failure *bad_off is the byte offset
 * of the offending field and why says what is wrong. */
bool fl_wf__cron_valid(const char *s, size_t *bad_off, char *why, size_t why_size);

#endif
