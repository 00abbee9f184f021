/* engine/cloudevent.h -- CloudEvents 1.0 on Kafka: decode a consumed record, validate it
 * with a closed list of dead-letter reasons, encode an event for the outbox relay.
 *
 * The module is pure: it sees a Kafka record as plain data (fl_ce_record) and includes no
 * librdkafka or libpq header, so the engine loop, the DLQ replay and the tests share it.
 *
 * Decisions (ARCHITECTURE.md sections 2 and 6):
 * - Mode. A `content-type` header whose media type is application/cloudevents+json means
 *   structured mode: the value is the whole envelope (an object; `data` or `data_base64`).
 *   application/cloudevents-batch+json is refused (the Kafka binding has no batch mode).
 *   Anything else is binary mode: attributes in `ce_<name>` headers (names exactly lower
 *   case, as the binding writes them), the value is the data. In structured mode `ce_*`
 *   headers are ignored.
 * - Data. Empty value (or no `data`) = no data. Content type absent, application/json or
 *   any `+json` type: the bytes must be one JSON value (any type, duplicate keys refused)
 *   or the event is invalid_data_json. Other types: UTF-8 text without NUL becomes a JSON
 *   string; any other bytes become a JSON string holding their base64 and `data_base64`
 *   is set, so a binary payload can still be passed on by a workflow. `data_base64` in
 *   structured mode is decoded, then follows the same rule with `datacontenttype`.
 * - Attributes are non-empty UTF-8 strings without NUL, each under a cap
 *   (FL_CE_MAX_*): id, source, type and specversion are required; specversion must be
 *   "1.0"; time, if present, must be RFC 3339; a header or member given twice is a dead
 *   letter (which one would be right is unknowable). source is not checked as a URI.
 * - Tenant: the `tenant` extension (`ce_tenant`), 1..64 of [A-Za-z0-9._-] starting with a
 *   letter or digit (tenants.id allows 64); absent -> opts->default_tenant.
 * - Subject: required unless opts->allow_no_subject (every engine input addresses
 *   workflows by subject). A Kafka key, when present (even empty), must equal the
 *   subject byte for byte, else key_subject_mismatch is a dead letter: the key chose the
 *   partition, so a different subject would be advanced by a process that may not own
 *   it (the single-writer rule). A key-less record is accepted unless opts->require_key.
 * - Other attributes (`ce_<name>` headers, other envelope members) are kept as
 *   extensions: names must be CloudEvents names ([a-z0-9], 1..20), values strings (in
 *   structured mode also integers and booleans, kept as their JSON text), at most
 *   FL_CE_MAX_EXTENSIONS of them. `traceparent` is one of them, with a getter.
 * - Size: the value is capped by opts->max_value_bytes before anything is parsed, which
 *   also bounds jansson's nesting depth.
 *
 * Thread-safety: every function is reentrant; a decoded event belongs to one thread at a
 * time (it may move between threads). */
#ifndef FL_ENGINE_CLOUDEVENT_H
#define FL_ENGINE_CLOUDEVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "engine/machine.h"

#define FL_CE_MAX_ID             256
#define FL_CE_MAX_SOURCE         1024
#define FL_CE_MAX_TYPE           256
#define FL_CE_MAX_SUBJECT        512
#define FL_CE_MAX_TENANT         64
#define FL_CE_MAX_ATTRIBUTE      1024 /* every other attribute and extension value */
#define FL_CE_MAX_EXTENSIONS     16
#define FL_CE_MAX_EXTENSION_NAME 20
#define FL_CE_DEFAULT_MAX_VALUE  (1024 * 1024)

