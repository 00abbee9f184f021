/* tests/unit/test_cloudevent.c -- CloudEvents on Kafka: both modes, every dead-letter
 * reason, the caps, encoding round trips and the dead-letter description. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "engine/cloudevent.h"

/* A header from a string literal: HS in static tables, H in expressions. */
#define HS(n, v) {.name = (n), .value = (v), .len = sizeof(v) - 1}
#define H(n, v)  ((fl_ce_header)HS(n, v))

/* The good binary-mode headers, the key and value that go with them. */
static const fl_ce_header good[] = {
    HS("ce_specversion", "1.0"), HS("ce_id", "ev-1"),
    HS("ce_source", "/orders"),  HS("ce_type", "order.created"),
    HS("ce_subject", "order-1"), HS("ce_time", "2026-01-05T10:00:00.123Z"),
    HS("ce_tenant", "acme"),     HS("content-type", "application/json"),
};
#define NGOOD       (sizeof(good) / sizeof(good[0]))
#define GOOD_KEY    "order-1"
#define GOOD_VALUE  "{\"amount\":3}"
#define STRUCTURED  "application/cloudevents+json"
#define ENV_PREFIX  "{\"specversion\":\"1.0\",\"id\":\"ev-2\",\"source\":\"/s\",\"type\":\"t\","
#define ENV_SUBJECT "\"subject\":\"order-1\""

static const fl_ce_opts opts = {.default_tenant = "default"};

/* A test's record: the good headers with one replaced (or dropped when value is NULL). */
typedef struct rec {
    fl_ce_header h[NGOOD + 4];
    fl_ce_record r;
} rec;

static void rec_good(rec *t)
{
    memcpy(t->h, good, sizeof(good));
    t->r = (fl_ce_record){.topic = "order.events",
                          .partition = 3,
                          .offset = 42,
                          .key = GOOD_KEY,
                          .key_len = strlen(GOOD_KEY),
                          .value = GOOD_VALUE,
                          .value_len = strlen(GOOD_VALUE),
                          .headers = t->h,
                          .nheaders = NGOOD};
}

/* Replaces header `name` by (name, value, len), or removes it when value is NULL. */
static void rec_set(rec *t, const char *name, const char *value, size_t len)
{
    for (size_t i = 0; i < t->r.nheaders; i++) {
        if (strcmp(t->h[i].name, name) == 0) {
            t->h[i] = t->h[--t->r.nheaders];
            break;
        }
    }
    if (value != NULL) {
        t->h[t->r.nheaders++] = (fl_ce_header){.name = name, .value = value, .len = len};
    }
}

static void rec_str(rec *t, const char *name, const char *value)
{
    rec_set(t, name, value, value ? strlen(value) : 0);
}

/* A structured-mode record with the envelope `env`. */
static void rec_structured(rec *t, const char *env)
{
    t->h[0] = H("content-type", STRUCTURED);
    t->r = (fl_ce_record){.topic = "flowd.events",
                          .key = GOOD_KEY,
                          .key_len = strlen(GOOD_KEY),
                          .value = env,
                          .value_len = strlen(env),
                          .headers = t->h,
                          .nheaders = 1};
}

/* Decodes and expects `want`; returns the event (NULL unless FL_CE_OK). */
static fl_cloudevent *expect(const fl_ce_record *r, const fl_ce_opts *o, fl_ce_reason want,
                             const char *detail)
{
    fl_cloudevent *ce = NULL;
    fl_ce_reason reason = FL_CE_OK;
    fl_err err = FL_ERR_INIT;
    fl_rc rc = fl_cloudevent_decode(&ce, r, o, &reason, &err);

    if (reason != want) {
        fail_msg("reason %s (%s), want %s", fl_ce_reason_name(reason), err.msg,
                 fl_ce_reason_name(want));
    }
    assert_int_equal(rc, want == FL_CE_OK          ? FL_OK
                         : want == FL_CE_TOO_LARGE ? FL_ETOOBIG
                                                   : FL_EINVAL);
    if (detail != NULL && strstr(err.msg, detail) == NULL) {
        fail_msg("detail \"%s\" lacks \"%s\"", err.msg, detail);
    }
    assert_true(want == FL_CE_OK ? ce != NULL : ce == NULL);
    return ce;
}

static void expect_reason(rec *t, fl_ce_reason want, const char *detail)
{
    fl_cloudevent_free(expect(&t->r, &opts, want, detail));
}

