/* engine/workflow_yaml.c -- pass 1 of the workflow loader: YAML text -> fl_yn tree.
 *
 * The tree itself is built by engine/yaml_tree.c (caps on depth and on the node count
 * with aliases expanded, duplicate keys, located nodes); this file sets the workflow's
 * limits, files the problems in the parse's diags and says what the root must be.
 *
 * Thread-safety: reentrant. */
#include "engine/workflow_int.h"

static void to_diags(void *ud, fl_pos pos, const char *msg)
{
    fl_wf__error(ud, pos, "%s", msg);
}

static fl_yaml_sink sink_of(fl_wf_ctx *c)
{
    return (fl_yaml_sink){.fn = to_diags, .ud = c};
}

void fl_wf__arena_free(fl_wf_ctx *c)
{
    fl_yaml_tree_deinit(&c->tree);
}

fl_yn *fl_wf__yaml_load(fl_wf_ctx *c)
{
    fl_yaml_tree_opts o = {
        .max_nodes = c->lim->max_nodes, .max_depth = c->lim->max_depth, .sink = sink_of(c)};
    size_t before = fl_wf__nerrors(c);
    fl_yn *root = fl_yaml_tree_parse(&c->tree, c->text, c->len, &o);

    if (!root && fl_wf__nerrors(c) == before) {
        fl_wf__error(c, (fl_pos){1, 1}, "the file is empty: a workflow definition is a mapping");
    } else if (root && (root->kind != FL_YN_MAP)) {
        fl_wf__error(c, root->pos, "a workflow definition must be a mapping of keys to values");
        root = NULL;
    }
    return root;
}

fl_yn *fl_wf__get(const fl_yn *map, const char *key)
{
    return fl_yaml_tree_get(map, key);
}

fl_yn *fl_wf__key(const fl_yn *map, const char *key)
{
    return fl_yaml_tree_key(map, key);
}

bool fl_wf__is_null(const fl_yn *n)
{
    return fl_yaml_tree_is_null(n);
}

void fl_wf__check_keys(fl_wf_ctx *c, const fl_yn *map, const char *const *allowed, const char *what)
{
    fl_yaml_sink sink = sink_of(c);

    fl_yaml_tree_check_keys(map, allowed, what, &sink);
}
