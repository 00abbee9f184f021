/* engine/llm/provider_int.h -- private to engine/llm: the four adapters
 * (openai.c, anthropic.c, gemini.c, ollama.c) and the helpers they share
 * (provider_util.c).
 *
 * Thread-safety: as engine/llm/llm.h. */
#ifndef FL_ENGINE_LLM_PROVIDER_INT_H
#define FL_ENGINE_LLM_PROVIDER_INT_H

#include "engine/llm/llm.h"

extern const fl_llm_adapter fl_llm__openai;
extern const fl_llm_adapter fl_llm__anthropic;
extern const fl_llm_adapter fl_llm__gemini;
extern const fl_llm_adapter fl_llm__ollama;

/* base + path with exactly one '/' between them. Owned. */
char *fl_llm__url(const char *base, const char *path);

/* The body as compact JSON; takes body (even on failure). Owned. */
char *fl_llm__dump_take(json_t *body);

/* The model to ask for: the request's, else the provider's. Borrowed. */
const char *fl_llm__model(const fl_config_llm_provider *p, const fl_llm_request *req);

/* The system messages joined by blank lines, or NULL when there are none; with
 * json_hint, an instruction to answer with JSON only is appended (for vendors without a
 * JSON mode). Owned. */
char *fl_llm__system_text(const fl_llm_request *req, bool json_hint);

/* Parses data as one JSON object. Ownership: *out owned. Errors: FL_EINVAL. */
fl_rc fl_llm__load(const char *data, size_t len, json_t **out, fl_err *err);

/* Copies a string field into r->model / r->finish_reason when it is a string. */
void fl_llm__set_model(fl_llm_response *r, const json_t *v);
void fl_llm__set_finish(fl_llm_response *r, const json_t *v);

/* Appends a JSON string's text to r (other types are ignored). Errors: FL_ETOOBIG. */
fl_rc fl_llm__add(fl_llm_response *r, const json_t *text, fl_err *err);

/* A token count when v is a non-negative integer, else keep. */
long long fl_llm__count(const json_t *v, long long keep);

/* Every message as {role, content}, system ones included (the OpenAI and Ollama
 * shape). Owned. */
json_t *fl_llm__messages(const fl_llm_request *req);

/* Adds "Authorization: Bearer <api_key>" when the provider has a key; the formatted
 * copy of the key is wiped before it is freed. */
void fl_llm__bearer(fl_llm_wire *w, const fl_config_llm_provider *p);

/* Reads one answer object (whole, or one stream piece) into r. */
typedef fl_rc (*fl_llm__apply_fn)(const json_t *o, fl_llm_response *r, fl_err *err);

/* What a whole answer must carry for the adapters whose whole answer and stream pieces
 * have the same shape (gemini.c, ollama.c). */
typedef struct fl_llm__shape {
    const char *key;     /* the member a whole answer must have */
    json_type type;      /* ... and its type */
    const char *missing; /* the error text when it has not */
    fl_llm__apply_fn apply;
} fl_llm__shape;

/* A whole answer: loaded, checked against shape, applied, then r->done is set.
 * Errors: FL_EINVAL, FL_ETOOBIG. */
fl_rc fl_llm__parse_shape(const fl_llm__shape *shape, const char *body, size_t len,
                          fl_llm_response *r, fl_err *err);

/* One stream piece: loaded and applied; an "error" member fails with FL_EUNAVAIL.
 * r->done is the caller's to decide. Errors: FL_EINVAL, FL_EUNAVAIL, FL_ETOOBIG. */
fl_rc fl_llm__frame_shape(const fl_llm__shape *shape, const fl_llm_frame *f, fl_llm_response *r,
                          fl_err *err);

#endif
