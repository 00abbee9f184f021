/* tests/unit/test_shipped.c -- scenarios that drive the shipped appointment, order and
 * cleanup workflows (workflows/appointment.yaml, order.yaml, cleanup.yaml) through the
 * pure step function, to prove that they behave as their comments and docs/workflows.md
 * say, not only that they validate.
 *
 * Each test loads the real file from the repository root (make unit runs there), starts an
 * instance with the event that triggers it and feeds it hand-made CloudEvents plus the
 * engine's own timer and activity events, built as the engine builds them: timer ids
 * "<instance>/<entry_seq>/s<transition>", activity ids "<instance>/<entry_seq>/<action>".
 * Event data and expected effects are written with single quotes, turned into double
 * quotes before use, so that the JSON stays readable. The conversation workflow has its
 * own binary, test_shipped_conversation.c; both share tests/unit/shipped_harness.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/log.h"
#include "core/mem.h"
#include "tests/unit/shipped_harness.h"

#define MIN15     (15LL * 60 * 1000)
#define DAY       (24LL * 3600 * 1000)
/* An appointment slot two days after NOW, and the times its timers are due. */
#define SLOT      "2026-01-07T15:00:00Z"
#define SLOT_MS   1767798000000LL
#define REMIND_MS (SLOT_MS - DAY)             /* the reminder: 24 h before the slot */
#define FOLLOW_MS (SLOT_MS + 2 * 3600 * 1000) /* the follow-up: 2 h after it began */

/* ---- appointment ------------------------------------------------------------------- */

#define APPOINTMENT "workflows/appointment.yaml"
#define REQUEST     "{'customer':'Ada','service':'haircut','contact':'ada@example.com'}"
#define LLM_RETRY   "'retry':{'attempts':3,'backoff':'exponential','delay_ms':1000,"

/* requested -> confirmed, with the reminder armed; entry_seq 2. */
static void appointment_confirmed(harness *h)
{
    load_shipped(h, APPOINTMENT);
    begin(h, "appointment.requested", REQUEST, NOW);
    deliver(h, "appointment.confirmed", "{'slot':'" SLOT "'}", NOW + 1000);
    assert_at(h, "confirmed", FL_STATUS_RUNNING);
}

