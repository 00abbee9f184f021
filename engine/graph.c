/* engine/graph.c -- Mermaid and Graphviz renderings of a workflow definition.
 *
 * Design: one walk over the model emits nodes and edges; the two formats differ only in
 * the header, how a state is named and how text is escaped. Output goes through a small
 * writer with a sticky error (the libgit2 / Go errWriter idea), because a diagram is many
 * tiny appends and the only failure is the buffer's cap: the first failure stops all
 * further writing, so out holds a clean prefix and the code stays readable.
 *
 * Mermaid state ids: a state name that is a plain identifier (and not a Mermaid keyword)
 * is used as it is, so the source reads naturally; any other name is declared as
 * `state "name" as __s<index>`. Plain names never start with "__", so the two never
 * collide. Graphviz nodes are always s<index> with the name as the label.
 *
 * Thread-safety: pure functions over borrowed data. */
#include "engine/graph.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct writer {
    fl_buf *b;
    fl_graph_format fmt;
    fl_rc rc; /* sticky: FL_OK until the first failed append */
    fl_err *err;
} writer;

static void put_n(writer *w, const char *s, size_t n)
{
    if (w->rc == FL_OK) {
        w->rc = fl_buf_append(w->b, s, n, w->err);
    }
}

static void put(writer *w, const char *s)
{
    put_n(w, s, strlen(s));
}

/* Text from the definition (names, event types, expressions) may hold characters that
 * end a label or a line in the target language, so each is replaced by an entity. */
static void put_text(writer *w, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        char c = s[i];

        if (c == '\n' || c == '\r' || c == '\t') {
            rep = " ";
        } else if (w->fmt == FL_GRAPH_DOT) {
            rep = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : NULL;
        } else {
            rep = c == '"'   ? "#quot;"
                  : c == ';' ? "#59;"
                  : c == '#' ? "#35;"
                  : c == '<' ? "#lt;"
                  : c == '>' ? "#gt;"
                             : NULL;
        }
        if (rep) {
            put(w, rep);
        } else {
            put_n(w, &c, 1);
        }
    }
}

void fl_graph_format_duration(int64_t ms, char *out, size_t size)
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    const char *sign = ms < 0 ? "-" : "";
    uint64_t v = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;

    if (v == 0) {
        snprintf(out, size, "0s");
        return;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        uint64_t u = (uint64_t)units[i].ms;
        /* "48h" reads better than "2d": days only from one week up */
        bool fits = v % u == 0 && (u != 86400000u || v >= 7 * u);
        if (fits) {
            snprintf(out, size, "%s%" PRIu64 "%s", sign, v / u, units[i].unit);
            return;
        }
    }
    snprintf(out, size, "%s%" PRIu64 "ms", sign, v);
}

static bool is_mermaid_keyword(const char *name)
{
    static const char *const words[] = {"state", "note",  "end",  "direction", "classDef",
                                        "class", "style", "as",   "left",      "right",
                                        "of",    "scale", "hide", "accTitle",  "accDescr"};

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcasecmp(name, words[i]) == 0) {
            return true;
        }
    }
    return false;
}

static bool is_plain_id(const char *name)
{
    if (!(isalpha((unsigned char)name[0]) || name[0] == '_') || strncmp(name, "__", 2) == 0) {
        return false;
    }
    for (const char *p = name; *p; p++) {
        if (!(isalnum((unsigned char)*p) || *p == '_')) {
            return false;
        }
    }
    return !is_mermaid_keyword(name);
}

/* Writes how the diagram names state i: its name, or an alias (see the file comment). */
static void put_state(writer *w, const fl_workflow *wf, size_t i)
{
    char id[32];

    if (w->fmt == FL_GRAPH_MERMAID && is_plain_id(wf->states[i].name)) {
        put(w, wf->states[i].name);
        return;
    }
    snprintf(id, sizeof(id), w->fmt == FL_GRAPH_DOT ? "s%zu" : "__s%zu", i);
    put(w, id);
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && isspace((unsigned char)(*s)[*n - 1])) {
        (*n)--;
    }
    while (*n > 0 && isspace((unsigned char)**s)) {
        (*s)++;
        (*n)--;
    }
}

