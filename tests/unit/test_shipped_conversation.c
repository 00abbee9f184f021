/* tests/unit/test_shipped_conversation.c -- scenarios that drive the shipped conversation
 * workflow (workflows/conversation.yaml) through the pure step function: greeting, intent
 * detection, information gathering, routing, processing, confirmation, the appointment and
 * order children it starts, stale results, agent switches, errors and recovery, the end.
 *
 * Like test_shipped.c (both use tests/unit/shipped_harness.h), it loads the real file, starts an instance with conversation.started and feeds
 * it hand-made CloudEvents and the engine's own timer and activity events: timer ids
 * "<instance>/<entry_seq>/s<transition>", activity ids "<instance>/<entry_seq>/<action>".
 * Event data and expected effects are written with single quotes, turned into double
 * quotes before use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/log.h"
#include "core/mem.h"
#include "tests/unit/shipped_harness.h"

/* The raw text (no quote conversion) must be in the effects of the last step. */
static void assert_in_effects(const harness *h, const char *text)
{
    if (strstr(h->dump, text) == NULL) {
        print_error("effects of the step: %s\n", h->dump);
    }
    assert_non_null(strstr(h->dump, text));
}

/* The input of the child started by the last step, as JSON text. Owned by the caller. */
static char *child_input(const harness *h)
{
    for (size_t i = 0; i < h->fx.count; i++) {
        if (h->fx.items[i].kind == FL_EFFECT_CHILD_START) {
            return json_dumps(json_object_get(h->fx.items[i].data, "input"), JSON_COMPACT);
        }
    }
    fail_msg("no child started: %s", h->dump);
    return NULL;
}

/* ---- conversation ------------------------------------------------------------------ */

#define CONVERSATION "workflows/conversation.yaml"
#define T            (NOW + 60 * 1000) /* a minute after the start: the time of later steps */
#define MSG1         "{'content':'I need a dental cleaning','message_id':'m1'}"
#define CLASSIFIED                                                                      \
    ",'result':{'intent':'book_appointment','confidence':0.75,'agent':'booking_agent'," \
    "'slots':{}},'usage':{'tokens_in':30,'tokens_out':10,'cost':0.01}"
#define GATHERED                                                 \
    ",'result':{'slots':{'service':'cleaning','day':'Tuesday'}," \
    "'slots_json':'service=cleaning day=Tuesday','complete':true,'question':''}"
/* The conversation's earlier turns (flowd.conversation.history), and none. */
#define HISTORY                                                                    \
    ",'result':{'messages':[{'role':'user','content':'I need a dental cleaning'}," \
    "{'role':'assistant','content':'Which day suits you?'}],'tokens':11}"
#define NO_HISTORY ",'result':{'messages':[],'tokens':0}"
#define BOOKING                                                                       \
    ",'result':{'action':'book_appointment','reply':'Book a cleaning on Tuesday?',"   \
    "'input':{'customer':'Ada','service':'cleaning','slot':'2026-01-07T15:00:00Z'}}," \
    "'usage':{'tokens_in':7,'tokens_out':3}"
#define ORDERING                                                           \
    ",'result':{'action':'place_order','reply':'Order one pizza for 12?'," \
    "'input':{'items':[{'sku':'pizza','qty':1}],'total':12}}"

/* Started, greeted, first message classified: in INFORMATION_GATHERING (entry 3). */
static void conversation_gathering(harness *h)
{
    load_shipped(h, CONVERSATION);
    begin(h, "conversation.started", "{}", NOW);
    deliver(h, "conversation.message.received", MSG1, T);
    complete_call(h, "2/0", CLASSIFIED, T + 1000);
    assert_at(h, "INFORMATION_GATHERING", FL_STATUS_RUNNING);
}

/* ... then the details are complete: routed (entry 4, the history read: no earlier turns),
 * in PROCESSING (entry 5), waiting. */
