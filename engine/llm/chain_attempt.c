/* engine/llm/chain_attempt.c -- one HTTP attempt of a call (see chain.h): building it,
 * gathering its bytes on the HTTP thread (a streamed answer is split and parsed as it
 * arrives, so time to first token is real), judging how it ended, and the accounting of
 * the answer. The local provider's answer is here too. */
#include "engine/llm/chain_int.h"

#include "core/log.h"
#include "core/metrics.h"
#include "engine/llm_local.h"

#include <stdlib.h>
#include <string.h>

/* In streaming mode only the first bytes are kept, to explain an error status. */
#define RAW_ERROR_BYTES 4096
/* SSE and NDJSON framing around the text: the wire cap is this many times the text cap. */
#define STREAM_OVERHEAD 4

fl_rc fl_llm__attempt_start(fl_llm_call *c, const fl_llm_member *m, int64_t timeout_ms,
                            fl_http_request *req, fl_err *err)
{
    fl_llm_attempt *a = &c->at;
    size_t max = (size_t)c->chain->cfg->max_response_bytes;
    fl_rc rc;

    memset(a, 0, sizeof(*a));
    a->ad = m->ad;
    a->stream = c->req.stream || m->p->stream;
    a->first_ms = -1;
    fl_buf_init(&a->raw, a->stream ? RAW_ERROR_BYTES : max);
    fl_llm_splitter_init(&a->split, m->ad->framing, max);
    fl_llm_response_init(&a->resp, max);
    rc = m->ad->build(m->p, &c->req, a->stream, &a->wire, err);
    if (rc != FL_OK) {
        return rc; /* the caller deinits */
    }
    memset(req, 0, sizeof(*req));
    req->method = "POST";
    req->url = a->wire.url;
    req->headers = a->wire.headers;
    req->n_headers = a->wire.n_headers;
    req->body = a->wire.body;
    req->body_len = strlen(a->wire.body);
    req->timeout_ms = (long)timeout_ms;
    req->max_response_bytes = a->stream ? max * STREAM_OVERHEAD : max;
    req->idempotency_key = c->req.idempotency_key;
    a->sent_ms = fl_clock_mono_ms(c->chain->clock);
    return FL_OK;
}

void fl_llm__attempt_deinit(fl_llm_attempt *a)
{
    fl_llm_wire_deinit(&a->wire);
    fl_buf_deinit(&a->raw);
    fl_llm_splitter_deinit(&a->split);
    fl_llm_response_deinit(&a->resp);
    memset(a, 0, sizeof(*a));
}

static fl_rc on_frame(void *arg, const fl_llm_frame *f, fl_err *err)
{
    fl_llm_call *c = arg;
    fl_llm_attempt *a = &c->at;
    size_t before = a->resp.text.len;
    fl_rc rc = a->ad->frame(f, &a->resp, err);

    if (a->first_ms < 0 && a->resp.got_text) {
        a->first_ms = fl_clock_mono_ms(c->chain->clock);
    }
    if (c->delta_fn && a->resp.text.len > before) {
        c->delta_shown = true;
        (void)c->delta_fn(c->delta_arg, a->resp.text.data + before, a->resp.text.len - before);
    }
    return rc;
}

fl_rc fl_llm_call_on_data(fl_llm_call *c, const char *data, size_t len)
{
    fl_llm_attempt *a = &c->at;
    size_t keep = a->raw.max - a->raw.len;

    if (!a->stream) {
        if (a->first_ms < 0) {
            a->first_ms = fl_clock_mono_ms(c->chain->clock);
        }
        return fl_buf_append(&a->raw, data, len, NULL); /* the transfer's cap is the same */
    }
    (void)fl_buf_append(&a->raw, data, len < keep ? len : keep, NULL);
    if (a->stream_err.code == FL_OK) {
        (void)fl_llm_splitter_feed(&a->split, data, len, on_frame, c, &a->stream_err);
    }
    return FL_OK;
}

static void set_error(fl_llm_error *e, fl_llm_err_kind kind, bool retryable, const char *msg)
{
    e->kind = kind;
    e->retryable = retryable;
    snprintf(e->msg, sizeof(e->msg), "%s", msg);
}

/* A 2xx stream ended: did it make sense, and did it end properly? */
static void judge_stream(fl_llm_call *c, fl_llm_error *e)
{
    fl_llm_attempt *a = &c->at;
    fl_err *se = &a->stream_err;

    if (se->code == FL_OK) {
        (void)fl_llm_splitter_finish(&a->split, on_frame, c, se);
    }
    if (se->code == FL_ETOOBIG) {
        set_error(e, FL_LLM_ERR_TOO_LARGE, false, se->msg);
    } else if (se->code == FL_EUNAVAIL) {
        set_error(e, FL_LLM_ERR_UNAVAILABLE, true, se->msg);
    } else if (se->code != FL_OK) {
        set_error(e, FL_LLM_ERR_INVALID_OUTPUT, false, se->msg);
    } else if (!a->resp.done) {
        set_error(e, FL_LLM_ERR_UNAVAILABLE, true, "the stream ended before its end marker");
    }
}

