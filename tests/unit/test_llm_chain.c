/* tests/unit/test_llm_chain.c -- the resilience of `call: llm` without a network: the
 * guard (breaker closed -> open -> half-open probe -> closed/open, requests per minute,
 * daily request and token quotas) and the chain's decisions, driven step by step with a
 * fake clock and made-up HTTP outcomes: retries on 5xx honouring Retry-After, no retry
 * on 4xx, fallback with recorded reasons down to `local`, the deadline, accounting
 * (tokens, cost, latency, ttft), the same idempotency key on every attempt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/llm/chain.h"
#include "tests/unit/fake_clock.h"
#include "tests/unit/llm_fixture.h"

static json_t *live_args; /* the call borrows its args: one call alive at a time */

static fl_llm_call *start(fl_llm_chain *ch, const char *args_text, long timeout_ms)
{
    fl_llm_call *c = NULL;
    fl_err err = FL_ERR_INIT;

    live_args = json_loads(args_text, 0, NULL);
    assert_int_equal(fl_llm_call_new(&c, ch, live_args, "inst:1:2", timeout_ms, &err), FL_OK);
    return c;
}

static void end(fl_llm_call *c)
{
    fl_llm_call_free(c);
    json_decref(live_args);
    live_args = NULL;
}

/* Expects a SEND to url's suffix, then answers it. */
static void answer(fl_llm_call *c, const char *path, long status, const char *retry_after,
                   const char *body, int64_t took_ms)
{
    fl_llm_step st;
    fl_http_response resp;

    fl_llm_call_next(c, &st);
    assert_int_equal(st.kind, FL_LLM_STEP_SEND);
    assert_non_null(strstr(st.req.url, path));
    assert_string_equal(st.req.idempotency_key, "inst:1:2");
    fake_ms += took_ms / 2;
    if (body) {
        assert_int_equal(fl_llm_call_on_data(c, body, strlen(body)), FL_OK);
    }
    fake_ms += took_ms - took_ms / 2;
    memset(&resp, 0, sizeof(resp));
    resp.status = status;
    resp.retry_after = (char *)retry_after;
    if (status == 0) {
        fl_err_set(&resp.err, FL_ETIMEDOUT, "timed out");
    }
    fl_llm_call_on_response(c, &resp);
}

static const char *ok_body = "{\"model\":\"gpt-x\",\"choices\":[{\"message\":{\"content\":"
                             "\"Fine.\"},\"finish_reason\":\"stop\"}],\"usage\":{"
                             "\"prompt_tokens\":1000,\"completion_tokens\":500}}";

static void wait_out(fl_llm_call *c, int64_t want_at_least)
{
    fl_llm_step st;
    int64_t before = fake_ms;

    fl_llm_call_next(c, &st);
    assert_int_equal(st.kind, FL_LLM_STEP_WAIT);
    assert_true(st.wake_ms - before >= want_at_least);
    fake_ms = st.wake_ms;
}

static void done(fl_llm_call *c, fl_llm_outcome *out)
{
    fl_llm_step st;

    fl_llm_call_next(c, &st);
    assert_int_equal(st.kind, FL_LLM_STEP_DONE);
    fl_llm_call_outcome(c, out);
}

static void test_llm_chain_retry_after_then_fallback_accounting(void **state)
{
    fl_config_llm cfg;
    fl_llm_chain *ch = NULL;
    fl_llm_call *c;
    fl_llm_outcome out;
    const json_t *fb;

    (void)state;
    fake_ms = 1000;
    fixture_two_and_local(&cfg);
    assert_int_equal(fl_llm_chain_new(&ch, &cfg, &fake_clock, NULL), FL_OK);
    c = start(ch, "{\"prompt\": \"hello there\"}", 30000);
    answer(c, "/chat/completions", 429, "2", "{\"error\":{}}", 10);
    wait_out(c, 2000); /* Retry-After honoured */
    answer(c, "/chat/completions", 500, NULL, NULL, 10);
    answer(c, "/chat/completions", 200, NULL, ok_body, 40); /* backup, at once */
    done(c, &out);
    assert_true(out.ok);
    assert_string_equal(json_string_value(out.result), "Fine.");
    assert_string_equal(json_string_value(json_object_get(out.usage, "provider")), "backup");
    assert_string_equal(json_string_value(json_object_get(out.usage, "model")), "gpt-x");
    assert_int_equal(json_integer_value(json_object_get(out.usage, "tokens_in")), 1000);
    assert_int_equal(json_integer_value(json_object_get(out.usage, "tokens_out")), 500);
    assert_true(json_real_value(json_object_get(out.usage, "cost")) == 2.0);
    assert_int_equal(json_integer_value(json_object_get(out.usage, "latency_ms")), 40);
    assert_int_equal(json_integer_value(json_object_get(out.usage, "ttft_ms")), 20);
    assert_int_equal(json_integer_value(json_object_get(out.usage, "attempts")), 3);
    fb = json_object_get(out.usage, "fallbacks");
    assert_int_equal(json_array_size(fb), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(fb, 0), "from")),
                        "primary");
    assert_string_equal(json_string_value(json_object_get(json_array_get(fb, 0), "to")), "backup");
    assert_string_equal(json_string_value(json_object_get(json_array_get(fb, 0), "reason")),
                        "unavailable: HTTP status 500");
    json_decref(out.result);
    json_decref(out.usage);
    end(c);
    fl_llm_chain_free(ch);
}

