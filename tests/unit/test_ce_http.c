/* tests/unit/test_ce_http.c -- the CloudEvents HTTP binding: mode detection, binary,
 * structured and batch mode, the caller's tenant, and every error with its pointer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/ce_http.h"
#include "core/log.h"

#define BATCH      "application/cloudevents-batch+json"
#define STRUCTURED "application/cloudevents+json"
#define ENV(extra) \
    "{\"specversion\":\"1.0\",\"id\":\"e1\",\"source\":\"/s\",\"type\":\"order.created\"" extra "}"

static const fl_ce_http_opts opts = {.tenant = "acme", .max_depth = 8};

static const fl_ce_http_header bin_good[] = {
    {"Host", "x"},
    {"CE-SpecVersion", "1.0"},
    {"ce-id", "b1"},
    {"Ce-Source", "/orders"},
    {"ce-type", "order.created"},
    {"ce-subject", "order-1"},
    {"ce-tenant", "evil"},
    {"ce-traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
};
#define NBIN (sizeof(bin_good) / sizeof(bin_good[0]))

typedef struct result {
    fl_rc rc;
    fl_ce_http_events ev;
    json_t *errors;
    fl_err err;
} result;

static result run(const char *ct, const fl_ce_http_header *h, size_t nh, const char *body)
{
    fl_ce_http_request req = {.content_type = ct,
                              .headers = h,
                              .nheaders = nh,
                              .body = body,
                              .body_len = body ? strlen(body) : 0};
    result r = {.err = FL_ERR_INIT};

    r.rc = fl_ce_http_decode(&req, &opts, &r.ev, &r.errors, &r.err);
    assert_int_equal(r.rc == FL_OK, r.errors == NULL);
    return r;
}

static void done(result *r)
{
    fl_ce_http_events_free(&r->ev);
    json_decref(r->errors);
}

/* Asserts error i has this pointer and its detail contains `part`. */
static void assert_error(const result *r, size_t i, const char *pointer, const char *part)
{
    json_t *e = json_array_get(r->errors, i);

    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "pointer")), pointer);
    if (strstr(json_string_value(json_object_get(e, "detail")), part) == NULL) {
        fail_msg("detail \"%s\" lacks \"%s\"", json_string_value(json_object_get(e, "detail")),
                 part);
    }
}

static void test_ce_http_mode_detection(void **state)
{
    fl_ce_http_header ce = {"CE-ID", "x"};
    fl_ce_http_request req = {.content_type = " Application/CloudEvents+JSON; charset=utf-8"};

    (void)state;
    assert_int_equal(fl_ce_http_mode_of(&req), FL_CE_HTTP_STRUCTURED);
    req.content_type = "application/cloudevents-batch+json";
    assert_int_equal(fl_ce_http_mode_of(&req), FL_CE_HTTP_BATCH);
    req.content_type = "application/cloudevents+xml";
    req.headers = &ce;
    req.nheaders = 1;
    assert_int_equal(fl_ce_http_mode_of(&req), FL_CE_HTTP_UNSUPPORTED);
    req.content_type = "application/json";
    assert_int_equal(fl_ce_http_mode_of(&req), FL_CE_HTTP_BINARY);
    req.nheaders = 0;
    assert_int_equal(fl_ce_http_mode_of(&req), FL_CE_HTTP_UNSUPPORTED);
    req.content_type = NULL;
    assert_int_equal(fl_ce_http_mode_of(&req), FL_CE_HTTP_UNSUPPORTED);
}

