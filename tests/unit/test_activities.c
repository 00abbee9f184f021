/* tests/unit/test_activities.c -- the pure half of the activity worker
 * (engine/activities_call.c): retry policies read from rows, HTTP requests built from
 * `with`, answers classified into results or error types, and the result events'
 * payloads and headers. No network and no database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/log.h"
#include "engine/activities_int.h"

static fl_act_job *job_of(const char *args)
{
    fl_act_job *job = calloc(1, sizeof(*job));

    assert_non_null(job);
    job->id = strdup("i/3/1");
    job->idempotency_key = strdup("i:1:3");
    job->args = json_loads(args, 0, NULL);
    assert_non_null(job->args);
    return job;
}

static void test_activities_retry_parse(void **state)
{
    fl_backoff_policy p;
    int attempts = 0;
    json_t *r = json_loads("{\"attempts\": 3, \"backoff\": \"exponential\", \"delay_ms\": 100,"
                           " \"max_delay_ms\": 800}",
                           0, NULL);

    (void)state;
    fl_activities__retry_parse(r, &p, &attempts);
    assert_int_equal(attempts, 3);
    assert_int_equal(p.kind, FL_BACKOFF_EXPONENTIAL);
    assert_int_equal(p.delay_ms, 100);
    assert_int_equal(p.max_delay_ms, 800);
    json_decref(r);
    fl_activities__retry_parse(NULL, &p, &attempts); /* missing: one attempt, fixed */
    assert_int_equal(attempts, 1);
    assert_int_equal(p.kind, FL_BACKOFF_FIXED);
    assert_int_equal(p.delay_ms, 0);
}

static void test_activities_http_request_json_body(void **state)
{
    fl_act_job *job = job_of("{\"method\": \"POST\", \"url\": \"http://h/x\", \"headers\":"
                             " {\"X-A\": \"1\", \"X-N\": 2}, \"body\": {\"n\": 1}}");
    fl_http_request req;
    fl_act_http_bufs bufs;

    (void)state;
    job->timeout_ms = 0;
    assert_int_equal(fl_activities__http_request(job, 5000, &req, &bufs, NULL), FL_OK);
    assert_string_equal(req.method, "POST");
    assert_string_equal(req.url, "http://h/x");
    assert_int_equal(req.n_headers, 3);
    assert_string_equal(req.headers[1].value, "2"); /* non-strings are written as JSON */
    assert_string_equal(req.headers[2].name, "Content-Type");
    assert_string_equal(req.headers[2].value, "application/json");
    assert_int_equal(req.body_len, strlen("{\"n\":1}"));
    assert_memory_equal(req.body, "{\"n\":1}", req.body_len);
    assert_int_equal(req.timeout_ms, 5000);
    assert_string_equal(req.idempotency_key, "i:1:3");
    fl_activities__http_bufs_deinit(&bufs);
    fl_activities__job_free(job);
}

static void test_activities_http_request_string_body_and_errors(void **state)
{
    fl_act_job *job = job_of("{\"url\": \"http://h/\", \"body\": \"raw\"}");
    fl_act_job *bad = job_of("{\"method\": \"GET\"}");
    fl_http_request req;
    fl_act_http_bufs bufs;
    fl_err err = {0};

    (void)state;
    job->timeout_ms = 250;
    assert_int_equal(fl_activities__http_request(job, 5000, &req, &bufs, NULL), FL_OK);
    assert_string_equal(req.method, "GET");
    assert_int_equal(req.n_headers, 0); /* a string body is sent as is */
    assert_int_equal(req.timeout_ms, 250);
    fl_activities__http_bufs_deinit(&bufs);
    assert_int_equal(fl_activities__http_request(bad, 5000, &req, &bufs, &err), FL_EINVAL);
    assert_string_equal(err.msg, "cannot call http: url is missing");
    fl_activities__http_bufs_deinit(&bufs);
    fl_activities__job_free(job);
    fl_activities__job_free(bad);
}

static fl_http_response response(long status, const char *ctype, const char *body)
{
    fl_http_response r = {0};

    r.status = status;
    r.content_type = ctype ? strdup(ctype) : NULL;
    r.body = strdup(body);
    r.body_len = strlen(body);
    return r;
}

