/* api/routes_gateway_int.h -- private to the OpenAI-compatible gateway:
 * api/routes_gateway.c (routes, the chain, model choice, GET /v1/models, the handler),
 * api/routes_gateway_req.c (an OpenAI request body -> a `call: llm` with object) and
 * api/routes_gateway_resp.c (chat.completion objects, the chunk stream, errors).
 *
 * Thread-safety: a gw_call belongs to the worker thread serving its request. */
#ifndef FL_API_ROUTES_GATEWAY_INT_H
#define FL_API_ROUTES_GATEWAY_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/request.h"
#include "engine/llm/chain.h"

/* One POST /v1/chat/completions as the gateway understands it. */
typedef struct gw_call {
    fl_req *r;
    json_t *args;       /* owned: the `call: llm` with object (messages, max_tokens, ...) */
    const char *model;  /* borrowed from the body: what the client asked for */
    bool stream;        /* answer with chat.completion.chunk events */
    bool include_usage; /* stream_options.include_usage: a usage chunk before [DONE] */
    char id[80];        /* "chatcmpl-..." */
    int64_t created;    /* unix seconds */
    bool started;       /* stream: the headers and the role chunk are out */
} gw_call;

/* ---- routes_gateway_req.c ---- */

/* Reads the body into c (model, args, stream, include_usage). false = answered 400 with
 * invalid_request_error naming the param. Ownership: c->args is the caller's
 * (json_decref), c->model borrows body. */
bool fl_gw__read(gw_call *c, const json_t *body);

/* ---- routes_gateway_resp.c ---- */

/* The whole answer as a chat.completion object. Ownership: borrows out. */
int fl_gw__reply(gw_call *c, const fl_llm_outcome *out);

/* The chain failed before anything was streamed: the matching OpenAI error. */
int fl_gw__fail(gw_call *c, const fl_llm_outcome *out);

/* fl_llm_delta_fn: one content chunk (the headers and the role chunk first). */
fl_rc fl_gw__delta(void *arg, const char *text, size_t len);

/* Ends a stream: the finish chunk, the usage chunk when asked, [DONE] -- or, when the
 * chain failed after the stream began, an error event. Starts the stream first when
 * nothing was sent yet (an empty answer). */
int fl_gw__stream_end(gw_call *c, const fl_llm_outcome *out);

/* OpenAI's finish_reason for a provider's ("end_turn" -> "stop", "MAX_TOKENS" ->
 * "length", ...). Static. */
const char *fl_gw__finish_reason(const char *provider_reason);

#endif
