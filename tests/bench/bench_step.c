/* tests/bench/bench_step.c -- steps per second of the pure step function (issue 3:
 * >= 2,000,000 without a guard, >= 500,000 with a Lua guard, on one core).
 *
 * A two-state ping-pong, loaded from YAML: every `ping` moves a -> b or b -> a, so each
 * step is a full external transition (match, STATE_CHANGED, HISTORY, a new instance).
 * Each variant runs in batches until at least 1 s has passed, so the rate is stable; the
 * loop includes freeing the previous instance and clearing the effect list, as the
 * engine would.
 *
 * `bench_step N [plain|guard]` runs exactly N steps (of one variant, if named) instead:
 * under callgrind the instruction count per step is the stable measure, and wall time
 * means nothing there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "engine/machine.h"

#define BATCH 100000

static const char plain_yaml[] = "workflow: pingpong\nversion: 1\ninitial: a\n"
                                 "states:\n"
                                 "  a:\n"
                                 "    transitions: [{event: ping, to: b}, {event: stop, to: z}]\n"
                                 "  b:\n"
                                 "    transitions: [{event: ping, to: a}]\n"
                                 "  z: {final: true}\n";

static const char guard_yaml[] =
    "workflow: pingpong\nversion: 1\ninitial: a\n"
    "states:\n"
    "  a:\n"
    "    transitions:\n"
    "      - {event: ping, if: '${ event.data.n > 0 }', to: b}\n"
    "      - {event: stop, to: z}\n"
    "  b:\n"
    "    transitions: [{event: ping, if: '${ event.data.n > 0 }', to: a}]\n"
    "  z: {final: true}\n";

/* Loads the definition and starts one instance. */
static int setup(const char *label, const char *yaml, const fl_event *ev, fl_workflow **wf,
                 fl_machine **m, fl_instance **in, fl_effects *fx)
{
    fl_workflow_limits lim = FL_WORKFLOW_LIMITS_DEFAULT;
    fl_expr_limits xl = FL_EXPR_LIMITS_DEFAULT;
    fl_instance_init init = {"0193e1a2-7c1d-7000-8000-000000000001", "order-42", "acme"};
    fl_err err = FL_ERR_INIT;
    fl_diags d;
    int status = 0;

    fl_diags_init(&d, 10);
    if (fl_workflow_parse(yaml, strlen(yaml), label, &lim, wf, &d) != FL_OK ||
        fl_machine_new(m, &xl, &err) != FL_OK ||
        fl_machine_start(*m, *wf, &init, ev, 0, in, fx, &err) != FL_OK) {
        fprintf(stderr, "bench_step: %s: cannot set up: %s\n", label, err.msg);
        status = 1;
    }
    fl_diags_deinit(&d);
    return status;
}

/* Runs batches of steps until 1 s has passed, or exactly `steps` when it is > 0. */
static int bench(const char *label, const char *yaml, int64_t steps)
{
    json_t *data = json_pack("{s:i}", "n", 1);
    fl_event ev = {"ev-1", "ping", "bench", "order-42", "acme", "2026-01-05T10:00:00Z", data};
    const fl_clock *clk = fl_clock_system();
    fl_workflow *wf = NULL;
    fl_machine *m = NULL;
    fl_instance *in = NULL, *out = NULL;
    fl_effects fx;
    fl_err err = FL_ERR_INIT;
    int64_t t0, t1 = 0, n = 0, batch = steps > 0 ? steps : BATCH;
    int status;

    fl_effects_init(&fx);
    status = setup(label, yaml, &ev, &wf, &m, &in, &fx);
    t0 = fl_clock_mono_ms(clk);
    for (; status == 0 && (steps > 0 ? n < steps : t1 - t0 < 1000); n += batch) {
        for (int64_t i = 0; i < batch && status == 0; i++) {
            fl_effects_clear(&fx);
            status = fl_machine_step(m, wf, in, &ev, n + i, &out, &fx, &err) != FL_OK;
            fl_instance_free(status == 0 ? in : NULL);
            in = status == 0 ? out : in;
        }
        t1 = fl_clock_mono_ms(clk);
    }
    if (status == 0) {
        printf("bench_step: %-16s %10.0f steps/s (%lld steps in %.2f s)\n", label,
               (double)n * 1000.0 / (double)(t1 > t0 ? t1 - t0 : 1), (long long)n,
               (double)(t1 - t0) / 1000.0);
    } else {
        fprintf(stderr, "bench_step: %s: %s\n", label, err.msg);
    }
    fl_instance_free(in);
    fl_effects_deinit(&fx);
    fl_machine_free(m);
    fl_workflow_free(wf);
    json_decref(data);
    return status;
}

int main(int argc, char **argv)
{
    int64_t steps = argc > 1 ? strtoll(argv[1], NULL, 10) : 0;
    const char *only = argc > 2 ? argv[2] : "";
    int status = 0;

    fl_log_set_level(FL_ERROR);
    if (strcmp(only, "guard") != 0) {
        status |= bench("without guard", plain_yaml, steps);
    }
    if (strcmp(only, "plain") != 0) {
        status |= bench("with Lua guard", guard_yaml, steps);
    }
    return status;
}
