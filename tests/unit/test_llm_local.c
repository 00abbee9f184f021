/* tests/unit/test_llm_local.c -- the deterministic `local` LLM provider: the same input
 * always gives the same reply, usage counts words, max_tokens caps the reply, json: true
 * gives the object the shipped conversation flow reads, and no input is an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/log.h"
#include "engine/llm_local.h"

static json_t *args_of(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);

    assert_non_null(j);
    return j;
}

static void call(const char *args_text, json_t **result, json_t **usage)
{
    json_t *args = args_of(args_text);
    fl_err err = {0};

    assert_int_equal(fl_llm_local_complete(args, result, usage, &err), FL_OK);
    json_decref(args);
}

static void test_llm_local_counts_words(void **state)
{
    (void)state;
    assert_int_equal(fl_llm_local_count_words(NULL), 0);
    assert_int_equal(fl_llm_local_count_words(""), 0);
    assert_int_equal(fl_llm_local_count_words("  one\ttwo\n three  "), 3);
}

static void test_llm_local_reply_is_deterministic(void **state)
{
    json_t *r1, *u1, *r2, *u2;

    (void)state;
    call("{\"agent\": \"beauty_salon\", \"prompt\": \"I want a haircut tomorrow\"}", &r1, &u1);
    call("{\"agent\": \"beauty_salon\", \"prompt\": \"I want a haircut tomorrow\"}", &r2, &u2);
    assert_true(json_equal(r1, r2));
    assert_true(json_equal(u1, u2));
    assert_string_equal(json_string_value(r1), "[beauty_salon] Thank you. I have noted: \"I want "
                                               "a haircut tomorrow\". How else can I help?");
    json_decref(r1);
    json_decref(u1);
    json_decref(r2);
    json_decref(u2);
}

static void test_llm_local_usage_counts_words(void **state)
{
    json_t *r, *u;

    (void)state;
    call("{\"messages\": [{\"role\": \"system\", \"content\": \"be brief\"},"
         " {\"role\": \"user\", \"content\": \"hello there\"}]}",
         &r, &u);
    assert_int_equal(json_integer_value(json_object_get(u, "tokens_in")), 4);
    assert_int_equal(json_integer_value(json_object_get(u, "tokens_out")),
                     fl_llm_local_count_words(json_string_value(r)));
    assert_true(json_number_value(json_object_get(u, "cost")) == 0.0);
    assert_string_equal(json_string_value(json_object_get(u, "provider")), "local");
    /* answers the last user message, signed by the default agent */
    assert_non_null(strstr(json_string_value(r), "\"hello there\""));
    assert_non_null(strstr(json_string_value(r), "[general_purpose]"));
    json_decref(r);
    json_decref(u);
}

static void test_llm_local_max_tokens_caps_reply(void **state)
{
    json_t *r, *u;

    (void)state;
    call("{\"prompt\": \"a b c d e f g h i j k l m n o p\", \"max_tokens\": 3}", &r, &u);
    assert_string_equal(json_string_value(r), "[general_purpose] Thank you.");
    assert_int_equal(json_integer_value(json_object_get(u, "tokens_out")), 3);
    json_decref(r);
    json_decref(u);
}

static void test_llm_local_long_input_is_cut_in_the_excerpt(void **state)
{
    json_t *r, *u;

    (void)state;
    call("{\"prompt\": \"a b c d e f g h i j k l m n o p\"}", &r, &u);
    assert_non_null(strstr(json_string_value(r), "\"a b c d e f g h i j k l ...\""));
    json_decref(r);
    json_decref(u);
}

static void test_llm_local_json_object(void **state)
{
    json_t *r, *u;

    (void)state;
    call("{\"json\": true, \"prompt\": \"Can I order a pizza?\"}", &r, &u);
    assert_true(json_is_object(r));
    assert_string_equal(json_string_value(json_object_get(r, "intent")), "place_order");
    assert_string_equal(json_string_value(json_object_get(r, "agent")), "restaurant_food");
    assert_true(json_number_value(json_object_get(r, "confidence")) > 0.5);
    assert_true(json_is_object(json_object_get(r, "slots")));
    assert_string_equal(json_string_value(json_object_get(r, "action")), "answer");
    assert_true(json_is_string(json_object_get(r, "reply")));
    json_decref(r);
    json_decref(u);
    call("{\"json\": true, \"prompt\": \"what is the weather\"}", &r, &u);
    assert_string_equal(json_string_value(json_object_get(r, "agent")), "general_purpose");
    assert_true(json_number_value(json_object_get(r, "confidence")) < 0.5);
    json_decref(r);
    json_decref(u);
}

static void test_llm_local_without_input_fails(void **state)
{
    json_t *args = args_of("{\"messages\": [{\"role\": \"user\"}]}");
    json_t *r = NULL, *u = NULL;
    fl_err err = {0};

    (void)state;
    assert_int_equal(fl_llm_local_complete(args, &r, &u, &err), FL_EINVAL);
    assert_null(r);
    assert_null(u);
    assert_string_equal(err.msg, "cannot answer: neither a prompt nor a message given");
    json_decref(args);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llm_local_counts_words),
        cmocka_unit_test(test_llm_local_reply_is_deterministic),
        cmocka_unit_test(test_llm_local_usage_counts_words),
        cmocka_unit_test(test_llm_local_max_tokens_caps_reply),
        cmocka_unit_test(test_llm_local_long_input_is_cut_in_the_excerpt),
        cmocka_unit_test(test_llm_local_json_object),
        cmocka_unit_test(test_llm_local_without_input_fails),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
