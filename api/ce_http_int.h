/* api/ce_http_int.h -- private to api/ce_http*.c: the error collector and the bridge to
 * engine/cloudevent.h's decoder shared by binary, structured and batch mode.
 *
 * Thread-safety: a ce_ctx belongs to one decode call. */
#ifndef FL_API_CE_HTTP_INT_H
#define FL_API_CE_HTTP_INT_H

#include "api/ce_http.h"

/* What one fl_ce_http_decode call collects. */
typedef struct ce_ctx {
    const fl_ce_http_opts *opts;
    json_t *errors;  /* [{pointer, detail}], at most FL_CE_HTTP_MAX_ERRORS */
    size_t nerrors;  /* every error, also those not listed */
    char first[256]; /* the first detail: the problem's detail when it is the only one */
    fl_ce_http_events *out;
    bool too_many; /* a batch over FL_CE_HTTP_MAX_BATCH: 413 rather than 400 */
    /* binary mode: the body parsed once (api/body.h), handed to the engine's decoder
     * (fl_ce_opts.parsed_value) so it is not parsed again */
    json_t *parsed;
    /* structured and batch mode: the envelope being decoded, a member of the parsed body,
     * handed to the engine's decoder (fl_ce_opts.parsed_envelope) */
    json_t *envelope;
} ce_ctx;

/* Records an error at pointer `base` + "/" + attr (attr NULL or "" = base itself). */
void ce_fail(ce_ctx *c, const char *base, const char *attr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Adds the body's JSON errors (pointers already relative to the body). Takes errors. */
void ce_fail_json(ce_ctx *c, json_t *errors);

/* Decodes one record with the engine's rules and the caller's tenant; on success appends
 * the event to c->out, else records why under pointer `base`. Returns true on success. */
bool ce_decode_record(ce_ctx *c, const fl_ce_record *rec, const char *base);

/* Structured mode (batch = false) and batch mode. */
void ce_decode_json(ce_ctx *c, const fl_ce_http_request *req, bool batch);

#endif
