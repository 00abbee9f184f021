/* tests/unit/test_notify.c -- the LISTEN hub's ring and waits (api/notify.h), fed by
 * fl_notify_inject. The hub is started against an unreachable db.url (port 1 refuses at
 * once), which it must tolerate: it keeps retrying in the background, stops promptly, and
 * meanwhile nothing but the injected payloads reaches the ring. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api/notify.h"
#include "core/clock.h"
#include "core/log.h"

static const char P_A[] = "{\"tenant\":\"t\",\"instance_id\":\"inst-a\",\"workflow\":\"w\","
                          "\"key\":\"key-a\",\"seq\":1}";
static const char P_B[] = "{\"tenant\":\"t\",\"instance_id\":\"inst-b\",\"workflow\":\"w\","
                          "\"key\":\"key-b\",\"seq\":1}";

static int setup(void **state)
{
    fl_config_db db = {.url = "postgresql://127.0.0.1:1/none", .connect_timeout_ms = 200};
    fl_notify *n = NULL;
    fl_err err = FL_ERR_INIT;

    assert_int_equal(fl_notify_start(&n, &db, &err), FL_OK);
    *state = n;
    return 0;
}

static int teardown(void **state)
{
    fl_notify_free(*state);
    return 0;
}

static int64_t now_ms(void)
{
    return fl_clock_mono_ms(fl_clock_system());
}

static int64_t in_ms(int ms)
{
    return now_ms() + ms;
}

static void test_notify_bad_url_is_einval(void **state)
{
    fl_config_db db = {.url = "postgresql://[bad", .connect_timeout_ms = 200};
    fl_notify *n = (fl_notify *)1;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_notify_start(&n, &db, &err), FL_EINVAL);
    assert_null(n);
}

static void test_notify_match_by_instance_id_and_key(void **state)
{
    fl_notify *n = *state;
    uint64_t since = fl_notify_now(n);

    fl_notify_inject(n, P_A);
    assert_true(fl_notify_wait(n, "inst-a", &since, in_ms(1000)));
    assert_int_equal(since, fl_notify_now(n));
    fl_notify_inject(n, P_A);
    assert_true(fl_notify_wait(n, "key-a", &since, in_ms(1000)));
}

static void test_notify_other_id_times_out(void **state)
{
    fl_notify *n = *state;
    uint64_t since = fl_notify_now(n);
    int64_t t0 = now_ms();

    fl_notify_inject(n, P_B);
    assert_false(fl_notify_wait(n, "inst-a", &since, in_ms(100)));
    assert_true(now_ms() - t0 >= 100);
    /* the non-matching entry was consumed: it does not wake the next wait either */
    assert_int_equal(since, fl_notify_now(n));
}

static void test_notify_null_id_matches_any(void **state)
{
    fl_notify *n = *state;
    uint64_t since = fl_notify_now(n);

    fl_notify_inject(n, P_B);
    assert_true(fl_notify_wait(n, NULL, &since, in_ms(1000)));
}

static void test_notify_past_deadline_returns_at_once(void **state)
{
    fl_notify *n = *state;
    uint64_t since = fl_notify_now(n);

    assert_false(fl_notify_wait(n, "inst-a", &since, now_ms() - 1));
}

static void test_notify_garbage_payload_wakes_everyone(void **state)
{
    fl_notify *n = *state;
    uint64_t since = fl_notify_now(n);

    fl_notify_inject(n, "not json");
    assert_true(fl_notify_wait(n, "inst-a", &since, in_ms(1000)));
    fl_notify_inject(n, "{\"tenant\":\"t\"}");
    assert_true(fl_notify_wait(n, "anything", &since, in_ms(1000)));
}

static void test_notify_fell_behind_ring_wakes(void **state)
{
    fl_notify *n = *state;
    uint64_t since = fl_notify_now(n);

    fl_notify_inject(n, P_A);
    for (int i = 0; i < FL_NOTIFY_RING + 1; i++) {
        fl_notify_inject(n, P_B);
    }
    /* the entry for inst-a was overwritten: the waiter cannot know, so it wakes */
    assert_true(fl_notify_wait(n, "inst-a", &since, in_ms(1000)));
}