static void conversation_processing(harness *h)
{
    conversation_gathering(h);
    complete_call(h, "3/0", GATHERED, T + 2000);
    assert_at(h, "AGENT_ROUTING", FL_STATUS_RUNNING);
    complete_call(h, "4/2", NO_HISTORY, T + 2500);
    assert_at(h, "PROCESSING", FL_STATUS_RUNNING);
}

/* ... then the proposal of `result` arrived: CONFIRMATION (entry 6), the user says `yes`. */
static void conversation_confirmed(harness *h, const char *result, const char *yes)
{
    char data[256];

    conversation_processing(h);
    complete_call(h, "5/0", result, T + 3000);
    assert_at(h, "CONFIRMATION", FL_STATUS_RUNNING);
    snprintf(data, sizeof(data), "{'content':'%s','message_id':'m2'}", yes);
    deliver(h, "conversation.message.received", data, T + 4000);
}

static void test_shipped_conversation_greets(void **state)
{
    harness h;

    (void)state;
    load_shipped(&h, CONVERSATION);
    begin(&h, "conversation.started", "{}", NOW);
    assert_at(&h, "GREETING", FL_STATUS_RUNNING);
    assert_effect(&h, FL_EFFECT_REPLY, 0,
                  "{'agent':'general_purpose','content':'Hello! How can I help you today?'}");
    assert_int_equal(count_effects(&h, FL_EFFECT_ACTIVITY_START), 0);
    done(&h);
    /* a business's dedicated chat names its agent in the starting event */
    load_shipped(&h, CONVERSATION);
    begin(&h, "conversation.started", "{'agent':'dental_clinic'}", NOW);
    assert_field(&h, "agent", "'dental_clinic'");
    assert_effect(&h, FL_EFFECT_REPLY, 0,
                  "{'agent':'dental_clinic','content':'Hello! How can I help you today?'}");
    done(&h);
}

static void test_shipped_conversation_message_detects_intent(void **state)
{
    harness h;

    (void)state;
    load_shipped(&h, CONVERSATION);
    begin(&h, "conversation.started", "{}", NOW);
    deliver(&h, "conversation.message.received", MSG1, T);
    assert_at(&h, "INTENT_DETECTION", FL_STATUS_RUNNING);
    assert_true(h.in->waiting);
    assert_field(&h, "last_message", "'I need a dental cleaning'");
    assert_field(&h, "last_message_id", "'m1'");
    assert_in_effects(
        &h, "{\"action\":0,\"activity\":\"i1/2/0\",\"call\":\"llm\",\"entry_seq\":2,"
            "\"into\":\"classification\",\"kind\":\"activity_start\",\"retry\":{"
            "\"attempts\":3,\"backoff\":\"exponential\",\"delay_ms\":1000,"
            "\"max_delay_ms\":10000},\"timeout_ms\":30000,\"with\":{\"agent\":"
            "\"general_purpose\",\"classify\":true,\"json\":true,\"prompt\":\"Classify the user's "
            "message.");
    assert_in_effects(&h, "Details: {}\\nMessage: I need a dental cleaning\"}}");
    complete_call(&h, "2/0", CLASSIFIED, T + 1000);
    assert_field(&h, "intent", "'book_appointment'");
    assert_effect(&h, FL_EFFECT_EMIT, 0,
                  "{'data':{'confidence':0.75,'intent':'book_appointment','message_id':'m1'},"
                  "'subject':'k1','topic':'ai.responses','type':'ai.intent.detected'}");
    assert_int_equal(json_integer_value(json_object_get(h.in->usage, "tokens_in")), 30);
    /* done: on to gathering, whose call is already started */
    assert_at(&h, "INFORMATION_GATHERING", FL_STATUS_RUNNING);
    assert_in_effects(&h, "\"activity\":\"i1/3/0\",\"call\":\"llm\"");
    assert_in_effects(&h, "\"into\":\"gathering\"");
    assert_in_effects(&h, "Intent: book_appointment\\nDetails: {}\\nMessage: I need a "
                          "dental cleaning\"");
    done(&h);
}

