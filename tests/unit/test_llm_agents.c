/* tests/unit/test_llm_agents.c -- agent profiles driving `call: llm` without a network:
 * the request an agent makes (its system prompt first, the fallback for an unknown id,
 * the catalogue and json mode of a classification), the rules of a classification answer
 * and its routing, the chain starting at the preferred provider, an invalid
 * classification asked again once and then answered by `local` (reason invalid_output),
 * and the local provider classifying with the profiles' keywords. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/llm/agent_request.h"
#include "engine/llm/chain.h"
#include "engine/llm_local.h"
#include "tests/unit/llm_fixture.h"
#include "tests/unit/scratch_files.h"
#include "tests/unit/fake_clock.h"

static fl_agents *shipped(void)
{
    fl_agents *r = NULL;
    fl_diags d;
    fl_err err = FL_ERR_INIT;

    fl_diags_init(&d, 10);
    assert_int_equal(fl_agents_load_dir(&r, "workflows/agents", &d, &err), FL_OK);
    fl_diags_deinit(&d);
    return r;
}

static const char *msg_field(const json_t *args, size_t i, const char *field)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(args, "messages"), i), field));
}

/* ---- the request ------------------------------------------------------------------------ */

static void test_agent_args_system_prompt_first(void **state)
{
    fl_agents *reg = shipped();
    json_t *args = json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "agent", "restaurant_food", "prompt",
                             "hi", "messages", "role", "system", "content", "Be brief.");
    fl_llm_agent_use use;
    json_t *out = fl_llm_agent_args(reg, args, &use);

    (void)state;
    assert_ptr_equal(use.agent, fl_agents_get(reg, "restaurant_food"));
    assert_string_equal(use.requested, "");
    assert_false(use.classify);
    assert_int_equal(json_array_size(json_object_get(out, "messages")), 2);
    assert_string_equal(msg_field(out, 0, "role"), "system");
    assert_string_equal(msg_field(out, 0, "content"), use.agent->system_prompt);
    assert_string_equal(msg_field(out, 1, "content"), "Be brief.");
    assert_string_equal(json_string_value(json_object_get(out, "prompt")), "hi");
    assert_null(json_object_get(out, "json"));
    /* the caller's object is left alone */
    assert_int_equal(json_array_size(json_object_get(args, "messages")), 1);
    json_decref(out);
    json_decref(args);
    fl_agents_free(reg);
}

static void test_agent_args_unknown_agent_and_no_profiles(void **state)
{
    fl_agents *reg = shipped();
    json_t *args = json_pack("{s:s, s:s}", "agent", "no_such_agent", "prompt", "hi");
    fl_llm_agent_use use;
    json_t *out = fl_llm_agent_args(reg, args, &use);

    (void)state;
    assert_string_equal(use.agent->id, FL_AGENTS_FALLBACK);
    assert_string_equal(use.requested, "no_such_agent");
    assert_string_equal(json_string_value(json_object_get(out, "agent")), FL_AGENTS_FALLBACK);
    assert_string_equal(msg_field(out, 0, "content"), use.agent->system_prompt);
    json_decref(out);
    /* without profiles the arguments pass unchanged */
    out = fl_llm_agent_args(NULL, args, &use);
    assert_null(use.agent);
    assert_true(json_equal(out, args));
    json_decref(out);
    json_decref(args);
    fl_agents_free(reg);
}

static void test_agent_args_classification(void **state)
{
    fl_agents *reg = shipped();
    json_t *args = json_pack("{s:s, s:b, s:s}", "agent", "general_purpose", "classify", 1, "prompt",
                             "Message: a pizza");
    fl_llm_agent_use use;
    json_t *out = fl_llm_agent_args(reg, args, &use);
    const char *cat;

    (void)state;
    assert_true(use.classify);
    assert_true(json_is_true(json_object_get(out, "json")));
    assert_string_equal(msg_field(out, 0, "content"), use.agent->system_prompt);
    cat = msg_field(out, 1, "content");
    assert_string_equal(msg_field(out, 1, "role"), "system");
    for (size_t i = 0; i < fl_agents_count(reg); i++) {
        char want[96];

        snprintf(want, sizeof(want), "\n- %s: ", fl_agents_at(reg, i)->id);
        assert_non_null(strstr(cat, want));
    }
    assert_non_null(strstr(cat, "book_table, place_order, cancel_order"));
    json_decref(out);
    json_decref(args);
    fl_agents_free(reg);
}

