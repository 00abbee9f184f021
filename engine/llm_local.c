/* engine/llm_local.c -- the deterministic `local` LLM provider (see llm_local.h).
 *
 * Design: everything derives from the arguments by fixed rules, never from a clock or a
 * random source, because an activity may run twice (at least once) and a replay must
 * see the same answer. The keyword table is deliberately small: real intent detection
 * belongs to the LLM providers of issue 6; this one only has to keep the shipped flows
 * moving offline. */
#include "engine/llm_local.h"

#include "core/mem.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EXCERPT_WORDS 12

typedef struct keyword {
    const char *word;
    const char *intent;
    const char *agent;
} keyword;

/* First match wins, so the more specific words come first. */
static const keyword keywords[] = {
    {"haircut", "book_appointment", "beauty_salon"},
    {"salon", "book_appointment", "beauty_salon"},
    {"manicure", "book_appointment", "beauty_salon"},
    {"repair", "book_appointment", "automotive"},
    {"car ", "book_appointment", "automotive"},
    {"doctor", "book_appointment", "health_medical"},
    {"appointment", "book_appointment", "general_purpose"},
    {"book", "book_appointment", "general_purpose"},
    {"pizza", "place_order", "restaurant_food"},
    {"menu", "place_order", "restaurant_food"},
    {"food", "place_order", "restaurant_food"},
    {"order", "place_order", "restaurant_food"},
    {"table", "book_appointment", "restaurant_food"},
};

size_t fl_llm_local_count_words(const char *text)
{
    size_t n = 0;
    bool in_word = false;

    for (const unsigned char *p = (const unsigned char *)text; p && *p; p++) {
        bool space = isspace(*p) != 0;

        if (!space && !in_word) {
            n++;
        }
        in_word = !space;
    }
    return n;
}

/* Appends at most max_words words of text to b, separated by single spaces. */
static void append_words(fl_buf *b, const char *text, size_t max_words)
{
    size_t words = 0;
    const char *p = text;

    while (*p && words < max_words) {
        size_t len;

        while (*p && isspace((unsigned char)*p)) {
            p++;
        }
        len = 0;
        while (p[len] && !isspace((unsigned char)p[len])) {
            len++;
        }
        if (len == 0) {
            break;
        }
        (void)fl_buf_appendf(b, NULL, "%s%.*s", words ? " " : "", (int)len, p);
        words++;
        p += len;
    }
}

/* Counts the input words and finds the text to answer: the prompt, else the last user
 * message (else the last message with text). Returns NULL when there is none. */
static const char *input_of(const json_t *args, size_t *words_out)
{
    const char *prompt = json_string_value(json_object_get(args, "prompt"));
    const json_t *messages = json_object_get(args, "messages");
    const char *last = NULL;
    const char *last_user = NULL;
    size_t i;
    const json_t *m;

    *words_out = fl_llm_local_count_words(prompt);
    json_array_foreach(messages, i, m)
    {
        const char *content = json_string_value(json_object_get(m, "content"));
        const char *role = json_string_value(json_object_get(m, "role"));

        if (content) {
            *words_out += fl_llm_local_count_words(content);
            last = content;
            last_user = role && strcmp(role, "user") == 0 ? content : last_user;
        }
    }
    if (prompt) {
        return prompt;
    }
    return last_user ? last_user : last;
}

static const keyword *classify(const char *text)
{
    for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
        if (strcasestr(text, keywords[i].word)) {
            return &keywords[i];
        }
    }
    return NULL;
}

/* The reply text, capped at max_tokens words when given. Ownership: caller frees. */
static char *reply_of(const char *text, const char *agent, json_int_t max_tokens)
{
    fl_buf b;
    fl_buf out;
    char *s;

    fl_buf_init(&b, SIZE_MAX);
    fl_buf_init(&out, SIZE_MAX);
    (void)fl_buf_appendf(&b, NULL, "[%s] Thank you. I have noted: \"", agent);
    append_words(&b, text, EXCERPT_WORDS);
    (void)fl_buf_appendf(&b, NULL, "%s\". How else can I help?",
                         fl_llm_local_count_words(text) > EXCERPT_WORDS ? " ..." : "");
    append_words(&out, b.data, max_tokens > 0 ? (size_t)max_tokens : (size_t)-1);
    s = fl_buf_steal(&out);
    fl_buf_deinit(&b);
    return s;
}

static json_t *object_of(const char *text, const char *reply)
{
    const keyword *k = classify(text);

    return json_pack("{s:s, s:f, s:s, s:{}, s:s, s:b, s:s, s:s, s:s, s:{}}", "intent",
                     k ? k->intent : "general_question", "confidence", k ? 0.9 : 0.4, "agent",
                     k ? k->agent : "general_purpose", "slots", "slots_json", "{}", "complete", 1,
                     "question", "", "action", "answer", "reply", reply, "input");
}

fl_rc fl_llm_local_complete(const json_t *args, json_t **result_out, json_t **usage_out,
                            fl_err *err)
{
    fl_rc rc = FL_OK;
    size_t words_in = 0;
    const char *text = input_of(args, &words_in);
    const char *agent = json_string_value(json_object_get(args, "agent"));
    char *reply = NULL;

    *result_out = NULL;
    *usage_out = NULL;
    if (!text) {
        rc = fl_err_set(err, FL_EINVAL, "cannot answer: neither a prompt nor a message given");
        goto out;
    }
    reply = reply_of(text, agent && *agent ? agent : "general_purpose",
                     json_integer_value(json_object_get(args, "max_tokens")));
    if (json_is_true(json_object_get(args, "json"))) {
        *result_out = object_of(text, reply);
    } else {
        *result_out = json_string(reply);
    }
    *usage_out = json_pack("{s:I, s:I, s:f, s:s, s:s}", "tokens_in", (json_int_t)words_in,
                           "tokens_out", (json_int_t)fl_llm_local_count_words(reply), "cost", 0.0,
                           "provider", FL_LLM_LOCAL_PROVIDER, "model", FL_LLM_LOCAL_MODEL);
out:
    free(reply);
    return rc;
}
