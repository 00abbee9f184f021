/* engine/llm/llm.h -- the provider interface: one model request, one answer, one error
 * classification, and the adapters that turn them into each vendor's wire format.
 *
 * A request is vendor-neutral (model, messages with roles system/user/assistant,
 * max_tokens, temperature, json mode, stream flag, idempotency key). An adapter builds
 * the HTTP request for it (fl_llm_wire: URL, headers, JSON body made with jansson) and
 * parses the answer, whole (parse) or streamed frame by frame (frame, fed by the splitter
 * in engine/llm/stream.h), into an fl_llm_response: text, tokens in/out, model, finish
 * reason. Sending, retries, fallback and accounting are engine/llm/chain.h; the gateway
 * (issue 6, item 9) reuses this interface and the chain.
 *
 * Kinds: openai (Chat Completions; also DeepSeek, Groq, vLLM, llama.cpp, Ollama /v1 by
 * base_url), anthropic (Messages API), gemini (generateContent, streamGenerateContent
 * ?alt=sse), ollama (native /api/chat, NDJSON). `local` has no wire format: the chain
 * calls engine/llm_local.h directly.
 *
 * Thread-safety: adapters are immutable and reentrant; a request, response or wire
 * belongs to one thread at a time. */
#ifndef FL_ENGINE_LLM_LLM_H
#define FL_ENGINE_LLM_LLM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/err.h"
#include "core/http.h"
#include "core/mem.h"

/* ---- request ---------------------------------------------------------------------------- */

typedef struct fl_llm_message {
    const char *role; /* "system" | "user" | "assistant" */
    const char *content;
} fl_llm_message;

typedef struct fl_llm_request {
    const char *model;        /* NULL = the provider's configured model */
    fl_llm_message *messages; /* owned array; the strings are borrowed from args */
    size_t n_messages;
    long max_tokens;             /* 0 = the provider's default */
    double temperature;          /* < 0 = the provider's default */
    bool json;                   /* ask for one JSON object */
    bool stream;                 /* ask for a streamed answer */
    const char *idempotency_key; /* borrowed; sent as Idempotency-Key on every attempt */
    const json_t *args;          /* borrowed: the `with` object (the local provider's input) */
} fl_llm_request;

/* Reads a `call: llm` with object: model?, messages? [{role, content}], prompt? (appended
 * as the last user message), max_tokens?, temperature?, json?, stream?.
 * Ownership: *req borrows args and idempotency_key (keep them alive); release with
 * fl_llm_request_deinit (also after a failure). Errors: FL_EINVAL (a field of the wrong
 * type, a role other than system/user/assistant, no message with text). */
fl_rc fl_llm_request_init(fl_llm_request *req, const json_t *args, const char *idempotency_key,
                          fl_err *err);
void fl_llm_request_deinit(fl_llm_request *req);

/* ---- response --------------------------------------------------------------------------- */

typedef struct fl_llm_response {
    fl_buf text;          /* the answer (streamed deltas appended), capped */
    long long tokens_in;  /* -1 = the provider did not say */
    long long tokens_out; /* -1 = the provider did not say */
    char model[128];      /* the model that answered, when it says */
    char finish_reason[32];
    bool done;     /* a stream's end marker was seen (whole answers: true) */
    bool got_text; /* the first content arrived (time to first token) */
} fl_llm_response;

void fl_llm_response_init(fl_llm_response *r, size_t max_bytes);
void fl_llm_response_deinit(fl_llm_response *r);

/* Appends a content delta. Errors: FL_ETOOBIG past the cap. */
fl_rc fl_llm_response_add_text(fl_llm_response *r, const char *text, size_t len, fl_err *err);

/* The answer in json mode: the text as one JSON object (a Markdown ``` fence around it
 * is tolerated). Ownership: owned by the caller. Errors: FL_EINVAL (not an object). */
fl_rc fl_llm_response_json(const fl_llm_response *r, json_t **out, fl_err *err);

/* ---- errors ----------------------------------------------------------------------------- */

