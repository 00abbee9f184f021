/* engine/llm/agent_request.h -- an agent profile (engine/agents.h) applied to a
 * `call: llm`, and the rules of a classification answer.
 *
 * `with: {agent: <id>}` makes the call speak as that profile: its system_prompt becomes
 * the first message (before the workflow's own messages and prompt), and the chain starts
 * with its preferred_provider (engine/llm/chain.c). An id that names no loaded profile
 * uses FL_AGENTS_FALLBACK instead (the call records the id it was given).
 *
 * `with: {classify: true}` marks a classification: json mode, a second system message
 * listing the loaded profiles (id, description, intents) so a model can only pick one of
 * them, and an answer that must be {intent: string, confidence: number in [0, 1], agent:
 * a loaded profile's id, slots: object} (fl_llm_classify_check). A valid answer with a
 * confidence below FL_LLM_CLASSIFY_MIN_CONFIDENCE is routed to FL_AGENTS_FALLBACK
 * (fl_llm_classify_route), the same rule as the conversation workflow's AGENT_ROUTING.
 *
 * Pure: no I/O, no clock. Thread-safety: reentrant; the registry is only read. */
#ifndef FL_ENGINE_LLM_AGENT_REQUEST_H
#define FL_ENGINE_LLM_AGENT_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "engine/agents.h"

/* Below this a classification routes to the general-purpose agent. */
#define FL_LLM_CLASSIFY_MIN_CONFIDENCE 0.6

typedef struct fl_llm_agent_use {
    const fl_agent *agent;               /* the profile applied, or NULL (none asked for, or
                                           an empty registry). Borrowed from the registry */
    char requested[FL_AGENT_ID_MAX + 1]; /* with.agent when it named no profile, else "" */
    bool classify;                       /* with.classify is true */
} fl_llm_agent_use;

/* The `with` object the providers get for args: a copy with the profile's system prompt
 * (and, for a classification, the catalogue of profiles) put before args.messages,
 * `agent` set to the profile applied and `json` set for a classification. args that ask
 * for no agent and no classification come back as an unchanged copy.
 * Ownership: args and reg are borrowed; the result is a new reference; use->agent points
 * into reg. reg may be NULL (no profiles). */
json_t *fl_llm_agent_args(const fl_agents *reg, const json_t *args, fl_llm_agent_use *use);

/* True when answer is a valid classification (see above); else false with the first
 * problem in why ("confidence is not a number in [0, 1]"). An empty or NULL registry
 * accepts any non-empty agent id. */
bool fl_llm_classify_check(const fl_agents *reg, const json_t *answer, char *why, size_t why_size);

/* A classification answer's agent becomes FL_AGENTS_FALLBACK when its confidence is low
 * (or missing) or it names no loaded profile; the replaced id is kept in
 * `agent_proposed`. Modifies answer (an object; anything else is left alone). */
void fl_llm_classify_route(const fl_agents *reg, json_t *answer);

#endif