static void test_ce_http_binary_happy_path(void **state)
{
    result r = run("application/json", bin_good, NBIN, "{\"amount\": 3}");
    fl_cloudevent *e;

    (void)state;
    assert_int_equal(r.rc, FL_OK);
    assert_int_equal(r.ev.mode, FL_CE_HTTP_BINARY);
    assert_int_equal(r.ev.n, 1);
    e = r.ev.events[0];
    assert_string_equal(e->id, "b1");
    assert_string_equal(e->source, "/orders");
    assert_string_equal(e->type, "order.created");
    assert_string_equal(e->subject, "order-1");
    assert_string_equal(e->tenant, "acme"); /* never the client's "evil" */
    assert_int_equal(json_integer_value(json_object_get(e->data, "amount")), 3);
    assert_string_equal(fl_cloudevent_traceparent(e),
                        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    /* the body is the JSON text of the data: it is produced as it came */
    assert_int_equal(r.ev.data_text_len, strlen("{\"amount\": 3}"));
    assert_memory_equal(r.ev.data_text, "{\"amount\": 3}", r.ev.data_text_len);
    done(&r);
}

static void test_ce_http_binary_percent_decodes_values(void **state)
{
    fl_ce_http_header h[NBIN];
    result r;

    (void)state;
    memcpy(h, bin_good, sizeof(h));
    h[5].value = "caf%C3%A9%20order";
    r = run(NULL, h, NBIN, NULL);
    assert_int_equal(r.rc, FL_OK);
    assert_string_equal(r.ev.events[0]->subject, "caf\xc3\xa9 order");
    assert_null(r.ev.events[0]->data); /* an empty body is no data */
    done(&r);
    h[5].value = "bad%2";
    r = run(NULL, h, NBIN, NULL);
    assert_int_equal(r.rc, FL_EINVAL);
    assert_error(&r, 0, "/subject", "percent-encoded");
    done(&r);
}

static void test_ce_http_binary_text_data(void **state)
{
    result r = run("text/plain; charset=utf-8", bin_good, NBIN, "hello {");

    (void)state;
    assert_int_equal(r.rc, FL_OK);
    assert_string_equal(json_string_value(r.ev.events[0]->data), "hello {");
    assert_string_equal(r.ev.events[0]->content_type, "text/plain; charset=utf-8");
    assert_null(r.ev.data_text); /* the data is a JSON string, not the body's text */
    done(&r);
}

static void test_ce_http_binary_missing_attributes_each_named(void **state)
{
    result r = run("application/json", bin_good + 3, NBIN - 3, "{}"); /* no specversion, id */

    (void)state;
    assert_int_equal(r.rc, FL_EINVAL);
    assert_int_equal(json_array_size(r.errors), 2);
    assert_error(&r, 0, "/specversion", "missing required attribute \"specversion\"");
    assert_error(&r, 1, "/id", "ce-id");
    assert_non_null(strstr(r.err.msg, "2 problems"));
    done(&r);
}

static void test_ce_http_binary_bad_json_data(void **state)
{
    result r = run("application/json", bin_good, NBIN, "{\"a\":1,\"a\":2}");

    (void)state;
    assert_int_equal(r.rc, FL_EINVAL);
    assert_error(&r, 0, "", "duplicate");
    done(&r);
    r = run(NULL, bin_good, NBIN, "[[[[[[[[[[1]]]]]]]]]]");
    assert_int_equal(r.rc, FL_EINVAL);
    assert_error(&r, 0, "/0/0/0/0/0/0/0/0", "deeper");
    done(&r);
}

static void test_ce_http_binary_engine_rules_apply(void **state)
{
    fl_ce_http_header h[NBIN + 1];
    result r;

    (void)state;
    memcpy(h, bin_good, sizeof(bin_good));
    h[1].value = "0.3";
    r = run(NULL, h, NBIN, NULL);
    assert_int_equal(r.rc, FL_EINVAL);
    assert_error(&r, 0, "/specversion", "not \"1.0\"");
    done(&r);
    memcpy(h, bin_good, sizeof(bin_good));
    h[NBIN] = (fl_ce_http_header){"ce-time", "yesterday"};
    r = run(NULL, h, NBIN + 1, NULL);
    assert_error(&r, 0, "/time", "RFC 3339");
    done(&r);
    h[NBIN] = (fl_ce_http_header){"CE-ID", "again"};
    r = run(NULL, h, NBIN + 1, NULL);
    assert_error(&r, 0, "/id", "given twice");
    done(&r);
    h[NBIN] = (fl_ce_http_header){"ce-Bad-Name", "x"};
    r = run(NULL, h, NBIN + 1, NULL);
    assert_int_equal(r.rc, FL_EINVAL);
    done(&r);
}

static void test_ce_http_structured_happy_path(void **state)
{
    result r = run(STRUCTURED "; charset=utf-8", NULL, 0,
                   ENV(",\"subject\":\"o-1\",\"tenant\":\"evil\",\"data\":{\"k\":[1]},"
                       "\"priority\":5"));
    fl_cloudevent *e;

    (void)state;
    assert_int_equal(r.rc, FL_OK);
    assert_int_equal(r.ev.mode, FL_CE_HTTP_STRUCTURED);
    assert_int_equal(r.ev.n, 1);
    e = r.ev.events[0];
    assert_string_equal(e->id, "e1");
    assert_string_equal(e->subject, "o-1");
    assert_string_equal(e->tenant, "acme");
    assert_true(e->structured);
    assert_string_equal(fl_cloudevent_extension(e, "priority"), "5");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(e->data, "k"), 0)), 1);
    assert_null(r.ev.data_text); /* the body is the envelope, not the data */
    done(&r);
}