static void test_cloudevent_binary_happy_path(void **state)
{
    rec t;
    fl_cloudevent *ce;
    fl_event ev;

    (void)state;
    rec_good(&t);
    ce = expect(&t.r, &opts, FL_CE_OK, NULL);
    ev = fl_cloudevent_event(ce);
    assert_string_equal(ev.id, "ev-1");
    assert_string_equal(ev.source, "/orders");
    assert_string_equal(ev.type, "order.created");
    assert_string_equal(ev.subject, "order-1");
    assert_string_equal(ev.tenant, "acme");
    assert_string_equal(ev.time, "2026-01-05T10:00:00.123Z");
    assert_int_equal(json_integer_value(json_object_get(ev.data, "amount")), 3);
    assert_string_equal(ce->content_type, "application/json");
    assert_false(ce->structured);
    assert_false(ce->tenant_defaulted);
    assert_int_equal(ce->nexts, 0);
    fl_cloudevent_free(ce);
}

static void test_cloudevent_structured_happy_path(void **state)
{
    rec t;
    fl_cloudevent *ce;

    (void)state;
    rec_structured(&t,
                   ENV_PREFIX ENV_SUBJECT ",\"tenant\":\"acme\",\"time\":\"2026-01-05T10:00:00Z\","
                                          "\"datacontenttype\":\"application/json\","
                                          "\"data\":{\"a\":[1,2]}}");
    ce = expect(&t.r, &opts, FL_CE_OK, NULL);
    assert_true(ce->structured);
    assert_string_equal(ce->id, "ev-2");
    assert_string_equal(ce->tenant, "acme");
    assert_string_equal(ce->content_type, "application/json");
    assert_int_equal(json_array_size(json_object_get(ce->data, "a")), 2);
    fl_cloudevent_free(ce);
}

static void test_cloudevent_structured_data_base64_json(void **state)
{
    rec t;
    fl_cloudevent *ce;

    (void)state;
    /* eyJrIjoidiJ9 = {"k":"v"}; no datacontenttype means JSON */
    rec_structured(&t, ENV_PREFIX ENV_SUBJECT ",\"data_base64\":\"eyJrIjoidiJ9\"}");
    ce = expect(&t.r, &opts, FL_CE_OK, NULL);
    assert_string_equal(json_string_value(json_object_get(ce->data, "k")), "v");
    assert_false(ce->data_base64);
    fl_cloudevent_free(ce);
}

static void test_cloudevent_structured_data_base64_binary_stays_base64(void **state)
{
    rec t;
    fl_cloudevent *ce;

    (void)state;
    rec_structured(&t, ENV_PREFIX ENV_SUBJECT ",\"datacontenttype\":\"application/octet-stream\","
                                              "\"data_base64\":\"AP8=\"}");
    ce = expect(&t.r, &opts, FL_CE_OK, NULL);
    assert_string_equal(json_string_value(ce->data), "AP8=");
    assert_true(ce->data_base64);
    fl_cloudevent_free(ce);
}

static void test_cloudevent_invalid_data_base64(void **state)
{
    rec t;

    (void)state;
    rec_structured(&t, ENV_PREFIX ENV_SUBJECT ",\"data_base64\":\"AP8\"}");
    expect_reason(&t, FL_CE_INVALID_DATA_BASE64, "data_base64");
    rec_structured(&t, ENV_PREFIX ENV_SUBJECT ",\"data_base64\":\"AP9=\"}"); /* not canonical */
    expect_reason(&t, FL_CE_INVALID_DATA_BASE64, NULL);
}

static void test_cloudevent_structured_data_and_base64_are_exclusive(void **state)
{
    rec t;

    (void)state;
    rec_structured(&t, ENV_PREFIX ENV_SUBJECT ",\"data\":1,\"data_base64\":\"AA==\"}");
    expect_reason(&t, FL_CE_BAD_ATTRIBUTE, "data and data_base64");
}

static void test_cloudevent_structured_extensions_integer_and_boolean(void **state)
{
    rec t;
    fl_cloudevent *ce;

    (void)state;
    rec_structured(&t, ENV_PREFIX ENV_SUBJECT ",\"retries\":3,\"urgent\":true,\"gone\":null}");
    ce = expect(&t.r, &opts, FL_CE_OK, NULL);
    assert_int_equal(ce->nexts, 2);
    assert_string_equal(fl_cloudevent_extension(ce, "retries"), "3");
    assert_string_equal(fl_cloudevent_extension(ce, "urgent"), "true");
    assert_null(fl_cloudevent_extension(ce, "gone"));
    fl_cloudevent_free(ce);
    rec_structured(&t, ENV_PREFIX ENV_SUBJECT ",\"nested\":{\"x\":1}}");
    expect_reason(&t, FL_CE_BAD_ATTRIBUTE, "\"nested\" is not a string");
}