static void test_shipped_conversation_gathers_then_routes(void **state)
{
    harness h;

    (void)state;
    conversation_gathering(&h);
    /* something is missing: ask, and stay */
    complete_call(&h, "3/0",
                  ",'result':{'slots':{'service':'cleaning'},'slots_json':'service=cleaning',"
                  "'complete':false,'question':'Which day suits you?'},"
                  "'usage':{'tokens_in':9,'tokens_out':4}",
                  T + 2000);
    assert_at(&h, "INFORMATION_GATHERING", FL_STATUS_RUNNING);
    assert_false(h.in->waiting);
    /* the question is the call's answer: its accounting goes into the transcript */
    assert_effect(&h, FL_EFFECT_REPLY, 0,
                  "{'agent':'general_purpose','content':'Which day suits you?',"
                  "'usage':{'tokens_in':9,'tokens_out':4}}");
    assert_field(&h, "slots", "{'service':'cleaning'}");
    /* the answer re-enters the stage with what is known so far */
    deliver(&h, "conversation.message.received", "{'content':'Tuesday','message_id':'m2'}",
            T + 3000);
    assert_at(&h, "INFORMATION_GATHERING", FL_STATUS_RUNNING);
    assert_in_effects(&h, "\"activity\":\"i1/4/0\"");
    assert_in_effects(&h, "Details: service=cleaning\\nMessage: Tuesday\"");
    complete_call(&h, "4/0", GATHERED, T + 4000);
    /* routed to the classified agent (confidence 0.75); the earlier turns are read ... */
    assert_effect(&h, FL_EFFECT_EMIT, 0,
                  "{'data':{'agent':'booking_agent','intent':'book_appointment'},'subject':'k1',"
                  "'topic':'ai.responses','type':'ai.agent.routed'}");
    assert_at(&h, "AGENT_ROUTING", FL_STATUS_RUNNING);
    assert_in_effects(&h, "\"activity\":\"i1/5/2\",\"call\":\"flowd.conversation.history\"");
    assert_in_effects(&h, "\"with\":{\"max_tokens\":2000,\"turns\":10}");
    /* ... then processing with the agent, the turns between the system prompt and the
     * request */
    complete_call(&h, "5/2", HISTORY, T + 4500);
    assert_at(&h, "PROCESSING", FL_STATUS_RUNNING);
    assert_field(&h, "agent", "'booking_agent'");
    assert_field(&h, "slots_json", "'service=cleaning day=Tuesday'");
    assert_in_effects(&h, "\"activity\":\"i1/6/0\",\"call\":\"llm\",\"entry_seq\":6,\"into\":"
                          "\"proposal\"");
    assert_in_effects(&h, "\"timeout_ms\":60000,\"with\":{\"agent\":\"booking_agent\",\"json\":"
                          "true,\"messages\":[{\"content\":\"Answer with JSON");
    assert_in_effects(&h, "holds what the workflow needs.\",\"role\":\"system\"},{\"content\":"
                          "\"I need a dental cleaning\",\"role\":\"user\"},{\"content\":"
                          "\"Which day suits you?\",\"role\":\"assistant\"},{\"content\":"
                          "\"Now: 2026-01-05T10:01:04.500Z\\nIntent: book_appointment\\nDetails: "
                          "service=cleaning day=Tuesday\\nMessage: Tuesday\",\"role\":\"user\"}]}");
    /* an answer in words sends them too, before the message */
    complete_call(&h, "6/0", ",'result':{'action':'answer','reply':'Fine.','input':{}}", T + 5000);
    assert_at(&h, "ANSWERING", FL_STATUS_RUNNING);
    assert_in_effects(&h, "\"messages\":[{\"content\":\"You are the booking_agent assistant. "
                          "Answer briefly.\",\"role\":\"system\"},{\"content\":\"I need a dental "
                          "cleaning\",\"role\":\"user\"},{\"content\":\"Which day suits you?\","
                          "\"role\":\"assistant\"},{\"content\":\"Tuesday\",\"role\":\"user\"}]");
    /* the turns are not kept once the request is done */
    complete_call(&h, "7/0", ",'result':'Fine.'", T + 5500);
    assert_at(&h, "COMPLETION", FL_STATUS_RUNNING);
    assert_field(&h, "history", "null");
    done(&h);
}

