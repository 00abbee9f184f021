/* tests/unit/test_graph.c -- the Mermaid and Graphviz renderings of a definition.
 * Definitions are built with the real loader, so the tests see what `flowd graph` sees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/diag.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/graph.h"
#include "engine/workflow.h"

static fl_workflow *parse(const char *yaml)
{
    fl_workflow_limits lim = FL_WORKFLOW_LIMITS_DEFAULT;
    fl_workflow *wf = NULL;
    fl_diags diags;
    char line[512];
    fl_rc rc;

    fl_diags_init(&diags, 50);
    rc = fl_workflow_parse(yaml, strlen(yaml), "t.yaml", &lim, &wf, &diags);
    for (size_t i = 0; i < diags.count; i++) {
        fl_diags_format(&diags, i, line, sizeof(line));
        fprintf(stderr, "%s\n", line); /* says why, when a fixture is wrong */
    }
    fl_diags_deinit(&diags);
    assert_int_equal(rc, FL_OK);
    return wf;
}

/* The diagram of yaml as a string owned by the caller (free()). */
static char *render(const char *yaml, fl_graph_format format)
{
    fl_workflow *wf = parse(yaml);
    fl_err err = FL_ERR_INIT;
    fl_buf out;

    fl_buf_init(&out, 1 << 20);
    assert_int_equal(fl_graph_render(wf, format, &out, &err), FL_OK);
    fl_workflow_free(wf);
    return fl_buf_steal(&out);
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL) {
        fail_msg("\"%s\" not found in:\n%s", needle, haystack);
    }
}

static const char small[] = "workflow: door\n"
                            "version: 2\n"
                            "initial: closed\n"
                            "states:\n"
                            "  closed:\n"
                            "    transitions:\n"
                            "      - { event: door.opened, to: open }\n"
                            "  open:\n"
                            "    transitions:\n"
                            "      - { event: door.closed, to: closed }\n"
                            "      - { after: 48h, to: broken }\n"
                            "  broken: { final: true }\n";

static const char small_mermaid[] = "stateDiagram-v2\n"
                                    "    %% workflow door v2\n"
                                    "    closed\n"
                                    "    open\n"
                                    "    broken\n"
                                    "    [*] --> closed\n"
                                    "    closed --> open : door.opened\n"
                                    "    open --> closed : door.closed\n"
                                    "    open --> broken : after 48h\n"
                                    "    broken --> [*]\n";

static void test_graph_mermaid_whole_diagram(void **state)
{
    char *g = render(small, FL_GRAPH_MERMAID);

    (void)state;
    assert_string_equal(g, small_mermaid);
    free(g);
}

static void test_graph_dot_whole_diagram(void **state)
{
    char *g = render(small, FL_GRAPH_DOT);

    (void)state;
    assert_string_equal(g, "digraph \"door v2\" {\n"
                           "    rankdir=LR;\n"
                           "    node [shape=box, style=rounded];\n"
                           "    start [shape=point, label=\"\"];\n"
                           "    s0 [label=\"closed\"];\n"
                           "    s1 [label=\"open\"];\n"
                           "    s2 [label=\"broken\", shape=doublecircle];\n"
                           "    start -> s0;\n"
                           "    s0 -> s1 [label=\"door.opened\"];\n"
                           "    s1 -> s0 [label=\"door.closed\"];\n"
                           "    s1 -> s2 [label=\"after 48h\"];\n"
                           "}\n");
    free(g);
}

static void test_graph_labels_name_every_trigger(void **state)
{
    static const char yaml[] = "workflow: labels\nversion: 1\ninitial: a\n"
                               "states:\n"
                               "  a:\n"
                               "    entry:\n"
                               "      - call: llm\n"
                               "        with: { prompt: hi }\n"
                               "    transitions:\n"
                               "      - { done: true, to: b }\n"
                               "      - { error: any, to: c }\n"
                               "      - { error: llm.timeout, to: c }\n"
                               "  b:\n"
                               "    transitions:\n"
                               "      - { at: \"${ ctx.slot }\", offset: -24h, to: c }\n"
                               "      - { at: \"${ ctx.slot }\", offset: 2h, to: c }\n"
                               "      - { after: 15m, to: c }\n"
                               "  c: { final: true }\n";
    char *g = render(yaml, FL_GRAPH_MERMAID);

    (void)state;
    assert_contains(g, "    a --> b : done\n");
    assert_contains(g, "    a --> c : error any\n");
    assert_contains(g, "    a --> c : error llm.timeout\n");
    assert_contains(g, "    b --> c : at ctx.slot -24h\n");
    assert_contains(g, "    b --> c : at ctx.slot +2h\n");
    assert_contains(g, "    b --> c : after 15m\n");
    free(g);
}

