/* engine/llm_local.h -- the built-in `local` LLM provider: deterministic, no network.
 *
 * It answers a `call: llm` from its `with` arguments alone, so `make run` and the tests
 * get a working assistant with no keys and the same input always gives the same output
 * (a replayed call cannot drift). The reply is a templated acknowledgement of the last
 * user text, signed with the agent; with `json: true` it is one object carrying every
 * field the shipped conversation flow asks for (intent, confidence, agent, slots,
 * slots_json, complete, question, action, reply, input), the intent and agent chosen by
 * a small keyword table. Usage counts words as tokens (input: prompt or every message's
 * content; output: the reply) and costs nothing.
 *
 * Thread-safety: pure and reentrant. */
#ifndef FL_ENGINE_LLM_LOCAL_H
#define FL_ENGINE_LLM_LOCAL_H

#include <jansson.h>
#include <stddef.h>

#include "core/err.h"

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

#endif
