/* engine/llm_local.c -- the deterministic `local` LLM provider (see llm_local.h).
 *
 * Design: everything derives from the arguments by fixed rules, never from a clock or a
 * random source, because an activity may run twice (at least once) and a replay must
 * see the same answer. The keyword table is deliberately small: real intent detection
 * belongs to the LLM providers of issue 6; this one only has to keep the shipped flows
 * moving offline. With agent profiles loaded, their keywords pick the agent and the
 * confidence (engine/llm_local_agents.c). */
#include "engine/llm_local.h"

#include "core/mem.h"
#include "engine/llm_local_int.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXCERPT_WORDS  12
/* A profile match at least this sure routes to its agent (the workflow's AGENT_ROUTING
 * and engine/llm/agent_request.h use the same threshold). */
#define FL_LOCAL_ROUTE 0.6

typedef struct keyword {
    const char *word;
    const char *intent;
    const char *agent;
} keyword;

/* First match wins, so the more specific words come first. */
static const keyword keywords[] = {
    /* searching and comparing businesses (the global flow) */
    {"find", "search_businesses", "general_purpose"},
    {"search", "search_businesses", "general_purpose"},
    {"compare", "search_businesses", "general_purpose"},
    {"recommend", "search_businesses", "general_purpose"},
    {"best", "search_businesses", "general_purpose"},
    {"cheapest", "search_businesses", "general_purpose"},
    /* an owner changing their business (the dashboard flow) */
    {"hours to", "update_business", "business_analytics"},
    {"price of", "update_business", "business_analytics"},
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

/* The intent of the first matching word; the agent of the first word that names a
 * specific one ("find the best pizza" searches, with the restaurant agent). */
static bool classify(const char *text, keyword *out)
{
    bool found = false;

    *out = (keyword){NULL, "general_question", "general_purpose"};
    for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
        if (!strcasestr(text, keywords[i].word)) {
            continue;
        }
        if (!found) {
            *out = keywords[i];
            found = true;
        }
        if (strcmp(keywords[i].agent, "general_purpose") != 0) {
            out->agent = keywords[i].agent;
            break;
        }
    }
    return found;
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

/* ---- the json answer ------------------------------------------------------------------ */

/* What the flow's prompts carry on lines of their own ("Now: ...", "Intent: ...",
 * "Details: {...}", "Message: ..."); a prompt without them is answered from its text. */
typedef struct markers {
    char now[40];
    char intent[40];
    json_t *details; /* owned; an object */
    char *message;   /* owned, or NULL */
} markers;

static void marker_line(markers *mk, const char *line, size_t len)
{
    char *v;

    if (len > 5 && strncmp(line, "Now: ", 5) == 0) {
        snprintf(mk->now, sizeof(mk->now), "%.*s", (int)(len - 5), line + 5);
    } else if (len > 8 && strncmp(line, "Intent: ", 8) == 0) {
        snprintf(mk->intent, sizeof(mk->intent), "%.*s", (int)(len - 8), line + 8);
    } else if (len > 9 && strncmp(line, "Details: ", 9) == 0) {
        v = fl_xstrndup(line + 9, len - 9);
        json_t *d = json_loads(v, 0, NULL);
        if (json_is_object(d)) {
            json_object_update(mk->details, d);
        }
        json_decref(d);
        free(v);
    } else if (len > 9 && strncmp(line, "Message: ", 9) == 0) {
        free(mk->message);
        mk->message = fl_xstrndup(line + 9, len - 9);
    }
}

static void markers_scan(markers *mk, const char *text)
{
    while (text && *text) {
        size_t len = strcspn(text, "\n");

        marker_line(mk, text, len);
        text += len + (text[len] == '\n');
    }
}

static void markers_of(const json_t *args, markers *mk)
{
    size_t i;
    const json_t *m;

    memset(mk, 0, sizeof(*mk));
    mk->details = json_object();
    markers_scan(mk, json_string_value(json_object_get(args, "prompt")));
    json_array_foreach(json_object_get(args, "messages"), i, m)
    {
        markers_scan(mk, json_string_value(json_object_get(m, "content")));
    }
}

static bool task_intent(const char *intent)
{
    return strcmp(intent, "book_appointment") == 0 || strcmp(intent, "place_order") == 0;
}

/* The first required slot still missing, and the question that asks for it. */
static const char *missing_of(const char *intent, const json_t *slots, const char **question)
{
    const char *service = json_string_value(json_object_get(slots, "service"));

    *question = NULL;
    if (strcmp(intent, "book_appointment") == 0) {
        if (!service) {
            *question = "What would you like to book?";
            return "service";
        }
        if (!json_object_get(slots, "date")) {
            *question = "Which day would suit you?";
            return "date";
        }
        if (!json_object_get(slots, "time")) {
            *question = "At what time?";
            return "time";
        }
        if (strcmp(service, "table") == 0 && !json_object_get(slots, "party_size")) {
            *question = "For how many people?";
            return "party_size";
        }
    } else if (strcmp(intent, "place_order") == 0 && !json_object_get(slots, "items")) {
        *question = "What would you like to order?";
        return "items";
    }
    return NULL;
}

/* "2 pizza, 1 salad" */
static void items_text(fl_buf *b, const json_t *items)
{
    size_t i;
    const json_t *it;

    json_array_foreach(items, i, it)
    {
        (void)fl_buf_appendf(b, NULL, "%s%lld %s", i ? ", " : "",
                             (long long)json_integer_value(json_object_get(it, "quantity")),
                             json_string_value(json_object_get(it, "name")));
    }
}

/* action, reply and input for a complete request of `intent`. */
static void proposal_of(json_t *o, const char *intent, const json_t *slots, const char *reply)
{
    fl_buf b;
    const char *service = json_string_value(json_object_get(slots, "service"));
    const json_t *party = json_object_get(slots, "party_size");
    const char *date = json_string_value(json_object_get(slots, "date"));
    const char *time = json_string_value(json_object_get(slots, "time"));
    json_t *input = json_deep_copy(slots);

    fl_buf_init(&b, SIZE_MAX);
    if (strcmp(intent, "book_appointment") == 0 && service && date && time) {
        (void)fl_buf_appendf(&b, NULL, "Shall I book a %s on %s at %s", service, date, time);
        if (party) {
            (void)fl_buf_appendf(&b, NULL, " for %lld", (long long)json_integer_value(party));
        }
        (void)fl_buf_appendf(&b, NULL, "? Please answer yes or no.");
        json_object_set_new(input, "slot", json_sprintf("%sT%s:00Z", date, time));
        json_object_set_new(o, "action", json_string("book_appointment"));
    } else if (strcmp(intent, "place_order") == 0 && json_object_get(slots, "items")) {
        (void)fl_buf_appendf(&b, NULL, "Shall I order ");
        items_text(&b, json_object_get(slots, "items"));
        (void)fl_buf_appendf(&b, NULL, "? Please answer yes or no.");
        json_object_set_new(o, "action", json_string("place_order"));
    } else if (strcmp(intent, "search_businesses") == 0 || strcmp(intent, "update_business") == 0) {
        (void)fl_buf_appendf(&b, NULL, "%s", reply);
        json_object_set_new(o, "action", json_string(intent));
    } else {
        (void)fl_buf_appendf(&b, NULL, "%s", reply);
        json_object_set_new(o, "action", json_string("answer"));
    }
    json_object_set_new(o, "reply", json_string(b.data ? b.data : ""));
    json_object_set_new(o, "input", input);
    fl_buf_deinit(&b);
}

/* With profiles, their keywords choose the agent and the confidence
 * (engine/llm_local_agents.c); the table keeps choosing the intent, which is the flow's
 * vocabulary, unless only a profile understood the message (its intent's action then
 * says which flow intent it is). Below FL_LOCAL_ROUTE the agent is the fallback. */
static double profile_classify(const fl_agents *reg, const char *text, bool known, keyword *k,
                               const char **agent_intent)
{
    fl_local_match m;

    *agent_intent = NULL;
    if (!fl_local__match_agents(reg, text, &m)) {
        k->agent = FL_AGENTS_FALLBACK;
        return known ? 0.5 : 0.3;
    }
    k->agent = m.confidence >= FL_LOCAL_ROUTE ? m.agent->id : FL_AGENTS_FALLBACK;
    *agent_intent = m.intent->name;
    if (!known && m.confidence >= FL_LOCAL_ROUTE) {
        k->intent = fl_local__flow_intent(m.intent->action);
    }
    return m.confidence;
}

static json_t *object_of(const fl_agents *reg, const json_t *args, const char *text,
                         const char *reply)
{
    markers mk;
    keyword k;
    bool known;
    double conf;
    const char *intent, *question = NULL, *missing, *agent_intent = NULL;
    char *details;
    json_t *o, *slots;
    int yn;

    markers_of(args, &mk);
    known = classify(mk.message ? mk.message : text, &k);
    conf = known ? 0.9 : 0.4;
    if (fl_agents_count(reg) > 0) {
        conf = profile_classify(reg, mk.message ? mk.message : text, known, &k, &agent_intent);
    }
    intent = mk.intent[0] && task_intent(mk.intent) ? mk.intent : k.intent;
    slots = fl_local__slots(mk.message ? mk.message : text, fl_local__day_of(mk.now));
    json_object_update(mk.details, slots); /* what this message says wins */
    json_decref(slots);
    missing = missing_of(intent, mk.details, &question);
    details = json_dumps(mk.details, JSON_COMPACT | JSON_SORT_KEYS);
    o = json_pack("{s:s, s:f, s:s, s:O, s:s, s:b, s:s, s:s?, s:s?}", "intent", intent, "confidence",
                  conf, "agent", k.agent, "slots", mk.details, "slots_json",
                  details ? details : "{}", "complete", missing == NULL, "question",
                  question ? question : "", "missing", missing, "agent_intent", agent_intent);
    free(details);
    proposal_of(o, intent, mk.details, reply);
    yn = fl_local__yes_no(mk.message ? mk.message : text);
    if (yn >= 0) {
        json_object_set_new(o, "confirm", json_boolean(yn));
    }
    json_decref(mk.details);
    free(mk.message);
    return o;
}

fl_rc fl_llm_local_complete(const json_t *args, json_t **result_out, json_t **usage_out,
                            fl_err *err)
{
    return fl_llm_local_answer(NULL, args, result_out, usage_out, err);
}

fl_rc fl_llm_local_answer(const fl_agents *agents, const json_t *args, json_t **result_out,
                          json_t **usage_out, fl_err *err)
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
        *result_out = object_of(agents, args, text, reply);
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