/* `at` shows its expression without the ${ } when it is exactly one expression. */
static void put_at(writer *w, const fl_transition *t)
{
    const json_t *src = t->at ? fl_tmpl_source(t->at) : NULL;
    const char *s = json_is_string(src) ? json_string_value(src) : "?";
    size_t n = strlen(s);
    char off[32];

    trim(&s, &n);
    if (n >= 3 && !strncmp(s, "${", 2) && s[n - 1] == '}' && !memchr(s + 2, '$', n - 3)) {
        s += 2;
        n -= 3;
        trim(&s, &n);
    }
    put(w, "at ");
    put_text(w, s, n);
    if (t->offset_ms != 0) {
        fl_graph_format_duration(t->offset_ms, off, sizeof(off));
        put(w, t->offset_ms > 0 ? " +" : " ");
        put(w, off);
    }
}

static void put_label(writer *w, const fl_transition *t)
{
    char dur[32];

    switch (t->trigger) {
    case FL_TRIGGER_EVENT:
        put_text(w, t->event, strlen(t->event));
        break;
    case FL_TRIGGER_AFTER:
        fl_graph_format_duration(t->after_ms, dur, sizeof(dur));
        put(w, "after ");
        put(w, dur);
        break;
    case FL_TRIGGER_AT:
        put_at(w, t);
        break;
    case FL_TRIGGER_ERROR:
        put(w, "error ");
        put_text(w, t->error, strlen(t->error));
        break;
    case FL_TRIGGER_DONE:
        put(w, "done");
        break;
    }
    if (t->guard) {
        put(w, " [if]");
    }
    if (t->target < 0) {
        put(w, " (internal)");
    }
}

/* One edge; an internal transition is drawn as a self-loop on its source. */
static void put_edge(writer *w, const fl_workflow *wf, size_t from, const fl_transition *t)
{
    size_t to = t->target >= 0 ? (size_t)t->target : from;

    put(w, "    ");
    put_state(w, wf, from);
    put(w, w->fmt == FL_GRAPH_DOT ? " -> " : " --> ");
    put_state(w, wf, to);
    put(w, w->fmt == FL_GRAPH_DOT ? " [label=\"" : " : ");
    put_label(w, t);
    put(w, w->fmt == FL_GRAPH_DOT ? "\"];\n" : "\n");
}

/* True when the state's own unguarded transition always wins over t (any_state's) for
 * the same trigger, so the step function can never fire t there. Timers never shadow:
 * each is armed for its own transition. */
static bool shadowed(const fl_state *st, const fl_transition *t)
{
    for (size_t k = 0; k < st->transitions.count; k++) {
        const fl_transition *own = &st->transitions.items[k];

        if (own->guard != NULL || own->trigger != t->trigger) {
            continue;
        }
        if (t->trigger == FL_TRIGGER_DONE ||
            (t->trigger == FL_TRIGGER_EVENT && strcmp(own->event, t->event) == 0) ||
            (t->trigger == FL_TRIGGER_ERROR &&
             (strcmp(own->error, "any") == 0 || strcmp(own->error, t->error) == 0))) {
            return true;
        }
    }
    return false;
}

/* A state's own transitions, then any_state's, in the order the step function tries
 * them. Final states take no events, so any_state is not drawn from them; neither is an
 * any_state transition that the state shadows (see shadowed()). */
static void put_edges(writer *w, const fl_workflow *wf, size_t i)
{
    const fl_state *st = &wf->states[i];

    for (size_t k = 0; k < st->transitions.count; k++) {
        put_edge(w, wf, i, &st->transitions.items[k]);
    }
    if (st->final != FL_FINAL_NONE) {
        return;
    }
    for (size_t k = 0; k < wf->any_state.count; k++) {
        if (!shadowed(st, &wf->any_state.items[k])) {
            put_edge(w, wf, i, &wf->any_state.items[k]);
        }
    }
}

