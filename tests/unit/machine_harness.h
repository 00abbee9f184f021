/* tests/unit/machine_harness.h -- the fixture shared by test_machine.c and
 * test_instance.c: one definition loaded from YAML, a machine, the current instance and
 * the effects of the last step, dumped as compact JSON with sorted keys.
 * Helpers are static inline so a test file that does not use one gets no warning. */
#ifndef FL_TESTS_MACHINE_HARNESS_H
#define FL_TESTS_MACHINE_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/machine.h"

#define NOW 1767607200000LL /* 2026-01-05T10:00:00.000Z */
#define H48 (48LL * 3600 * 1000)

/* One instance under test: its definition, machine, effects of the last step. */
typedef struct harness {
    fl_workflow *wf;
    fl_machine *m;
    fl_instance *in;
    fl_effects fx;
    fl_err err;
    char *dump; /* the last effects JSON */
    int nevents;
} harness;

static const char base_yaml[] =
    "workflow: t\n"
    "version: 1\n"
    "initial: a\n"
    "context: {n: 1}\n"
    "states:\n"
    "  a:\n"
    "    entry: [{log: {message: in a}}]\n"
    "    exit: [{log: {message: out a}}]\n"
    "    transitions:\n"
    "      - {event: go, set: {n: 2}, do: [{log: {message: do}}], to: b}\n"
    "      - {event: poke, set: {poked: true}}\n"
    "      - {after: 48h, to: end}\n"
    "  b:\n"
    "    entry: [{log: {message: in b}}]\n"
    "    transitions:\n"
    "      - {event: back, to: a}\n"
    "      - {event: finish, to: end}\n"
    "  end: {final: true}\n";

static inline void load(harness *h, const char *yaml)
{
    fl_workflow_limits lim = FL_WORKFLOW_LIMITS_DEFAULT;
    fl_expr_limits xl = FL_EXPR_LIMITS_DEFAULT;
    fl_diags d;
    char line[512];
    fl_rc rc;

    memset(h, 0, sizeof(*h));
    fl_effects_init(&h->fx);
    fl_diags_init(&d, 20);
    rc = fl_workflow_parse(yaml, strlen(yaml), "t.yaml", &lim, &h->wf, &d);
    for (size_t i = 0; i < d.count; i++) {
        fl_diags_format(&d, i, line, sizeof(line));
        print_error("%s\n", line);
    }
    fl_diags_deinit(&d);
    assert_int_equal(rc, FL_OK);
    assert_int_equal(fl_machine_new(&h->m, &xl, &h->err), FL_OK);
}

static inline void done(harness *h)
{
    free(h->dump);
    fl_effects_deinit(&h->fx);
    fl_instance_free(h->in);
    fl_machine_free(h->m);
    fl_workflow_free(h->wf);
}

static const char *dump_fx(harness *h)
{
    json_t *j = fl_effects_to_json(&h->fx);

    free(h->dump);
    h->dump = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(j);
    return h->dump;
}

static inline fl_event make_event(harness *h, const char *type, json_t *data, char *id, size_t size)
{
    fl_event ev = {0};

    snprintf(id, size, "e%d", ++h->nevents);
    ev.id = id;
    ev.type = type;
    ev.source = "test";
    ev.subject = "k1";
    ev.tenant = "t1";
    ev.time = "2026-01-05T10:00:00Z";
    ev.data = data;
    return ev;
}

static inline fl_rc start_at(harness *h, const char *type, const char *data, int64_t now)
{
    fl_instance_init init = {"i1", "k1", "t1"};
    json_t *d = data != NULL ? json_loads(data, 0, NULL) : NULL;
    char id[16];
    fl_event ev = make_event(h, type, d, id, sizeof(id));
    fl_rc rc;

    fl_effects_clear(&h->fx);
    rc = fl_machine_start(h->m, h->wf, &init, &ev, now, &h->in, &h->fx, &h->err);
    json_decref(d);
    dump_fx(h);
    return rc;
}

static inline fl_rc start(harness *h)
{
    return start_at(h, "t.requested", "{}", NOW);
}

/* Delivers one event; on success the harness moves on to the new instance. */
static inline fl_rc step_at(harness *h, const char *type, const char *data, int64_t now)
{
    json_t *d = data != NULL ? json_loads(data, 0, NULL) : NULL;
    char id[16];
    fl_event ev = make_event(h, type, d, id, sizeof(id));
    fl_instance *out = NULL;
    fl_rc rc;

    fl_effects_clear(&h->fx);
    rc = fl_machine_step(h->m, h->wf, h->in, &ev, now, &out, &h->fx, &h->err);
    json_decref(d);
    if (rc == FL_OK) {
        fl_instance_free(h->in);
        h->in = out;
    }
    dump_fx(h);
    return rc;
}

static inline fl_rc step(harness *h, const char *type, const char *data)
{
    return step_at(h, type, data, NOW + 1000);
}

static const char *state_of(const harness *h)
{
    return h->wf->states[h->in->state].name;
}

static char *ctx_dump(const harness *h)
{
    return json_dumps(h->in->ctx, JSON_SORT_KEYS | JSON_COMPACT);
}

static inline void assert_ctx(const harness *h, const char *want)
{
    char *got = ctx_dump(h);

    assert_string_equal(got, want);
    free(got);
}

#endif
