/* engine/workflow_check.c -- pass 3 of the workflow loader: the state graph.
 *
 * Three questions, each answered once for the whole graph: which states can be reached
 * from `initial`, which non-final states have no way out, and whether any final state
 * is reachable at all (a scheduled workflow may run forever, so it need not have one).
 * `any_state` transitions are tried in every non-final state, so their targets are
 * reachable from any reachable non-final state, and one that leaves is a way out of
 * every state but its own target.
 *
 * Thread-safety: reentrant. */
#include <stdlib.h>

#include "core/mem.h"
#include "engine/workflow_int.h"

static void visit_list(const fl_transition_list *l, bool *seen, int *stack, size_t *top)
{
    for (size_t i = 0; i < l->count; i++) {
        int t = l->items[i].target;
        if (t >= 0 && !seen[t]) {
            seen[t] = true;
            stack[(*top)++] = t;
        }
    }
}

/* Depth-first from initial; every state is pushed at most once. */
static void reach(const fl_workflow *wf, bool *seen)
{
    int *stack = fl_xcalloc(wf->nstates + 1, sizeof(*stack));
    size_t top = 0;

    seen[wf->initial] = true;
    stack[top++] = wf->initial;
    while (top > 0) {
        const fl_state *st = &wf->states[stack[--top]];
        if (st->final) {
            continue; /* the instance ends there: nothing is tried */
        }
        visit_list(&st->transitions, seen, stack, &top);
        visit_list(&wf->any_state, seen, stack, &top);
    }
    free(stack);
}

static bool list_leaves(const fl_transition_list *l, int self)
{
    for (size_t i = 0; i < l->count; i++) {
        if (l->items[i].target >= 0 && l->items[i].target != self) {
            return true;
        }
    }
    return false;
}

void fl_wf__check_graph(fl_wf_ctx *c)
{
    const fl_workflow *wf = c->wf;
    bool *seen, final_reached = false;

    if (c->unresolved || wf->nstates == 0) {
        return;
    }
    seen = fl_xcalloc(wf->nstates, sizeof(*seen));
    reach(wf, seen);
    for (size_t i = 0; i < wf->nstates; i++) {
        const fl_state *st = &wf->states[i];
        if (!seen[i]) {
            fl_wf__error(c, st->pos, "state \"%s\" is unreachable from the initial state \"%s\"",
                         st->name, wf->states[wf->initial].name);
        }
        if (!st->final && !list_leaves(&st->transitions, (int)i) &&
            !list_leaves(&wf->any_state, (int)i)) {
            fl_wf__error(c, st->pos, "state \"%s\" is not final and no transition leaves it",
                         st->name);
        }
        final_reached = final_reached || (seen[i] && st->final);
    }
    if (!final_reached && wf->schedule.kind == FL_SCHEDULE_NONE) {
        fl_wf__error(c, c->initial_pos,
                     "no final state is reachable from the initial state \"%s\" (only a "
                     "workflow with a schedule may run forever)",
                     wf->states[wf->initial].name);
    }
    free(seen);
}