/* ---- classification answers --------------------------------------------------------------- */

static void expect_invalid(const fl_agents *reg, const char *text, const char *why_part)
{
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    char why[160];

    assert_false(fl_llm_classify_check(reg, j, why, sizeof(why)));
    assert_non_null(strstr(why, why_part));
    json_decref(j);
}

static void test_classify_check_and_route(void **state)
{
    fl_agents *reg = shipped();
    json_t *j = json_pack("{s:s, s:f, s:s, s:{}}", "intent", "place_order", "confidence", 0.8,
                          "agent", "restaurant_food", "slots");
    char why[160];

    (void)state;
    assert_true(fl_llm_classify_check(reg, j, why, sizeof(why)));
    assert_string_equal(why, "");
    fl_llm_classify_route(reg, j);
    assert_string_equal(json_string_value(json_object_get(j, "agent")), "restaurant_food");
    json_object_set_new(j, "confidence", json_real(0.59));
    fl_llm_classify_route(reg, j);
    assert_string_equal(json_string_value(json_object_get(j, "agent")), FL_AGENTS_FALLBACK);
    assert_string_equal(json_string_value(json_object_get(j, "agent_proposed")), "restaurant_food");
    json_decref(j);
    expect_invalid(reg, "[1]", "not a JSON object");
    expect_invalid(reg, "{\"confidence\":1,\"agent\":\"automotive\",\"slots\":{}}", "\"intent\"");
    expect_invalid(reg,
                   "{\"intent\":\"x\",\"confidence\":1.5,\"agent\":\"automotive\",\"slots\":{}}",
                   "\"confidence\"");
    expect_invalid(reg, "{\"intent\":\"x\",\"confidence\":\"high\",\"agent\":\"automotive\"}",
                   "\"confidence\"");
    expect_invalid(reg, "{\"intent\":\"x\",\"confidence\":1,\"agent\":\"chef\",\"slots\":{}}",
                   "no loaded agent");
    expect_invalid(reg, "{\"intent\":\"x\",\"confidence\":0,\"agent\":\"automotive\",\"slots\":[]}",
                   "\"slots\"");
    fl_agents_free(reg);
}

/* ---- the chain -------------------------------------------------------------------------- */

static json_t *openai_answer(const char *text)
{
    return json_pack("{s:s, s:[{s:{s:s}, s:s}], s:{s:i, s:i}}", "model", "gpt-x", "choices",
                     "message", "content", text, "finish_reason", "stop", "usage", "prompt_tokens",
                     10, "completion_tokens", 5);
}

/* Expects a SEND to base_url path, answers 200 with content text; returns the request
 * body (owned). */
static json_t *answer(fl_llm_call *c, const char *path, const char *text)
{
    fl_llm_step st;
    fl_http_response resp;
    json_t *a = openai_answer(text);
    char *body = json_dumps(a, JSON_COMPACT);
    json_t *sent;

    fl_llm_call_next(c, &st);
    assert_int_equal(st.kind, FL_LLM_STEP_SEND);
    assert_non_null(strstr(st.req.url, path));
    sent = json_loads(st.req.body, 0, NULL);
    assert_int_equal(fl_llm_call_on_data(c, body, strlen(body)), FL_OK);
    memset(&resp, 0, sizeof(resp));
    resp.status = 200;
    fl_llm_call_on_response(c, &resp);
    free(body);
    json_decref(a);
    return sent;
}

static void done(fl_llm_call *c, fl_llm_outcome *out)
{
    fl_llm_step st;

    fl_llm_call_next(c, &st);
    assert_int_equal(st.kind, FL_LLM_STEP_DONE);
    fl_llm_call_outcome(c, out);
}

static const char *first_system(const json_t *body)
{
    const json_t *m = json_array_get(json_object_get(body, "messages"), 0);

    assert_string_equal(json_string_value(json_object_get(m, "role")), "system");
    return json_string_value(json_object_get(m, "content"));
}