static void test_llm_chain_4xx_no_retry_and_local_last(void **state)
{
    fl_config_llm cfg;
    fl_llm_chain *ch = NULL;
    fl_llm_call *c;
    fl_llm_outcome out;

    (void)state;
    fake_ms = 0;
    fixture_two_and_local(&cfg);
    assert_int_equal(fl_llm_chain_new(&ch, &cfg, &fake_clock, NULL), FL_OK);
    c = start(ch, "{\"prompt\": \"a pizza please\", \"json\": true}", 30000);
    answer(c, "/chat/completions", 400, NULL, "{}", 5);    /* primary: no retry */
    answer(c, "/chat/completions", 200, NULL, ok_body, 5); /* backup: not JSON */
    done(c, &out);                                         /* local answers */
    assert_true(out.ok);
    assert_string_equal(json_string_value(json_object_get(out.result, "intent")), "place_order");
    assert_string_equal(json_string_value(json_object_get(out.usage, "provider")), "local");
    assert_int_equal(json_array_size(json_object_get(out.usage, "fallbacks")), 2);
    assert_non_null(
        strstr(json_string_value(json_object_get(
                   json_array_get(json_object_get(out.usage, "fallbacks"), 1), "reason")),
               "invalid_output"));
    json_decref(out.result);
    json_decref(out.usage);
    end(c);
    fl_llm_chain_free(ch);
}

static void test_llm_chain_all_fail_without_local(void **state)
{
    fl_config_llm cfg;
    fl_llm_chain *ch = NULL;
    fl_llm_call *c;
    fl_llm_outcome out;

    (void)state;
    fake_ms = 0;
    fixture_two_and_local(&cfg);
    cfg.nchain = 1; /* primary only */
    cfg.providers[0].max_retries = 0;
    assert_int_equal(fl_llm_chain_new(&ch, &cfg, &fake_clock, NULL), FL_OK);
    c = start(ch, "{\"prompt\": \"x\"}", 30000);
    answer(c, "/chat/completions", 0, NULL, NULL, 5000); /* a timeout */
    done(c, &out);
    assert_false(out.ok);
    assert_string_equal(out.error_type, "llm.timeout");
    assert_true(out.retryable);
    assert_non_null(strstr(out.message, "primary: timeout"));
    json_decref(out.usage);
    end(c);
    fl_llm_chain_free(ch);
}

static void test_llm_chain_deadline_skips_to_local(void **state)
{
    fl_config_llm cfg;
    fl_llm_chain *ch = NULL;
    fl_llm_call *c;
    fl_llm_outcome out;

    (void)state;
    fake_ms = 0;
    fixture_two_and_local(&cfg);
    assert_int_equal(fl_llm_chain_new(&ch, &cfg, &fake_clock, NULL), FL_OK);
    c = start(ch, "{\"prompt\": \"x\"}", 1000);
    answer(c, "/chat/completions", 429, "60", NULL, 10); /* Retry-After past the deadline */
    answer(c, "/chat/completions", 0, NULL, NULL, 990);  /* backup times out at the deadline */
    done(c, &out);
    assert_true(out.ok);
    assert_string_equal(json_string_value(json_object_get(out.usage, "provider")), "local");
    assert_non_null(
        strstr(json_string_value(json_object_get(
                   json_array_get(json_object_get(out.usage, "fallbacks"), 0), "reason")),
               "would pass the deadline"));
    json_decref(out.result);
    json_decref(out.usage);
    end(c);
    fl_llm_chain_free(ch);
}