static void test_shipped_conversation_low_confidence_routes_to_general(void **state)
{
    harness h;

    (void)state;
    load_shipped(&h, CONVERSATION);
    begin(&h, "conversation.started", "{}", NOW);
    deliver(&h, "conversation.message.received", MSG1, T);
    complete_call(&h, "2/0",
                  ",'result':{'intent':'book_appointment','confidence':0.25,"
                  "'agent':'booking_agent'}",
                  T + 1000);
    complete_call(&h, "3/0", GATHERED, T + 2000);
    /* no history (the database stayed down): the request goes on without it */
    fail_call(&h, "4/2", "history.unavailable", "down");
    assert_at(&h, "PROCESSING", FL_STATUS_RUNNING);
    assert_field(&h, "errors", "0");
    assert_field(&h, "history", "null");
    assert_in_effects(&h, "Intent: book_appointment\\nDetails: service=cleaning day=Tuesday\\n"
                          "Message: I need a dental cleaning\",\"role\":\"user\"}]}");
    assert_field(&h, "agent", "'general_purpose'");
    done(&h);
}

#define ANSWERED ",'result':'We open at 9.','usage':{'tokens_in':5,'tokens_out':4,'cost':0.001}"

static void test_shipped_conversation_answer_completes(void **state)
{
    harness h;

    (void)state;
    conversation_processing(&h);
    complete_call(&h, "5/0", ",'result':{'action':'answer','reply':'We open at 9.','input':{}}",
                  T + 3000);
    /* an answer in words is its own call (a provider may stream it to SSE listeners) */
    assert_at(&h, "ANSWERING", FL_STATUS_RUNNING);
    assert_in_effects(&h, "\"activity\":\"i1/6/0\",\"call\":\"llm\",\"entry_seq\":6,\"into\":"
                          "\"answer\"");
    complete_call(&h, "6/0", ANSWERED, T + 3500);
    assert_at(&h, "COMPLETION", FL_STATUS_RUNNING);
    assert_effect(&h, FL_EFFECT_REPLY, 0,
                  "{'agent':'booking_agent','content':'We open at 9.','usage':{'cost':0.001,"
                  "'tokens_in':5,'tokens_out':4}}");
    assert_effect(&h, FL_EFFECT_EMIT, 0,
                  "{'data':{'agent':'booking_agent','intent':'book_appointment'},'subject':'k1',"
                  "'topic':'ai.responses','type':'ai.turn.completed'}");
    assert_effect(&h, FL_EFFECT_TIMER_ARM, 0, /* idle for 30 minutes */
                  "{'due_at_ms':1767609063500,'entry_seq':7,'timer':'i1/7/s1','transition':'s1'}");
    assert_int_equal(1767609063500LL, T + 3500 + 30 * 60 * 1000);
    /* the next request starts afresh */
    deliver(&h, "conversation.message.received", "{'content':'And a pizza','message_id':'m2'}",
            T + 4000);
    assert_at(&h, "INTENT_DETECTION", FL_STATUS_RUNNING);
    assert_field(&h, "slots", "{}");
    assert_field(&h, "slots_json", "'{}'");
    assert_field(&h, "last_message_id", "'m2'");
    assert_in_effects(&h, "\"activity\":\"i1/8/0\"");
    done(&h);
    /* or nobody writes again: the conversation closes */
    conversation_processing(&h);
    complete_call(&h, "5/0", ",'result':{'action':'answer','reply':'We open at 9.'}", T + 3000);
    complete_call(&h, "6/0", ANSWERED, T + 3500);
    fire(&h, "7/s1", T + 3500 + 30 * 60 * 1000);
    assert_at(&h, "ENDED", FL_STATUS_COMPLETED);
    done(&h);
}

