/* tests/fuzz/fuzz_cloudevent.c -- CloudEvents decoding on arbitrary records.
 *
 * The input is a list of fields, each one kind byte, a 2-byte big-endian length and that
 * many bytes: 'k' the key, 'v' the value, 'h' a header ("name\0value"), 'n' a header
 * without a value ("name\0"), 'o' options (bit 0 allow_no_subject, bit 1 require_key,
 * bit 2 a 64-byte value cap). A truncated field ends the list. Any input must decode or
 * give a reason with a detail; a decoded event must survive encode + decode unchanged;
 * never a crash or a leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "engine/cloudevent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEADERS 64

typedef struct input {
    fl_ce_record rec;
    fl_ce_header h[MAX_HEADERS];
    fl_ce_opts opts;
} input;

static void add_field(input *in, uint8_t kind, const uint8_t *p, size_t n)
{
    const uint8_t *nul = memchr(p, '\0', n);

    if (kind == 'k') {
        in->rec.key = p;
        in->rec.key_len = n;
    } else if (kind == 'v') {
        in->rec.value = p;
        in->rec.value_len = n;
    } else if (kind == 'o' && n > 0) {
        in->opts.allow_no_subject = (p[0] & 1) != 0;
        in->opts.require_key = (p[0] & 2) != 0;
        in->opts.max_value_bytes = (p[0] & 4) != 0 ? 64 : 0;
    } else if ((kind == 'h' || kind == 'n') && in->rec.nheaders < MAX_HEADERS && nul != NULL) {
        /* the name is the NUL-terminated prefix, borrowed from the input */
        in->h[in->rec.nheaders++] =
            (fl_ce_header){.name = (const char *)p,
                           .value = kind == 'h' ? nul + 1 : NULL,
                           .len = kind == 'h' ? n - (size_t)(nul + 1 - p) : 0};
    }
}

static void parse(input *in, const uint8_t *data, size_t size)
{
    size_t i = 0, n;

    memset(in, 0, sizeof(*in));
    in->opts.default_tenant = "default";
    in->rec.headers = in->h;
    in->rec.topic = "fuzz";
    while (i + 3 <= size) {
        n = (size_t)data[i + 1] << 8 | data[i + 2];
        if (n > size - i - 3) {
            break;
        }
        add_field(in, data[i], data + i + 3, n);
        i += 3 + n;
    }
}

static bool same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* encode(decoded) must decode to the same event. */
static void round_trip(const fl_cloudevent *ce, const fl_ce_opts *opts)
{
    fl_ce_attr extra[FL_CE_MAX_EXTENSIONS];
    fl_event ev = fl_cloudevent_event(ce);
    fl_ce_encoded enc;
    fl_ce_reason reason;
    fl_cloudevent *back = NULL;
    fl_err err = FL_ERR_INIT;
    fl_ce_opts o = *opts;

    for (size_t i = 0; i < ce->nexts; i++) {
        extra[i] = (fl_ce_attr){ce->exts[i].name, ce->exts[i].value};
    }
    fl_assert(fl_cloudevent_encode(&ev, extra, ce->nexts, &enc, &err) == FL_OK);
    o.max_value_bytes = 0; /* JSON text may grow when re-serialized */
    o.require_key = false; /* without a subject the encoding has no key */
    fl_assert(fl_cloudevent_decode(&back,
                                   &(fl_ce_record){.key = enc.key,
                                                   .key_len = enc.key_len,
                                                   .value = enc.value,
                                                   .value_len = enc.value_len,
                                                   .headers = enc.headers,
                                                   .nheaders = enc.nheaders},
                                   &o, &reason, &err) == FL_OK);
    fl_assert(same(back->id, ce->id) && same(back->source, ce->source) &&
              same(back->type, ce->type) && same(back->subject, ce->subject) &&
              same(back->tenant, ce->tenant) && same(back->time, ce->time));
    fl_assert(back->nexts == ce->nexts);
    fl_assert((back->data == NULL && ce->data == NULL) || json_equal(back->data, ce->data));
    fl_cloudevent_free(back);
    fl_ce_encoded_deinit(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in;
    fl_cloudevent *ce = NULL;
    fl_ce_reason reason;
    fl_err err = FL_ERR_INIT;
    json_t *dl;

    fl_log_set_level(FL_ERROR);
    parse(&in, data, size);
    if (fl_cloudevent_decode(&ce, &in.rec, &in.opts, &reason, &err) == FL_OK) {
        fl_assert(reason == FL_CE_OK);
        round_trip(ce, &in.opts);
        fl_cloudevent_free(ce);
    } else {
        fl_assert(reason != FL_CE_OK && err.msg[0] != '\0'); /* every failure explains itself */
        dl = fl_cloudevent_dead_letter_json(reason, err.msg, &in.rec);
        fl_assert(dl != NULL);
        json_decref(dl);
    }
    return 0;
}