static void test_shipped_appointment_reminder_and_follow_up(void **state)
{
    harness h;

    (void)state;
    load_shipped(&h, APPOINTMENT);
    begin(&h, "appointment.requested", REQUEST, NOW);
    assert_at(&h, "requested", FL_STATUS_RUNNING);
    assert_ctx(&h, "{\"business_id\":null,\"confirmed\":false,\"contact\":\"ada@example.com\","
                   "\"conversation\":null,\"customer\":\"Ada\",\"party_size\":null,"
                   "\"reminders\":0,\"service\":\"haircut\",\"slot\":null}");
    assert_effect(&h, FL_EFFECT_EMIT, 0,
                  "{'data':{'customer':'Ada','service':'haircut'},'subject':'k1',"
                  "'type':'appointment.pending'}");
    assert_effect(&h, FL_EFFECT_TIMER_ARM, 0,
                  "{'due_at_ms':1767780000000,'entry_seq':1,'timer':'i1/1/s1','transition':'s1'}");
    /* a confirmation without a slot is ignored */
    deliver(&h, "appointment.confirmed", "{}", NOW + 500);
    assert_unhandled(&h, "no transition matched");
    deliver(&h, "appointment.confirmed", "{'slot':'" SLOT "'}", NOW + 1000);
    assert_at(&h, "confirmed", FL_STATUS_RUNNING);
    assert_field(&h, "slot", "'" SLOT "'");
    assert_effect(&h, FL_EFFECT_TIMER_CANCEL, 0, "{'entry_seq':1}");
    assert_effect(&h, FL_EFFECT_TIMER_ARM, 0,
                  "{'due_at_ms':1767711600000,'entry_seq':2,'timer':'i1/2/s0','transition':'s0'}");
    assert_int_equal(REMIND_MS, 1767711600000LL); /* 2026-01-06T15:00:00Z: 24 h before */
    fire(&h, "2/s0", REMIND_MS);
    assert_at(&h, "reminded", FL_STATUS_RUNNING);
    assert_true(h.in->waiting);
    assert_effect(&h, FL_EFFECT_ACTIVITY_START, 0,
                  "{'action':0,'activity':'i1/3/0','call':'llm','entry_seq':3,"
                  "'into':'reminder_text'," LLM_RETRY "'max_delay_ms':30000},"
                  "'timeout_ms':30000,'with':{'agent':'general_purpose','max_tokens':200,"
                  "'prompt':'Write a short, friendly reminder for Ada of their haircut "
                  "appointment at " SLOT ".'}}");
    assert_effect(&h, FL_EFFECT_TIMER_ARM, 0,
                  "{'due_at_ms':1767805200000,'entry_seq':3,'timer':'i1/3/s0','transition':'s0'}");
    assert_int_equal(count_effects(&h, FL_EFFECT_EMIT), 0); /* not before the text exists */
    complete_call(&h, "3/0",
                  ",'result':'See you tomorrow at 15:00, Ada!',"
                  "'usage':{'tokens_in':40,'tokens_out':12,'cost':0.5}",
                  REMIND_MS + 3000);
    assert_at(&h, "reminded", FL_STATUS_RUNNING); /* waits for the follow-up time */
    assert_false(h.in->waiting);
    assert_field(&h, "reminders", "1");
    assert_field(&h, "reminder_text", "'See you tomorrow at 15:00, Ada!'");
    assert_effect(&h, FL_EFFECT_EMIT, 0,
                  "{'data':{'contact':'ada@example.com','slot':'" SLOT "',"
                  "'text':'See you tomorrow at 15:00, Ada!'},'subject':'k1',"
                  "'type':'appointment.reminder_due'}");
    assert_int_equal(json_integer_value(json_object_get(h.in->usage, "tokens_in")), 40);
    fire(&h, "3/s0", FOLLOW_MS);
    assert_at(&h, "follow_up", FL_STATUS_RUNNING);
    assert_effect(&h, FL_EFFECT_ACTIVITY_START, 0,
                  "{'action':0,'activity':'i1/4/0','call':'llm','entry_seq':4,"
                  "'into':'follow_up_text'," LLM_RETRY "'max_delay_ms':30000},"
                  "'timeout_ms':30000,'with':{'agent':'general_purpose','max_tokens':120,"
                  "'prompt':'Write a one-sentence follow-up asking Ada how their haircut "
                  "appointment went.'}}");
    complete_call(&h, "4/0", ",'result':'How was your haircut?'", FOLLOW_MS + 2000);
    assert_at(&h, "completed", FL_STATUS_COMPLETED);
    assert_effect(&h, FL_EFFECT_EMIT, 0,
                  "{'data':{'contact':'ada@example.com','text':'How was your haircut?'},"
                  "'subject':'k1','type':'appointment.follow_up_due'}");
    assert_effect(&h, FL_EFFECT_FINISHED, 0, "{'status':'completed'}");
    done(&h);
}

static void test_shipped_appointment_reschedule_rearms_reminder(void **state)
{
    harness h;

    (void)state;
    appointment_confirmed(&h);
    deliver(&h, "appointment.rescheduled", "{'slot':'2026-01-10T09:30:00Z'}", NOW + 2000);
    assert_at(&h, "confirmed", FL_STATUS_RUNNING);
    assert_field(&h, "slot", "'2026-01-10T09:30:00Z'");
    assert_effect(&h, FL_EFFECT_TIMER_CANCEL, 0, "{'entry_seq':2}");
    /* 2026-01-09T09:30:00Z */
    assert_effect(&h, FL_EFFECT_TIMER_ARM, 0,
                  "{'due_at_ms':1767951000000,'entry_seq':3,'timer':'i1/3/s0','transition':'s0'}");
    fire(&h, "2/s0", REMIND_MS); /* the old reminder is stale */
    assert_unhandled(&h, "stale timer");
    assert_at(&h, "confirmed", FL_STATUS_RUNNING);
    done(&h);
}