static void test_ce_http_structured_without_subject_is_decoded(void **state)
{
    result r = run(STRUCTURED, NULL, 0, ENV(""));

    (void)state;
    assert_int_equal(r.rc, FL_OK);
    assert_null(r.ev.events[0]->subject);
    done(&r);
}

static void test_ce_http_structured_missing_attributes(void **state)
{
    result r = run(STRUCTURED, NULL, 0, "{\"specversion\":\"1.0\",\"id\":null,\"type\":\"t\"}");

    (void)state;
    assert_int_equal(r.rc, FL_EINVAL);
    assert_int_equal(json_array_size(r.errors), 2);
    assert_error(&r, 0, "/id", "missing required attribute \"id\"");
    assert_error(&r, 1, "/source", "missing required attribute \"source\"");
    done(&r);
}

static void test_ce_http_structured_errors(void **state)
{
    result r = run(STRUCTURED, NULL, 0, "[1]");

    (void)state;
    assert_error(&r, 0, "", "JSON object");
    done(&r);
    r = run(STRUCTURED, NULL, 0, ENV(",\"id\":\"dup\""));
    assert_error(&r, 0, "", "duplicate");
    done(&r);
    r = run(STRUCTURED, NULL, 0, ENV(",\"subject\":7"));
    assert_error(&r, 0, "/subject", "not a string");
    done(&r);
    r = run(STRUCTURED, NULL, 0, ENV(",\"data_base64\":\"!!\""));
    assert_error(&r, 0, "/data_base64", "base64");
    done(&r);
    r = run(STRUCTURED, NULL, 0, ENV("} trailing"));
    assert_int_equal(r.rc, FL_EINVAL);
    assert_error(&r, 0, "", "invalid JSON");
    done(&r);
    r = run(STRUCTURED, NULL, 0, NULL);
    assert_int_equal(r.rc, FL_EINVAL);
    done(&r);
}

static void test_ce_http_batch_happy_path(void **state)
{
    result r = run(BATCH, NULL, 0,
                   "[" ENV(",\"subject\":\"a\"") ",{\"specversion\":\"1.0\",\"id\":\"e2\","
                                                 "\"source\":\"/s\",\"type\":\"x\"}]");

    (void)state;
    assert_int_equal(r.rc, FL_OK);
    assert_int_equal(r.ev.mode, FL_CE_HTTP_BATCH);
    assert_int_equal(r.ev.n, 2);
    assert_string_equal(r.ev.events[0]->id, "e1");
    assert_string_equal(r.ev.events[1]->id, "e2");
    assert_string_equal(r.ev.events[1]->tenant, "acme");
    done(&r);
}

static void test_ce_http_batch_empty_is_fine(void **state)
{
    result r = run(BATCH, NULL, 0, " [ ] ");

    (void)state;
    assert_int_equal(r.rc, FL_OK);
    assert_int_equal(r.ev.n, 0);
    done(&r);
}

