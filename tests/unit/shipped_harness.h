/* tests/unit/shipped_harness.h -- helpers shared by test_shipped.c and
 * test_shipped_conversation.c: events with readable single-quoted JSON, the engine's
 * own timer and activity events, and assertions on effects. static inline, so a test
 * file that does not use one gets no warning. */
#ifndef FL_TESTS_SHIPPED_HARNESS_H
#define FL_TESTS_SHIPPED_HARNESS_H

#include "core/log.h"
#include "core/mem.h"
#include "tests/unit/machine_harness.h"

/* s with every ' turned into ". Owned by the caller. */
static inline char *dq(const char *s)
{
    char *out = fl_xstrdup(s);

    for (char *p = out; *p != '\0'; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }
    return out;
}

static inline void load_shipped(harness *h, const char *path)
{
    fl_workflow_limits lim = FL_WORKFLOW_LIMITS_DEFAULT;
    fl_expr_limits xl = FL_EXPR_LIMITS_DEFAULT;
    fl_diags d;
    char line[512];
    fl_rc rc;

    memset(h, 0, sizeof(*h));
    fl_effects_init(&h->fx);
    fl_diags_init(&d, 20);
    rc = fl_workflow_load(path, &lim, &h->wf, &d);
    for (size_t i = 0; i < d.count; i++) {
        fl_diags_format(&d, i, line, sizeof(line));
        print_error("%s\n", line);
    }
    fl_diags_deinit(&d);
    assert_int_equal(rc, FL_OK);
    assert_int_equal(fl_machine_new(&h->m, &xl, &h->err), FL_OK);
}

/* Checks that the single-quoted data is JSON and gives it in double quotes, or NULL. */
static inline char *event_data(const char *sq)
{
    char *data = sq != NULL ? dq(sq) : NULL;
    json_t *j = data != NULL ? json_loads(data, 0, NULL) : NULL;

    if (data != NULL && j == NULL) {
        print_error("event data is not JSON: %s\n", data);
    }
    assert_true(data == NULL || j != NULL);
    json_decref(j);
    return data;
}

/* Starts the instance with an event of `type` at `now`; the step must succeed. */
static inline void begin(harness *h, const char *type, const char *sq_data, int64_t now)
{
    char *data = event_data(sq_data);
    fl_rc rc = start_at(h, type, data, now);

    if (rc != FL_OK) {
        print_error("start failed: %s\n", h->err.msg);
    }
    assert_int_equal(rc, FL_OK);
    free(data);
}

/* Delivers one event at `now`; the step must succeed. */
static inline void deliver(harness *h, const char *type, const char *sq_data, int64_t now)
{
    char *data = event_data(sq_data);
    fl_rc rc = step_at(h, type, data, now);

    if (rc != FL_OK) {
        print_error("step failed: %s\n", h->err.msg);
    }
    assert_int_equal(rc, FL_OK);
    free(data);
}

/* Delivers flowd.timer.fired for `timer` (an id without the instance: "1/s0") at `now`. */
static inline void fire(harness *h, const char *timer, int64_t now)
{
    char data[128];

    snprintf(data, sizeof(data), "{'timer':'%s/%s'}", h->in->id, timer);
    deliver(h, FL_EVENT_TIMER_FIRED, data, now);
}

/* Delivers flowd.activity.completed for `activity` ("3/0") with `sq_rest` (",'result':..."). */
static inline void complete_call(harness *h, const char *activity, const char *sq_rest, int64_t now)
{
    char data[1024];

    snprintf(data, sizeof(data), "{'activity':'%s/%s'%s}", h->in->id, activity, sq_rest);
    deliver(h, FL_EVENT_ACTIVITY_COMPLETED, data, now);
}

/* Delivers flowd.activity.failed for `activity` with an error type and message. */
static inline void fail_call(harness *h, const char *activity, const char *error,
                             const char *message)
{
    char data[512];

    snprintf(data, sizeof(data), "{'activity':'%s/%s','error':'%s','message':'%s'}", h->in->id,
             activity, error, message);
    deliver(h, FL_EVENT_ACTIVITY_FAILED, data, NOW + 2000);
}

/* The data of the nth (0-based) effect of `kind` of the last step, compact JSON with
 * sorted keys, or "none" when there are fewer. Owned by the caller. */
static inline char *effect_json(const harness *h, fl_effect_kind kind, int nth)
{
    int seen = 0;

    for (size_t i = 0; i < h->fx.count; i++) {
        if (h->fx.items[i].kind != kind) {
            continue;
        }
        if (seen++ == nth) {
            return json_dumps(h->fx.items[i].data, JSON_SORT_KEYS | JSON_COMPACT);
        }
    }
    return fl_xstrdup("none");
}

static inline void assert_effect(const harness *h, fl_effect_kind kind, int nth,
                                 const char *sq_want)
{
    char *got = effect_json(h, kind, nth);
    char *want = dq(sq_want);

    if (strcmp(got, want) != 0) {
        print_error("effects of the step: %s\n", h->dump);
    }
    assert_string_equal(got, want);
    free(want);
    free(got);
}

static inline int count_effects(const harness *h, fl_effect_kind kind)
{
    int n = 0;

    for (size_t i = 0; i < h->fx.count; i++) {
        n += h->fx.items[i].kind == kind;
    }
    return n;
}

/* The context field `name` as compact JSON ("none" when absent). */
static inline void assert_field(const harness *h, const char *name, const char *sq_want)
{
    const json_t *v = json_object_get(h->in->ctx, name);
    char *got = v != NULL ? json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY)
                          : fl_xstrdup("none");
    char *want = dq(sq_want);

    assert_string_equal(got, want);
    free(want);
    free(got);
}

static inline void assert_at(const harness *h, const char *state, fl_status status)
{
    if (strcmp(state_of(h), state) != 0 || h->in->status != status) {
        print_error("effects of the step: %s\n", h->dump);
    }
    assert_string_equal(state_of(h), state);
    assert_string_equal(fl_status_name(h->in->status), fl_status_name(status));
}

static inline void assert_unhandled(const harness *h, const char *reason)
{
    assert_int_equal(h->fx.count, 1);
    assert_non_null(strstr(h->dump, "\"kind\":\"unhandled\""));
    assert_non_null(strstr(h->dump, reason));
}

#endif
