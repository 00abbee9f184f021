/* engine/llm/chain.c -- the fallback chain and the call state machine (see chain.h):
 * which member to try, whether to retry it or move on, and the failure of the whole
 * call. One attempt's bytes and answer are chain_attempt.c. */
#include "engine/llm/chain_int.h"

#include "core/backoff.h"
#include "core/log.h"
#include "core/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An attempt with less time than this left is not worth sending. */
#define MIN_ATTEMPT_MS 50
/* No single backoff wait beyond this (a Retry-After may ask for more: then the call
 * moves on to the next provider rather than sleep). */
#define MAX_BACKOFF_MS 10000

fl_rc fl_llm_chain_new(fl_llm_chain **out, const fl_config_llm *cfg, const fl_clock *clock,
                       fl_err *err)
{
    fl_llm_chain *ch = fl_xcalloc(1, sizeof(*ch));
    fl_rc rc = FL_OK;

    *out = NULL;
    ch->cfg = cfg;
    ch->clock = clock;
    atomic_init(&ch->seed, (uint64_t)fl_clock_mono_ms(clock) ^ (uint64_t)(uintptr_t)ch);
    for (size_t i = 0; i < cfg->nchain && rc == FL_OK; i++) {
        fl_llm_member *m = &ch->members[ch->n];

        m->p = fl_config_llm_provider_get(cfg, cfg->chain[i]);
        if (!m->p) {
            rc = fl_err_set(err, FL_EINVAL, "llm.chain: unknown provider \"%s\"", cfg->chain[i]);
            break;
        }
        m->ad = fl_llm_adapter_get(m->p->kind); /* NULL: local */
        fl_llm_guard_init(&m->guard, m->p);
        fl_metrics_llm_circuit(m->p->name, false); /* closed, and shown, from the start */
        ch->n++;
    }
    if (rc == FL_OK && ch->n == 0) { /* a hand-made config: keep the promise of local */
        ch->members[0].p = fl_config_llm_provider_get(cfg, "local");
        fl_llm_guard_init(&ch->members[0].guard, ch->members[0].p);
        ch->n = 1;
    }
    if (rc == FL_OK) {
        *out = ch;
        ch = NULL;
    }
    fl_llm_chain_free(ch);
    return rc;
}

void fl_llm_chain_free(fl_llm_chain *chain)
{
    if (!chain) {
        return;
    }
    for (size_t i = 0; i < chain->n; i++) {
        fl_llm_guard_deinit(&chain->members[i].guard);
    }
    fl_agents_free(chain->agents);
    free(chain);
}

fl_llm_guard *fl_llm_chain_guard(fl_llm_chain *chain, const char *name)
{
    for (size_t i = 0; i < chain->n; i++) {
        if (chain->members[i].ad && strcmp(chain->members[i].p->name, name) == 0) {
            return &chain->members[i].guard;
        }
    }
    return NULL;
}

fl_rc fl_llm_call_new(fl_llm_call **out, fl_llm_chain *chain, const json_t *args,
                      const char *idempotency_key, long timeout_ms, fl_err *err)
{
    fl_llm_call *c = fl_xcalloc(1, sizeof(*c));
    fl_rc rc;

    c->chain = chain;
    fl_llm__call_agent(c, args);
    rc = fl_llm_request_init(&c->req, c->args, idempotency_key, err);
    c->started_ms = fl_clock_mono_ms(chain->clock);
    c->deadline_ms = c->started_ms + (timeout_ms > 0 ? timeout_ms : 30000);
    c->seed = atomic_fetch_add(&chain->seed, 0x9e3779b97f4a7c15ULL);
    c->fallbacks = json_array();
    c->phase = PH_READY;
    fl_buf_init(&c->why, 1024);
    *out = NULL;
    if (rc != FL_OK) {
        fl_llm_call_free(c);
        return rc;
    }
    *out = c;
    return FL_OK;
}

void fl_llm_call_set_delta(fl_llm_call *call, fl_llm_delta_fn fn, void *arg)
{
    call->delta_fn = fn;
    call->delta_arg = arg;
}

void fl_llm_call_free(fl_llm_call *call)
{
    if (!call) {
        return;
    }
    fl_llm__attempt_deinit(&call->at);
    fl_llm_request_deinit(&call->req);
    json_decref(call->args);
    json_decref(call->fallbacks);
    json_decref(call->out.result);
    json_decref(call->out.usage);
    fl_buf_deinit(&call->why);
    free(call);
}

void fl_llm__leave(fl_llm_call *c, const char *code, const char *detail)
{
    fl_llm__leave_to(c, c->idx + 1, code, detail);
}