static void test_activities_http_outcome_success(void **state)
{
    fl_http_response r = response(201, "application/json", "{\"ok\":true}");
    fl_act_outcome o = {0};
    json_t *want = json_loads("{\"status\": 201, \"headers\": {\"content-type\":"
                              " \"application/json\"}, \"body\": {\"ok\": true}}",
                              0, NULL);

    (void)state;
    fl_activities__http_outcome(&r, 0, &o);
    assert_true(o.ok);
    assert_true(json_equal(o.result, want));
    fl_activities__outcome_deinit(&o);
    fl_http_response_deinit(&r);
    r = response(200, "text/plain", "hi");
    fl_activities__http_outcome(&r, 0, &o);
    assert_string_equal(json_string_value(json_object_get(o.result, "body")), "hi");
    fl_activities__outcome_deinit(&o);
    fl_http_response_deinit(&r);
    json_decref(want);
}

static void test_activities_http_outcome_failures(void **state)
{
    fl_http_response r = response(503, NULL, "");
    fl_act_outcome o = {0};

    (void)state;
    r.retry_after = strdup("7");
    fl_activities__http_outcome(&r, 0, &o);
    assert_false(o.ok);
    assert_string_equal(o.error_type, "http.status");
    assert_true(o.retryable);
    assert_int_equal(o.retry_after_ms, 7000);
    fl_http_response_deinit(&r);
    r = response(404, NULL, "");
    fl_activities__http_outcome(&r, 0, &o);
    assert_false(o.retryable);
    assert_string_equal(o.message, "HTTP status 404");
    fl_http_response_deinit(&r);
    r = response(0, NULL, "");
    fl_err_set(&r.err, FL_ETIMEDOUT, "could not complete request");
    fl_activities__http_outcome(&r, 0, &o);
    assert_string_equal(o.error_type, "http.timeout");
    assert_true(o.retryable);
    r.err = (fl_err){0}; /* fl_err_set keeps the first error */
    fl_err_set(&r.err, FL_EUNAVAIL, "could not connect");
    fl_activities__http_outcome(&r, 0, &o);
    assert_string_equal(o.error_type, "http.connect");
    r.err = (fl_err){0};
    fl_err_set(&r.err, FL_ETOOBIG, "too large");
    fl_activities__http_outcome(&r, 0, &o);
    assert_string_equal(o.error_type, "http.too_large");
    assert_false(o.retryable);
    fl_http_response_deinit(&r);
}

static void test_activities_event_data(void **state)
{
    json_t *result = json_string("hi");
    json_t *usage = json_pack("{s:i}", "tokens_in", 2);
    json_t *c = fl_activities__completed_data("a/1/0", result, usage);
    json_t *c2 = fl_activities__completed_data("a/1/0", result, NULL);
    json_t *f = fl_activities__failed_data("a/1/0", "http.status", "HTTP status 400");
    char *s;

    (void)state;
    s = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s,
                        "{\"activity\":\"a/1/0\",\"result\":\"hi\",\"usage\":{\"tokens_in\":2}}");
    free(s);
    assert_null(json_object_get(c2, "usage"));
    s = json_dumps(f, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"activity\":\"a/1/0\",\"error\":\"http.status\","
                           "\"message\":\"HTTP status 400\"}");
    free(s);
    json_decref(c);
    json_decref(c2);
    json_decref(f);
    json_decref(result);
    json_decref(usage);
}

static void test_activities_headers_match_the_store(void **state)
{
    char *h = fl_activities__headers("activity:a/1/0", "flowd.activity.completed", "k1", "t1",
                                     INT64_C(1445412480000));

    (void)state;
    assert_string_equal(h, "{\"ce_id\":\"activity:a/1/0\",\"ce_source\":\"flowd\","
                           "\"ce_specversion\":\"1.0\",\"ce_subject\":\"k1\",\"ce_tenant\":\"t1\","
                           "\"ce_time\":\"2015-10-21T07:28:00.000Z\","
                           "\"ce_type\":\"flowd.activity.completed\","
                           "\"content-type\":\"application/json\"}");
    free(h);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activities_retry_parse),
        cmocka_unit_test(test_activities_http_request_json_body),
        cmocka_unit_test(test_activities_http_request_string_body_and_errors),
        cmocka_unit_test(test_activities_http_outcome_success),
        cmocka_unit_test(test_activities_http_outcome_failures),
        cmocka_unit_test(test_activities_event_data),
        cmocka_unit_test(test_activities_headers_match_the_store),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