typedef enum fl_llm_err_kind {
    FL_LLM_ERR_NONE,
    FL_LLM_ERR_TIMEOUT,        /* the attempt ran out of time */
    FL_LLM_ERR_RATE_LIMITED,   /* 429 */
    FL_LLM_ERR_UNAVAILABLE,    /* 5xx, 408, connect/reset, a stream cut short */
    FL_LLM_ERR_REJECTED,       /* other 4xx: this request will not pass as it is */
    FL_LLM_ERR_INVALID_OUTPUT, /* 2xx but not the answer asked for */
    FL_LLM_ERR_TOO_LARGE,      /* over llm.max_response_bytes */
} fl_llm_err_kind;

typedef struct fl_llm_error {
    fl_llm_err_kind kind;
    bool retryable;         /* another attempt at the same provider may help */
    long status;            /* HTTP status, 0 when none */
    int64_t retry_after_ms; /* the server's Retry-After, -1 when none */
    char msg[200];          /* short, never a key or a body */
} fl_llm_error;

/* Classifies an HTTP outcome that is not a usable 2xx: transport errors, statuses
 * (429/5xx/408 retryable, other 4xx not), Retry-After parsed against now_ms (wall). */
void fl_llm_error_from_http(const fl_http_response *resp, int64_t now_ms, fl_llm_error *e);

/* "timeout", "rate_limited", ...: the reason recorded for a fallback. Static. */
const char *fl_llm_err_kind_name(fl_llm_err_kind kind);

/* ---- wire ------------------------------------------------------------------------------- */

#define FL_LLM_WIRE_MAX_HEADERS 6

typedef struct fl_llm_wire {
    char *url;  /* owned */
    char *body; /* owned, JSON */
    fl_http_header headers[FL_LLM_WIRE_MAX_HEADERS];
    char *values[FL_LLM_WIRE_MAX_HEADERS]; /* owned header values (may hold a key) */
    size_t n_headers;
} fl_llm_wire;

/* Adds a header; the value is copied. */
void fl_llm_wire_header(fl_llm_wire *w, const char *name, const char *value);
/* Frees everything; the key-bearing values are wiped first. NULL-safe. */
void fl_llm_wire_deinit(fl_llm_wire *w);

/* ---- adapters --------------------------------------------------------------------------- */

typedef enum fl_llm_framing {
    FL_LLM_FRAMING_SSE,   /* text/event-stream; data-only (OpenAI, Gemini) or named events */
    FL_LLM_FRAMING_NDJSON /* one JSON object per line (Ollama) */
} fl_llm_framing;

/* One stream frame: an SSE event (event name, possibly empty, and its data lines joined
 * by \n) or one NDJSON line (event empty). Borrowed for the callback. */
typedef struct fl_llm_frame {
    const char *event;
    size_t event_len;
    const char *data;
    size_t data_len;
} fl_llm_frame;

typedef struct fl_llm_adapter {
    const char *kind;
    fl_llm_framing framing;
    /* Builds the request for provider p (model: req->model or p->model). stream says
     * whether to ask for a stream. Ownership: *w is owned by the caller
     * (fl_llm_wire_deinit, also on failure). Errors: FL_EINVAL. */
    fl_rc (*build)(const fl_config_llm_provider *p, const fl_llm_request *req, bool stream,
                   fl_llm_wire *w, fl_err *err);
    /* Parses a whole 2xx body into r. Errors: FL_EINVAL (not this vendor's answer),
     * FL_ETOOBIG. */
    fl_rc (*parse)(const char *body, size_t len, fl_llm_response *r, fl_err *err);
    /* Applies one stream frame to r (sets r->done at the end marker). Errors: as parse;
     * FL_EUNAVAIL for an error event inside the stream. */
    fl_rc (*frame)(const fl_llm_frame *f, fl_llm_response *r, fl_err *err);
} fl_llm_adapter;

/* The adapter of a kind ("openai", ...), or NULL (also for "local"). Static. */
const fl_llm_adapter *fl_llm_adapter_get(const char *kind);

#endif