static void test_graph_guard_gets_if_suffix(void **state)
{
    static const char yaml[] = "workflow: g\nversion: 1\ninitial: a\n"
                               "states:\n"
                               "  a:\n"
                               "    transitions:\n"
                               "      - event: go\n"
                               "        if: ${ event.data.ok }\n"
                               "        to: b\n"
                               "  b: { final: true }\n";
    char *g = render(yaml, FL_GRAPH_MERMAID);

    (void)state;
    assert_contains(g, "    a --> b : go [if]\n");
    free(g);
}

static void test_graph_internal_transition_is_a_marked_self_loop(void **state)
{
    static const char yaml[] = "workflow: i\nversion: 1\ninitial: a\n"
                               "states:\n"
                               "  a:\n"
                               "    transitions:\n"
                               "      - { event: ping, set: { pinged: true } }\n"
                               "      - { event: again, to: a }\n"
                               "      - { event: go, to: b }\n"
                               "  b: { final: true }\n";
    char *g = render(yaml, FL_GRAPH_MERMAID);

    (void)state;
    assert_contains(g, "    a --> a : ping (internal)\n");
    assert_contains(g, "    a --> a : again\n"); /* external self-transition: no mark */
    free(g);
}

static void test_graph_any_state_drawn_from_every_non_final_state(void **state)
{
    static const char yaml[] = "workflow: any\nversion: 1\ninitial: a\n"
                               "any_state:\n"
                               "  - { event: stop, to: done }\n"
                               "states:\n"
                               "  a:\n"
                               "    transitions: [ { event: next, to: b } ]\n"
                               "  b:\n"
                               "    transitions: [ { event: next, to: done } ]\n"
                               "  done: { final: true }\n";
    char *g = render(yaml, FL_GRAPH_MERMAID);

    (void)state;
    assert_contains(g, "    a --> done : stop\n");
    assert_contains(g, "    b --> done : stop\n");
    assert_null(strstr(g, "done --> done"));
    /* a state's own transitions come before any_state's, as the step function tries them */
    assert_true(strstr(g, "a --> b : next") < strstr(g, "a --> done : stop"));
    free(g);
}

static void test_graph_any_state_shadowed_by_own_unguarded_transition_is_not_drawn(void **state)
{
    static const char yaml[] = "workflow: shadow\nversion: 1\ninitial: a\n"
                               "any_state:\n"
                               "  - { event: stop, to: done }\n"
                               "  - { error: llm.timeout, to: done }\n"
                               "states:\n"
                               "  a:\n"
                               "    transitions:\n"
                               "      - { event: stop, if: '${ ctx.x }', to: b }\n"
                               "      - { event: next, to: b }\n"
                               "  b:\n"
                               "    entry: [ { call: llm, with: { prompt: hi } } ]\n"
                               "    transitions:\n"
                               "      - { event: stop }\n"
                               "      - { error: any, to: done }\n"
                               "  done: { final: true }\n";
    char *g = render(yaml, FL_GRAPH_MERMAID);

    (void)state;
    assert_contains(g, "    a --> b : stop [if]\n");
    assert_contains(g, "    a --> done : stop\n"); /* the guard may be false: still reachable */
    assert_contains(g, "    b --> b : stop (internal)\n");
    assert_null(strstr(g, "b --> done : stop"));
    assert_null(strstr(g, "b --> done : error llm.timeout"));
    free(g);
}

static void test_graph_mermaid_aliases_awkward_state_names(void **state)
{
    static const char yaml[] = "workflow: names\nversion: 1\ninitial: in-progress\n"
                               "states:\n"
                               "  in-progress:\n"
                               "    transitions: [ { event: next, to: end } ]\n"
                               "  end:\n"
                               "    transitions: [ { event: next, to: Done_1 } ]\n"
                               "  Done_1: { final: true }\n";
    char *g = render(yaml, FL_GRAPH_MERMAID);

    (void)state;
    assert_contains(g, "    state \"in-progress\" as __s0\n");
    assert_contains(g, "    state \"end\" as __s1\n"); /* a Mermaid keyword */
    assert_contains(g, "    [*] --> __s0\n");
    assert_contains(g, "    __s0 --> __s1 : next\n");
    assert_contains(g, "    __s1 --> Done_1 : next\n");
    assert_contains(g, "    Done_1 --> [*]\n");
    free(g);
}

