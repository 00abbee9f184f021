/* tests/fuzz/fuzz_ce_http.c -- the CloudEvents HTTP binding on arbitrary requests.
 *
 * The input is a list of fields, each one kind byte, a 2-byte big-endian length and that
 * many bytes: 'c' the Content-Type, 'h' a header ("name\0value"), 'b' the body, 'd' the
 * depth limit (first byte % 64). A truncated field ends the list. Any request must decode
 * to events that all carry the caller's tenant and encode in binary mode, or fail with a
 * detail and a non-empty errors array of {pointer, detail}; never a crash or a leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/ce_http.h"
#include "core/log.h"
#include "core/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEADERS 64
#define TENANT      "fuzz-tenant"

typedef struct input {
    fl_ce_http_request req;
    fl_ce_http_header h[MAX_HEADERS];
    char *owned[MAX_HEADERS + 1]; /* NUL-terminated copies of header fields and the type */
    size_t nowned;
    int depth;
} input;

static char *keep(input *in, const uint8_t *p, size_t n)
{
    char *s = fl_xstrndup((const char *)p, n); /* stops at a NUL, like a C header string */

    in->owned[in->nowned++] = s;
    return s;
}

static void add_field(input *in, uint8_t kind, const uint8_t *p, size_t n)
{
    const uint8_t *nul = memchr(p, '\0', n);

    if (kind == 'b') {
        in->req.body = (const char *)p;
        in->req.body_len = n;
    } else if (kind == 'd' && n > 0) {
        in->depth = p[0] % 64;
    } else if (kind == 'c' && in->req.content_type == NULL) {
        in->req.content_type = keep(in, p, n);
    } else if (kind == 'h' && nul != NULL && in->req.nheaders < MAX_HEADERS &&
               in->nowned < MAX_HEADERS) {
        const char *name = keep(in, p, n); /* stops at the NUL; the value follows it */
        const char *value = keep(in, nul + 1, n - (size_t)(nul + 1 - p));
        in->h[in->req.nheaders++] = (fl_ce_http_header){.name = name, .value = value};
    }
}

static void parse(input *in, const uint8_t *data, size_t size)
{
    size_t i = 0, n;

    memset(in, 0, sizeof(*in));
    in->depth = 16;
    in->req.headers = in->h;
    while (i + 3 <= size && in->nowned + 2 <= MAX_HEADERS) {
        n = (size_t)data[i + 1] << 8 | data[i + 2];
        if (n > size - i - 3) {
            break;
        }
        add_field(in, data[i], data + i + 3, n);
        i += 3 + n;
    }
}

static void check_ok(const fl_ce_http_events *ev)
{
    for (size_t i = 0; i < ev->n; i++) {
        const fl_cloudevent *ce = ev->events[i];
        fl_ce_attr extra[FL_CE_MAX_EXTENSIONS];
        fl_event e = fl_cloudevent_event(ce);
        fl_ce_encoded enc;
        fl_err err = FL_ERR_INIT;
        fl_assert(strcmp(ce->tenant, TENANT) == 0);
        for (size_t k = 0; k < ce->nexts; k++) {
            extra[k] = (fl_ce_attr){ce->exts[k].name, ce->exts[k].value};
        }
        fl_assert(fl_cloudevent_encode(&e, extra, ce->nexts, &enc, &err) == FL_OK);
        fl_ce_encoded_deinit(&enc);
    }
}

static void check_errors(const json_t *errors, const fl_err *err)
{
    size_t i;
    const json_t *e;

    fl_assert(err->msg[0] != '\0');
    fl_assert(json_is_array(errors) && json_array_size(errors) > 0);
    json_array_foreach(errors, i, e)
    {
        const char *ptr = json_string_value(json_object_get(e, "pointer"));
        fl_assert(ptr != NULL && (ptr[0] == '\0' || ptr[0] == '/'));
        fl_assert(json_string_value(json_object_get(e, "detail")) != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in;
    fl_ce_http_opts opts = {.tenant = TENANT};
    fl_ce_http_events ev;
    json_t *errors = NULL;
    fl_err err = FL_ERR_INIT;

    fl_log_set_level(FL_ERROR);
    parse(&in, data, size);
    opts.max_depth = in.depth;
    (void)fl_ce_http_mode_of(&in.req);
    if (fl_ce_http_decode(&in.req, &opts, &ev, &errors, &err) == FL_OK) {
        fl_assert(errors == NULL);
        check_ok(&ev);
    } else {
        fl_assert(ev.n == 0);
        check_errors(errors, &err);
        json_decref(errors);
    }
    fl_ce_http_events_free(&ev);
    for (size_t i = 0; i < in.nowned; i++) {
        free(in.owned[i]);
    }
    return 0;
}