static void test_shipped_conversation_booking_starts_appointment(void **state)
{
    harness h, child;
    char *input;

    (void)state;
    conversation_processing(&h);
    complete_call(&h, "5/0", BOOKING, T + 3000);
    assert_at(&h, "CONFIRMATION", FL_STATUS_RUNNING);
    assert_effect(&h, FL_EFFECT_REPLY, 0,
                  "{'agent':'booking_agent','content':'Book a cleaning on Tuesday?',"
                  "'usage':{'tokens_in':7,'tokens_out':3}}");
    assert_int_equal(count_effects(&h, FL_EFFECT_CHILD_START), 0); /* not without a yes */
    deliver(&h, "conversation.message.received", "{'content':'Yes please','message_id':'m2'}",
            T + 4000);
    assert_effect(&h, FL_EFFECT_LOG, 0,
                  "{'level':'info','message':'starting book_appointment for message m1'}");
    assert_effect(&h, FL_EFFECT_CHILD_START, 0,
                  "{'input':{'confirmed':true,'conversation':'k1','customer':'Ada',"
                  "'service':'cleaning','slot':'2026-01-07T15:00:00Z'},"
                  "'key':'appointment-k1-m1','workflow':'appointment'}");
    assert_effect(&h, FL_EFFECT_REPLY, 0,
                  "{'agent':'booking_agent','content':'Your cleaning is booked for "
                  "2026-01-07T15:00:00Z.'}");
    assert_field(&h, "appointment_key", "'appointment-k1-m1'");
    assert_at(&h, "COMPLETION", FL_STATUS_RUNNING);
    /* the child, started with that input, has what it needs */
    input = child_input(&h);
    load_shipped(&child, "workflows/appointment.yaml");
    assert_int_equal(start_at(&child, FL_EVENT_INSTANCE_START, input, NOW), FL_OK);
    free(input);
    /* the user's yes confirmed it: the child is booked at once */
    assert_at(&child, "confirmed", FL_STATUS_RUNNING);
    assert_field(&child, "customer", "'Ada'");
    assert_field(&child, "conversation", "'k1'");
    assert_field(&child, "service", "'cleaning'");
    done(&child);
    done(&h);
}

static void test_shipped_conversation_order_starts_order(void **state)
{
    harness h, child;
    char *input;

    (void)state;
    conversation_confirmed(&h, ORDERING, "I confirm the order");
    assert_at(&h, "COMPLETION", FL_STATUS_RUNNING);
    assert_effect(&h, FL_EFFECT_CHILD_START, 0,
                  "{'input':{'confirmed':true,'conversation':'k1','customer':'guest',"
                  "'items':[{'qty':1,'sku':'pizza'}],'total':12},"
                  "'key':'order-k1-m1','workflow':'order'}");
    assert_effect(&h, FL_EFFECT_REPLY, 0,
                  "{'agent':'booking_agent','content':'Your order has been placed.'}");
    input = child_input(&h);
    load_shipped(&child, "workflows/order.yaml");
    assert_int_equal(start_at(&child, FL_EVENT_INSTANCE_START, input, NOW), FL_OK);
    free(input);
    assert_at(&child, "placed", FL_STATUS_RUNNING);
    assert_field(&child, "total", "12");
    done(&child);
    done(&h);
}

static void test_shipped_conversation_confirmation_correction_and_timeout(void **state)
{
    harness h;

    (void)state;
    /* anything but a yes is a correction: gather again with it */
    conversation_confirmed(&h, BOOKING, "No, make it Wednesday");
    assert_at(&h, "INFORMATION_GATHERING", FL_STATUS_RUNNING);
    assert_field(&h, "last_message_id", "'m2'");
    assert_int_equal(count_effects(&h, FL_EFFECT_CHILD_START), 0);
    assert_effect(&h, FL_EFFECT_TIMER_CANCEL, 0, "{'entry_seq':6}");
    assert_in_effects(&h, "Message: No, make it Wednesday\"");
    done(&h);
    /* no answer within the hour: nothing is booked */
    conversation_processing(&h);
    complete_call(&h, "5/0", BOOKING, T + 3000);
    assert_effect(&h, FL_EFFECT_TIMER_ARM, 0,
                  "{'due_at_ms':1767610863000,'entry_seq':6,'timer':'i1/6/s2','transition':'s2'}");
    assert_int_equal(1767610863000LL, T + 3000 + 3600 * 1000);
    fire(&h, "6/s2", T + 3000 + 3600 * 1000);
    assert_at(&h, "COMPLETION", FL_STATUS_RUNNING);
    assert_effect(&h, FL_EFFECT_REPLY, 0,
                  "{'agent':'booking_agent','content':'I have not booked anything. Write again "
                  "any time.'}");
    assert_int_equal(count_effects(&h, FL_EFFECT_CHILD_START), 0);
    done(&h);
}

