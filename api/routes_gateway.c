/* api/routes_gateway.c -- the OpenAI-compatible gateway (issue 6, item 9):
 *
 *   POST /v1/chat/completions   scope write; whole or streamed (stream: true)
 *   GET  /v1/models             scope read
 *
 * Outside /api/v1 because OpenAI clients append these paths to a base URL ending in /v1.
 * Same API keys (Bearer), but errors in OpenAI's shape (FL_ROUTE_OPENAI_ERRORS, honoured
 * by api/reply.c, so the dispatcher's 401/403/429/503 take it too).
 *
 * A completion goes through the same providers, fallback chain, guards, retries,
 * accounting and metrics as `call: llm` (engine/llm/chain.h), run on this worker thread
 * (fl_llm_call_blocking), with the deadline of an activity (activities.timeout).
 *
 * Which provider: `model` names a member of the chain, by provider name ("primary") or
 * by its configured model ("gpt-4o-mini"; the first member with that model wins);
 * "local" and "local-1" name the built-in provider, which always exists. The call starts
 * at that member and falls back down the chain from there; each provider is asked for
 * its own configured model (a fallback never sends one vendor's model name to another).
 * Anything else is 404 model_not_found. GET /v1/models lists exactly the names accepted.
 *
 * The chain is the process's (`flowd serve` makes one and lends it to the API and the
 * activity worker), so gateway calls and `call: llm` count against the same breakers,
 * rate limits and daily quotas (in memory, per process). An Idempotency-Key request header is forwarded to the
 * provider on every attempt; without one, "gateway:<request id>" is sent.
 *
 * Thread-safety: handlers run on civetweb's workers; the chain is shared (it locks). */
#include "api/routes_gateway_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/routes.h"
#include "core/clock.h"
#include "core/log.h"
#include "engine/llm_local.h"

#define IDEM_KEY_MAX 255

/* `local` alone, for a `model` that names it when llm.chain leaves it out; made once per
 * configuration (a new server in the same process -- tests -- brings a new one: the old
 * server's workers have stopped, so nothing uses the old). The built-in provider has no
 * breaker or quota whose counts would need sharing. */
static pthread_mutex_t local_mu = PTHREAD_MUTEX_INITIALIZER;
static const fl_config *local_cfg;    /* guarded by local_mu */
static fl_llm_chain *local_chain;     /* guarded by local_mu */
static fl_config_llm *local_only_cfg; /* its configuration (llm: with chain [local]) */

static fl_rc make_local(const fl_config *cfg, fl_err *err)
{
    fl_rc rc;

    fl_llm_chain_free(local_chain);
    local_chain = NULL;
    local_cfg = NULL;
    if (!local_only_cfg) {
        local_only_cfg = fl_xmalloc(sizeof(*local_only_cfg));
    }
    *local_only_cfg = cfg->llm;
    local_only_cfg->nchain = 1;
    snprintf(local_only_cfg->chain[0], sizeof(local_only_cfg->chain[0]), "%s",
             FL_LLM_LOCAL_PROVIDER);
    rc = fl_llm_chain_new(&local_chain, local_only_cfg, fl_clock_system(), err);
    if (rc == FL_OK) {
        local_cfg = cfg;
    }
    return rc;
}

/* The process's chain (*local: `local` alone), or NULL after answering 503 (a
 * configuration the loader should have refused). */
static fl_llm_chain *chains_get(fl_req *r, fl_llm_chain **local)
{
    fl_err err = FL_ERR_INIT;
    fl_llm_chain *chain = NULL;

    pthread_mutex_lock(&local_mu);
    if (local_cfg == r->api->cfg || make_local(r->api->cfg, &err) == FL_OK) {
        chain = r->api->llm;
        *local = local_chain;
    }
    pthread_mutex_unlock(&local_mu);
    if (!chain) {
        fl_log(FL_ERROR, "gateway.chain", FL_STR("error", err.msg[0] ? err.msg : "no chain"));
        fl_openai_error(r, 503, NULL, NULL, "the LLM provider chain is not available");
    }
    return chain;
}

/* The member of chain that `model` selects (*chain becomes local when only `local`
 * does); false when none does. */
static bool select_model(const char *model, fl_llm_chain **chain, fl_llm_chain *local,
                         size_t *first)
{
    size_t n = fl_llm_chain_size(*chain);

    for (int pass = 0; pass < 2; pass++) { /* names first, then models */
        for (size_t i = 0; i < n; i++) {
            const fl_config_llm_provider *p = fl_llm_chain_provider(*chain, i);

            if (strcmp(pass == 0 ? p->name : p->model, model) == 0) {
                *first = i;
                return true;
            }
        }
    }
    if (strcmp(model, FL_LLM_LOCAL_PROVIDER) == 0 || strcmp(model, FL_LLM_LOCAL_MODEL) == 0) {
        *chain = local; /* llm.chain leaves local out, yet it always exists */
        *first = 0;
        return true;
    }
    return false;
}

/* ---- GET /v1/models ------------------------------------------------------------------- */

