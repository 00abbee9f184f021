/* engine/llm_local_agents.c -- the local provider's classifier over the loaded agent
 * profiles (see llm_local.h): which profile's intent the message's words point to, and
 * how sure that is.
 *
 * Design: a keyword counts as a whole word (a plural "s" allowed: "pizzas"), case
 * folded, and weighs 1 / (the number of profiles that list it): "book" is in most
 * profiles and says little about which one fits, "haircut" is in one and says a lot. An
 * intent's score is the sum of its matched keywords' weights; the best intent wins, ties
 * going to the profile first by id (the registry's order), so the answer never depends
 * on anything but the text and the profiles. */
#include "engine/llm_local_int.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

static bool boundary(const char *text, const char *p)
{
    return p == text || !isalnum((unsigned char)p[-1]);
}

/* kw (lower-cased) appears in text as a word of its own, or with an "s" after it. */
static bool has_word(const char *text, const char *kw)
{
    size_t n = strlen(kw);

    if (n == 0) {
        return false;
    }
    for (const char *p = strcasestr(text, kw); p; p = strcasestr(p + 1, kw)) {
        const char *end = p + n;

        if (*end == 's' || *end == 'S') {
            end++;
        }
        if (boundary(text, p) && !isalnum((unsigned char)*end)) {
            return true;
        }
    }
    return false;
}

static bool lists(const fl_agent *a, const char *kw)
{
    for (size_t i = 0; i < a->nintents; i++) {
        for (size_t k = 0; k < a->intents[i].nkeywords; k++) {
            if (strcmp(a->intents[i].keywords[k], kw) == 0) {
                return true;
            }
        }
    }
    return false;
}

static double weight(const fl_agents *reg, const char *kw)
{
    size_t df = 0;

    for (size_t i = 0; i < fl_agents_count(reg); i++) {
        df += lists(fl_agents_at(reg, i), kw) ? 1 : 0;
    }
    return df ? 1.0 / (double)df : 0.0;
}

static double intent_score(const fl_agents *reg, const fl_agent_intent *in, const char *text)
{
    double score = 0.0;

    for (size_t k = 0; k < in->nkeywords; k++) {
        if (has_word(text, in->keywords[k])) {
            score += weight(reg, in->keywords[k]);
        }
    }
    return score;
}

bool fl_local__match_agents(const fl_agents *reg, const char *text, fl_local_match *out)
{
    *out = (fl_local_match){NULL, NULL, 0.0, 0.0};
    for (size_t i = 0; text && i < fl_agents_count(reg); i++) {
        const fl_agent *a = fl_agents_at(reg, i);

        for (size_t j = 0; j < a->nintents; j++) {
            double s = intent_score(reg, &a->intents[j], text);

            if (s > out->score) {
                *out = (fl_local_match){a, &a->intents[j], s, 0.0};
            }
        }
    }
    /* one decisive word (weight 1) makes 0.9; a word shared by two profiles 0.65 */
    out->confidence = out->agent ? 0.4 + 0.5 * (out->score < 1.0 ? out->score : 1.0) : 0.0;
    return out->agent != NULL;
}

const char *fl_local__flow_intent(const char *action)
{
    static const struct {
        const char *action, *intent;
    } map[] = {
        {"book_appointment", "book_appointment"},   {"place_order", "place_order"},
        {"search_businesses", "search_businesses"}, {"compare_businesses", "search_businesses"},
        {"update_hours", "update_business"},        {"update_menu", "update_business"},
        {"update_services", "update_business"},
    };

    for (size_t i = 0; action && i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(map[i].action, action) == 0) {
            return map[i].intent;
        }
    }
    return "general_question";
}