static void test_chain_invalid_classification_retried_once_then_local(void **state)
{
    fl_config_llm cfg;
    fl_llm_chain *ch = NULL;
    fl_llm_call *c = NULL;
    fl_llm_outcome out;
    json_t *args = json_pack("{s:s, s:b, s:s}", "agent", "general_purpose", "classify", 1, "prompt",
                             "Message: two pizzas for delivery please");
    json_t *b1, *b2;
    const json_t *fb;

    (void)state;
    fixture_two_and_local(&cfg);
    assert_int_equal(fl_llm_chain_new(&ch, &cfg, &fake_clock, NULL), FL_OK);
    fl_llm_chain_set_agents(ch, shipped());
    assert_int_equal(fl_llm_call_new(&c, ch, args, "i:1:2", 30000, NULL), FL_OK);
    b1 = answer(c, "/primary", "{\"intent\": \"x\"}"); /* an object, not a classification */
    b2 = answer(c, "/primary", "not json at all");     /* asked again once, same provider */
    done(c, &out);                                     /* then local, not backup */
    assert_true(out.ok);
    assert_string_equal(first_system(b1),
                        fl_agents_get(fl_llm_chain_agents(ch), "general_purpose")->system_prompt);
    assert_true(json_equal(b1, b2));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(b1, "response_format"), "type")),
        "json_object");
    assert_string_equal(json_string_value(json_object_get(out.usage, "provider")), "local");
    assert_string_equal(json_string_value(json_object_get(out.usage, "agent")), "general_purpose");
    assert_int_equal(json_integer_value(json_object_get(out.usage, "attempts")), 3);
    fb = json_object_get(out.usage, "fallbacks");
    assert_int_equal(json_array_size(fb), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(fb, 0), "to")), "local");
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(fb, 0), "reason")),
                           "invalid_output: "));
    assert_string_equal(json_string_value(json_object_get(out.result, "agent")), "restaurant_food");
    assert_string_equal(json_string_value(json_object_get(out.result, "intent")), "place_order");
    json_decref(b1);
    json_decref(b2);
    json_decref(out.result);
    json_decref(out.usage);
    fl_llm_call_free(c);
    json_decref(args);
    fl_llm_chain_free(ch);
}

static void test_chain_low_confidence_routes_to_fallback(void **state)
{
    fl_config_llm cfg;
    fl_llm_chain *ch = NULL;
    fl_llm_call *c = NULL;
    fl_llm_outcome out;
    json_t *args = json_pack("{s:b, s:s}", "classify", 1, "prompt", "hmm");
    json_t *b;

    (void)state;
    fixture_two_and_local(&cfg);
    assert_int_equal(fl_llm_chain_new(&ch, &cfg, &fake_clock, NULL), FL_OK);
    fl_llm_chain_set_agents(ch, shipped());
    assert_int_equal(fl_llm_call_new(&c, ch, args, "i:1:2", 30000, NULL), FL_OK);
    b = answer(c, "/primary",
               "{\"intent\":\"book_appointment\",\"confidence\":0.3,\"agent\":\"automotive\","
               "\"slots\":{}}");
    done(c, &out);
    assert_true(out.ok);
    assert_string_equal(json_string_value(json_object_get(out.result, "agent")), "general_purpose");
    assert_string_equal(json_string_value(json_object_get(out.result, "agent_proposed")),
                        "automotive");
    assert_int_equal(json_array_size(json_object_get(out.usage, "fallbacks")), 0);
    json_decref(b);
    json_decref(out.result);
    json_decref(out.usage);
    fl_llm_call_free(c);
    json_decref(args);
    fl_llm_chain_free(ch);
}

static void remove_file(const char *dir, const char *name)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unlink(path);
}

#define PROFILE(id, provider)                                                           \
    "id: " id "\nname: N\ndescription: D.\npreferred_provider: " provider               \
    "\nsystem_prompt: You are " id ".\nintents:\n  - name: talk\n    description: T.\n" \
    "allowed_actions: [answer_question]\n"

/* A profile preferring the chain's second member is tried there first; fallback goes on
 * from there through the rest of the chain in its own order. */