static void test_cloudevent_default_tenant(void **state)
{
    rec t;
    fl_cloudevent *ce;

    (void)state;
    rec_good(&t);
    rec_str(&t, "ce_tenant", NULL);
    ce = expect(&t.r, &opts, FL_CE_OK, NULL);
    assert_string_equal(ce->tenant, "default");
    assert_true(ce->tenant_defaulted);
    fl_cloudevent_free(ce);
}

static void test_cloudevent_bad_tenant(void **state)
{
    static const char *const bad[] = {"-acme", "ac me", "acme/x", "ä",
                                      "a23456789012345678901234567890123456789012345678901234567890"
                                      "12345"};
    rec t;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rec_good(&t);
        rec_str(&t, "ce_tenant", bad[i]);
        expect_reason(&t, i == 4 ? FL_CE_ATTRIBUTE_TOO_LONG : FL_CE_BAD_TENANT, NULL);
    }
}

static void test_cloudevent_missing_attribute_names_it(void **state)
{
    static const char *const names[] = {"ce_specversion", "ce_id", "ce_source", "ce_type"};
    char want[64];
    rec t;

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        rec_good(&t);
        rec_str(&t, names[i], NULL);
        snprintf(want, sizeof(want), "missing attribute \"%s\"", names[i] + 3);
        expect_reason(&t, FL_CE_MISSING_ATTRIBUTE, want);
    }
    rec_structured(&t, "{\"specversion\":\"1.0\",\"id\":\"x\",\"type\":\"t\"}");
    expect_reason(&t, FL_CE_MISSING_ATTRIBUTE, "\"source\"");
}

static void test_cloudevent_bad_specversion(void **state)
{
    rec t;

    (void)state;
    rec_good(&t);
    rec_str(&t, "ce_specversion", "0.3");
    expect_reason(&t, FL_CE_BAD_SPECVERSION, "\"0.3\"");
}

static void test_cloudevent_no_subject(void **state)
{
    fl_ce_opts lax = {.default_tenant = "default", .allow_no_subject = true};
    fl_cloudevent *ce;
    rec t;

    (void)state;
    rec_good(&t);
    rec_str(&t, "ce_subject", NULL);
    t.r.key = NULL;
    expect_reason(&t, FL_CE_NO_SUBJECT, NULL);
    ce = expect(&t.r, &lax, FL_CE_OK, NULL);
    assert_null(ce->subject);
    fl_cloudevent_free(ce);
}

static void test_cloudevent_key_subject_mismatch(void **state)
{
    rec t;

    (void)state;
    rec_good(&t);
    t.r.key = "order-2";
    expect_reason(&t, FL_CE_KEY_SUBJECT_MISMATCH, "order-1");
    t.r.key_len = 0; /* an empty key is a key, and differs */
    expect_reason(&t, FL_CE_KEY_SUBJECT_MISMATCH, NULL);
    t.r.key = "order-1x";
    t.r.key_len = 7; /* a prefix of the key buffer: the same bytes */
    expect_reason(&t, FL_CE_OK, NULL);
}

static void test_cloudevent_missing_key_is_accepted_unless_required(void **state)
{
    fl_ce_opts strict = {.default_tenant = "default", .require_key = true};
    rec t;

    (void)state;
    rec_good(&t);
    t.r.key = NULL;
    t.r.key_len = 0;
    expect_reason(&t, FL_CE_OK, NULL);
    fl_cloudevent_free(expect(&t.r, &strict, FL_CE_NO_KEY, NULL));
}

static void test_cloudevent_too_large(void **state)
{
    fl_ce_opts small = {.default_tenant = "default", .max_value_bytes = 11};
    rec t;

    (void)state;
    rec_good(&t); /* the value is 12 bytes */
    fl_cloudevent_free(expect(&t.r, &small, FL_CE_TOO_LARGE, "12 bytes, over 11"));
    small.max_value_bytes = 12;
    fl_cloudevent_free(expect(&t.r, &small, FL_CE_OK, NULL));
}