static void test_notify_earlier_match_within_ring_found(void **state)
{
    fl_notify *n = *state;
    uint64_t since = fl_notify_now(n);

    fl_notify_inject(n, P_A);
    for (int i = 0; i < 100; i++) {
        fl_notify_inject(n, P_B);
    }
    assert_true(fl_notify_wait(n, "inst-a", &since, in_ms(1000)));
    assert_false(fl_notify_wait(n, "inst-a", &since, in_ms(20)));
}

typedef struct waiter {
    fl_notify *n;
    const char *id;
    uint64_t since;
    int64_t deadline;
    bool woke;
    int64_t woke_at;
} waiter;

static void *wait_main(void *arg)
{
    waiter *w = arg;

    w->woke = fl_notify_wait(w->n, w->id, &w->since, w->deadline);
    w->woke_at = now_ms();
    return NULL;
}

static void test_notify_wakes_a_blocked_waiter_early(void **state)
{
    fl_notify *n = *state;
    waiter w = {n, "key-a", fl_notify_now(n), in_ms(5000), false, 0};
    pthread_t t;
    int64_t t0;

    assert_int_equal(pthread_create(&t, NULL, wait_main, &w), 0);
    struct timespec pause = {0, 50 * 1000000L};
    nanosleep(&pause, NULL);
    fl_notify_inject(n, P_B); /* not ours: keeps waiting */
    nanosleep(&pause, NULL);
    t0 = now_ms();
    fl_notify_inject(n, P_A);
    pthread_join(t, NULL);
    assert_true(w.woke);
    assert_true(w.woke_at - t0 < 1000);
}

static void test_notify_free_wakes_waiters_and_stops_promptly(void **state)
{
    fl_config_db db = {.url = "postgresql://127.0.0.1:1/none", .connect_timeout_ms = 200};
    fl_notify *n = NULL;
    fl_err err = FL_ERR_INIT;
    waiter w = {0};
    pthread_t t;
    int64_t t0;
    struct timespec pause = {0, 300 * 1000000L};

    (void)state;
    assert_int_equal(fl_notify_start(&n, &db, &err), FL_OK);
    w = (waiter){n, "inst-a", fl_notify_now(n), in_ms(10000), true, 0};
    assert_int_equal(pthread_create(&t, NULL, wait_main, &w), 0);
    nanosleep(&pause, NULL); /* the thread is retrying its connection by now */
    t0 = now_ms();
    /* free while a waiter still waits: it must be woken, and left, before memory goes */
    fl_notify_free(n);
    pthread_join(t, NULL);
    assert_false(w.woke);
    assert_true(now_ms() - t0 < 1000);
}

static void test_notify_stop_ends_waits_at_once(void **state)
{
    fl_notify *n = *state;
    waiter w = {n, "inst-a", fl_notify_now(n), in_ms(10000), true, 0};
    pthread_t t;
    int64_t t0;
    uint64_t since;

    assert_int_equal(pthread_create(&t, NULL, wait_main, &w), 0);
    struct timespec pause = {0, 50 * 1000000L};
    nanosleep(&pause, NULL);
    t0 = now_ms();
    fl_notify_stop(n);
    fl_notify_stop(n); /* idempotent */
    pthread_join(t, NULL);
    assert_false(w.woke);
    assert_true(w.woke_at - t0 < 1000);
    since = fl_notify_now(n);
    fl_notify_inject(n, P_A);
    assert_false(fl_notify_wait(n, "inst-a", &since, in_ms(5000))); /* at once */
    assert_true(now_ms() - t0 < 1000);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notify_bad_url_is_einval),
        cmocka_unit_test_setup_teardown(test_notify_match_by_instance_id_and_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_other_id_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_null_id_matches_any, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_past_deadline_returns_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_garbage_payload_wakes_everyone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_notify_fell_behind_ring_wakes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_earlier_match_within_ring_found, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_notify_wakes_a_blocked_waiter_early, setup, teardown),
        cmocka_unit_test(test_notify_free_wakes_waiters_and_stops_promptly),
        cmocka_unit_test_setup_teardown(test_notify_stop_ends_waits_at_once, setup, teardown),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