void fl_llm__leave_to(fl_llm_call *c, size_t next, const char *code, const char *detail)
{
    const fl_llm_chain *ch = c->chain;
    const char *from = fl_llm__member(c)->p->name;
    const char *to = next < ch->n ? ch->members[c->order[next]].p->name : NULL;
    char *reason = detail && *detail ? fl_xasprintf("%s: %s", code, detail) : fl_xstrdup(code);

    json_array_append_new(c->fallbacks,
                          json_pack("{s:s, s:s?, s:s}", "from", from, "to", to, "reason", reason));
    (void)fl_buf_appendf(&c->why, NULL, "%s%s: %s", c->why.len ? "; " : "", from, reason);
    fl_log(FL_INFO, "llm.fallback", FL_STR("from", from), FL_STR("to", to ? to : ""),
           FL_STR("reason", reason));
    fl_metrics_llm_fallback(from, to ? to : "none", code);
    free(reason);
    c->idx = next;
    c->tries = 0;
    c->invalid = 0;
    c->phase = PH_READY;
}

static const char *error_type(fl_llm_err_kind k)
{
    switch (k) {
    case FL_LLM_ERR_TIMEOUT:
        return "llm.timeout";
    case FL_LLM_ERR_RATE_LIMITED:
        return "llm.rate_limited";
    case FL_LLM_ERR_INVALID_OUTPUT:
        return "llm.invalid_output";
    case FL_LLM_ERR_REJECTED:
        return "llm.invalid_request";
    default:
        return "llm.unavailable";
    }
}

/* Every member failed. */
static void fail_all(fl_llm_call *c)
{
    fl_llm_acct none = {0};

    c->out.ok = false;
    c->out.error_type = c->budget ? "llm.budget_exceeded" : error_type(c->worst);
    c->out.retryable = c->retryable;
    snprintf(c->out.message, sizeof(c->out.message), "every provider failed: %s",
             c->why.data ? c->why.data : "none configured");
    c->out.usage = fl_llm__usage(c, &none);
    c->phase = PH_DONE;
}

/* A guard refused the member: move on, remembering why for the call's error. */
static void refused(fl_llm_call *c, fl_llm_admit a)
{
    c->worst = a == FL_LLM_ADMIT_RATE_LIMITED ? FL_LLM_ERR_RATE_LIMITED : FL_LLM_ERR_UNAVAILABLE;
    c->budget = c->budget || a == FL_LLM_ADMIT_QUOTA_REQUESTS || a == FL_LLM_ADMIT_QUOTA_TOKENS;
    /* a breaker closes and a minute passes; a daily quota stays spent */
    c->retryable = c->retryable || a == FL_LLM_ADMIT_BREAKER_OPEN || a == FL_LLM_ADMIT_RATE_LIMITED;
    if (a == FL_LLM_ADMIT_BREAKER_OPEN) {
        const fl_llm_member *m = fl_llm__member(c);

        fl_metrics_llm_request(m->p->name, m->p->model, "circuit_open", 0.0);
    }
    fl_llm__leave(c, fl_llm_admit_name(a), NULL);
}

/* An attempt streamed text, then failed: its listeners drop it before the next one. */
static void restart_deltas(fl_llm_call *c)
{
    if (c->delta_fn && c->delta_shown) {
        c->delta_shown = false;
        (void)c->delta_fn(c->delta_arg, NULL, 0);
    }
}

/* Tries the current member: true when out says SEND. */
static bool try_member(fl_llm_call *c, int64_t now, fl_llm_step *out)
{
    fl_llm_member *m = fl_llm__member(c);
    int64_t left = c->deadline_ms - now;
    fl_err err = FL_ERR_INIT;
    fl_llm_admit a;
    bool probe = false;

    restart_deltas(c);
    if (!m->ad) {
        fl_llm__answer_local(c);
        return false;
    }
    if (left < MIN_ATTEMPT_MS) {
        c->worst = FL_LLM_ERR_TIMEOUT;
        c->retryable = true;
        fl_llm__leave(c, "deadline", NULL);
        return false;
    }
    if (fl_llm__attempt_start(c, m, left < m->p->timeout_ms ? left : m->p->timeout_ms, &out->req,
                              &err) != FL_OK) {
        c->worst = FL_LLM_ERR_REJECTED;
        fl_llm__leave(c, "invalid_request", err.msg);
        return false;
    }
    a = fl_llm_guard_admit(&m->guard, now, fl_clock_now_ms(c->chain->clock), &probe);
    if (a != FL_LLM_ADMIT_OK) {
        fl_llm__attempt_deinit(&c->at);
        refused(c, a);
        return false;
    }
    c->at.probe = probe;
    c->tries++;
    c->attempts++;
    c->phase = PH_IN_FLIGHT;
    out->kind = FL_LLM_STEP_SEND;
    return true;
}