static void test_cloudevent_bad_time(void **state)
{
    static const char *const bad[] = {"2026-01-05",
                                      "2026-13-01T00:00:00Z",
                                      "2026-02-29T00:00:00Z",
                                      "2026-01-05T10:00:00",
                                      "2026-01-05T24:00:00Z",
                                      "2026-01-05T10:00:00.Z",
                                      "2026-01-05T10:00:00+1:00"};
    static const char *const good_times[] = {"2024-02-29T00:00:00Z", "2026-01-05t10:00:00.5z",
                                             "2026-01-05T10:00:60-05:30"};
    rec t;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rec_good(&t);
        rec_str(&t, "ce_time", bad[i]);
        expect_reason(&t, FL_CE_BAD_TIME, bad[i]);
    }
    for (size_t i = 0; i < sizeof(good_times) / sizeof(good_times[0]); i++) {
        rec_good(&t);
        rec_str(&t, "ce_time", good_times[i]);
        expect_reason(&t, FL_CE_OK, NULL);
    }
}

static void test_cloudevent_not_json(void **state)
{
    rec t;

    (void)state;
    rec_structured(&t, "{\"id\":");
    expect_reason(&t, FL_CE_NOT_JSON, "envelope: 1:");
    rec_structured(&t, "[" ENV_PREFIX ENV_SUBJECT "}]");
    expect_reason(&t, FL_CE_NOT_JSON, "not an object");
    rec_structured(&t, ENV_PREFIX ENV_SUBJECT ",\"id\":\"again\"}");
    expect_reason(&t, FL_CE_NOT_JSON, "duplicate");
    rec_structured(&t, "");
    expect_reason(&t, FL_CE_NOT_JSON, NULL);
}

static void test_cloudevent_invalid_data_json(void **state)
{
    rec t;

    (void)state;
    rec_good(&t);
    t.r.value = "{\"amount\":";
    t.r.value_len = strlen(t.r.value);
    expect_reason(&t, FL_CE_INVALID_DATA_JSON, "data: 1:");
    t.r.value = "{\"a\":1,\"a\":2}";
    t.r.value_len = strlen(t.r.value);
    expect_reason(&t, FL_CE_INVALID_DATA_JSON, "duplicate");
    rec_str(&t, "content-type", "application/vnd.acme+json; charset=utf-8");
    expect_reason(&t, FL_CE_INVALID_DATA_JSON, NULL); /* +json is JSON too */
}

static void test_cloudevent_json_data_of_any_type(void **state)
{
    rec t;
    fl_cloudevent *ce;

    (void)state;
    rec_good(&t);
    rec_str(&t, "content-type", NULL); /* absent content type means JSON */
    t.r.value = "\"hello\"";
    t.r.value_len = strlen(t.r.value);
    ce = expect(&t.r, &opts, FL_CE_OK, NULL);
    assert_string_equal(json_string_value(ce->data), "hello");
    assert_null(ce->content_type);
    fl_cloudevent_free(ce);
}

static void test_cloudevent_text_data_is_a_string(void **state)
{
    static const char bytes[] = {'\x00', '\xff', 'a'};
    rec t;
    fl_cloudevent *ce;

    (void)state;
    rec_good(&t);
    rec_str(&t, "content-type", "Text/Plain; charset=utf-8");
    t.r.value = "not { json";
    t.r.value_len = strlen(t.r.value);
    ce = expect(&t.r, &opts, FL_CE_OK, NULL);
    assert_string_equal(json_string_value(ce->data), "not { json");
    assert_false(ce->data_base64);
    fl_cloudevent_free(ce);
    t.r.value = bytes;
    t.r.value_len = sizeof(bytes);
    ce = expect(&t.r, &opts, FL_CE_OK, NULL);
    assert_string_equal(json_string_value(ce->data), "AP9h");
    assert_true(ce->data_base64);
    fl_cloudevent_free(ce);
}

static void test_cloudevent_empty_value_is_no_data(void **state)
{
    rec t;
    fl_cloudevent *ce;

    (void)state;
    rec_good(&t);
    t.r.value = NULL;
    t.r.value_len = 0;
    ce = expect(&t.r, &opts, FL_CE_OK, NULL);
    assert_null(ce->data);
    fl_cloudevent_free(ce);
    t.r.value = "";
    ce = expect(&t.r, &opts, FL_CE_OK, NULL);
    assert_null(fl_cloudevent_event(ce).data);
    fl_cloudevent_free(ce);
}

static void test_cloudevent_batch_content_type_is_refused(void **state)
{
    rec t;

    (void)state;
    rec_good(&t);
    rec_str(&t, "content-type", "application/cloudevents-batch+json");
    expect_reason(&t, FL_CE_BAD_CONTENT_TYPE, "batch");
}