/* Why an event is a dead letter: name (stable, stored in dead_letters.reason) and text. */
#define FL_CE_REASON_LIST(X)                                                                 \
    X(FL_CE_OK, "ok", "the event is valid")                                                  \
    X(FL_CE_TOO_LARGE, "too_large", "the record value is over the size cap")                 \
    X(FL_CE_BAD_CONTENT_TYPE, "bad_content_type", "the content type cannot be consumed")     \
    X(FL_CE_NOT_JSON, "not_json", "the structured-mode envelope is not a JSON object")       \
    X(FL_CE_INVALID_DATA_JSON, "invalid_data_json",                                          \
      "the data is declared JSON but does not parse")                                        \
    X(FL_CE_INVALID_DATA_BASE64, "invalid_data_base64", "data_base64 is not valid base64")   \
    X(FL_CE_MISSING_ATTRIBUTE, "missing_attribute", "a required attribute is missing")       \
    X(FL_CE_BAD_ATTRIBUTE, "bad_attribute",                                                  \
      "an attribute is not a non-empty UTF-8 string without NUL bytes")                      \
    X(FL_CE_DUPLICATE_ATTRIBUTE, "duplicate_attribute", "an attribute is given twice")       \
    X(FL_CE_ATTRIBUTE_TOO_LONG, "attribute_too_long", "an attribute is over its length cap") \
    X(FL_CE_TOO_MANY_EXTENSIONS, "too_many_extensions", "the event has too many extensions") \
    X(FL_CE_BAD_SPECVERSION, "bad_specversion", "specversion must be \"1.0\"")               \
    X(FL_CE_BAD_TIME, "bad_time", "time must be an RFC 3339 timestamp")                      \
    X(FL_CE_BAD_TENANT, "bad_tenant", "tenant must be 1-64 characters of [A-Za-z0-9._-]")    \
    X(FL_CE_NO_SUBJECT, "no_subject", "events that address workflows must carry a subject")  \
    X(FL_CE_NO_KEY, "no_key", "the record has no key")                                       \
    X(FL_CE_KEY_SUBJECT_MISMATCH, "key_subject_mismatch", "the Kafka key differs from the subject")

typedef enum fl_ce_reason {
#define X(code, name, text) code,
    FL_CE_REASON_LIST(X)
#undef X
} fl_ce_reason;

const char *fl_ce_reason_name(fl_ce_reason r); /* "missing_attribute"; "?" when unknown */
const char *fl_ce_reason_text(fl_ce_reason r);

/* One Kafka header; the same layout as core/kafka.h's fl_kafka_header, so an array of
 * either can be handed over field by field. A NULL value is a header without a value. */
typedef struct fl_ce_header {
    const char *name;
    const void *value;
    size_t len;
} fl_ce_header;

/* A consumed record, as plain data. Every pointer is borrowed for the call. key and value
 * are bytes; NULL = absent (a NULL key is "no key", a non-NULL empty key is a key). */
typedef struct fl_ce_record {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    const fl_ce_header *headers;
    size_t nheaders;
} fl_ce_record;

/* Decoding rules. A zero-initialized struct plus default_tenant gives the engine's rules. */
typedef struct fl_ce_opts {
    const char *default_tenant; /* required: the tenant of events without `tenant` */
    size_t max_value_bytes;     /* 0 = FL_CE_DEFAULT_MAX_VALUE */
    bool allow_no_subject;      /* consumers that do not address workflows */
    bool require_key;           /* a key-less record is then no_key */
    /* Optional, binary mode only: the record's value already parsed by the caller with
     * this decoder's rules (json_loadb, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES). When
     * the content type makes the data JSON, the event takes a reference to it instead of
     * parsing the value again. Borrowed for the call. */
    json_t *parsed_value;
    /* Optional, structured mode only: the envelope already parsed by the caller with this
     * decoder's rules (JSON_REJECT_DUPLICATES), used instead of the record's value (the
     * HTTP API parses its body once rather than serializing an envelope to parse it
     * again). Borrowed for the call; the event takes references into it. */
    json_t *parsed_envelope;
} fl_ce_opts;

typedef struct fl_ce_ext {
    char *name; /* without the ce_ prefix */
    char *value;
} fl_ce_ext;

/* A decoded event. It owns every string and `data`; all fields are read-only. */
typedef struct fl_cloudevent {
    char *id;
    char *source;
    char *type;
    char *specversion;  /* always "1.0" */
    char *subject;      /* NULL only with allow_no_subject */
    char *tenant;       /* never NULL: the attribute or the default */
    char *time;         /* NULL when absent */
    char *content_type; /* datacontenttype (binary mode: the content-type header), or NULL */
    json_t *data;       /* NULL = no data */
    bool data_base64;   /* data is a string holding the base64 of non-text bytes */
    bool tenant_defaulted;
    bool structured;
    fl_ce_ext exts[FL_CE_MAX_EXTENSIONS];
    size_t nexts;
} fl_cloudevent;

/* Decodes and validates one record.
 * On FL_OK *out is owned by the caller (fl_cloudevent_free) and *reason is FL_CE_OK.
 * On a dead letter *out is NULL, *reason says why and err->msg gives the detail (e.g.
 * "missing attribute \"source\"").
 * Errors: FL_ETOOBIG (too_large), FL_EINVAL (every other reason). */
fl_rc fl_cloudevent_decode(fl_cloudevent **out, const fl_ce_record *rec, const fl_ce_opts *opts,
                           fl_ce_reason *reason, fl_err *err);

