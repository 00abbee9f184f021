/* engine/llm/chain.h -- one logical LLM call through the configured providers: retries
 * with jittered backoff honouring Retry-After (core/backoff.h) on 429/5xx/timeouts (none
 * on other 4xx), then the next provider of the fallback chain (llm.chain; by default
 * every provider in file order, then `local`), each provider behind its guard (circuit
 * breaker, rate limit, daily quotas: guard.h). The answer carries its accounting:
 *
 *   usage = {tokens_in, tokens_out, cost, provider, model, latency_ms, ttft_ms, total_ms,
 *            finish_reason, attempts, fallbacks: [{from, to, reason}]}
 *
 * cost = tokens_in/1000 * price_in_per_1k + tokens_out/1000 * price_out_per_1k of the
 * provider that answered; latency_ms and ttft_ms (time to the first content) are those of
 * the attempt that answered, total_ms the whole call with its waits. A provider that
 * reports no token counts gets them estimated (words), with tokens_estimated: true.
 *
 * The call is a state machine with no I/O and no thread of its own, so one thread can
 * drive thousands (the activity worker) and a test can drive one step by step:
 *
 *   fl_llm_call_next  -> SEND (submit step.req to core/http, on_data = fl_llm_call_on_data)
 *                      | WAIT (call _next again at step.wake_ms, monotonic)
 *                      | DONE (fl_llm_call_outcome)
 *   fl_llm_call_on_response: the HTTP attempt finished; then _next again.
 *
 * The `local` provider answers inside _next. The call never outlives its deadline
 * (timeout_ms from its creation): attempts are cut to the time left, and providers
 * that would need more are skipped (reason "deadline").
 *
 * Thread-safety: a chain is shared by any number of threads (its guards lock). A call
 * belongs to one thread at a time; between SEND and on_response, fl_llm_call_on_data
 * runs on the HTTP client's thread and nothing else touches the call. */
#ifndef FL_ENGINE_LLM_CHAIN_H
#define FL_ENGINE_LLM_CHAIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/http.h"
#include "engine/agents.h"
#include "engine/llm/guard.h"

typedef struct fl_llm_chain fl_llm_chain;
typedef struct fl_llm_call fl_llm_call;

/* Ownership: cfg and clock are borrowed for the chain's lifetime; *out is owned by the
 * caller (fl_llm_chain_free). Errors: FL_EINVAL (a chain name without a provider). */
fl_rc fl_llm_chain_new(fl_llm_chain **out, const fl_config_llm *cfg, const fl_clock *clock,
                       fl_err *err);
void fl_llm_chain_free(fl_llm_chain *chain); /* NULL-safe; no call may be alive */

/* The agent profiles a call's `with.agent` names (engine/llm/agent_request.h): the
 * profile's system prompt goes first, its preferred provider is tried first, and
 * `with.classify` answers are checked against them. Without profiles (the default) a
 * call's agent only signs the local provider's replies.
 * set: takes ownership of agents (NULL clears); not while a call is alive.
 * load: fl_agents_load_config(engine), then set. Errors: as fl_agents_load_config. */
void fl_llm_chain_set_agents(fl_llm_chain *chain, fl_agents *agents);
fl_rc fl_llm_chain_load_agents(fl_llm_chain *chain, const fl_config_engine *engine, fl_err *err);
/* The profiles set, or NULL. Borrowed. */
const fl_agents *fl_llm_chain_agents(const fl_llm_chain *chain);

/* The guard of a provider, or NULL (local has none). Borrowed. */
fl_llm_guard *fl_llm_chain_guard(fl_llm_chain *chain, const char *name);

/* Starts a call for a `call: llm` with object (see fl_llm_request_init).
 * Ownership: args and idempotency_key are borrowed until fl_llm_call_free; *out is owned
 * by the caller. Errors: FL_EINVAL (the arguments cannot make a request). */
fl_rc fl_llm_call_new(fl_llm_call **out, fl_llm_chain *chain, const json_t *args,
                      const char *idempotency_key, long timeout_ms, fl_err *err);
void fl_llm_call_free(fl_llm_call *call); /* NULL-safe; never while an attempt is in flight */

typedef enum fl_llm_step_kind {
    FL_LLM_STEP_SEND,
    FL_LLM_STEP_WAIT,
    FL_LLM_STEP_DONE
} fl_llm_step_kind;

