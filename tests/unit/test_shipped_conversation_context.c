/* tests/unit/test_shipped_conversation_context.c -- what the shipped conversation workflow
 * (workflows/conversation.yaml) puts into its prompts besides the message: a dedicated
 * chat's business (LOADING_BUSINESS, `call: flowd.business.get`, once) and the user's
 * memory facts (RECALLING, `call: flowd.memory.search`, every request), driven through
 * the pure step function like test_shipped_conversation.c (tests/unit/shipped_harness.h).
 * Event data and expected effects are written with single quotes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/log.h"
#include "core/mem.h"
#include "tests/unit/shipped_harness.h"

#define CONVERSATION "workflows/conversation.yaml"
#define T            (NOW + 60 * 1000)
#define STARTED      "{'flow_type':'dedicated','business_id':'b-1','user_id':'u-7'}"
#define MSG1         "{'content':'A haircut or a beard trim, please!','message_id':'m1'}"
#define BUSINESS                                                                             \
    ",'result':{'business':{'id':'b-1','name':'Hair Studio','category':'beauty_salon',"      \
    "'city':'Springfield','phone':null,'hours':{'tuesday':{'open':'10:00','close':'18:00'}," \
    "'monday':{'open':'09:00','close':'17:00'}},'services':[{'name':'Haircut','price':25,"   \
    "'currency':'USD','duration_minutes':30,'available':true},{'name':'Beard\\n trim',"      \
    "'price':12.5,'currency':'EUR','duration_minutes':null,'available':false}]}}"
#define CLASSIFIED \
    ",'result':{'intent':'book_appointment','confidence':0.9,'agent':'beauty_salon','slots':{}}"
#define GATHERED   ",'result':{'slots':{'service':'haircut'},'slots_json':'{}','complete':true}"
#define NO_HISTORY ",'result':{'messages':[],'tokens':0}"
#define SUMMARY                                                                    \
    "Hair Studio (beauty_salon, Springfield). Hours: monday 09:00-17:00, tuesday " \
    "10:00-18:00. Services: Haircut 25.00 USD (30 min), Beard trim 12.50 EUR (unavailable)."

/* The raw text (no quote conversion) must be in the effects of the last step. */
static void assert_in_effects(const harness *h, const char *text)
{
    if (strstr(h->dump, text) == NULL) {
        print_error("effects of the step: %s\n", h->dump);
    }
    assert_non_null(strstr(h->dump, text));
}

/* Started as a business's dedicated chat, first message: the business is being loaded. */
static void dedicated_loading(harness *h)
{
    load_shipped(h, CONVERSATION);
    begin(h, "conversation.started", STARTED, NOW);
    assert_int_equal(count_effects(h, FL_EFFECT_ACTIVITY_START), 0);
    deliver(h, "conversation.message.received", MSG1, T);
    assert_at(h, "LOADING_BUSINESS", FL_STATUS_RUNNING);
    assert_in_effects(h, "\"activity\":\"i1/2/0\",\"call\":\"flowd.business.get\"");
    assert_in_effects(h, "\"with\":{\"business_id\":\"b-1\"}");
}

