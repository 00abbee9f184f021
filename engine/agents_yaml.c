/* engine/agents_yaml.c -- pass 1 of the agent profile loader: YAML text -> node tree.
 *
 * The tree is built by engine/yaml_tree.c with the profile's caps on depth and node
 * count. Aliases are refused outright: a profile is a short hand-written file with no use
 * for them, and refusing them rules out "billion laughs" and cycles. This file files the
 * problems in the parse's diags and says what the root must be.
 *
 * Thread-safety: reentrant. */
#include <stdarg.h>
#include <stdio.h>

#include "engine/agents_int.h"

void fl_agents__error(fl_ag_ctx *c, unsigned line, unsigned col, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fl_diags_add(c->diags, c->path, line, col, "%s", msg);
    c->errors++;
}

static void to_diags(void *ud, fl_pos pos, const char *msg)
{
    fl_agents__error(ud, pos.line, pos.col, "%s", msg);
}

static fl_yaml_sink sink_of(fl_ag_ctx *c)
{
    return (fl_yaml_sink){.fn = to_diags, .ud = c};
}

void fl_agents__arena_free(fl_ag_ctx *c)
{
    fl_yaml_tree_deinit(&c->tree);
}

fl_yn *fl_agents__yaml(fl_ag_ctx *c)
{
    fl_yaml_tree_opts o = {.max_nodes = FL_AGENT_MAX_NODES,
                           .max_depth = FL_AGENT_MAX_DEPTH,
                           .alias_refusal = "YAML aliases are not allowed in agent profiles",
                           .sink = sink_of(c)};
    size_t before = c->errors;
    fl_yn *root = fl_yaml_tree_parse(&c->tree, c->text, c->len, &o);

    if (!root && c->errors == before) {
        fl_agents__error(c, 1, 1, "the file is empty: an agent profile is a mapping");
    } else if (root && root->kind != FL_YN_MAP) {
        fl_agents__error(c, root->pos.line, root->pos.col,
                         "an agent profile must be a mapping of keys to values");
        root = NULL;
    }
    return root;
}

void fl_agents__check_keys(fl_ag_ctx *c, const fl_yn *map, const char *const *allowed,
                           const char *what)
{
    fl_yaml_sink sink = sink_of(c);

    fl_yaml_tree_check_keys(map, allowed, what, &sink);
}
