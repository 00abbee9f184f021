/* tests/unit/test_relay.c -- the pure parts of the outbox relay: an outbox row's headers
 * as Kafka headers, and which rows of a pass are marked published. The relay's thread
 * and passes run against the real stack in tests/system/test_relay.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "engine/relay.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The value of header `name` as a C string ("<none>" without a value, NULL if absent). */
static const char *header(const fl_kafka_header *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(h[i].name, name) == 0) {
            return h[i].value ? (const char *)h[i].value : "<none>";
        }
    }
    return NULL;
}

static void test_relay_headers_copy_ce_strings(void **state)
{
    const char *json = "{\"ce_id\": \"e1\", \"ce_type\": \"order.paid\", \"ce_tenant\": \"acme\", "
                       "\"content-type\": \"application/json\"}";
    fl_kafka_header *h = NULL;
    size_t n = 0;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_relay_headers_from_json(json, true, &h, &n, &err), FL_OK);
    assert_int_equal(n, 4);
    assert_string_equal(h[0].name, "ce_id"); /* in the column's order */
    assert_string_equal(header(h, n, "ce_id"), "e1");
    assert_int_equal(h[0].len, 2);
    assert_string_equal(header(h, n, "ce_type"), "order.paid");
    assert_string_equal(header(h, n, "ce_tenant"), "acme");
    assert_string_equal(header(h, n, "content-type"), "application/json");
    fl_relay_headers_free(h, n);
}

static void test_relay_headers_add_content_type_for_data(void **state)
{
    fl_kafka_header *h = NULL;
    size_t n = 0;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_relay_headers_from_json("{\"ce_id\": \"e1\"}", true, &h, &n, &err), FL_OK);
    assert_int_equal(n, 2);
    assert_string_equal(header(h, n, "content-type"), "application/json");
    fl_relay_headers_free(h, n);
}

static void test_relay_headers_keep_the_rows_content_type(void **state)
{
    fl_kafka_header *h = NULL;
    size_t n = 0;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_relay_headers_from_json("{\"Content-Type\": \"application/cloudevents\"}",
                                                true, &h, &n, &err),
                     FL_OK);
    assert_int_equal(n, 1);
    assert_string_equal(header(h, n, "Content-Type"), "application/cloudevents");
    fl_relay_headers_free(h, n);
}

static void test_relay_headers_drop_content_type_without_data(void **state)
{
    const char *json = "{\"ce_id\": \"e1\", \"content-type\": \"application/json\"}";
    fl_kafka_header *h = NULL;
    size_t n = 0;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_relay_headers_from_json(json, false, &h, &n, &err), FL_OK);
    assert_int_equal(n, 1);
    assert_null(header(h, n, "content-type"));
    fl_relay_headers_free(h, n);
}

static void test_relay_headers_null_and_non_strings(void **state)
{
    const char *json = "{\"traceparent\": null, \"ce_seq\": 7, \"x\": {\"a\": true}}";
    fl_kafka_header *h = NULL;
    size_t n = 0;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_relay_headers_from_json(json, false, &h, &n, &err), FL_OK);
    assert_int_equal(n, 3);
    assert_string_equal(header(h, n, "traceparent"), "<none>");
    assert_int_equal(h[0].len, 0);
    assert_string_equal(header(h, n, "ce_seq"), "7");
    assert_string_equal(header(h, n, "x"), "{\"a\":true}");
    fl_relay_headers_free(h, n);
}

static void test_relay_headers_keep_nul_bytes_by_length(void **state)
{
    fl_kafka_header *h = NULL;
    size_t n = 0;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_relay_headers_from_json("{\"b\": \"a\\u0000b\"}", false, &h, &n, &err),
                     FL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(h[0].len, 3);
    assert_memory_equal(h[0].value, "a\0b", 3);
    fl_relay_headers_free(h, n);
}

static void test_relay_headers_reject_non_object(void **state)
{
    static const char *const bad[] = {"[]", "\"x\"", "not json", NULL};
    fl_kafka_header *h = (fl_kafka_header *)&h;
    size_t n = 99;

    (void)state;
    for (size_t i = 0; i < N(bad); i++) {
        fl_err err = FL_ERR_INIT;
        assert_int_equal(fl_relay_headers_from_json(bad[i], true, &h, &n, &err), FL_EINVAL);
        assert_null(h);
        assert_int_equal(n, 0);
        assert_string_equal(err.msg,
                            "cannot publish an outbox row: its headers are not a JSON object");
    }
    fl_relay_headers_free(NULL, 0);
}

static void test_relay_marks_every_delivered_row(void **state)
{
    fl_relay_outcome rows[] = {{"t", "a", true}, {"t", "b", true}, {"t", "a", true}};
    bool mark[N(rows)];

    (void)state;
    assert_int_equal(fl_relay_marks(rows, N(rows), mark), 3);
    assert_true(mark[0] && mark[1] && mark[2]);
}

static void test_relay_marks_stop_at_a_keys_first_failure(void **state)
{
    fl_relay_outcome rows[] = {{"t", "a", true},  {"t", "b", true}, {"t", "a", false},
                               {"t", "b", true},  {"t", "a", true}, {"u", "a", true},
                               {"t", "c", false}, {"t", "c", true}};
    bool mark[N(rows)];
    const bool want[N(rows)] = {true, true, false, true, false, true, false, false};

    (void)state;
    assert_int_equal(fl_relay_marks(rows, N(rows), mark), 4);
    for (size_t i = 0; i < N(rows); i++) {
        assert_int_equal(mark[i], want[i]);
    }
}

static void test_relay_marks_tell_topic_and_key_apart(void **state)
{
    /* "a\x1f" + "b" and "a" + "\x1fb" spell differently only if the separator is unique
     * to the topic side; topics cannot hold it, keys can */
    fl_relay_outcome rows[] = {{"t", "x\x1fy", false}, {"t", "x", true}, {"t", "x\x1fy", true}};
    bool mark[N(rows)];

    (void)state;
    assert_int_equal(fl_relay_marks(rows, N(rows), mark), 1);
    assert_false(mark[0]);
    assert_true(mark[1]);
    assert_false(mark[2]);
}

static void test_relay_marks_empty_pass(void **state)
{
    bool mark[1] = {true};

    (void)state;
    assert_int_equal(fl_relay_marks(NULL, 0, mark), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay_headers_copy_ce_strings),
        cmocka_unit_test(test_relay_headers_add_content_type_for_data),
        cmocka_unit_test(test_relay_headers_keep_the_rows_content_type),
        cmocka_unit_test(test_relay_headers_drop_content_type_without_data),
        cmocka_unit_test(test_relay_headers_null_and_non_strings),
        cmocka_unit_test(test_relay_headers_keep_nul_bytes_by_length),
        cmocka_unit_test(test_relay_headers_reject_non_object),
        cmocka_unit_test(test_relay_marks_every_delivered_row),
        cmocka_unit_test(test_relay_marks_stop_at_a_keys_first_failure),
        cmocka_unit_test(test_relay_marks_tell_topic_and_key_apart),
        cmocka_unit_test(test_relay_marks_empty_pass),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