static void test_shipped_conversation_confirmation_needs_a_real_yes(void **state)
{
    /* \u0027 is an apostrophe: the single quotes of these strings become double ones */
    static const char *const no[] = {"You have the wrong day", "Yesterday I said Wednesday",
                                     "Please do not confirm yet", "Don\\u0027t confirm it",
                                     "No, I will confirm later"};
    static const char *const yes[] = {"yes",   "  Yep, book it", "Y",
                                      "Yeah!", "I confirm",      "confirmed, thanks"};

    (void)state;
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        harness h;

        conversation_confirmed(&h, BOOKING, no[i]);
        if (strcmp(state_of(&h), "INFORMATION_GATHERING") != 0) {
            print_error("taken as a yes: \"%s\"\n", no[i]);
        }
        assert_at(&h, "INFORMATION_GATHERING", FL_STATUS_RUNNING);
        assert_int_equal(count_effects(&h, FL_EFFECT_CHILD_START), 0);
        done(&h);
    }
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        harness h;

        conversation_confirmed(&h, BOOKING, yes[i]);
        if (strcmp(state_of(&h), "COMPLETION") != 0) {
            print_error("not taken as a yes: \"%s\"\n", yes[i]);
        }
        assert_at(&h, "COMPLETION", FL_STATUS_RUNNING);
        assert_int_equal(count_effects(&h, FL_EFFECT_CHILD_START), 1);
        done(&h);
    }
}

static void test_shipped_conversation_unknown_action_is_answered(void **state)
{
    harness h;

    (void)state;
    /* an action no workflow handles is never confirmed: the agent answers in words */
    conversation_processing(&h);
    complete_call(&h, "5/0", ",'result':{'action':'send_flowers','reply':'Send roses?'}", T + 3000);
    assert_at(&h, "ANSWERING", FL_STATUS_RUNNING);
    complete_call(&h, "6/0", ANSWERED, T + 3500);
    assert_at(&h, "COMPLETION", FL_STATUS_RUNNING);
    assert_int_equal(count_effects(&h, FL_EFFECT_CHILD_START), 0);
    done(&h);
}

static void test_shipped_conversation_llm_failure_recovers(void **state)
{
    harness h;
    int64_t now = T;

    (void)state;
    load_shipped(&h, CONVERSATION);
    begin(&h, "conversation.started", "{}", NOW);
    deliver(&h, "conversation.message.received", MSG1, T);
    fail_call(&h, "2/0", "llm.timeout", "no answer in 30s");
    assert_at(&h, "ERROR_RECOVERY", FL_STATUS_RUNNING);
    assert_field(&h, "errors", "1");
    assert_field(&h, "last_error", "'llm.timeout'");
    assert_effect(&h, FL_EFFECT_REPLY, 0,
                  "{'agent':'general_purpose','content':'Sorry, something went wrong on my side. "
                  "Let me try again.'}");
    assert_effect(&h, FL_EFFECT_TIMER_ARM, 0,
                  "{'due_at_ms':1767607207000,'entry_seq':3,'timer':'i1/3/s6','transition':'s6'}");
    /* an explicit recover returns to intent detection, which calls the model again */
    deliver(&h, "conversation.recover", "{'strategy':'retry_same_agent'}", T + 3000);
    assert_at(&h, "INTENT_DETECTION", FL_STATUS_RUNNING);
    assert_effect(&h, FL_EFFECT_TIMER_CANCEL, 0, "{'entry_seq':3}");
    assert_in_effects(&h, "\"activity\":\"i1/4/0\"");
    /* after a second failure it retries by itself after 5 s; after the third it waits */
    for (int seq = 4; seq <= 6; seq += 2) {
        char activity[16], timer[16];

        snprintf(activity, sizeof(activity), "%d/0", seq);
        snprintf(timer, sizeof(timer), "%d/s6", seq + 1);
        fail_call(&h, activity, "llm.unavailable", "every provider failed");
        assert_at(&h, "ERROR_RECOVERY", FL_STATUS_RUNNING);
        now += 10000;
        fire(&h, timer, now);
    }
    assert_field(&h, "errors", "3");
    assert_unhandled(&h, "no transition matched");
    assert_at(&h, "ERROR_RECOVERY", FL_STATUS_RUNNING);
    deliver(&h, "conversation.message.received", "{'content':'hello?','message_id':'m2'}",
            now + 1000);
    assert_at(&h, "INTENT_DETECTION", FL_STATUS_RUNNING);
    done(&h);
}