static void test_llm_chain_breaker_opens_and_half_opens(void **state)
{
    fl_config_llm cfg;
    fl_llm_chain *ch = NULL;
    fl_llm_call *c;
    fl_llm_outcome out;
    fl_llm_guard *g;

    (void)state;
    fake_ms = 0;
    fixture_two_and_local(&cfg);
    cfg.providers[0].max_retries = 0;
    cfg.nchain = 3;
    assert_int_equal(fl_llm_chain_new(&ch, &cfg, &fake_clock, NULL), FL_OK);
    g = fl_llm_chain_guard(ch, "primary");
    for (int i = 0; i < 3; i++) { /* three calls, each: primary 503, backup ok */
        c = start(ch, "{\"prompt\": \"x\"}", 30000);
        answer(c, "/chat/completions", 503, NULL, NULL, 5);
        answer(c, "/chat/completions", 200, NULL, ok_body, 5);
        done(c, &out);
        json_decref(out.result);
        json_decref(out.usage);
        end(c);
    }
    assert_int_equal(fl_llm_guard_state(g, fake_ms), FL_LLM_BREAKER_OPEN);
    c = start(ch, "{\"prompt\": \"x\"}", 30000); /* primary skipped: breaker_open */
    answer(c, "/chat/completions", 200, NULL, ok_body, 5);
    done(c, &out);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(out.usage, "fallbacks"), 0), "reason")),
                        "breaker_open");
    json_decref(out.result);
    json_decref(out.usage);
    end(c);
    fake_ms += 10000; /* cool-down over: the next call is the probe, and it succeeds */
    assert_int_equal(fl_llm_guard_state(g, fake_ms), FL_LLM_BREAKER_HALF_OPEN);
    c = start(ch, "{\"prompt\": \"x\"}", 30000);
    answer(c, "/chat/completions", 200, NULL, ok_body, 5);
    done(c, &out);
    assert_string_equal(json_string_value(json_object_get(out.usage, "provider")), "primary");
    assert_int_equal(fl_llm_guard_state(g, fake_ms), FL_LLM_BREAKER_CLOSED);
    json_decref(out.result);
    json_decref(out.usage);
    end(c);
    fl_llm_chain_free(ch);
}

static void test_llm_chain_guard_probe_failure_reopens(void **state)
{
    fl_config_llm_provider p = fixture_provider("p", "openai");
    fl_llm_guard g;
    bool probe = false;

    (void)state;
    p.breaker_failures = 2;
    fl_llm_guard_init(&g, &p);
    fl_llm_guard_failure(&g, 0);
    assert_int_equal(fl_llm_guard_state(&g, 0), FL_LLM_BREAKER_CLOSED);
    fl_llm_guard_success(&g, 0, 0); /* resets the count */
    fl_llm_guard_failure(&g, 0);
    assert_int_equal(fl_llm_guard_state(&g, 0), FL_LLM_BREAKER_CLOSED);
    fl_llm_guard_failure(&g, 0);
    assert_int_equal(fl_llm_guard_admit(&g, 9999, 0, &probe), FL_LLM_ADMIT_BREAKER_OPEN);
    assert_int_equal(fl_llm_guard_admit(&g, 10000, 0, &probe), FL_LLM_ADMIT_OK);
    assert_true(probe);
    /* only one probe at a time */
    assert_int_equal(fl_llm_guard_admit(&g, 10001, 0, &probe), FL_LLM_ADMIT_BREAKER_OPEN);
    fl_llm_guard_failure(&g, 10002);
    assert_int_equal(fl_llm_guard_state(&g, 20001), FL_LLM_BREAKER_OPEN);
    assert_int_equal(fl_llm_guard_state(&g, 20002), FL_LLM_BREAKER_HALF_OPEN);
    fl_llm_guard_deinit(&g);
}

static void test_llm_chain_guard_rate_and_quotas(void **state)
{
    fl_config_llm_provider p = fixture_provider("p", "openai");
    fl_llm_guard g;
    bool probe;
    int64_t day = 86400000LL;

    (void)state;
    p.rpm = 2;
    p.daily_requests = 3;
    p.daily_tokens = 100;
    fl_llm_guard_init(&g, &p);
    assert_int_equal(fl_llm_guard_admit(&g, 0, day, &probe), FL_LLM_ADMIT_OK);
    assert_int_equal(fl_llm_guard_admit(&g, 0, day, &probe), FL_LLM_ADMIT_OK);
    assert_int_equal(fl_llm_guard_admit(&g, 1000, day, &probe), FL_LLM_ADMIT_RATE_LIMITED);
    assert_int_equal(fl_llm_guard_admit(&g, 30000, day, &probe), FL_LLM_ADMIT_OK); /* refilled */
    assert_int_equal(fl_llm_guard_admit(&g, 90000, day, &probe), FL_LLM_ADMIT_QUOTA_REQUESTS);
    assert_int_equal(fl_llm_guard_admit(&g, 90000, 2 * day, &probe), FL_LLM_ADMIT_OK); /* new day */
    fl_llm_guard_success(&g, 100, 2 * day);
    assert_int_equal(fl_llm_guard_admit(&g, 200000, 2 * day, &probe), FL_LLM_ADMIT_QUOTA_TOKENS);
    assert_string_equal(fl_llm_admit_name(FL_LLM_ADMIT_QUOTA_TOKENS), "quota_tokens");
    fl_llm_guard_deinit(&g);
}

