/* tests/unit/test_registry.c -- the engine's definition cache: lookups by (tenant, name,
 * version) with tenant-own before shipped, trigger lookups, schedules, and the re-read
 * rate limit. Pure: no store is touched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/log.h"
#include "engine/registry.h"

static fl_workflow *wf_parse(const char *name, int version, const char *triggers,
                             const char *schedule)
{
    char text[512];
    fl_workflow_limits lim = FL_WORKFLOW_LIMITS_DEFAULT;
    fl_workflow *wf = NULL;
    fl_diags d;

    snprintf(text, sizeof(text),
             "workflow: %s\nversion: %d\n%s%sinitial: a\nstates:\n  a:\n    transitions:\n"
             "      - { event: go, to: b }\n  b:\n    final: true\n",
             name, version, triggers, schedule);
    fl_diags_init(&d, 10);
    assert_int_equal(fl_workflow_parse(text, strlen(text), name, &lim, &wf, &d), FL_OK);
    fl_diags_deinit(&d);
    return wf;
}

static fl_registry *fixture(void)
{
    fl_workflow_limits lim = FL_WORKFLOW_LIMITS_DEFAULT;
    fl_registry *r = fl_registry_new(&lim);

    fl_registry_add_take(r, "system", true, "src", wf_parse("order", 1, "triggers: [t.a]\n", ""));
    fl_registry_add_take(r, "system", true, "src", wf_parse("order", 2, "triggers: [t.a]\n", ""));
    fl_registry_add_take(r, "A", false, NULL, wf_parse("order", 1, "triggers: [t.b]\n", ""));
    fl_registry_add_take(r, "A", false, NULL, wf_parse("mine", 1, "triggers: [t.a]\n", ""));
    fl_registry_add_take(r, "system", true, "src",
                         wf_parse("tick", 1, "", "schedule: { every: 2s }\n"));
    return r;
}

static void test_registry_get_prefers_the_tenants_own(void **state)
{
    fl_registry *r = fixture();

    (void)state;
    assert_int_equal(fl_registry_get(r, "A", "order", 0)->version, 1);
    assert_true(fl_workflow_is_triggered_by(fl_registry_get(r, "A", "order", 0), "t.b"));
    assert_int_equal(fl_registry_get(r, "B", "order", 0)->version, 2);
    assert_int_equal(fl_registry_get(r, "B", "order", 1)->version, 1);
    assert_null(fl_registry_get(r, "B", "mine", 0));
    assert_null(fl_registry_get(r, "B", "order", 3));
    fl_registry_free(r);
}

static void test_registry_triggered_is_per_tenant_and_newest(void **state)
{
    fl_registry *r = fixture();
    const fl_workflow *out[8];

    (void)state;
    /* B sees shipped order v2 (newest) once */
    assert_int_equal(fl_registry_triggered(r, "B", "t.a", out, 8), 1);
    assert_string_equal(out[0]->name, "order");
    assert_int_equal(out[0]->version, 2);
    /* A's own order hides the shipped one; its own `mine` triggers on t.a */
    assert_int_equal(fl_registry_triggered(r, "A", "t.a", out, 8), 1);
    assert_string_equal(out[0]->name, "mine");
    assert_int_equal(fl_registry_triggered(r, "A", "t.b", out, 8), 1);
    assert_int_equal(fl_registry_triggered(r, "B", "t.b", out, 8), 0);
    fl_registry_free(r);
}

static void test_registry_scheduled_needs_a_schedule(void **state)
{
    fl_registry *r = fixture();

    (void)state;
    assert_non_null(fl_registry_scheduled(r, "system", "tick"));
    assert_null(fl_registry_scheduled(r, "system", "order"));
    assert_null(fl_registry_scheduled(r, "system", "nope"));
    fl_registry_free(r);
}

static void test_registry_add_same_version_keeps_the_first(void **state)
{
    fl_registry *r = fixture();
    const fl_workflow *before = fl_registry_get(r, "A", "mine", 1);

    (void)state;
    fl_registry_add_take(r, "A", false, NULL, wf_parse("mine", 1, "", ""));
    assert_ptr_equal(fl_registry_get(r, "A", "mine", 1), before);
    fl_registry_free(r);
}

static void test_registry_refresh_is_rate_limited_per_type(void **state)
{
    fl_registry *r = fixture();

    (void)state;
    assert_true(fl_registry_may_refresh(r, "A", "x", 1000));
    assert_false(fl_registry_may_refresh(r, "A", "x", 1500));
    assert_true(fl_registry_may_refresh(r, "A", "y", 1500));
    assert_true(fl_registry_may_refresh(r, "B", "x", 1500));
    assert_true(fl_registry_may_refresh(r, "A", "x", 2000));
    fl_registry_free(r);
}

static void test_registry_load_dir_missing_is_not_found(void **state)
{
    fl_registry *r = fixture();
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_registry_load_dir(r, "/nonexistent/dir", &err), FL_ENOTFOUND);
    fl_registry_free(r);
}

static void test_registry_load_dir_loads_the_shipped_set(void **state)
{
    fl_workflow_limits lim = FL_WORKFLOW_LIMITS_DEFAULT;
    fl_registry *r = fl_registry_new(&lim);
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_registry_load_dir(r, "workflows", &err), FL_OK);
    assert_non_null(fl_registry_get(r, "any", "appointment", 0));
    assert_non_null(fl_registry_get(r, "any", "conversation", 0));
    fl_registry_free(r);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_get_prefers_the_tenants_own),
        cmocka_unit_test(test_registry_triggered_is_per_tenant_and_newest),
        cmocka_unit_test(test_registry_scheduled_needs_a_schedule),
        cmocka_unit_test(test_registry_add_same_version_keeps_the_first),
        cmocka_unit_test(test_registry_refresh_is_rate_limited_per_type),
        cmocka_unit_test(test_registry_load_dir_missing_is_not_found),
        cmocka_unit_test(test_registry_load_dir_loads_the_shipped_set),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
