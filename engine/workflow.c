/* engine/workflow.c -- the workflow definition model: parse, load, free, set checks and
 * lookups. The loader's passes live in workflow_yaml.c (YAML -> node tree, with the
 * caps), workflow_build.c and workflow_action.c (tree -> model) and workflow_check.c (the
 * state graph); workflow_int.h explains how they fit.
 *
 * Design: problems are never fatal to the walk. Each is added to the caller's fl_diags
 * with its line:col, the walk goes on with the broken part left empty, and the model is
 * handed out only when this parse added no problem at all.
 *
 * Thread-safety: reentrant; a returned model is immutable. */
#include "engine/workflow.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "engine/workflow_int.h"

static void transitions_free(fl_transition_list *l)
{
    for (size_t i = 0; i < l->count; i++) {
        fl_transition *t = &l->items[i];
        free(t->event);
        free(t->error);
        fl_tmpl_free(t->at);
        fl_tmpl_free(t->guard);
        fl_tmpl_free(t->set);
        fl_wf__action_list_free(&t->actions);
    }
    free(l->items);
}

void fl_workflow_free(fl_workflow *wf)
{
    if (!wf) {
        return;
    }
    for (size_t i = 0; i < wf->nstates; i++) {
        free(wf->states[i].name);
        fl_wf__action_list_free(&wf->states[i].entry);
        fl_wf__action_list_free(&wf->states[i].exit);
        transitions_free(&wf->states[i].transitions);
    }
    free(wf->states);
    transitions_free(&wf->any_state);
    for (size_t i = 0; i < wf->ntriggers; i++) {
        free(wf->triggers[i]);
    }
    free(wf->triggers);
    json_decref(wf->context);
    free(wf->schedule.cron);
    free(wf->description);
    free(wf->name);
    free(wf->path);
    free(wf);
}

fl_rc fl_workflow_parse(const char *text, size_t len, const char *path,
                        const fl_workflow_limits *lim, fl_workflow **out, fl_diags *diags)
{
    static const fl_workflow_limits defaults = FL_WORKFLOW_LIMITS_DEFAULT;
    fl_wf_ctx c = {.path = path ? path : "", .text = text, .len = len, .diags = diags};
    fl_yn *root;
    fl_rc rc = FL_EINVAL;

    *out = NULL;
    c.lim = lim ? lim : &defaults;
    c.diags_at_start = diags->count + diags->dropped;
    if (len > c.lim->max_bytes) {
        fl_diags_add(diags, c.path, 0, 0, "the file is larger than %zu bytes", c.lim->max_bytes);
        return FL_ETOOBIG;
    }
    c.wf = fl_xcalloc(1, sizeof(*c.wf));
    c.wf->path = fl_xstrdup(c.path);
    c.wf->context = json_object();
    c.wf->initial = -1;
    root = fl_wf__yaml_load(&c);
    if (root) {
        fl_wf__build(&c, root);
        fl_wf__check_graph(&c);
    }
    fl_wf__arena_free(&c);
    if (fl_wf__nerrors(&c) == 0) {
        *out = c.wf;
        c.wf = NULL;
        rc = FL_OK;
    }
    fl_workflow_free(c.wf);
    fl_diags_sort(diags);
    return rc;
}

fl_rc fl_workflow_load(const char *path, const fl_workflow_limits *lim, fl_workflow **out,
                       fl_diags *diags)
{
    static const fl_workflow_limits defaults = FL_WORKFLOW_LIMITS_DEFAULT;
    fl_err err = FL_ERR_INIT;
    fl_buf b;
    fl_rc rc;

    *out = NULL;
    lim = lim ? lim : &defaults;
    fl_buf_init(&b, lim->max_bytes);
    rc = fl_buf_read_file(&b, path, &err);
    if (rc == FL_ETOOBIG) {
        fl_diags_add(diags, path, 0, 0, "the file is larger than %zu bytes", lim->max_bytes);
        goto out;
    }
    if (rc != FL_OK) {
        fl_diags_add(diags, path, 0, 0, "%s", err.msg);
        goto out;
    }
    rc = fl_workflow_parse(b.data ? b.data : "", b.len, path, lim, out, diags);
out:
    fl_buf_deinit(&b);
    return rc;
}

int fl_workflow_state_index(const fl_workflow *wf, const char *name)
{
    for (size_t i = 0; i < wf->nstates; i++) {
        if (!strcmp(wf->states[i].name, name)) {
            return (int)i;
        }
    }
    return -1;
}

bool fl_workflow_is_triggered_by(const fl_workflow *wf, const char *type)
{
    for (size_t i = 0; i < wf->ntriggers; i++) {
        if (!strcmp(wf->triggers[i], type)) {
            return true;
        }
    }
    return false;
}

/* ---- checks across a set of definitions -------------------------------------------- */

static bool set_has(fl_workflow *const *wfs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (wfs[i]->name && !strcmp(wfs[i]->name, name)) {
            return true;
        }
    }
    return false;
}

/* A `start:` whose workflow is a constant must name a definition of the set. */
static size_t check_starts(fl_workflow *const *wfs, size_t n, const fl_workflow *wf,
                           const fl_action_list *l, fl_diags *diags)
{
    size_t bad = 0;

    for (size_t i = 0; i < l->count; i++) {
        const fl_action *a = &l->items[i];
        const json_t *w;
        if (a->kind != FL_ACTION_START || !a->args) {
            continue;
        }
        w = json_object_get(fl_tmpl_source(a->args), "workflow");
        if (json_is_string(w) && !fl_expr_has_template(json_string_value(w)) &&
            !set_has(wfs, n, json_string_value(w))) {
            fl_diags_add(diags, wf->path, a->pos.line, a->pos.col,
                         "start: workflow \"%s\" is not among the definitions loaded with this one",
                         json_string_value(w));
            bad++;
        }
    }
    return bad;
}

static size_t check_transitions(fl_workflow *const *wfs, size_t n, const fl_workflow *wf,
                                const fl_transition_list *l, fl_diags *diags)
{
    size_t bad = 0;

    for (size_t i = 0; i < l->count; i++) {
        bad += check_starts(wfs, n, wf, &l->items[i].actions, diags);
    }
    return bad;
}

static size_t check_one(fl_workflow *const *wfs, size_t n, size_t k, fl_diags *diags)
{
    const fl_workflow *wf = wfs[k];
    size_t bad = check_transitions(wfs, n, wf, &wf->any_state, diags);

    for (size_t j = 0; j < k; j++) {
        if (wf->name && wfs[j]->name && !strcmp(wf->name, wfs[j]->name) &&
            wf->version == wfs[j]->version) {
            fl_diags_add(diags, wf->path, wf->pos.line, wf->pos.col,
                         "workflow \"%s\" version %d is also defined in %s:%u:%u", wf->name,
                         wf->version, wfs[j]->path, wfs[j]->pos.line, wfs[j]->pos.col);
            bad++;
        }
    }
    for (size_t s = 0; s < wf->nstates; s++) {
        bad += check_starts(wfs, n, wf, &wf->states[s].entry, diags);
        bad += check_starts(wfs, n, wf, &wf->states[s].exit, diags);
        bad += check_transitions(wfs, n, wf, &wf->states[s].transitions, diags);
    }
    return bad;
}

fl_rc fl_workflow_check_set(fl_workflow *const *wfs, size_t n, fl_diags *diags)
{
    size_t bad = 0;

    for (size_t k = 0; k < n; k++) {
        bad += check_one(wfs, n, k, diags);
    }
    fl_diags_sort(diags);
    return bad ? FL_EINVAL : FL_OK;
}
