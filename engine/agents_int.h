/* engine/agents_int.h -- private to the agent profile loader (engine/agents*.c).
 *
 * Two passes, as in the workflow loader: agents_yaml.c turns the text into a tree of
 * located fl_yn nodes with engine/yaml_tree.c (caps on size, depth and node count,
 * aliases refused, duplicate keys reported); agents.c walks that tree into an fl_agent,
 * adding every problem to the diags and going on, so one run reports everything.
 *
 * Thread-safety: everything works on a caller-owned fl_ag_ctx; reentrant. */
#ifndef FL_ENGINE_AGENTS_INT_H
#define FL_ENGINE_AGENTS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/diag.h"
#include "engine/agents.h"
#include "engine/yaml_tree.h"

typedef struct fl_ag_ctx {
    const char *path;
    const char *text;
    size_t len;
    fl_diags *diags;
    size_t errors;     /* problems this parse reported */
    fl_yaml_tree tree; /* owns every node of this parse */
} fl_ag_ctx;

/* Adds one problem at line:col. */
void fl_agents__error(fl_ag_ctx *c, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Pass 1: the root mapping, or NULL after reporting why. */
fl_yn *fl_agents__yaml(fl_ag_ctx *c);
void fl_agents__arena_free(fl_ag_ctx *c);

/* Reports every key of the mapping map that is not in allowed (NULL-terminated); `what`
 * names the mapping in the message ("a slot"). */
void fl_agents__check_keys(fl_ag_ctx *c, const fl_yn *map, const char *const *allowed,
                           const char *what);

#endif