static void test_ce_http_batch_errors_point_at_items(void **state)
{
    result r = run(BATCH, NULL, 0,
                   "[" ENV("") ",{\"specversion\":\"1.0\",\"id\":\"e2\",\"type\":\"x\"},"
                               "3," ENV(",\"time\":\"never\"") "]");

    (void)state;
    assert_int_equal(r.rc, FL_EINVAL);
    assert_int_equal(r.ev.n, 0); /* all or nothing */
    assert_int_equal(json_array_size(r.errors), 3);
    assert_error(&r, 0, "/1/source", "missing required attribute \"source\"");
    assert_error(&r, 1, "/2", "batch item");
    assert_error(&r, 2, "/3/time", "RFC 3339");
    done(&r);
}

static void test_ce_http_batch_must_be_an_array(void **state)
{
    result r = run(BATCH, NULL, 0, ENV(""));

    (void)state;
    assert_int_equal(r.rc, FL_EINVAL);
    assert_error(&r, 0, "", "JSON array");
    done(&r);
}

static void test_ce_http_batch_too_many_events(void **state)
{
    size_t n = FL_CE_HTTP_MAX_BATCH + 1;
    char *body = calloc(1, n * 3 + 3);
    result r;

    (void)state;
    strcat(body, "[");
    for (size_t i = 0; i < n; i++) {
        strcat(body, i ? ",{}" : "{}");
    }
    strcat(body, "]");
    r = run(BATCH, NULL, 0, body);
    assert_int_equal(r.rc, FL_ETOOBIG);
    done(&r);
    free(body);
}

static void test_ce_http_errors_are_capped(void **state)
{
    size_t n = FL_CE_HTTP_MAX_ERRORS + 10;
    char *body = calloc(1, n * 3 + 3);
    result r;

    (void)state;
    strcat(body, "[");
    for (size_t i = 0; i < n; i++) {
        strcat(body, i ? ",{}" : "{}");
    }
    strcat(body, "]");
    r = run(BATCH, NULL, 0, body);
    assert_int_equal(r.rc, FL_EINVAL);
    assert_int_equal(json_array_size(r.errors), FL_CE_HTTP_MAX_ERRORS);
    assert_non_null(strstr(r.err.msg, "440 problems"));
    done(&r);
    free(body);
}

static void test_ce_http_unsupported_is_einval(void **state)
{
    result r = run("application/json", NULL, 0, "{}");

    (void)state;
    assert_int_equal(r.rc, FL_EINVAL);
    assert_int_equal(r.ev.mode, FL_CE_HTTP_UNSUPPORTED);
    done(&r);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ce_http_mode_detection),
        cmocka_unit_test(test_ce_http_binary_happy_path),
        cmocka_unit_test(test_ce_http_binary_percent_decodes_values),
        cmocka_unit_test(test_ce_http_binary_text_data),
        cmocka_unit_test(test_ce_http_binary_missing_attributes_each_named),
        cmocka_unit_test(test_ce_http_binary_bad_json_data),
        cmocka_unit_test(test_ce_http_binary_engine_rules_apply),
        cmocka_unit_test(test_ce_http_structured_happy_path),
        cmocka_unit_test(test_ce_http_structured_without_subject_is_decoded),
        cmocka_unit_test(test_ce_http_structured_missing_attributes),
        cmocka_unit_test(test_ce_http_structured_errors),
        cmocka_unit_test(test_ce_http_batch_happy_path),
        cmocka_unit_test(test_ce_http_batch_empty_is_fine),
        cmocka_unit_test(test_ce_http_batch_errors_point_at_items),
        cmocka_unit_test(test_ce_http_batch_must_be_an_array),
        cmocka_unit_test(test_ce_http_batch_too_many_events),
        cmocka_unit_test(test_ce_http_errors_are_capped),
        cmocka_unit_test(test_ce_http_unsupported_is_einval),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