void fl_cloudevent_free(fl_cloudevent *ce); /* NULL-safe */

/* The machine's view of ce: every pointer is borrowed from ce (valid until it is freed). */
fl_event fl_cloudevent_event(const fl_cloudevent *ce);

/* The value of extension `name` (without ce_), or NULL. Borrowed from ce. */
const char *fl_cloudevent_extension(const fl_cloudevent *ce, const char *name);

/* The W3C trace context of the event, or NULL. Borrowed from ce. */
const char *fl_cloudevent_traceparent(const fl_cloudevent *ce);

/* ---- encoding (binary mode, for the outbox relay and DLQ replay) -------------------- */

/* Extra attributes to send, e.g. {"traceparent", "00-..."}. Borrowed. */
typedef struct fl_ce_attr {
    const char *name; /* without ce_ */
    const char *value;
} fl_ce_attr;

/* A record ready to produce. headers/key/value point into storage owned by the struct,
 * except a value given to fl_cloudevent_encode_text, which stays the caller's. */
typedef struct fl_ce_encoded {
    fl_ce_header headers[7 + FL_CE_MAX_EXTENSIONS];
    size_t nheaders;
    const char *key; /* the subject, or NULL */
    size_t key_len;
    const char *value; /* JSON of data (compact unless given); NULL (no value) without data */
    size_t value_len;
    char *owned[2 * (7 + FL_CE_MAX_EXTENSIONS)]; /* private: what _deinit frees */
    size_t nowned;
} fl_ce_encoded;

/* Encodes ev in binary mode: ce_specversion "1.0", ce_id, ce_source, ce_type,
 * ce_subject, ce_time, ce_tenant (present ones, in that order), then one ce_<name> per
 * extra attribute, then `content-type: application/json` when ev->data is non-NULL.
 * The result decodes back to the same event and extras (fl_cloudevent_decode).
 * Ownership: out is initialized here and must be released with fl_ce_encoded_deinit,
 * also after a failure. Errors: FL_EINVAL (the event would not decode: a missing or
 * over-long attribute, a bad time, tenant or extension name, a duplicate extension). */
fl_rc fl_cloudevent_encode(const fl_event *ev, const fl_ce_attr *extra, size_t nextra,
                           fl_ce_encoded *out, fl_err *err);

/* As fl_cloudevent_encode, with the value given as JSON text: data_text[0..data_len)
 * must be a JSON text of ev->data (e.g. the bytes ev->data was parsed from), and becomes
 * the value as it is rather than being serialized again -- the HTTP API forwards a
 * binary-mode body byte for byte. Ownership: out->value then borrows data_text, which
 * must outlive out. data_text NULL = serialize ev->data (fl_cloudevent_encode). */
fl_rc fl_cloudevent_encode_text(const fl_event *ev, const fl_ce_attr *extra, size_t nextra,
                                const char *data_text, size_t data_len, fl_ce_encoded *out,
                                fl_err *err);

void fl_ce_encoded_deinit(fl_ce_encoded *enc); /* NULL-safe; leaves *enc empty */

/* ---- dead letters ------------------------------------------------------------------- */

/* The description of a dead letter, for the dead_letters row and the DLQ topic:
 *   {"reason": name, "text": text, "detail": detail, "topic", "partition", "offset",
 *    "key" (absent when the record has none), "headers": [{"name", "value"}, ...]}
 * Byte strings (topic, key, header names and values) appear as text when they are UTF-8
 * without NUL, else as "<field>_base64"; a header without a value has no "value". The
 * record's value is not included: it travels as the DLQ record's value and the row's
 * bytea. Ownership: new reference. `detail` may be NULL (then ""). */
json_t *fl_cloudevent_dead_letter_json(fl_ce_reason reason, const char *detail,
                                       const fl_ce_record *rec);

/* ---- text checks shared with the HTTP binding (api/) -------------------------------- */

/* True when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
bool fl_ce_utf8_valid(const char *s, size_t n);

/* True when s is an RFC 3339 date-time ("2026-01-05T10:00:00.123Z", offsets allowed). */
bool fl_ce_time_valid(const char *s);

/* True when s is a valid tenant id (see above). */
bool fl_ce_tenant_valid(const char *s);

/* Standard base64 (RFC 4648, padded). Ownership: the result is owned by the caller
 * (free()); decode returns NULL when s is not canonical padded base64. */
char *fl_ce_base64_encode(const void *data, size_t n);
unsigned char *fl_ce_base64_decode(const char *s, size_t n, size_t *out_len);

#endif