static void test_cloudevent_attribute_caps(void **state)
{
    static const struct {
        const char *header;
        size_t cap;
    } caps[] = {{"ce_id", FL_CE_MAX_ID},
                {"ce_source", FL_CE_MAX_SOURCE},
                {"ce_type", FL_CE_MAX_TYPE},
                {"ce_subject", FL_CE_MAX_SUBJECT},
                {"ce_traceparent", FL_CE_MAX_ATTRIBUTE}};
    char *big = fl_xmalloc(FL_CE_MAX_ATTRIBUTE + 2);
    rec t;

    (void)state;
    memset(big, 'x', FL_CE_MAX_ATTRIBUTE + 1);
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        rec_good(&t);
        t.r.key = NULL; /* the subject changes */
        rec_set(&t, caps[i].header, big, caps[i].cap);
        expect_reason(&t, FL_CE_OK, NULL);
        rec_set(&t, caps[i].header, big, caps[i].cap + 1);
        expect_reason(&t, FL_CE_ATTRIBUTE_TOO_LONG, caps[i].header + 3);
    }
    free(big);
}

static void test_cloudevent_bad_header_text(void **state)
{
    rec t;

    (void)state;
    rec_good(&t);
    rec_set(&t, "ce_type", "bad\xc3\x28", 5); /* invalid UTF-8 */
    expect_reason(&t, FL_CE_BAD_ATTRIBUTE, "\"type\"");
    rec_set(&t, "ce_type", "a\0b", 3); /* a NUL byte */
    expect_reason(&t, FL_CE_BAD_ATTRIBUTE, "\"type\"");
    rec_set(&t, "ce_type", "", 0);
    expect_reason(&t, FL_CE_BAD_ATTRIBUTE, "\"type\"");
    rec_set(&t, "ce_type", "\xed\xa0\x80", 3); /* a UTF-16 surrogate */
    expect_reason(&t, FL_CE_BAD_ATTRIBUTE, NULL);
    rec_set(&t, "ce_type", NULL, 0);
    t.h[t.r.nheaders++] = (fl_ce_header){.name = "ce_type", .value = NULL, .len = 0};
    expect_reason(&t, FL_CE_BAD_ATTRIBUTE, "has no value");
}

static void test_cloudevent_duplicate_header(void **state)
{
    rec t;

    (void)state;
    rec_good(&t);
    t.h[t.r.nheaders++] = H("ce_id", "ev-1");
    expect_reason(&t, FL_CE_DUPLICATE_ATTRIBUTE, "\"id\"");
    rec_good(&t);
    t.h[t.r.nheaders++] = H("ce_datacontenttype", "application/json");
    expect_reason(&t, FL_CE_DUPLICATE_ATTRIBUTE, "datacontenttype");
}

