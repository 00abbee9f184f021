/* tests/unit/test_app.c -- ordered start, reverse stop, rollback on a failed start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/app.h"
#include "core/log.h"

typedef struct fake {
    const char *name;
    bool fail;
    char *trace; /* shared: "+a+b-b-a" */
} fake;

static fl_rc fake_start(void *self, fl_err *err)
{
    fake *f = self;

    if (f->fail) {
        return fl_err_set(err, FL_EUNAVAIL, "port in use");
    }
    strcat(f->trace, "+");
    strcat(f->trace, f->name);
    return FL_OK;
}

static void fake_stop(void *self)
{
    fake *f = self;

    strcat(f->trace, "-");
    strcat(f->trace, f->name);
}

static void test_app_stops_in_reverse_start_order(void **state)
{
    char trace[64] = "";
    fake a = {"a", false, trace}, b = {"b", false, trace}, c = {"c", false, trace};
    fl_app *app;
    fl_err err = FL_ERR_INIT;

    (void)state;
    fl_app_new(&app, 5000);
    fl_app_add(app, "a", fake_start, fake_stop, &a);
    fl_app_add(app, "b", fake_start, fake_stop, &b);
    fl_app_add(app, "c", fake_start, fake_stop, &c);
    assert_int_equal(fl_app_start(app, &err), FL_OK);
    fl_app_stop(app);
    fl_app_stop(app); /* idempotent */
    fl_app_free(app);
    assert_string_equal(trace, "+a+b+c-c-b-a");
}

static void test_app_failed_start_stops_what_started(void **state)
{
    char trace[64] = "";
    fake a = {"a", false, trace}, b = {"b", true, trace}, c = {"c", false, trace};
    fl_app *app;
    fl_err err = FL_ERR_INIT;

    (void)state;
    fl_app_new(&app, 5000);
    fl_app_add(app, "a", fake_start, fake_stop, &a);
    fl_app_add(app, "b", fake_start, fake_stop, &b);
    fl_app_add(app, "c", fake_start, fake_stop, &c);
    assert_int_equal(fl_app_start(app, &err), FL_EUNAVAIL);
    assert_string_equal(err.msg, "could not start b: port in use");
    fl_app_free(app);
    assert_string_equal(trace, "+a-a");
}

static void hang_stop(void *self)
{
    (void)self;
    sleep(30);
}

static fl_rc ok_start(void *self, fl_err *err)
{
    (void)self;
    (void)err;
    return FL_OK;
}

/* A module whose stop hangs must not hang the process: the watchdog ends it with status
 * 70 once shutdown_timeout has passed. Runs in a child, since it exits the process. */
static void test_app_stop_past_the_timeout_exits_70(void **state)
{
    int wstatus = 0;
    pid_t pid;

    (void)state;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fl_app *app;
        fl_app_new(&app, 100);
        fl_app_add(app, "stuck", ok_start, hang_stop, NULL);
        if (fl_app_start(app, NULL) == FL_OK) {
            fl_app_stop(app);
        }
        _exit(0); /* reached only if the watchdog did not fire */
    }
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    assert_true(WIFEXITED(wstatus));
    assert_int_equal(WEXITSTATUS(wstatus), 70);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_app_stops_in_reverse_start_order),
        cmocka_unit_test(test_app_failed_start_stops_what_started),
        cmocka_unit_test(test_app_stop_past_the_timeout_exits_70),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
