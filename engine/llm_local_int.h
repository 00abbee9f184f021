/* engine/llm_local_int.h -- private to engine/llm_local.c (the provider: markers, intents,
 * the answer object) and engine/llm_local_slots.c (slot extraction from one message).
 *
 * Thread-safety: pure and reentrant, like engine/llm_local.h. */
#ifndef FL_ENGINE_LLM_LOCAL_INT_H
#define FL_ENGINE_LLM_LOCAL_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/agents.h"

/* A reference day, for relative dates ("tomorrow", "on friday"): days since 1970-01-01. */
typedef struct fl_local_day {
    bool known;
    int64_t days;
} fl_local_day;

/* Parses the date part of an RFC 3339 time ("2026-01-05T10:00:01.000Z"). */
fl_local_day fl_local__day_of(const char *rfc3339);

/* Extracts the slots the shipped flows know from one message (lower-cased inside):
 * service, date (YYYY-MM-DD, relative words resolved against `today`), time (HH:MM),
 * party_size, items [{name, quantity}], hours {weekday: {open, close}}, services
 * [{name, price}] (a menu change), q and min_rating / max_price_level (a search).
 * Ownership: a new object. */
json_t *fl_local__slots(const char *message, fl_local_day today);

/* "yes" (true), "no" (false) or neither (-1), from the message's first word. */
int fl_local__yes_no(const char *message);

/* engine/llm_local_agents.c: the profile intent the words of text point to. */
typedef struct fl_local_match {
    const fl_agent *agent;         /* borrowed from the registry; NULL: no keyword matched */
    const fl_agent_intent *intent; /* of agent */
    double score;                  /* sum of the matched keywords' weights */
    double confidence;             /* 0.4 + 0.5 * min(score, 1); 0 without a match */
} fl_local_match;

/* False (and *out zeroed) when no keyword of any profile appears in text. */
bool fl_local__match_agents(const fl_agents *reg, const char *text, fl_local_match *out);

/* The conversation flow's intent for a profile action: book_appointment, place_order,
 * search_businesses, update_business or general_question. Static. */
const char *fl_local__flow_intent(const char *action);

#endif