static void test_cloudevent_extensions_are_kept(void **state)
{
    rec t;
    fl_cloudevent *ce;

    (void)state;
    rec_good(&t);
    t.h[t.r.nheaders++] =
        H("ce_traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    t.h[t.r.nheaders++] = H("x-other", "ignored");
    ce = expect(&t.r, &opts, FL_CE_OK, NULL);
    assert_int_equal(ce->nexts, 1);
    assert_string_equal(fl_cloudevent_traceparent(ce),
                        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    fl_cloudevent_free(ce);
    rec_good(&t);
    t.h[t.r.nheaders++] = H("ce_Bad_Name", "x");
    expect_reason(&t, FL_CE_BAD_ATTRIBUTE, "extension name");
}

static void test_cloudevent_too_many_extensions(void **state)
{
    fl_ce_header h[NGOOD + FL_CE_MAX_EXTENSIONS + 1];
    char names[FL_CE_MAX_EXTENSIONS + 1][16];
    fl_ce_record r;

    (void)state;
    memcpy(h, good, sizeof(good));
    for (int i = 0; i <= FL_CE_MAX_EXTENSIONS; i++) {
        snprintf(names[i], sizeof(names[i]), "ce_ext%d", i);
        h[NGOOD + (size_t)i] = H(names[i], "v");
    }
    r = (fl_ce_record){.headers = h, .nheaders = NGOOD + FL_CE_MAX_EXTENSIONS};
    fl_cloudevent_free(expect(&r, &opts, FL_CE_OK, NULL));
    r.nheaders++;
    fl_cloudevent_free(expect(&r, &opts, FL_CE_TOO_MANY_EXTENSIONS, NULL));
}

static void test_cloudevent_round_trip(void **state)
{
    json_t *data =
        json_pack("{s:s, s:[i, b, n], s:f}", "text", "héllo \"q\"", "list", 1, 1, "ratio", 0.5);
    fl_event ev = {.id = "timer:42",
                   .type = FL_EVENT_TIMER_FIRED,
                   .source = "flowd://engine",
                   .subject = "order-1",
                   .tenant = "acme",
                   .time = "2026-01-05T10:00:00.123Z",
                   .data = data};
    fl_ce_attr extra[] = {
        {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}};
    fl_ce_encoded enc;
    fl_err err = FL_ERR_INIT;
    fl_cloudevent *ce;
    fl_event back;

    (void)state;
    assert_int_equal(fl_cloudevent_encode(&ev, extra, 1, &enc, &err), FL_OK);
    assert_string_equal(enc.headers[0].name, "ce_specversion");
    assert_string_equal(enc.headers[enc.nheaders - 1].name, "content-type");
    ce = expect(&(fl_ce_record){.key = enc.key,
                                .key_len = enc.key_len,
                                .value = enc.value,
                                .value_len = enc.value_len,
                                .headers = enc.headers,
                                .nheaders = enc.nheaders},
                &opts, FL_CE_OK, NULL);
    back = fl_cloudevent_event(ce);
    assert_string_equal(back.id, ev.id);
    assert_string_equal(back.type, ev.type);
    assert_string_equal(back.source, ev.source);
    assert_string_equal(back.subject, ev.subject);
    assert_string_equal(back.tenant, ev.tenant);
    assert_string_equal(back.time, ev.time);
    assert_true(json_equal(back.data, data));
    assert_string_equal(fl_cloudevent_traceparent(ce), extra[0].value);
    assert_int_equal(ce->nexts, 1);
    fl_cloudevent_free(ce);
    fl_ce_encoded_deinit(&enc);
    json_decref(data);
}

/* A structured envelope the caller parsed already is decoded like its text would be. */
static void test_cloudevent_parsed_envelope(void **state)
{
    json_t *env = json_loads("{\"specversion\":\"1.0\",\"id\":\"e1\",\"source\":\"s\","
                             "\"type\":\"t\",\"subject\":\"k\",\"data\":{\"n\":[1]}}",
                             0, NULL);
    fl_ce_header h = {.name = "content-type", .value = STRUCTURED, .len = strlen(STRUCTURED)};
    fl_ce_opts o = {.default_tenant = "acme", .parsed_envelope = env};
    fl_cloudevent *ce;

    (void)state;
    ce = expect(&(fl_ce_record){.headers = &h, .nheaders = 1}, &o, FL_CE_OK, NULL);
    assert_string_equal(ce->id, "e1");
    assert_string_equal(ce->subject, "k");
    assert_true(ce->structured);
    assert_true(json_equal(ce->data, json_object_get(env, "data")));
    fl_cloudevent_free(ce);
    json_object_del(env, "source"); /* its rules are the decoder's */
    expect(&(fl_ce_record){.headers = &h, .nheaders = 1}, &o, FL_CE_MISSING_ATTRIBUTE, "source");
    json_decref(env);
}

/* The caller's JSON text goes out byte for byte (whitespace, escapes and all) and still
 * decodes to the event's data. */
static void test_cloudevent_encode_text_keeps_the_bytes(void **state)
{
    static const char text[] = "{ \"a\" : [1, 2.50],\n \"s\": \"caf\\u00e9\" }";
    json_t *data = json_loads(text, 0, NULL);
    fl_event ev = {
        .id = "e1", .type = "t", .source = "s", .subject = "k", .tenant = "acme", .data = data};
    fl_ce_encoded enc;
    fl_err err = FL_ERR_INIT;
    fl_cloudevent *ce;

    (void)state;
    assert_int_equal(fl_cloudevent_encode_text(&ev, NULL, 0, text, sizeof(text) - 1, &enc, &err),
                     FL_OK);
    assert_ptr_equal(enc.value, text); /* borrowed, not copied */
    assert_int_equal(enc.value_len, sizeof(text) - 1);
    assert_string_equal(enc.headers[enc.nheaders - 1].name, "content-type");
    assert_string_equal(enc.headers[enc.nheaders - 1].value, "application/json");
    ce = expect(&(fl_ce_record){.key = enc.key,
                                .key_len = enc.key_len,
                                .value = enc.value,
                                .value_len = enc.value_len,
                                .headers = enc.headers,
                                .nheaders = enc.nheaders},
                &opts, FL_CE_OK, NULL);
    assert_true(json_equal(ce->data, data));
    fl_cloudevent_free(ce);
    fl_ce_encoded_deinit(&enc);
    /* without text: the compact serialization, as fl_cloudevent_encode */
    assert_int_equal(fl_cloudevent_encode_text(&ev, NULL, 0, NULL, 0, &enc, &err), FL_OK);
    assert_string_equal(enc.value, "{\"a\":[1,2.5],\"s\":\"caf\xc3\xa9\"}");
    fl_ce_encoded_deinit(&enc);
    json_decref(data);
}

static void test_cloudevent_round_trip_without_optional_parts(void **state)
{
    fl_event ev = {.id = "e", .type = "t", .source = "s", .tenant = "default"};
    fl_ce_opts lax = {.default_tenant = "other", .allow_no_subject = true};
    fl_ce_encoded enc;
    fl_err err = FL_ERR_INIT;
    fl_cloudevent *ce;

    (void)state;
    assert_int_equal(fl_cloudevent_encode(&ev, NULL, 0, &enc, &err), FL_OK);
    assert_null(enc.key);
    assert_null(enc.value);
    ce = expect(&(fl_ce_record){.headers = enc.headers, .nheaders = enc.nheaders}, &lax, FL_CE_OK,
                NULL);
    assert_null(ce->subject);
    assert_null(ce->time);
    assert_null(ce->data);
    assert_string_equal(ce->tenant, "default");
    assert_false(ce->tenant_defaulted);
    fl_cloudevent_free(ce);
    fl_ce_encoded_deinit(&enc);
}

static void test_cloudevent_encode_refuses_what_decode_rejects(void **state)
{
    fl_event ok = {.id = "e", .type = "t", .source = "s", .subject = "k", .tenant = "acme"};
    fl_event ev;
    fl_ce_attr dup[] = {{"trace", "a"}, {"trace", "b"}};
    fl_ce_attr core[] = {{"subject", "x"}};
    fl_ce_attr bad[] = {{"Bad-Name", "x"}};
    fl_ce_encoded enc;
    fl_err err = FL_ERR_INIT;

    (void)state;
    ev = ok;
    ev.tenant = NULL;
    assert_int_equal(fl_cloudevent_encode(&ev, NULL, 0, &enc, &err), FL_EINVAL);
    fl_ce_encoded_deinit(&enc);
    ev = ok;
    ev.time = "yesterday";
    fl_err_clear(&err);
    assert_int_equal(fl_cloudevent_encode(&ev, NULL, 0, &enc, &err), FL_EINVAL);
    assert_non_null(strstr(err.msg, "RFC 3339"));
    fl_ce_encoded_deinit(&enc);
    ev = ok;
    ev.tenant = "no tenant";
    assert_int_equal(fl_cloudevent_encode(&ev, NULL, 0, &enc, &err), FL_EINVAL);
    fl_ce_encoded_deinit(&enc);
    assert_int_equal(fl_cloudevent_encode(&ok, dup, 2, &enc, &err), FL_EINVAL);
    fl_ce_encoded_deinit(&enc);
    assert_int_equal(fl_cloudevent_encode(&ok, core, 1, &enc, &err), FL_EINVAL);
    fl_ce_encoded_deinit(&enc);
    assert_int_equal(fl_cloudevent_encode(&ok, bad, 1, &enc, &err), FL_EINVAL);
    fl_ce_encoded_deinit(&enc);
}

static void test_cloudevent_dead_letter_json(void **state)
{
    fl_ce_header h[] = {HS("ce_id", "ev-1"),
                        {.name = "bin", .value = "\xff\x00", .len = 2},
                        {.name = "empty", .value = NULL, .len = 0}};
    fl_ce_record r = {.topic = "order.events",
                      .partition = 3,
                      .offset = 42,
                      .key = "k\xff",
                      .key_len = 2,
                      .headers = h,
                      .nheaders = 3};
    json_t *j = fl_cloudevent_dead_letter_json(FL_CE_NO_SUBJECT, "the event has no subject", &r);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

    (void)state;
    assert_string_equal(s, "{\"detail\":\"the event has no subject\",\"headers\":["
                           "{\"name\":\"ce_id\",\"value\":\"ev-1\"},"
                           "{\"name\":\"bin\",\"value_base64\":\"/wA=\"},{\"name\":\"empty\"}],"
                           "\"key_base64\":\"a/8=\",\"offset\":42,\"partition\":3,"
                           "\"reason\":\"no_subject\",\"text\":\"events that address workflows "
                           "must carry a subject\",\"topic\":\"order.events\"}");
    free(s);
    json_decref(j);
    /* a detail cut in the middle of a character keeps its valid prefix */
    j = fl_cloudevent_dead_letter_json(FL_CE_BAD_TENANT, "tenant \xc3", &r);
    assert_string_equal(json_string_value(json_object_get(j, "detail")), "tenant ");
    json_decref(j);
}

static void test_cloudevent_reason_table(void **state)
{
    (void)state;
    assert_string_equal(fl_ce_reason_name(FL_CE_KEY_SUBJECT_MISMATCH), "key_subject_mismatch");
    assert_string_equal(fl_ce_reason_text(FL_CE_BAD_SPECVERSION), "specversion must be \"1.0\"");
    assert_string_equal(fl_ce_reason_name((fl_ce_reason)999), "?");
}

static void test_cloudevent_base64(void **state)
{
    static const char *const bad[] = {"A", "AB=C", "A===", "AB?D", "AQ==AQ==", "AR=="};
    unsigned char *b;
    size_t n = 0;
    char *s;

    (void)state;
    for (size_t len = 0; len < 5; len++) {
        s = fl_ce_base64_encode("hello", len);
        b = fl_ce_base64_decode(s, strlen(s), &n);
        assert_non_null(b);
        assert_int_equal(n, len);
        assert_memory_equal(b, "hello", len);
        free(b);
        free(s);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_null(fl_ce_base64_decode(bad[i], strlen(bad[i]), &n));
    }
}

static void test_cloudevent_utf8(void **state)
{
    (void)state;
    assert_true(fl_ce_utf8_valid("h\xc3\xa9 \xf0\x9f\x98\x80", 9));
    assert_false(fl_ce_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    assert_false(fl_ce_utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
    assert_false(fl_ce_utf8_valid("\xe2\x82", 2));         /* cut short */
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cloudevent_binary_happy_path),
        cmocka_unit_test(test_cloudevent_structured_happy_path),
        cmocka_unit_test(test_cloudevent_structured_data_base64_json),
        cmocka_unit_test(test_cloudevent_structured_data_base64_binary_stays_base64),
        cmocka_unit_test(test_cloudevent_invalid_data_base64),
        cmocka_unit_test(test_cloudevent_structured_data_and_base64_are_exclusive),
        cmocka_unit_test(test_cloudevent_structured_extensions_integer_and_boolean),
        cmocka_unit_test(test_cloudevent_default_tenant),
        cmocka_unit_test(test_cloudevent_bad_tenant),
        cmocka_unit_test(test_cloudevent_missing_attribute_names_it),
        cmocka_unit_test(test_cloudevent_bad_specversion),
        cmocka_unit_test(test_cloudevent_no_subject),
        cmocka_unit_test(test_cloudevent_key_subject_mismatch),
        cmocka_unit_test(test_cloudevent_missing_key_is_accepted_unless_required),
        cmocka_unit_test(test_cloudevent_too_large),
        cmocka_unit_test(test_cloudevent_bad_time),
        cmocka_unit_test(test_cloudevent_not_json),
        cmocka_unit_test(test_cloudevent_invalid_data_json),
        cmocka_unit_test(test_cloudevent_json_data_of_any_type),
        cmocka_unit_test(test_cloudevent_text_data_is_a_string),
        cmocka_unit_test(test_cloudevent_empty_value_is_no_data),
        cmocka_unit_test(test_cloudevent_batch_content_type_is_refused),
        cmocka_unit_test(test_cloudevent_attribute_caps),
        cmocka_unit_test(test_cloudevent_bad_header_text),
        cmocka_unit_test(test_cloudevent_duplicate_header),
        cmocka_unit_test(test_cloudevent_extensions_are_kept),
        cmocka_unit_test(test_cloudevent_too_many_extensions),
        cmocka_unit_test(test_cloudevent_round_trip),
        cmocka_unit_test(test_cloudevent_encode_text_keeps_the_bytes),
        cmocka_unit_test(test_cloudevent_parsed_envelope),
        cmocka_unit_test(test_cloudevent_round_trip_without_optional_parts),
        cmocka_unit_test(test_cloudevent_encode_refuses_what_decode_rejects),
        cmocka_unit_test(test_cloudevent_dead_letter_json),
        cmocka_unit_test(test_cloudevent_reason_table),
        cmocka_unit_test(test_cloudevent_base64),
        cmocka_unit_test(test_cloudevent_utf8),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