static void test_shipped_appointment_cancelled_from_any_state(void **state)
{
    harness h;

    (void)state;
    /* from reminded, with the LLM call pending */
    appointment_confirmed(&h);
    fire(&h, "2/s0", REMIND_MS);
    assert_at(&h, "reminded", FL_STATUS_RUNNING);
    deliver(&h, "appointment.cancelled", "{'reason':'customer is ill'}", REMIND_MS + 1000);
    assert_at(&h, "cancelled", FL_STATUS_COMPLETED);
    assert_field(&h, "cancel_reason", "'customer is ill'");
    assert_effect(&h, FL_EFFECT_TIMER_CANCEL, 0, "{'entry_seq':3}");
    assert_effect(&h, FL_EFFECT_FINISHED, 0, "{'status':'completed'}");
    complete_call(&h, "3/0", ",'result':'too late'", REMIND_MS + 2000);
    assert_unhandled(&h, "instance ended");
    done(&h);
    /* from requested, without data */
    load_shipped(&h, APPOINTMENT);
    begin(&h, "appointment.requested", REQUEST, NOW);
    deliver(&h, "appointment.cancelled", NULL, NOW + 1000);
    assert_at(&h, "cancelled", FL_STATUS_COMPLETED);
    assert_field(&h, "cancel_reason", "'not given'");
    done(&h);
}

static void test_shipped_appointment_expires_after_48h_unconfirmed(void **state)
{
    harness h;

    (void)state;
    load_shipped(&h, APPOINTMENT);
    begin(&h, "appointment.requested", REQUEST, NOW);
    assert_effect(&h, FL_EFFECT_TIMER_ARM, 0, /* NOW + 48 h */
                  "{'due_at_ms':1767780000000,'entry_seq':1,'timer':'i1/1/s1','transition':'s1'}");
    fire(&h, "1/s1", NOW + H48);
    assert_at(&h, "expired", FL_STATUS_COMPLETED);
    assert_effect(&h, FL_EFFECT_FINISHED, 0, "{'status':'completed'}");
    deliver(&h, "appointment.confirmed", "{'slot':'" SLOT "'}", NOW + H48 + 1000);
    assert_unhandled(&h, "instance ended");
    done(&h);
}

static void test_shipped_appointment_llm_failure_fails(void **state)
{
    harness h;

    (void)state;
    appointment_confirmed(&h);
    fire(&h, "2/s0", REMIND_MS);
    fail_call(&h, "3/0", "llm.unavailable", "every provider failed");
    assert_at(&h, "failed", FL_STATUS_FAILED);
    assert_effect(&h, FL_EFFECT_FINISHED, 0, "{'status':'failed'}");
    assert_int_equal(count_effects(&h, FL_EFFECT_EMIT), 0);
    done(&h);
    /* the follow-up call fails the same way */
    appointment_confirmed(&h);
    fire(&h, "2/s0", REMIND_MS);
    complete_call(&h, "3/0", ",'result':'reminder'", REMIND_MS + 1000);
    fire(&h, "3/s0", FOLLOW_MS);
    fail_call(&h, "4/0", "llm.timeout", "no answer in 30s");
    assert_at(&h, "failed", FL_STATUS_FAILED);
    done(&h);
}

static void test_shipped_appointment_started_as_child(void **state)
{
    harness h;

    (void)state;
    /* the conversation starts it with flowd.instance.start, data = its input */
    load_shipped(&h, APPOINTMENT);
    begin(&h, FL_EVENT_INSTANCE_START, "{'customer':'Bo','service':'massage'}", NOW);
    assert_at(&h, "requested", FL_STATUS_RUNNING);
    assert_ctx(&h, "{\"business_id\":null,\"confirmed\":false,\"contact\":null,"
                   "\"conversation\":null,\"customer\":\"Bo\",\"party_size\":null,"
                   "\"reminders\":0,\"service\":\"massage\",\"slot\":null}");
    done(&h);
    /* an input of null (the model proposed none) must not fail the step */
    load_shipped(&h, APPOINTMENT);
    begin(&h, FL_EVENT_INSTANCE_START, NULL, NOW);
    assert_at(&h, "requested", FL_STATUS_RUNNING);
    done(&h);
}