static void test_business_summary_reaches_processing_with_memory(void **state)
{
    harness h;

    (void)state;
    dedicated_loading(&h);
    complete_call(&h, "2/0", BUSINESS, T + 100);
    assert_at(&h, "INTENT_DETECTION", FL_STATUS_RUNNING);
    assert_field(&h, "business_summary", "'" SUMMARY "'");
    assert_field(&h, "business", "none"); /* only the summary is kept */
    complete_call(&h, "3/0", CLASSIFIED, T + 200);
    complete_call(&h, "4/0", GATHERED, T + 300);
    complete_call(&h, "5/2", NO_HISTORY, T + 350); /* AGENT_ROUTING's read of the turns */
    /* a known user: their facts matching any word of the message */
    assert_at(&h, "RECALLING", FL_STATUS_RUNNING);
    assert_in_effects(&h, "\"activity\":\"i1/6/0\",\"call\":\"flowd.memory.search\"");
    assert_in_effects(&h, "\"with\":{\"limit\":5,\"q\":\"a or haircut or a or beard or trim or "
                          "please\",\"user_id\":\"u-7\"}");
    complete_call(&h, "6/0",
                  ",'result':{'facts':[{'fact':'Prefers  Maria\\nfor haircuts'},"
                  "{'fact':'Allergic to lavender'}]}",
                  T + 400);
    assert_at(&h, "PROCESSING", FL_STATUS_RUNNING);
    assert_in_effects(&h, "\"activity\":\"i1/7/0\"");
    assert_in_effects(&h, "\"content\":\"Business: " SUMMARY "\\nMemory: Prefers Maria for "
                          "haircuts; Allergic to lavender\\nNow: 2026-01-05T10:01:00.400Z\\n"
                          "Intent: book_appointment\\n");
    /* an answer in words names the business in its system prompt */
    complete_call(&h, "7/0", ",'result':{'action':'answer','reply':'Yes.','input':{}}", T + 500);
    assert_at(&h, "ANSWERING", FL_STATUS_RUNNING);
    assert_in_effects(&h, "You are the beauty_salon assistant of this business: " SUMMARY
                          " About the user: Prefers Maria for haircuts; Allergic to lavender "
                          "Answer briefly.");
    /* the next request reuses the business and recalls again */
    complete_call(&h, "8/0", ",'result':'Yes.'", T + 600);
    deliver(&h, "conversation.message.received", "{'content':'thanks','message_id':'m2'}", T + 700);
    assert_at(&h, "INTENT_DETECTION", FL_STATUS_RUNNING);
    assert_field(&h, "business_summary", "'" SUMMARY "'");
    done(&h);
}

static void test_unknown_business_and_no_facts_leave_the_prompt_plain(void **state)
{
    harness h;

    (void)state;
    dedicated_loading(&h);
    fail_call(&h, "2/0", "directory.not_found", "no business b-1");
    assert_at(&h, "INTENT_DETECTION", FL_STATUS_RUNNING);
    assert_field(&h, "business_summary", "null");
    assert_field(&h, "errors", "0"); /* not an error of the conversation */
    complete_call(&h, "3/0", CLASSIFIED, T + 200);
    complete_call(&h, "4/0", GATHERED, T + 300);
    complete_call(&h, "5/2", NO_HISTORY, T + 350);
    complete_call(&h, "6/0", ",'result':{'facts':[]}", T + 400);
    assert_at(&h, "PROCESSING", FL_STATUS_RUNNING);
    assert_field(&h, "memory_summary", "null");
    assert_in_effects(&h, "\"content\":\"Now: 2026-01-05T10:01:00.400Z\\nIntent: ");
    done(&h);
    /* a failed memory search does not stop the request either, ... */
    dedicated_loading(&h);
    complete_call(&h, "2/0", BUSINESS, T + 100);
    complete_call(&h, "3/0", CLASSIFIED, T + 200);
    complete_call(&h, "4/0", GATHERED, T + 300);
    fail_call(&h, "5/2", "history.unavailable", "down"); /* nor does a failed history read */
    assert_at(&h, "RECALLING", FL_STATUS_RUNNING);
    fail_call(&h, "6/0", "directory.unavailable", "down");
    assert_at(&h, "PROCESSING", FL_STATUS_RUNNING);
    assert_in_effects(&h, "\"content\":\"Business: Hair Studio");
    done(&h);
}

static void test_global_chat_without_user_loads_nothing(void **state)
{
    harness h;

    (void)state;
    load_shipped(&h, CONVERSATION);
    begin(&h, "conversation.started", "{'flow_type':'global'}", NOW);
    deliver(&h, "conversation.message.received", MSG1, T);
    assert_at(&h, "INTENT_DETECTION", FL_STATUS_RUNNING);
    complete_call(&h, "2/0", CLASSIFIED, T + 200);
    complete_call(&h, "3/0", GATHERED, T + 300);
    complete_call(&h, "4/2", NO_HISTORY, T + 350);
    assert_at(&h, "PROCESSING", FL_STATUS_RUNNING); /* no RECALLING without a user */
    done(&h);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_business_summary_reaches_processing_with_memory),
        cmocka_unit_test(test_unknown_business_and_no_facts_leave_the_prompt_plain),
        cmocka_unit_test(test_global_chat_without_user_loads_nothing),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