void fl_llm__judge(fl_llm_call *c, const fl_llm_member *m, const fl_http_response *resp,
                   fl_llm_error *e)
{
    fl_llm_attempt *a = &c->at;
    fl_err perr = FL_ERR_INIT;
    json_t *obj = NULL;

    memset(e, 0, sizeof(*e));
    e->retry_after_ms = -1;
    if (resp->err.code != FL_OK || resp->status < 200 || resp->status > 299) {
        fl_llm_error_from_http(resp, fl_clock_now_ms(c->chain->clock), e);
        return;
    }
    e->status = resp->status;
    if (a->stream) {
        judge_stream(c, e);
    } else if (m->ad->parse(a->raw.data ? a->raw.data : "", a->raw.len, &a->resp, &perr) != FL_OK) {
        set_error(e, perr.code == FL_ETOOBIG ? FL_LLM_ERR_TOO_LARGE : FL_LLM_ERR_INVALID_OUTPUT,
                  false, perr.msg);
    }
    if (e->kind == FL_LLM_ERR_NONE && c->req.json &&
        fl_llm_response_json(&a->resp, &obj, &perr) != FL_OK) {
        set_error(e, FL_LLM_ERR_INVALID_OUTPUT, false, perr.msg);
    }
    json_decref(obj);
}

/* Words as tokens when a provider reports none (quotas and cost still need a number). */
static long long words_in(const fl_llm_request *req)
{
    long long n = 0;

    for (size_t i = 0; i < req->n_messages; i++) {
        n += (long long)fl_llm_local_count_words(req->messages[i].content);
    }
    return n;
}

void fl_llm__succeed(fl_llm_call *c, fl_llm_member *m, int64_t now_ms)
{
    fl_llm_attempt *a = &c->at;
    fl_llm_acct acct = {.provider = m->p->name,
                        .model = a->resp.model[0] ? a->resp.model
                                 : c->req.model   ? c->req.model
                                                  : m->p->model,
                        .finish = a->resp.finish_reason[0] ? a->resp.finish_reason : NULL,
                        .tokens_in = a->resp.tokens_in,
                        .tokens_out = a->resp.tokens_out,
                        .latency_ms = now_ms - a->sent_ms};

    if (acct.tokens_in < 0 || acct.tokens_out < 0) {
        acct.estimated = true;
        acct.tokens_in = acct.tokens_in < 0 ? words_in(&c->req) : acct.tokens_in;
        acct.tokens_out = acct.tokens_out < 0
                              ? (long long)fl_llm_local_count_words(a->resp.text.data)
                              : acct.tokens_out;
    }
    acct.ttft_ms = a->first_ms >= 0 ? a->first_ms - a->sent_ms : acct.latency_ms;
    acct.cost = (double)acct.tokens_in / 1000.0 * m->p->price_in_per_1k +
                (double)acct.tokens_out / 1000.0 * m->p->price_out_per_1k;
    fl_llm_guard_success(&m->guard, acct.tokens_in + acct.tokens_out,
                         fl_clock_now_ms(c->chain->clock));
    if (c->req.json) {
        (void)fl_llm_response_json(&a->resp, &c->out.result, NULL); /* judged before */
    } else {
        c->out.result = json_stringn(a->resp.text.data ? a->resp.text.data : "", a->resp.text.len);
    }
    if (!c->out.result) { /* not UTF-8: a JSON string cannot carry it */
        c->out.result = json_string("");
    }
    c->out.ok = true;
    c->out.usage = fl_llm__usage(c, &acct);
    fl_metrics_llm_ttft(acct.provider, acct.model, (double)acct.ttft_ms / 1e3);
    fl_metrics_llm_usage(acct.provider, acct.model, c->out.usage);
}

json_t *fl_llm__usage(const fl_llm_call *c, const fl_llm_acct *a)
{
    json_t *u =
        json_pack("{s:I, s:I, s:f, s:s?, s:s?, s:I, s:I, s:I, s:s?, s:i, s:O}", "tokens_in",
                  (json_int_t)a->tokens_in, "tokens_out", (json_int_t)a->tokens_out, "cost",
                  a->cost, "provider", a->provider, "model", a->model, "latency_ms",
                  (json_int_t)a->latency_ms, "ttft_ms", (json_int_t)a->ttft_ms, "total_ms",
                  (json_int_t)(fl_clock_mono_ms(c->chain->clock) - c->started_ms), "finish_reason",
                  a->finish, "attempts", c->attempts, "fallbacks", c->fallbacks);

    if (a->estimated) {
        json_object_set_new(u, "tokens_estimated", json_true());
    }
    fl_llm__agent_usage(c, u);
    return u;
}

void fl_llm__answer_local(fl_llm_call *c)
{
    json_t *result = NULL, *usage = NULL;
    fl_err err = FL_ERR_INIT;
    fl_llm_acct acct = {
        .provider = fl_llm__member(c)->p->name, .model = FL_LLM_LOCAL_MODEL, .finish = "stop"};
    int64_t t0 = fl_clock_mono_ms(c->chain->clock);

    if (fl_llm_local_answer(c->chain->agents, c->req.args, &result, &usage, &err) != FL_OK) {
        fl_metrics_llm_request(acct.provider, acct.model, "error", 0.0);
        c->worst = FL_LLM_ERR_REJECTED;
        fl_llm__leave(c, "invalid_request", err.msg);
        return;
    }
    acct.tokens_in = json_integer_value(json_object_get(usage, "tokens_in"));
    acct.tokens_out = json_integer_value(json_object_get(usage, "tokens_out"));
    json_decref(usage);
    c->attempts++;
    c->out.ok = true;
    c->out.result = result;
    c->out.usage = fl_llm__usage(c, &acct);
    fl_metrics_llm_usage(acct.provider, acct.model, c->out.usage);
    fl_metrics_llm_request(acct.provider, acct.model, "ok",
                           (double)(fl_clock_mono_ms(c->chain->clock) - t0) / 1e3);
    c->phase = PH_DONE;
}