/* A conversation's child whose user already said yes: confirmed in its first step. */
static void test_shipped_appointment_confirmed_at_the_source(void **state)
{
    harness h;

    (void)state;
    load_shipped(&h, APPOINTMENT);
    begin(&h, FL_EVENT_INSTANCE_START,
          "{'customer':'Bo','service':'haircut','slot':'2026-01-09T15:00:00Z','confirmed':true,"
          "'party_size':2,'conversation':'c1'}",
          NOW);
    assert_at(&h, "confirmed", FL_STATUS_RUNNING);
    assert_field(&h, "slot", "\"2026-01-09T15:00:00Z\"");
    assert_field(&h, "party_size", "2");
    done(&h);
    /* confirmed without a slot is useless for the reminder: it waits as any request */
    load_shipped(&h, APPOINTMENT);
    begin(&h, FL_EVENT_INSTANCE_START, "{'customer':'Bo','service':'haircut','confirmed':true}",
          NOW);
    assert_at(&h, "requested", FL_STATUS_RUNNING);
    done(&h);
}

/* ---- order ------------------------------------------------------------------------- */

#define ORDER  "workflows/order.yaml"
#define PLACED "{'items':[{'sku':'pizza','qty':2}],'total':24.5,'payment_id':'pay_1'}"
#define REFUND_CALL                                                                         \
    "{'action':0,'activity':'i1/%d/0','call':'http','entry_seq':%d,'into':'refund',"        \
    "'retry':{'attempts':5,'backoff':'exponential','delay_ms':2000,'max_delay_ms':60000},"  \
    "'timeout_ms':30000,'with':{'body':{'amount':24.5,'payment_id':'pay_1','reason':'%s'}," \
    "'headers':{'Content-Type':'application/json','Idempotency-Key':'refund-i1'},"          \
    "'method':'POST','url':'https://payments.example.invalid/v1/refunds'}}"

static void assert_refund_call(const harness *h, int entry_seq, const char *reason)
{
    char want[1024];

    snprintf(want, sizeof(want), REFUND_CALL, entry_seq, entry_seq, reason);
    assert_effect(h, FL_EFFECT_ACTIVITY_START, 0, want);
}

/* placed, paid (first), then accepted: in accepted with entry_seq 2. */
static void order_accepted(harness *h)
{
    load_shipped(h, ORDER);
    begin(h, "order.placed", PLACED, NOW);
    deliver(h, "order.paid", "{}", NOW + 1000);
    deliver(h, "order.accepted", "{}", NOW + 2000);
    assert_at(h, "accepted", FL_STATUS_RUNNING);
}