typedef struct fl_llm_step {
    fl_llm_step_kind kind;
    fl_http_request req; /* SEND: borrowed from the call until on_response */
    int64_t wake_ms;     /* WAIT: monotonic ms */
} fl_llm_step;

/* What to do now. */
void fl_llm_call_next(fl_llm_call *call, fl_llm_step *out);

/* A chunk of the answer (the HTTP thread; fl_http_data_fn contract). Never fails: a
 * stream that makes no sense is judged once the attempt has ended. */
fl_rc fl_llm_call_on_data(fl_llm_call *call, const char *data, size_t len);

/* A streamed answer's text as it arrives: fn (fl_llm_delta_fn, below; its return is
 * ignored here) gets each content delta of the attempt in flight (whole provider deltas),
 * on the HTTP thread, from inside fl_llm_call_on_data. Only attempts that stream call it
 * (the provider's `stream: true` or the request's `stream`). A retried or fallen-back
 * attempt streams again from its start: when an earlier attempt of the call had handed
 * over text, fn is called with (NULL, 0), "discard what you were given", before the next
 * attempt (or `local`) starts, so a listener never sees two attempts' text run together. Set it before the first
 * SEND; fn must not block. Ownership: arg is borrowed until the call is freed. */
typedef fl_rc (*fl_llm_delta_fn)(void *arg, const char *text, size_t len);
void fl_llm_call_set_delta(fl_llm_call *call, fl_llm_delta_fn fn, void *arg);

/* The SEND attempt ended. Ownership: resp is borrowed. */
void fl_llm_call_on_response(fl_llm_call *call, const fl_http_response *resp);

typedef struct fl_llm_outcome {
    bool ok;
    json_t *result;         /* ok: the text (a string), or the object in json mode */
    json_t *usage;          /* the accounting above; also on failure (fallbacks) */
    const char *error_type; /* !ok: llm.timeout, llm.rate_limited, llm.unavailable,
                               llm.invalid_output, llm.budget_exceeded */
    bool retryable;         /* !ok: a later attempt of the whole call may succeed */
    char message[256];
} fl_llm_outcome;

/* After DONE. Ownership: result and usage move to the caller (json_decref). */
void fl_llm_call_outcome(fl_llm_call *call, fl_llm_outcome *out);

/* ---- one call on the caller's thread (engine/llm/blocking.c) ------------------------------
 * For callers that hold a thread per request anyway (the OpenAI-compatible gateway runs on
 * a civetweb worker): the same call state machine, guards, retries, fallbacks, accounting
 * and metrics as above, but each attempt is sent with curl on the calling thread (a
 * per-thread easy handle, so connections to a provider are reused across requests), and
 * backoff waits sleep that thread. */

/* The members of the chain in order (by default every provider, then `local`). Borrowed;
 * i < fl_llm_chain_size. */
size_t fl_llm_chain_size(const fl_llm_chain *chain);
const fl_config_llm_provider *fl_llm_chain_provider(const fl_llm_chain *chain, size_t i);

/* fl_llm_delta_fn (declared above): a piece of a streamed answer's text (whole UTF-8
 * characters), in order. Here a return other than FL_OK (the client went away) ends the
 * call. */

/* Runs one call to its end: args, idempotency_key and timeout_ms as fl_llm_call_new;
 * first = the member to start at (fallback goes on down the chain from there).
 * With on_delta, the answer is asked for streamed and its text handed over as it arrives
 * (`local`, and providers that answered whole, in one piece at the end). Once a piece has
 * been handed over, that attempt's failure ends the call (llm.unavailable, "broke off"):
 * text the client has seen cannot be taken back by a fallback.
 * Returns FL_OK with *out filled (out->ok says whether the chain answered; result and
 * usage move to the caller, json_decref). Errors (*out zeroed): FL_EINVAL (args cannot
 * make a request), on_delta's code. Thread-safety: any thread; blocks it. */
fl_rc fl_llm_call_blocking(fl_llm_chain *chain, const json_t *args, const char *idempotency_key,
                           long timeout_ms, size_t first, fl_llm_delta_fn on_delta, void *arg,
                           fl_llm_outcome *out, fl_err *err);

#endif
