/* tests/unit/test_health.c -- readiness snapshots from registered checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/health.h"
#include "core/log.h"

static fl_rc check_ok(void *arg, fl_err *err)
{
    (void)arg;
    (void)err;
    return FL_OK;
}

static fl_rc check_flag(void *arg, fl_err *err)
{
    return *(bool *)arg ? FL_OK : fl_err_set(err, FL_EUNAVAIL, "could not connect: refused");
}

static const char *status_of(json_t *snap, const char *check)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(snap, "checks"), check), "status"));
}

static void test_health_ready_when_every_check_passes(void **state)
{
    fl_health *h;
    json_t *snap;

    (void)state;
    fl_health_new(&h, 60000);
    fl_health_add(h, "postgres", check_ok, NULL);
    assert_false(fl_health_ready(h)); /* nothing has run yet */
    assert_int_equal(fl_health_start(h, NULL), FL_OK);
    assert_true(fl_health_ready(h));
    snap = fl_health_snapshot(h);
    assert_string_equal(json_string_value(json_object_get(snap, "status")), "ready");
    assert_string_equal(status_of(snap, "postgres"), "up");
    json_decref(snap);
    fl_health_free(h);
}

static void test_health_names_the_failing_check(void **state)
{
    bool kafka_up = false;
    fl_health *h;
    json_t *snap;

    (void)state;
    fl_health_new(&h, 60000);
    fl_health_add(h, "postgres", check_ok, NULL);
    fl_health_add(h, "kafka", check_flag, &kafka_up);
    assert_int_equal(fl_health_start(h, NULL), FL_OK);
    assert_false(fl_health_ready(h));
    snap = fl_health_snapshot(h);
    assert_string_equal(json_string_value(json_object_get(snap, "status")), "unavailable");
    assert_string_equal(status_of(snap, "kafka"), "down");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(snap, "checks"), "kafka"), "error")),
                        "could not connect: refused");
    json_decref(snap);
    fl_health_free(h);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_ready_when_every_check_passes),
        cmocka_unit_test(test_health_names_the_failing_check),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