static void test_shipped_order_happy_path_to_closed(void **state)
{
    harness h;

    (void)state;
    load_shipped(&h, ORDER);
    begin(&h, "order.placed", PLACED, NOW);
    assert_at(&h, "placed", FL_STATUS_RUNNING);
    assert_field(&h, "total", "24.5");
    assert_field(&h, "items", "[{'qty':2,'sku':'pizza'}]");
    assert_field(&h, "payment_url", "'https://payments.example.invalid/v1'");
    assert_effect(&h, FL_EFFECT_TIMER_ARM, 0,
                  "{'due_at_ms':1767608100000,'entry_seq':1,'timer':'i1/1/s4','transition':'s4'}");
    deliver(&h, "order.paid", "{}", NOW + 1000); /* internal: keeps waiting, timer and all */
    assert_at(&h, "placed", FL_STATUS_RUNNING);
    assert_field(&h, "paid", "true");
    assert_int_equal(count_effects(&h, FL_EFFECT_TIMER_CANCEL), 0);
    fire(&h, "1/s4", NOW + MIN15); /* paid in time: the timeout's guard is false */
    assert_unhandled(&h, "no transition matched");
    deliver(&h, "order.accepted", "{}", NOW + MIN15 + 1000);
    assert_at(&h, "accepted", FL_STATUS_RUNNING);
    assert_field(&h, "merchant_accepted", "true");
    deliver(&h, "order.preparation_started", "{}", NOW + 2 * MIN15);
    assert_at(&h, "preparing", FL_STATUS_RUNNING);
    deliver(&h, "order.ready", "{}", NOW + 3 * MIN15);
    assert_at(&h, "ready", FL_STATUS_RUNNING);
    assert_effect(&h, FL_EFFECT_EMIT, 0,
                  "{'data':{'items':[{'qty':2,'sku':'pizza'}]},'subject':'k1',"
                  "'type':'order.pickup_due'}");
    deliver(&h, "order.delivered", "{}", NOW + 4 * MIN15);
    assert_at(&h, "delivered", FL_STATUS_RUNNING);
    assert_effect(&h, FL_EFFECT_TIMER_ARM, 0,
                  "{'due_at_ms':1768820400000,'entry_seq':5,'timer':'i1/5/s2','transition':'s2'}");
    assert_int_equal(1768820400000LL, NOW + 4 * MIN15 + 14 * DAY);
    deliver(&h, "order.cancelled", "{}", NOW + 5 * MIN15); /* ignored once delivered */
    assert_at(&h, "delivered", FL_STATUS_RUNNING);
    assert_effect(&h, FL_EFFECT_LOG, 0,
                  "{'level':'warn','message':'order already delivered; cancellation ignored'}");
    fire(&h, "5/s2", NOW + 4 * MIN15 + 14 * DAY);
    assert_at(&h, "closed", FL_STATUS_COMPLETED);
    assert_effect(&h, FL_EFFECT_FINISHED, 0, "{'status':'completed'}");
    done(&h);
}

static void test_shipped_order_accepted_before_paid(void **state)
{
    harness h;

    (void)state;
    load_shipped(&h, ORDER);
    begin(&h, "order.placed", PLACED, NOW);
    deliver(&h, "order.accepted", "{}", NOW + 1000);
    assert_at(&h, "placed", FL_STATUS_RUNNING);
    assert_field(&h, "merchant_accepted", "true");
    deliver(&h, "order.paid", "{}", NOW + 2000);
    assert_at(&h, "accepted", FL_STATUS_RUNNING);
    assert_field(&h, "paid", "true");
    assert_effect(&h, FL_EFFECT_TIMER_CANCEL, 0, "{'entry_seq':1}");
    done(&h);
}

static void test_shipped_order_payment_timeout_cancels_unpaid(void **state)
{
    harness h;

    (void)state;
    load_shipped(&h, ORDER);
    begin(&h, "order.placed", PLACED, NOW);
    deliver(&h, "order.accepted", "{}", NOW + 1000); /* accepted, but never paid */
    fire(&h, "1/s4", NOW + MIN15);
    assert_at(&h, "cancelled", FL_STATUS_COMPLETED);
    assert_field(&h, "cancel_reason", "'payment_timeout'");
    assert_effect(&h, FL_EFFECT_EMIT, 0,
                  "{'data':{'total':24.5},'subject':'k1','type':'order.payment_timed_out'}");
    assert_int_equal(count_effects(&h, FL_EFFECT_ACTIVITY_START), 0); /* nothing to refund */
    deliver(&h, "order.paid", "{}", NOW + MIN15 + 1000);
    assert_unhandled(&h, "instance ended");
    done(&h);
}

static void test_shipped_order_cancel_unpaid_ends_at_once(void **state)
{
    harness h;

    (void)state;
    load_shipped(&h, ORDER);
    begin(&h, "order.placed", PLACED, NOW);
    deliver(&h, "order.cancelled", NULL, NOW + 1000);
    assert_at(&h, "cancelled", FL_STATUS_COMPLETED);
    assert_field(&h, "cancel_reason", "'cancelled'");
    assert_int_equal(count_effects(&h, FL_EFFECT_ACTIVITY_START), 0);
    done(&h);
}

