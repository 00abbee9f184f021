/* engine/llm/chain_int.h -- private to chain.c (chain, call lifecycle, provider choice)
 * and chain_attempt.c (one HTTP attempt: its bytes, its end, the answer's accounting).
 *
 * Thread-safety: as engine/llm/chain.h. */
#ifndef FL_ENGINE_LLM_CHAIN_INT_H
#define FL_ENGINE_LLM_CHAIN_INT_H

#include "engine/agents.h"
#include "engine/llm/agent_request.h"
#include "engine/llm/chain.h"
#include "engine/llm/llm.h"
#include "engine/llm/stream.h"

#include <stdatomic.h>

/* One member of the chain. */
typedef struct fl_llm_member {
    const fl_config_llm_provider *p;
    const fl_llm_adapter *ad; /* NULL: local */
    fl_llm_guard guard;
} fl_llm_member;

struct fl_llm_chain {
    const fl_config_llm *cfg;
    const fl_clock *clock;
    fl_llm_member members[FL_CONFIG_LLM_MAX_PROVIDERS + 1];
    size_t n;
    atomic_uint_fast64_t seed; /* jitter seeds handed to calls */
    fl_agents *agents;         /* owned, or NULL: the profiles `with.agent` names */
};

typedef enum call_phase { PH_READY, PH_WAITING, PH_IN_FLIGHT, PH_DONE } call_phase;

/* What the attempt in flight gathers (on the HTTP thread). */
typedef struct fl_llm_attempt {
    const fl_llm_adapter *ad;
    fl_llm_wire wire;
    bool stream;
    bool probe;
    int64_t sent_ms;       /* monotonic */
    int64_t first_ms;      /* first content (stream) or first byte; -1 = none yet */
    fl_buf raw;            /* whole body (not streaming) or the first bytes (errors) */
    fl_llm_splitter split; /* streaming */
    fl_llm_response resp;
    fl_err stream_err; /* the first frame that made no sense */
} fl_llm_attempt;

struct fl_llm_call {
    fl_llm_chain *chain;
    json_t *args; /* owned: the `with` object with the agent applied (req borrows it) */
    fl_llm_agent_use agent;
    fl_llm_request req;
    size_t order[FL_CONFIG_LLM_MAX_PROVIDERS + 1]; /* members in the order this call tries
                                                       them (the preferred provider first) */
    size_t idx;                                    /* the position in order being tried */
    int invalid;  /* invalid classification answers from the member being tried */
    int tries;    /* attempts at this member */
    int attempts; /* attempts in all */
    call_phase phase;
    int64_t started_ms, deadline_ms, wake_ms; /* monotonic */
    uint64_t seed;
    json_t *fallbacks;     /* [{from, to, reason}] */
    fl_llm_err_kind worst; /* what to report when every member failed */
    bool retryable;        /* some failure may pass later */
    bool budget;           /* a daily quota refused a member */
    fl_buf why;            /* "primary: HTTP status 500; ..." */
    fl_llm_attempt at;
    fl_llm_outcome out;
    fl_llm_delta_fn delta_fn; /* streamed text, see fl_llm_call_set_delta */
    void *delta_arg;
    bool delta_shown; /* text went to delta_fn since the call began or last restarted */
};

/* The accounting of one answer (or of a failure: provider NULL, zeros). */
typedef struct fl_llm_acct {
    const char *provider, *model, *finish;
    long long tokens_in, tokens_out;
    double cost;
    int64_t latency_ms, ttft_ms;
    bool estimated;
} fl_llm_acct;

/* ---- chain.c ---- */

/* The member being tried. */
static inline fl_llm_member *fl_llm__member(const fl_llm_call *c)
{
    return &c->chain->members[c->order[c->idx]];
}

/* The current member failed for good: records {from, to, reason} (reason = code, or
 * "code: detail"; code is a short fixed word, the metrics label), moves on. */
void fl_llm__leave(fl_llm_call *c, const char *code, const char *detail);
/* The same, going on at position next of c->order (skipping the members between). */
void fl_llm__leave_to(fl_llm_call *c, size_t next, const char *code, const char *detail);

/* ---- chain_agent.c ---- */

/* Applies with.agent / with.classify to args (c->args, c->agent) and orders the members
 * (c->order: the profile's preferred provider first when it is a member). */
void fl_llm__call_agent(fl_llm_call *c, const json_t *args);

/* A classification's 2xx answer (c->at.resp): sets *e to invalid_output when it is not
 * a valid classification (fl_llm_classify_check). */
void fl_llm__classify_judge(fl_llm_call *c, fl_llm_error *e);

/* A classification answered invalid output: the first time, the same member is asked
 * again at once; the second time, the call goes on with `local` (the reason recorded
 * as invalid_output), or with the next member when local is not in the chain. */
void fl_llm__classify_failed(fl_llm_call *c, fl_llm_member *m, const fl_llm_error *e);

/* Adds {agent, agent_requested?} of the call to a usage object. */
void fl_llm__agent_usage(const fl_llm_call *c, json_t *usage);

/* ---- chain_attempt.c ---- */

/* Prepares member m's attempt (wire, buffers). Errors: FL_EINVAL from the adapter. */
fl_rc fl_llm__attempt_start(fl_llm_call *c, const fl_llm_member *m, int64_t timeout_ms,
                            fl_http_request *req, fl_err *err);
void fl_llm__attempt_deinit(fl_llm_attempt *a);

/* The answer of member m is in c->at.resp: fills c->out (ok, result, usage). */
void fl_llm__succeed(fl_llm_call *c, fl_llm_member *m, int64_t now_ms);

/* Judges the ended attempt: FL_LLM_ERR_NONE when c->at.resp holds an answer, else the
 * error in *e. */
void fl_llm__judge(fl_llm_call *c, const fl_llm_member *m, const fl_http_response *resp,
                   fl_llm_error *e);

/* The usage object of an answer or failure (fallbacks and attempts included). Owned. */
json_t *fl_llm__usage(const fl_llm_call *c, const fl_llm_acct *a);

/* The `local` provider answers (or fails: the chain moves on). */
void fl_llm__answer_local(fl_llm_call *c);

#endif