static void test_chain_preferred_provider_first(void **state)
{
    char dir[] = "/tmp/flowd-llm-agents-XXXXXX";
    fl_config_llm cfg;
    fl_llm_chain *ch = NULL;
    fl_llm_call *c = NULL;
    fl_llm_outcome out;
    fl_diags d;
    fl_agents *reg = NULL;
    json_t *args = json_pack("{s:s, s:s}", "agent", "tester", "prompt", "hello");
    json_t *b;

    (void)state;
    assert_non_null(mkdtemp(dir));
    write_file(dir, "general_purpose.yaml", PROFILE("general_purpose", "local"));
    write_file(dir, "tester.yaml", PROFILE("tester", "backup"));
    fl_diags_init(&d, 10);
    assert_int_equal(fl_agents_load_dir(&reg, dir, &d, NULL), FL_OK);
    fl_diags_deinit(&d);
    fixture_two_and_local(&cfg);
    assert_int_equal(fl_llm_chain_new(&ch, &cfg, &fake_clock, NULL), FL_OK);
    fl_llm_chain_set_agents(ch, reg);
    assert_int_equal(fl_llm_call_new(&c, ch, args, "i:1:2", 30000, NULL), FL_OK);
    b = answer(c, "/backup", "Hi.");
    done(c, &out);
    assert_string_equal(first_system(b), "You are tester.");
    assert_string_equal(json_string_value(json_object_get(out.usage, "provider")), "backup");
    json_decref(b);
    json_decref(out.result);
    json_decref(out.usage);
    fl_llm_call_free(c);
    /* local (the default) is no preference: the chain's own order */
    json_object_set_new(args, "agent", json_string("general_purpose"));
    assert_int_equal(fl_llm_call_new(&c, ch, args, "i:1:2", 30000, NULL), FL_OK);
    b = answer(c, "/primary", "Hi.");
    done(c, &out);
    json_decref(b);
    json_decref(out.result);
    json_decref(out.usage);
    fl_llm_call_free(c);
    json_decref(args);
    fl_llm_chain_free(ch);
    remove_file(dir, "general_purpose.yaml");
    remove_file(dir, "tester.yaml");
    rmdir(dir);
}

/* ---- the local provider with profiles ---------------------------------------------------- */

static json_t *local_json(const fl_agents *reg, const char *message)
{
    json_t *args = json_pack("{s:b, s:s+}", "json", 1, "prompt", "Message: ", message);
    json_t *r = NULL, *u = NULL;

    assert_int_equal(fl_llm_local_answer(reg, args, &r, &u, NULL), FL_OK);
    json_decref(u);
    json_decref(args);
    return r;
}

static void expect_local(const fl_agents *reg, const char *message, const char *intent,
                         const char *agent, double min_conf, double max_conf)
{
    json_t *r = local_json(reg, message);
    double conf = json_number_value(json_object_get(r, "confidence"));

    assert_string_equal(json_string_value(json_object_get(r, "intent")), intent);
    assert_string_equal(json_string_value(json_object_get(r, "agent")), agent);
    assert_true(conf >= min_conf && conf <= max_conf);
    json_decref(r);
}

static void test_local_classifies_with_profile_keywords(void **state)
{
    fl_agents *reg = shipped();
    json_t *r;

    (void)state;
    /* one decisive keyword: sure */
    expect_local(reg, "I'd like to book a haircut tomorrow", "book_appointment", "beauty_salon",
                 0.85, 0.95);
    expect_local(reg, "Two pizzas please", "place_order", "restaurant_food", 0.85, 0.95);
    expect_local(reg, "I need a car repair", "book_appointment", "automotive", 0.85, 0.95);
    /* only a profile knows the word: its intent's action gives the flow intent */
    expect_local(reg, "My kitchen needs a plumber", "book_appointment", "local_services", 0.85,
                 0.95);
    /* a word every profile lists says little: low confidence, the fallback agent */
    expect_local(reg, "can I book", "book_appointment", "general_purpose", 0.4, 0.59);
    /* no keyword at all */
    expect_local(reg, "hello there", "general_question", "general_purpose", 0.0, 0.4);
    r = local_json(reg, "Can I book a table?");
    assert_string_equal(json_string_value(json_object_get(r, "agent")), "restaurant_food");
    assert_string_equal(json_string_value(json_object_get(r, "agent_intent")), "book_table");
    json_decref(r);
    /* without profiles: the keyword table alone, as before */
    expect_local(NULL, "I'd like to book a haircut tomorrow", "book_appointment", "beauty_salon",
                 0.9, 0.9);
    fl_agents_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_args_system_prompt_first),
        cmocka_unit_test(test_agent_args_unknown_agent_and_no_profiles),
        cmocka_unit_test(test_agent_args_classification),
        cmocka_unit_test(test_classify_check_and_route),
        cmocka_unit_test(test_chain_invalid_classification_retried_once_then_local),
        cmocka_unit_test(test_chain_low_confidence_routes_to_fallback),
        cmocka_unit_test(test_chain_preferred_provider_first),
        cmocka_unit_test(test_local_classifies_with_profile_keywords),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
