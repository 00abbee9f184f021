/* engine/graph.h -- the state diagram of a workflow definition, as text.
 *
 * `flowd graph` renders a loaded definition as a Mermaid `stateDiagram-v2` (the default)
 * or a Graphviz `digraph`. Rendering is pure: it reads the immutable model and appends to
 * the caller's fl_buf, so it prints nothing and is tested by comparing strings.
 *
 * What the diagram shows (docs/workflows.md, "flowd graph"):
 *   - a start arrow into `initial`, and an arrow from every final state to the end
 *     (Mermaid `[*]`; Graphviz draws finals as double circles instead);
 *   - one edge per transition, labelled with its trigger: the event type, `after 48h`,
 *     `at ctx.slot -24h`, `error any`, `done`; a guarded transition gets ` [if]`;
 *   - an internal transition (no `to:`) as a self-loop labelled `(internal)`, so that the
 *     events a state reacts to without leaving it stay visible;
 *   - `any_state` transitions as edges from every non-final state, as the step function
 *     tries them there.
 *
 * Thread-safety: none needed; the definition is only read and the buffer is the caller's. */
#ifndef FL_ENGINE_GRAPH_H
#define FL_ENGINE_GRAPH_H

#include <stdbool.h>

#include "core/err.h"
#include "core/mem.h"
#include "engine/workflow.h"

typedef enum fl_graph_format { FL_GRAPH_MERMAID, FL_GRAPH_DOT } fl_graph_format;

/* "mermaid" or "dot" (NULL = mermaid). Returns false for any other name. */
bool fl_graph_format_parse(const char *name, fl_graph_format *out);

/* Appends the diagram of wf to out.
 * Ownership: borrows wf; out is the caller's (initialised, with its cap).
 * Errors: FL_ETOOBIG (the diagram is larger than out's cap; out may hold a prefix). */
fl_rc fl_graph_render(const fl_workflow *wf, fl_graph_format format, fl_buf *out, fl_err *err);

/* Writes a duration the way definitions do: the largest unit that divides it exactly
 * (7d, 48h, 15m, 30s, 500ms); days only from one week up, because authors write "48h",
 * not "2d". Negative values get a '-' and zero is "0s". Always NUL-terminates out. */
void fl_graph_format_duration(int64_t ms, char *out, size_t size);

#endif
