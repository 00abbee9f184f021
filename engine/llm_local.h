/* engine/llm_local.h -- the built-in `local` LLM provider: deterministic, no network.
 *
 * It answers a `call: llm` from its `with` arguments alone, so `make run` and the tests
 * get a working assistant with no keys and the same input always gives the same output
 * (a replayed call cannot drift). The reply is a templated acknowledgement of the last
 * user text, signed with the agent; with `json: true` it is one object carrying every
 * field the shipped conversation flow asks for: intent, confidence and agent (a small
 * keyword table: book_appointment, place_order, search_businesses, update_business,
 * general_question), slots (the `Details:` JSON of the prompt merged with what the
 * message adds: service, date, time, party_size, items, hours, services, q, min_rating,
 * max_price_level; "tomorrow" or "on friday" resolved against the prompt's `Now:` line,
 * never a clock), slots_json, complete, missing, question (one per turn), action, reply
 * and input (a proposal to confirm, with `slot` = date + time in UTC), and confirm
 * (true/false for a yes/no, absent otherwise). The prompt's lines `Now:`, `Intent:` (a
 * booking or order intent already chosen sticks), `Details:` and `Message:` (the text to
 * read; else the prompt or the last user message) are what it reads
 * (engine/llm_local_slots.c). Usage counts words as tokens (input: prompt or every
 * message's content; output: the reply) and costs nothing.
 *
 * Thread-safety: pure and reentrant. */
#ifndef FL_ENGINE_LLM_LOCAL_H
#define FL_ENGINE_LLM_LOCAL_H

#include <jansson.h>
#include <stddef.h>

#include "core/err.h"
#include "engine/agents.h"

#define FL_LLM_LOCAL_PROVIDER "local"
#define FL_LLM_LOCAL_MODEL    "local-1"

/* Words in text (runs of non-space bytes); the local provider's token count. */
size_t fl_llm_local_count_words(const char *text);

/* Answers one call. args is the activity's evaluated `with` object: agent?, prompt?,
 * messages? [{role, content}], max_tokens? (caps the reply's words), json?.
 * *result_out is the reply text (a JSON string) or the object; *usage_out is
 * {tokens_in, tokens_out, cost, provider, model}.
 * Ownership: borrows args; both outputs are owned by the caller (json_decref), NULL on
 * failure. Errors: FL_EINVAL (neither a prompt nor a message with text content). */
fl_rc fl_llm_local_complete(const json_t *args, json_t **result_out, json_t **usage_out,
                            fl_err *err);

/* fl_llm_local_complete with agent profiles (may be NULL or empty: then the same). In
 * json mode, `agent` and `confidence` then come from the profiles' intent keywords
 * (engine/llm_local_agents.c: a keyword weighs 1 / the number of profiles listing it;
 * confidence = 0.4 + 0.5 * min(score, 1)); a confidence below 0.6, or no match, gives
 * general_purpose; `agent_intent` names the profile intent matched. `intent` stays the
 * keyword table's (the flow's vocabulary), or, when the table knows no word of the
 * message, the flow intent of the matched profile intent's action. Borrows agents. */
fl_rc fl_llm_local_answer(const fl_agents *agents, const json_t *args, json_t **result_out,
                          json_t **usage_out, fl_err *err);

#endif