static void test_shipped_order_cancel_paid_refunds(void **state)
{
    harness h;

    (void)state;
    order_accepted(&h);
    deliver(&h, "order.preparation_started", "{}", NOW + 3000);
    deliver(&h, "order.cancelled", "{'reason':'changed my mind'}", NOW + 4000);
    assert_at(&h, "refunding", FL_STATUS_RUNNING);
    assert_field(&h, "cancel_reason", "'changed my mind'");
    assert_refund_call(&h, 4, "changed my mind");
    deliver(&h, "order.cancelled", "{'reason':'again'}", NOW + 5000); /* swallowed */
    assert_at(&h, "refunding", FL_STATUS_RUNNING);
    assert_true(h.in->waiting);
    assert_field(&h, "cancel_reason", "'changed my mind'");
    assert_int_equal(count_effects(&h, FL_EFFECT_UNHANDLED), 0);
    complete_call(&h, "4/0", ",'result':{'status':201,'headers':{},'body':{'id':'re_1'}}",
                  NOW + 6000);
    assert_at(&h, "refunded", FL_STATUS_COMPLETED);
    assert_field(&h, "refund", "{'body':{'id':'re_1'},'headers':{},'status':201}");
    assert_effect(&h, FL_EFFECT_EMIT, 0,
                  "{'data':{'total':24.5},'subject':'k1','type':'order.refund_issued'}");
    done(&h);
    /* paid but not yet accepted: refunded as well */
    load_shipped(&h, ORDER);
    begin(&h, "order.placed", PLACED, NOW);
    deliver(&h, "order.paid", "{}", NOW + 1000);
    deliver(&h, "order.cancelled", "{}", NOW + 2000);
    assert_at(&h, "refunding", FL_STATUS_RUNNING);
    assert_refund_call(&h, 2, "cancelled");
    done(&h);
}

static void test_shipped_order_refund_failure_fails(void **state)
{
    harness h;

    (void)state;
    /* a refund asked for after delivery, refused by the provider */
    order_accepted(&h);
    deliver(&h, "order.preparation_started", "{}", NOW + 3000);
    deliver(&h, "order.ready", "{}", NOW + 4000);
    deliver(&h, "order.delivered", "{}", NOW + 5000);
    deliver(&h, "order.refund_requested", "{'reason':'cold pizza'}", NOW + 6000);
    assert_at(&h, "refunding", FL_STATUS_RUNNING);
    assert_effect(&h, FL_EFFECT_TIMER_CANCEL, 0, "{'entry_seq':5}");
    assert_refund_call(&h, 6, "cold pizza");
    fail_call(&h, "6/0", "http.status", "402 Payment Required");
    assert_at(&h, "refund_failed", FL_STATUS_FAILED);
    assert_field(&h, "refund_error", "'402 Payment Required'");
    assert_effect(&h, FL_EFFECT_FINISHED, 0, "{'status':'failed'}");
    assert_int_equal(count_effects(&h, FL_EFFECT_EMIT), 0); /* no refund_issued */
    done(&h);
    /* any other error type: the error type is what is kept */
    order_accepted(&h);
    deliver(&h, "order.cancelled", "{}", NOW + 3000);
    fail_call(&h, "3/0", "http.timeout", "no answer in 30s");
    assert_at(&h, "refund_failed", FL_STATUS_FAILED);
    assert_field(&h, "refund_error", "'http.timeout'");
    done(&h);
}

/* ---- cleanup ----------------------------------------------------------------------- */

#define CLEANUP "workflows/cleanup.yaml"
#define PURGE_CALL                                                                            \
    "{'action':0,'activity':'i1/%d/0','call':'flowd.purge','entry_seq':%d,"                   \
    "'into':'last_purge','retry':{'attempts':3,'backoff':'exponential','delay_ms':30000,"     \
    "'max_delay_ms':600000},'timeout_ms':600000,'with':{'conversations_idle_for':'30d',"      \
    "'dead_letters_older_than':'30d','inbox_older_than':'7d','instances_finished_for':'90d'," \
    "'outbox_published_older_than':'7d'}}"
#define PURGED \
    ",'result':{'conversations':3,'instances':10,'inbox':100,'outbox':50,'dead_letters':0}"

