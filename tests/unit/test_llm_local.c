/* tests/unit/test_llm_local.c -- the deterministic `local` LLM provider: the same input
 * always gives the same reply, usage counts words, max_tokens caps the reply, json: true
 * gives the object the shipped conversation flow reads, and no input is an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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
    /* the pizza is the order's item: complete, so the proposal asks to confirm it */
    assert_string_equal(json_string_value(json_object_get(r, "action")), "place_order");
    assert_true(json_is_string(json_object_get(r, "reply")));
    json_decref(r);
    json_decref(u);
    call("{\"json\": true, \"prompt\": \"what is the weather\"}", &r, &u);
    assert_string_equal(json_string_value(json_object_get(r, "agent")), "general_purpose");
    assert_true(json_number_value(json_object_get(r, "confidence")) < 0.5);
    json_decref(r);
    json_decref(u);
}

/* The booking flow's prompts: markers on lines of their own. */
#define NOW_LINE "Now: 2026-01-05T10:00:01.000Z\n"

static json_t *gather(const char *intent, const char *details, const char *message)
{
    char *prompt = NULL;
    json_t *args, *r, *u;
    fl_err err = {0};

    assert_true(asprintf(&prompt, NOW_LINE "Intent: %s\nDetails: %s\nMessage: %s", intent, details,
                         message) > 0);
    args = json_pack("{s:b, s:s}", "json", 1, "prompt", prompt);
    assert_int_equal(fl_llm_local_complete(args, &r, &u, &err), FL_OK);
    json_decref(args);
    json_decref(u);
    free(prompt);
    return r;
}

static const char *slot(const json_t *r, const char *name)
{
    return json_string_value(json_object_get(json_object_get(r, "slots"), name));
}

static void test_llm_local_extracts_booking_slots(void **state)
{
    json_t *r;

    (void)state;
    r = gather("", "{}", "I'd like to book a haircut tomorrow at 3pm for 2 people");
    assert_string_equal(json_string_value(json_object_get(r, "intent")), "book_appointment");
    assert_string_equal(json_string_value(json_object_get(r, "agent")), "beauty_salon");
    assert_string_equal(slot(r, "service"), "haircut");
    assert_string_equal(slot(r, "date"), "2026-01-06");
    assert_string_equal(slot(r, "time"), "15:00");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "slots"), "party_size")),
                     2);
    assert_true(json_is_true(json_object_get(r, "complete")));
    assert_string_equal(json_string_value(json_object_get(r, "action")), "book_appointment");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "input"), "slot")),
                        "2026-01-06T15:00:00Z");
    json_decref(r);
}

static void test_llm_local_asks_one_missing_slot_at_a_time(void **state)
{
    json_t *r;

    (void)state;
    r = gather("", "{}", "book a table for four");
    assert_false(json_is_true(json_object_get(r, "complete")));
    assert_string_equal(json_string_value(json_object_get(r, "missing")), "date");
    assert_string_equal(json_string_value(json_object_get(r, "question")),
                        "Which day would suit you?");
    json_decref(r);
    /* the answer keeps the intent and the details known so far */
    r = gather("book_appointment", "{\"service\":\"table\",\"party_size\":4}", "on friday");
    assert_string_equal(json_string_value(json_object_get(r, "intent")), "book_appointment");
    assert_string_equal(slot(r, "date"), "2026-01-09"); /* 2026-01-05 is a monday */
    assert_string_equal(json_string_value(json_object_get(r, "missing")), "time");
    json_decref(r);
    r = gather("book_appointment",
               "{\"service\":\"table\",\"party_size\":4,\"date\":\"2026-01-09\"}", "at 19:30");
    assert_true(json_is_true(json_object_get(r, "complete")));
    assert_string_equal(slot(r, "time"), "19:30");
    json_decref(r);
}

static void test_llm_local_items_search_update_and_yes_no(void **state)
{
    json_t *r, *items;

    (void)state;
    r = gather("", "{}", "I want to order 2 pizzas and a salad");
    items = json_object_get(json_object_get(r, "slots"), "items");
    assert_int_equal(json_array_size(items), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 0), "quantity")), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "name")),
                        "salad");
    json_decref(r);
    r = gather("", "{}", "find the cheapest pizza place");
    assert_string_equal(json_string_value(json_object_get(r, "intent")), "search_businesses");
    assert_string_equal(json_string_value(json_object_get(r, "agent")), "restaurant_food");
    assert_string_equal(slot(r, "q"), "pizza");
    json_decref(r);
    r = gather("", "{}", "Set our hours to 09:00-18:00 on weekdays");
    assert_string_equal(json_string_value(json_object_get(r, "intent")), "update_business");
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(json_object_get(r, "slots"), "hours"), "friday"),
            "close")),
        "18:00");
    assert_null(json_object_get(json_object_get(json_object_get(r, "slots"), "hours"), "sunday"));
    json_decref(r);
    r = gather("", "{}", "Yes please");
    assert_true(json_is_true(json_object_get(r, "confirm")));
    json_decref(r);
    r = gather("", "{}", "no, wrong day");
    assert_true(json_is_false(json_object_get(r, "confirm")));
    json_decref(r);
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
        cmocka_unit_test(test_llm_local_extracts_booking_slots),
        cmocka_unit_test(test_llm_local_asks_one_missing_slot_at_a_time),
        cmocka_unit_test(test_llm_local_items_search_update_and_yes_no),
        cmocka_unit_test(test_llm_local_without_input_fails),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