/* In ERROR_RECOVERY after a failure, with agent booking_agent; then `strategy`. */
static void recover_with(harness *h, const char *strategy)
{
    char data[64];

    conversation_processing(h);
    fail_call(h, "5/0", "llm.rate_limited", "slow down");
    assert_at(h, "ERROR_RECOVERY", FL_STATUS_RUNNING);
    snprintf(data, sizeof(data), "{'strategy':'%s'}", strategy);
    deliver(h, "conversation.recover", data, T + 9000);
}

static void test_shipped_conversation_recover_strategies(void **state)
{
    harness h;

    (void)state;
    recover_with(&h, "switch_to_fallback");
    assert_at(&h, "INTENT_DETECTION", FL_STATUS_RUNNING);
    assert_field(&h, "agent", "'general_purpose'");
    done(&h);
    recover_with(&h, "reset_conversation");
    assert_at(&h, "GREETING", FL_STATUS_RUNNING);
    assert_field(&h, "errors", "0");
    assert_field(&h, "slots", "{}");
    assert_field(&h, "intent", "''");
    assert_effect(&h, FL_EFFECT_REPLY, 0,
                  "{'agent':'booking_agent','content':'Hello! How can I help you today?'}");
    done(&h);
    recover_with(&h, "escalate_to_human");
    assert_at(&h, "COMPLETION", FL_STATUS_RUNNING);
    assert_effect(&h, FL_EFFECT_EMIT, 0,
                  "{'data':{'reason':'llm.rate_limited'},'subject':'k1','topic':'ai.responses',"
                  "'type':'conversation.escalated'}");
    assert_effect(&h, FL_EFFECT_REPLY, 0,
                  "{'agent':'booking_agent','content':'A person will take over this "
                  "conversation.'}");
    done(&h);
    recover_with(&h, "create_new_conversation");
    assert_at(&h, "ENDED", FL_STATUS_COMPLETED);
    done(&h);
    recover_with(&h, "something_new"); /* unknown strategies retry */
    assert_at(&h, "INTENT_DETECTION", FL_STATUS_RUNNING);
    assert_field(&h, "agent", "'booking_agent'");
    done(&h);
}

static void test_shipped_conversation_new_message_makes_result_stale(void **state)
{
    harness h;

    (void)state;
    load_shipped(&h, CONVERSATION);
    begin(&h, "conversation.started", "{}", NOW);
    deliver(&h, "conversation.message.received", MSG1, T);
    deliver(&h, "conversation.message.received",
            "{'content':'Actually, a pizza','message_id':'m2'}", T + 500);
    assert_at(&h, "INTENT_DETECTION", FL_STATUS_RUNNING);
    assert_in_effects(&h, "Message: Actually, a pizza\"");
    complete_call(&h, "2/0", CLASSIFIED, T + 1000);
    assert_unhandled(&h, "stale activity");
    assert_field(&h, "intent", "''");
    complete_call(&h, "3/0",
                  ",'result':{'intent':'place_order','confidence':0.5,'agent':'order_agent'}",
                  T + 1500);
    assert_at(&h, "INFORMATION_GATHERING", FL_STATUS_RUNNING);
    assert_field(&h, "intent", "'place_order'");
    done(&h);
}