void fl_llm_call_next(fl_llm_call *c, fl_llm_step *out)
{
    memset(out, 0, sizeof(*out));
    for (;;) {
        int64_t now = fl_clock_mono_ms(c->chain->clock);

        fl_assert(c->phase != PH_IN_FLIGHT); /* on_response first */
        if (c->phase == PH_WAITING && now < c->wake_ms) {
            out->kind = FL_LLM_STEP_WAIT;
            out->wake_ms = c->wake_ms;
            return;
        }
        if (c->phase == PH_WAITING) {
            c->phase = PH_READY;
        }
        if (c->phase == PH_READY && c->idx >= c->chain->n) {
            fail_all(c);
        }
        if (c->phase == PH_DONE) {
            out->kind = FL_LLM_STEP_DONE;
            return;
        }
        if (try_member(c, now, out)) {
            return;
        }
    }
}

static bool breaker_failure(fl_llm_err_kind k)
{
    return k == FL_LLM_ERR_TIMEOUT || k == FL_LLM_ERR_RATE_LIMITED || k == FL_LLM_ERR_UNAVAILABLE;
}

/* Another try at the same member, or on to the next. */
static void after_failure(fl_llm_call *c, const fl_llm_member *m, const fl_llm_error *e,
                          int64_t now)
{
    fl_backoff_policy pol = FL_BACKOFF_POLICY_INIT;
    char detail[256];
    int64_t delay;

    c->worst = e->kind;
    c->retryable = c->retryable || e->retryable;
    snprintf(detail, sizeof(detail), "%s", e->msg);
    if (e->retryable && c->tries <= m->p->max_retries) {
        pol.delay_ms = m->p->retry_delay_ms;
        pol.max_delay_ms = MAX_BACKOFF_MS;
        pol.max_retry_after_ms = INT64_MAX / 4; /* honoured whole, or not at all */
        delay =
            fl_backoff_delay_ms(&pol, c->tries, fl_backoff_splitmix64, &c->seed, e->retry_after_ms);
        if (now + delay + MIN_ATTEMPT_MS <= c->deadline_ms) {
            c->phase = PH_WAITING;
            c->wake_ms = now + delay;
            return;
        }
        snprintf(detail, sizeof(detail), "%s; a retry in %lldms would pass the deadline", e->msg,
                 (long long)delay);
    }
    fl_llm__leave(c, fl_llm_err_kind_name(e->kind), detail);
}

/* What the metrics see of one attempt, and the breaker's state after it. */
static void observe(const fl_llm_call *c, fl_llm_member *m, const fl_llm_error *e, int64_t now)
{
    const char *outcome = e->kind == FL_LLM_ERR_NONE           ? "ok"
                          : e->kind == FL_LLM_ERR_TIMEOUT      ? "timeout"
                          : e->kind == FL_LLM_ERR_RATE_LIMITED ? "rate_limited"
                                                               : "error";

    fl_metrics_llm_request(m->p->name, m->p->model, outcome, (double)(now - c->at.sent_ms) / 1e3);
    fl_metrics_llm_circuit(m->p->name, fl_llm_guard_state(&m->guard, now) != FL_LLM_BREAKER_CLOSED);
}

void fl_llm_call_on_response(fl_llm_call *c, const fl_http_response *resp)
{
    fl_llm_member *m = fl_llm__member(c);
    int64_t now = fl_clock_mono_ms(c->chain->clock);
    fl_llm_error e;

    fl_assert(c->phase == PH_IN_FLIGHT);
    fl_llm__judge(c, m, resp, &e);
    if (e.kind == FL_LLM_ERR_NONE && c->agent.classify) {
        fl_llm__classify_judge(c, &e);
    }
    if (e.kind == FL_LLM_ERR_INVALID_OUTPUT && c->agent.classify) {
        observe(c, m, &e, now);
        fl_llm__attempt_deinit(&c->at);
        fl_llm__classify_failed(c, m, &e);
        return;
    }
    if (e.kind == FL_LLM_ERR_NONE) {
        fl_llm__succeed(c, m, now);
        observe(c, m, &e, now);
        fl_llm__attempt_deinit(&c->at);
        c->phase = PH_DONE;
        return;
    }
    if (breaker_failure(e.kind)) {
        fl_llm_guard_failure(&m->guard, now);
    } else {
        fl_llm_guard_success(&m->guard, 0, fl_clock_now_ms(c->chain->clock)); /* it is up */
    }
    observe(c, m, &e, now);
    fl_llm__attempt_deinit(&c->at);
    c->phase = PH_READY;
    after_failure(c, m, &e, now);
}

void fl_llm_call_outcome(fl_llm_call *call, fl_llm_outcome *out)
{
    fl_assert(call->phase == PH_DONE);
    if (call->agent.classify && call->out.ok) {
        fl_llm_classify_route(call->chain->agents, call->out.result);
    }
    *out = call->out;
    call->out.result = NULL;
    call->out.usage = NULL;
}