static void test_graph_escapes_label_text(void **state)
{
    static const char yaml[] = "workflow: esc\nversion: 1\ninitial: a\n"
                               "states:\n"
                               "  a:\n"
                               "    transitions:\n"
                               "      - { at: '${ ctx[\"t\"] }', to: b }\n"
                               "  b: { final: true }\n";
    char *m = render(yaml, FL_GRAPH_MERMAID);
    char *d = render(yaml, FL_GRAPH_DOT);

    (void)state;
    assert_contains(m, "    a --> b : at ctx[#quot;t#quot;]\n");
    assert_contains(d, "    s0 -> s1 [label=\"at ctx[\\\"t\\\"]\"];\n");
    free(m);
    free(d);
}

static void test_graph_failed_final_is_marked(void **state)
{
    static const char yaml[] =
        "workflow: f\nversion: 1\ninitial: a\n"
        "states:\n"
        "  a:\n"
        "    transitions: [ { event: ok, to: good }, { event: no, to: bad } ]\n"
        "  good: { final: true }\n"
        "  bad: { final: failed }\n";
    char *m = render(yaml, FL_GRAPH_MERMAID);
    char *d = render(yaml, FL_GRAPH_DOT);

    (void)state;
    assert_contains(m, "    bad --> [*]\n");
    assert_contains(m, "    class bad failed_final\n");
    assert_null(strstr(m, "class good"));
    assert_contains(d, "    s2 [label=\"bad\", shape=doublecircle, color=red];\n");
    free(m);
    free(d);
}

static void test_graph_too_small_buffer_is_too_big(void **state)
{
    fl_workflow *wf = parse(small);
    fl_err err = FL_ERR_INIT;
    fl_buf out;

    (void)state;
    fl_buf_init(&out, 40);
    assert_int_equal(fl_graph_render(wf, FL_GRAPH_MERMAID, &out, &err), FL_ETOOBIG);
    /* what was written is a clean prefix of the diagram */
    assert_true(out.len <= 40);
    assert_memory_equal(out.len ? out.data : "", small_mermaid, out.len);
    fl_buf_deinit(&out);
    fl_workflow_free(wf);
}

static void test_graph_format_parse(void **state)
{
    fl_graph_format f = FL_GRAPH_DOT;

    (void)state;
    assert_true(fl_graph_format_parse(NULL, &f));
    assert_int_equal(f, FL_GRAPH_MERMAID);
    assert_true(fl_graph_format_parse("dot", &f));
    assert_int_equal(f, FL_GRAPH_DOT);
    assert_true(fl_graph_format_parse("mermaid", &f));
    assert_int_equal(f, FL_GRAPH_MERMAID);
    assert_false(fl_graph_format_parse("svg", &f));
    assert_false(fl_graph_format_parse("", &f));
}

static void test_graph_format_duration(void **state)
{
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {{500, "500ms"},        {30000, "30s"},      {90000, "90s"},     {900000, "15m"},
                 {5400000, "90m"},      {86400000, "24h"},   {172800000, "48h"}, {604800000, "7d"},
                 {2592000000LL, "30d"}, {-86400000, "-24h"}, {0, "0s"},          {1500, "1500ms"}};
    char buf[32];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fl_graph_format_duration(cases[i].ms, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].text);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graph_mermaid_whole_diagram),
        cmocka_unit_test(test_graph_dot_whole_diagram),
        cmocka_unit_test(test_graph_labels_name_every_trigger),
        cmocka_unit_test(test_graph_guard_gets_if_suffix),
        cmocka_unit_test(test_graph_internal_transition_is_a_marked_self_loop),
        cmocka_unit_test(test_graph_any_state_drawn_from_every_non_final_state),
        cmocka_unit_test(test_graph_any_state_shadowed_by_own_unguarded_transition_is_not_drawn),
        cmocka_unit_test(test_graph_mermaid_aliases_awkward_state_names),
        cmocka_unit_test(test_graph_escapes_label_text),
        cmocka_unit_test(test_graph_failed_final_is_marked),
        cmocka_unit_test(test_graph_too_small_buffer_is_too_big),
        cmocka_unit_test(test_graph_format_parse),
        cmocka_unit_test(test_graph_format_duration),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