static void add_model(json_t *data, const char *id, const char *owner)
{
    size_t i;
    const json_t *m;

    if (!*id) {
        return;
    }
    json_array_foreach(data, i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "id")), id) == 0) {
            return; /* the first member with that name or model is the one selected */
        }
    }
    json_array_append_new(data, json_pack("{s:s, s:s, s:i, s:s}", "id", id, "object", "model",
                                          "created", 0, "owned_by", owner));
}

static int handle_models(fl_req *r)
{
    fl_llm_chain *local = NULL;
    fl_llm_chain *chain = chains_get(r, &local);
    json_t *data;
    size_t n;

    if (!chain) {
        return r->status;
    }
    data = json_array();
    n = fl_llm_chain_size(chain);
    for (size_t i = 0; i < n; i++) {
        const fl_config_llm_provider *p = fl_llm_chain_provider(chain, i);

        add_model(data, p->name, "flowd");
        add_model(data, strcmp(p->kind, "local") == 0 ? FL_LLM_LOCAL_MODEL : p->model, p->name);
    }
    add_model(data, FL_LLM_LOCAL_PROVIDER, "flowd");
    add_model(data, FL_LLM_LOCAL_MODEL, FL_LLM_LOCAL_PROVIDER);
    return fl_reply(r, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

/* ---- POST /v1/chat/completions --------------------------------------------------------- */

/* The Idempotency-Key to forward: the client's, else one per request. false = answered. */
static bool idem_key(fl_req *r, char *out, size_t size)
{
    const char *k = fl_req_header(r, "Idempotency-Key");
    size_t n = k ? strlen(k) : 0;

    if (!k) {
        snprintf(out, size, "gateway:%s", r->request_id);
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)k[i] < 0x21 || (unsigned char)k[i] > 0x7e) {
            n = 0; /* visible ASCII only: it becomes a header of ours */
        }
    }
    if (n == 0 || n > IDEM_KEY_MAX) {
        fl_openai_error(r, 400, NULL, NULL,
                        "the Idempotency-Key header must be 1 to %d visible ASCII characters",
                        IDEM_KEY_MAX);
        return false;
    }
    snprintf(out, size, "%s", k);
    return true;
}

/* Runs the chain and answers. */
static int complete(gw_call *c, fl_llm_chain *chain, size_t first, const char *key)
{
    fl_llm_outcome out;
    fl_err err = FL_ERR_INIT;
    fl_rc rc =
        fl_llm_call_blocking(chain, c->args, key, c->r->api->cfg->workers.activities_timeout_ms,
                             first, c->stream ? fl_gw__delta : NULL, c, &out, &err);
    int status;

    if (rc == FL_EINVAL) {
        return fl_openai_error(c->r, 400, NULL, "messages", "%s", err.msg);
    }
    if (rc != FL_OK) { /* the client went away mid-stream: nothing more to say */
        if (c->started) {
            (void)mg_send_chunk(c->r->conn, "", 0);
        }
        return c->r->status ? c->r->status : 499;
    }
    if (c->stream && (out.ok || c->started)) {
        status = fl_gw__stream_end(c, &out);
    } else {
        status = out.ok ? fl_gw__reply(c, &out) : fl_gw__fail(c, &out);
    }
    json_decref(out.result);
    json_decref(out.usage);
    return status;
}

/* Reads the body and picks the chain; false = answered. */
static bool prepare(gw_call *c, json_t **body, fl_llm_chain **chain, size_t *first, char *key,
                    size_t key_size)
{
    fl_req *r = c->r;
    fl_llm_chain *local = NULL;

    if (!fl_req_json(r, body) || !idem_key(r, key, key_size) || !fl_gw__read(c, *body)) {
        return false;
    }
    *chain = chains_get(r, &local);
    if (!*chain) {
        return false;
    }
    if (!select_model(c->model, chain, local, first)) {
        fl_openai_error(r, 404, "model_not_found", "model",
                        "the model \"%s\" does not exist (see GET /v1/models)", c->model);
        return false;
    }
    return !c->stream || fl_req_stream_enter(r);
}

static int handle_completions(fl_req *r)
{
    gw_call c = {.r = r, .created = fl_clock_now_ms(fl_clock_system()) / 1000};
    fl_llm_chain *chain = NULL;
    size_t first = 0;
    char key[IDEM_KEY_MAX + 1];
    json_t *body = NULL;
    int status;

    snprintf(c.id, sizeof(c.id), "chatcmpl-%s", r->request_id);
    if (!prepare(&c, &body, &chain, &first, key, sizeof(key))) {
        status = r->status;
    } else {
        status = complete(&c, chain, first, key);
        if (c.stream) {
            fl_req_stream_leave(r);
        }
    }
    json_decref(c.args);
    json_decref(body);
    return status;
}

static const fl_route gateway_routes[] = {
    {"POST", "/v1/chat/completions", handle_completions, FL_SCOPE_WRITE,
     FL_ROUTE_OPENAI_ERRORS | FL_ROUTE_STREAM},
    {"GET", "/v1/models", handle_models, FL_SCOPE_READ, FL_ROUTE_OPENAI_ERRORS},
};

void fl_routes_gateway(fl_router *rt)
{
    fl_router_add(rt, gateway_routes, sizeof(gateway_routes) / sizeof(gateway_routes[0]));
}