static void mermaid_states(writer *w, const fl_workflow *wf)
{
    for (size_t i = 0; i < wf->nstates; i++) {
        const char *name = wf->states[i].name;

        put(w, "    ");
        if (!is_plain_id(name)) {
            put(w, "state \"");
            put_text(w, name, strlen(name));
            put(w, "\" as ");
        }
        put_state(w, wf, i);
        put(w, "\n");
    }
}

static void render_mermaid(writer *w, const fl_workflow *wf)
{
    char head[64];
    bool any_failed = false;

    snprintf(head, sizeof(head), " v%d\n", wf->version);
    put(w, "stateDiagram-v2\n    %% workflow ");
    put_text(w, wf->name, strlen(wf->name));
    put(w, head);
    mermaid_states(w, wf);
    put(w, "    [*] --> ");
    put_state(w, wf, (size_t)wf->initial);
    put(w, "\n");
    for (size_t i = 0; i < wf->nstates; i++) {
        put_edges(w, wf, i);
    }
    for (size_t i = 0; i < wf->nstates; i++) {
        if (wf->states[i].final == FL_FINAL_NONE) {
            continue;
        }
        put(w, "    ");
        put_state(w, wf, i);
        put(w, " --> [*]\n");
        any_failed = any_failed || wf->states[i].final == FL_FINAL_FAILED;
    }
    if (!any_failed) {
        return;
    }
    /* final: failed ends the instance with status failed: mark those states */
    put(w, "    classDef failed_final fill:#f8d7da,stroke:#c0392b\n");
    for (size_t i = 0; i < wf->nstates; i++) {
        if (wf->states[i].final == FL_FINAL_FAILED) {
            put(w, "    class ");
            put_state(w, wf, i);
            put(w, " failed_final\n");
        }
    }
}

static void dot_node(writer *w, const fl_workflow *wf, size_t i)
{
    const fl_state *st = &wf->states[i];

    put(w, "    ");
    put_state(w, wf, i);
    put(w, " [label=\"");
    put_text(w, st->name, strlen(st->name));
    put(w, "\"");
    if (st->final == FL_FINAL_COMPLETED) {
        put(w, ", shape=doublecircle");
    } else if (st->final == FL_FINAL_FAILED) {
        put(w, ", shape=doublecircle, color=red");
    }
    put(w, "];\n");
}

static void render_dot(writer *w, const fl_workflow *wf)
{
    char head[64];

    snprintf(head, sizeof(head), " v%d\" {\n", wf->version);
    put(w, "digraph \"");
    put_text(w, wf->name, strlen(wf->name));
    put(w, head);
    put(w, "    rankdir=LR;\n    node [shape=box, style=rounded];\n");
    put(w, "    start [shape=point, label=\"\"];\n");
    for (size_t i = 0; i < wf->nstates; i++) {
        dot_node(w, wf, i);
    }
    put(w, "    start -> ");
    put_state(w, wf, (size_t)wf->initial);
    put(w, ";\n");
    for (size_t i = 0; i < wf->nstates; i++) {
        put_edges(w, wf, i);
    }
    put(w, "}\n");
}

bool fl_graph_format_parse(const char *name, fl_graph_format *out)
{
    if (name == NULL || strcmp(name, "mermaid") == 0) {
        *out = FL_GRAPH_MERMAID;
        return true;
    }
    if (strcmp(name, "dot") == 0) {
        *out = FL_GRAPH_DOT;
        return true;
    }
    return false;
}

fl_rc fl_graph_render(const fl_workflow *wf, fl_graph_format format, fl_buf *out, fl_err *err)
{
    writer w = {out, format, FL_OK, err};

    if (format == FL_GRAPH_DOT) {
        render_dot(&w, wf);
    } else {
        render_mermaid(&w, wf);
    }
    return w.rc;
}