static void test_shipped_conversation_agent_switch_keeps_stage(void **state)
{
    harness h;

    (void)state;
    load_shipped(&h, CONVERSATION);
    begin(&h, "conversation.started", "{}", NOW);
    deliver(&h, "conversation.message.received", MSG1, T);
    deliver(&h, "conversation.agent_switch_requested", "{'agent':'dental_clinic'}", T + 500);
    assert_at(&h, "INTENT_DETECTION", FL_STATUS_RUNNING);
    assert_true(h.in->waiting); /* the call stays pending */
    assert_field(&h, "agent", "'dental_clinic'");
    assert_effect(&h, FL_EFFECT_EMIT, 0,
                  "{'data':{'from':'general_purpose','to':'dental_clinic'},'subject':'k1',"
                  "'topic':'ai.responses','type':'ai.agent.switched'}");
    assert_int_equal(count_effects(&h, FL_EFFECT_ACTIVITY_START), 0);
    complete_call(&h, "2/0", CLASSIFIED, T + 1000);
    assert_at(&h, "INFORMATION_GATHERING", FL_STATUS_RUNNING);
    assert_in_effects(&h, "\"with\":{\"agent\":\"dental_clinic\"");
    done(&h);
}

static void test_shipped_conversation_child_failure_is_reported(void **state)
{
    harness h;

    (void)state;
    conversation_confirmed(&h, BOOKING, "yes");
    deliver(&h, FL_EVENT_CHILD_FAILED,
            "{'child':'c1','workflow':'appointment','state':'failed','context':{}}", T + 5000);
    assert_at(&h, "COMPLETION", FL_STATUS_RUNNING);
    assert_effect(&h, FL_EFFECT_REPLY, 0,
                  "{'agent':'booking_agent','content':'Sorry, your appointment could not be "
                  "completed.'}");
    assert_int_equal(count_effects(&h, FL_EFFECT_TIMER_CANCEL), 0); /* internal */
    done(&h);
}

static void test_shipped_conversation_ended_ends(void **state)
{
    harness h;

    (void)state;
    conversation_gathering(&h);
    deliver(&h, "conversation.ended", "{}", T + 2000);
    assert_at(&h, "ENDED", FL_STATUS_COMPLETED);
    assert_effect(&h, FL_EFFECT_FINISHED, 0, "{'status':'completed'}");
    complete_call(&h, "3/0", GATHERED, T + 3000);
    assert_unhandled(&h, "instance ended");
    deliver(&h, "conversation.message.received", MSG1, T + 4000);
    assert_unhandled(&h, "instance ended");
    done(&h);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_conversation_greets),
        cmocka_unit_test(test_shipped_conversation_message_detects_intent),
        cmocka_unit_test(test_shipped_conversation_gathers_then_routes),
        cmocka_unit_test(test_shipped_conversation_low_confidence_routes_to_general),
        cmocka_unit_test(test_shipped_conversation_answer_completes),
        cmocka_unit_test(test_shipped_conversation_booking_starts_appointment),
        cmocka_unit_test(test_shipped_conversation_order_starts_order),
        cmocka_unit_test(test_shipped_conversation_confirmation_correction_and_timeout),
        cmocka_unit_test(test_shipped_conversation_confirmation_needs_a_real_yes),
        cmocka_unit_test(test_shipped_conversation_unknown_action_is_answered),
        cmocka_unit_test(test_shipped_conversation_llm_failure_recovers),
        cmocka_unit_test(test_shipped_conversation_recover_strategies),
        cmocka_unit_test(test_shipped_conversation_new_message_makes_result_stale),
        cmocka_unit_test(test_shipped_conversation_agent_switch_keeps_stage),
        cmocka_unit_test(test_shipped_conversation_child_failure_is_reported),
        cmocka_unit_test(test_shipped_conversation_ended_ends),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