static void test_llm_chain_quota_fails_as_budget(void **state)
{
    fl_config_llm cfg;
    fl_llm_chain *ch = NULL;
    fl_llm_call *c;
    fl_llm_outcome out;
    bool probe;

    (void)state;
    fake_ms = 0;
    fixture_two_and_local(&cfg);
    cfg.nchain = 1;
    cfg.providers[0].daily_requests = 1;
    assert_int_equal(fl_llm_chain_new(&ch, &cfg, &fake_clock, NULL), FL_OK);
    assert_int_equal(
        fl_llm_guard_admit(fl_llm_chain_guard(ch, "primary"), 0, fake_now(NULL), &probe),
        FL_LLM_ADMIT_OK);
    c = start(ch, "{\"prompt\": \"x\"}", 30000);
    done(c, &out);
    assert_false(out.ok);
    assert_string_equal(out.error_type, "llm.budget_exceeded");
    json_decref(out.usage);
    end(c);
    fl_llm_chain_free(ch);
}

/* What the listeners of a streamed call saw: text, and "|restart|" for each (NULL, 0). */
static char seen[256];

static fl_rc record_delta(void *arg, const char *text, size_t len)
{
    (void)arg;
    if (!text) {
        strncat(seen, "|restart|", sizeof(seen) - strlen(seen) - 1);
    } else {
        strncat(seen, text, len < sizeof(seen) - strlen(seen) - 1 ? len : 0);
    }
    return FL_OK;
}

#define SSE_PIECE(t) "data: {\"choices\":[{\"delta\":{\"content\":\"" t "\"}}]}\n\n"

/* A stream cut short is retried; its listeners are told to start over before the retry's
 * text, never shown the two attempts run together. */
static void test_llm_chain_retried_stream_restarts_deltas(void **state)
{
    fl_config_llm cfg;
    fl_llm_chain *ch = NULL;
    fl_llm_call *c;
    fl_llm_outcome out;
    fl_err err = FL_ERR_INIT;

    (void)state;
    fake_ms = 0;
    seen[0] = '\0';
    fixture_two_and_local(&cfg);
    assert_int_equal(fl_llm_chain_new(&ch, &cfg, &fake_clock, &err), FL_OK);
    c = start(ch, "{\"prompt\": \"hi\", \"stream\": true}", 30000);
    fl_llm_call_set_delta(c, record_delta, NULL);
    answer(c, "/chat/completions", 200, NULL, SSE_PIECE("Hel"), 10); /* no [DONE] */
    wait_out(c, 1);
    answer(c, "/chat/completions", 200, NULL,
           SSE_PIECE("Hello") SSE_PIECE(" there") "data: [DONE]\n\n", 10);
    done(c, &out);
    assert_true(out.ok);
    assert_string_equal(seen, "Hel|restart|Hello there");
    assert_string_equal(json_string_value(out.result), "Hello there");
    json_decref(out.result);
    json_decref(out.usage);
    end(c);
    fl_llm_chain_free(ch);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llm_chain_retry_after_then_fallback_accounting),
        cmocka_unit_test(test_llm_chain_4xx_no_retry_and_local_last),
        cmocka_unit_test(test_llm_chain_all_fail_without_local),
        cmocka_unit_test(test_llm_chain_deadline_skips_to_local),
        cmocka_unit_test(test_llm_chain_breaker_opens_and_half_opens),
        cmocka_unit_test(test_llm_chain_guard_probe_failure_reopens),
        cmocka_unit_test(test_llm_chain_guard_rate_and_quotas),
        cmocka_unit_test(test_llm_chain_quota_fails_as_budget),
        cmocka_unit_test(test_llm_chain_retried_stream_restarts_deltas),
    };

    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