static void assert_purge_call(const harness *h, int entry_seq)
{
    char want[1024];

    snprintf(want, sizeof(want), PURGE_CALL, entry_seq, entry_seq);
    assert_effect(h, FL_EFFECT_ACTIVITY_START, 0, want);
}

static void test_shipped_cleanup_tick_purges_and_waits(void **state)
{
    harness h;

    (void)state;
    load_shipped(&h, CLEANUP);
    assert_int_equal(h.wf->schedule.kind, FL_SCHEDULE_CRON);
    begin(&h, FL_EVENT_SCHEDULE_TICK, "{}", NOW); /* the first tick creates the singleton */
    assert_at(&h, "purging", FL_STATUS_RUNNING);
    assert_true(h.in->waiting);
    assert_purge_call(&h, 1);
    deliver(&h, FL_EVENT_SCHEDULE_TICK, "{}", NOW + 1000); /* runs never overlap */
    assert_unhandled(&h, "no transition matched");
    complete_call(&h, "1/0", PURGED, NOW + 2000);
    assert_at(&h, "waiting", FL_STATUS_RUNNING);
    assert_field(&h, "last_purge",
                 "{'conversations':3,'dead_letters':0,'inbox':100,'instances':10,'outbox':50}");
    assert_effect(&h, FL_EFFECT_LOG, 0,
                  "{'level':'info','message':'purge finished: 3 conversations, 10 instances, "
                  "100 inbox rows, 50 outbox rows, 0 dead letters'}");
    /* the next night */
    deliver(&h, FL_EVENT_SCHEDULE_TICK, "{}", NOW + DAY);
    assert_at(&h, "purging", FL_STATUS_RUNNING);
    assert_purge_call(&h, 3);
    complete_call(&h, "1/0", PURGED, NOW + DAY + 1000); /* last night's result is stale */
    assert_unhandled(&h, "stale activity");
    complete_call(&h, "3/0", PURGED, NOW + DAY + 2000);
    assert_at(&h, "waiting", FL_STATUS_RUNNING);
    assert_int_equal(h.in->entry_seq, 4);
    done(&h);
}

static void test_shipped_cleanup_failure_logs_and_waits(void **state)
{
    harness h;

    (void)state;
    load_shipped(&h, CLEANUP);
    begin(&h, FL_EVENT_SCHEDULE_TICK, "{}", NOW);
    fail_call(&h, "1/0", "flowd.unavailable", "database is down");
    assert_at(&h, "waiting", FL_STATUS_RUNNING); /* never ends: tomorrow tries again */
    assert_effect(&h, FL_EFFECT_LOG, 0,
                  "{'level':'error','message':'purge failed: database is down'}");
    assert_field(&h, "last_purge", "none");
    deliver(&h, FL_EVENT_SCHEDULE_TICK, "{}", NOW + DAY);
    assert_at(&h, "purging", FL_STATUS_RUNNING);
    assert_purge_call(&h, 3);
    done(&h);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_appointment_reminder_and_follow_up),
        cmocka_unit_test(test_shipped_appointment_reschedule_rearms_reminder),
        cmocka_unit_test(test_shipped_appointment_cancelled_from_any_state),
        cmocka_unit_test(test_shipped_appointment_expires_after_48h_unconfirmed),
        cmocka_unit_test(test_shipped_appointment_llm_failure_fails),
        cmocka_unit_test(test_shipped_appointment_started_as_child),
        cmocka_unit_test(test_shipped_appointment_confirmed_at_the_source),
        cmocka_unit_test(test_shipped_order_happy_path_to_closed),
        cmocka_unit_test(test_shipped_order_accepted_before_paid),
        cmocka_unit_test(test_shipped_order_payment_timeout_cancels_unpaid),
        cmocka_unit_test(test_shipped_order_cancel_unpaid_ends_at_once),
        cmocka_unit_test(test_shipped_order_cancel_paid_refunds),
        cmocka_unit_test(test_shipped_order_refund_failure_fails),
        cmocka_unit_test(test_shipped_cleanup_tick_purges_and_waits),
        cmocka_unit_test(test_shipped_cleanup_failure_logs_and_waits),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
