/* tests/unit/test_llm_providers.c -- each adapter against recorded wire examples: the
 * request it builds (URL, headers, JSON body) and the answer it reads, whole and
 * streamed (fed through the splitter in uneven chunks); plus request reading, json-mode
 * output and the classification of failed attempts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "engine/llm/llm.h"
#include "engine/llm/stream.h"

static fl_config_llm_provider prov(const char *kind, const char *base, const char *key)
{
    fl_config_llm_provider p;

    memset(&p, 0, sizeof(p));
    snprintf(p.name, sizeof(p.name), "p");
    snprintf(p.kind, sizeof(p.kind), "%s", kind);
    snprintf(p.base_url, sizeof(p.base_url), "%s", base);
    snprintf(p.model, sizeof(p.model), "m-1");
    snprintf(p.api_key, sizeof(p.api_key), "%s", key);
    return p;
}

static const char *header(const fl_llm_wire *w, const char *name)
{
    for (size_t i = 0; i < w->n_headers; i++) {
        if (strcasecmp(w->headers[i].name, name) == 0) {
            return w->headers[i].value;
        }
    }
    return NULL;
}

/* Builds kind's request for args; *body_out is the parsed body (owned). */
static void build(const char *kind, const char *args_text, bool stream, fl_llm_wire *w,
                  json_t **body_out)
{
    fl_config_llm_provider p = prov(kind, "http://h:1/base/", "sk-1");
    json_t *args = json_loads(args_text, 0, NULL);
    fl_llm_request req;
    fl_err err = FL_ERR_INIT;

    assert_non_null(args);
    assert_int_equal(fl_llm_request_init(&req, args, "idem-1", &err), FL_OK);
    memset(w, 0, sizeof(*w));
    assert_int_equal(fl_llm_adapter_get(kind)->build(&p, &req, stream, w, &err), FL_OK);
    *body_out = json_loads(w->body, 0, NULL);
    assert_non_null(*body_out);
    fl_llm_request_deinit(&req);
    json_decref(args);
}

static const char *args_text =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, "
    "{\"role\": \"user\", \"content\": \"Hi\"}], \"prompt\": \"Book?\", "
    "\"max_tokens\": 50, \"temperature\": 0.5, \"json\": true}";

static void test_llm_providers_openai_request(void **state)
{
    fl_llm_wire w;
    json_t *b;
    json_t *want = json_loads("{\"model\":\"m-1\",\"messages\":[{\"role\":\"system\",\"content\":"
                              "\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":"
                              "\"user\",\"content\":\"Book?\"}],\"max_tokens\":50,\"temperature\":"
                              "0.5,\"response_format\":{\"type\":\"json_object\"},\"stream\":true,"
                              "\"stream_options\":{\"include_usage\":true}}",
                              0, NULL);

    (void)state;
    build("openai", args_text, true, &w, &b);
    assert_string_equal(w.url, "http://h:1/base/chat/completions");
    assert_string_equal(header(&w, "Authorization"), "Bearer sk-1");
    assert_true(json_equal(b, want));
    json_decref(b);
    json_decref(want);
    fl_llm_wire_deinit(&w);
}

static void test_llm_providers_anthropic_request(void **state)
{
    fl_llm_wire w;
    json_t *b;

    (void)state;
    build("anthropic", args_text, false, &w, &b);
    assert_string_equal(w.url, "http://h:1/base/v1/messages");
    assert_string_equal(header(&w, "x-api-key"), "sk-1");
    assert_string_equal(header(&w, "anthropic-version"), "2023-06-01");
    assert_null(header(&w, "Authorization"));
    assert_int_equal(json_integer_value(json_object_get(b, "max_tokens")), 50);
    assert_string_equal(json_string_value(json_object_get(b, "system")),
                        "Be brief.\n\nAnswer with one JSON object and nothing else.");
    assert_int_equal(json_array_size(json_object_get(b, "messages")), 2); /* no system role */
    assert_null(json_object_get(b, "stream"));
    json_decref(b);
    fl_llm_wire_deinit(&w);
}

static void test_llm_providers_gemini_request(void **state)
{
    fl_llm_wire w;
    json_t *b;
    json_t *gc;

    (void)state;
    build("gemini", args_text, true, &w, &b);
    assert_string_equal(w.url, "http://h:1/base/models/m-1:streamGenerateContent?alt=sse");
    assert_string_equal(header(&w, "x-goog-api-key"), "sk-1");
    assert_null(strstr(w.url, "sk-1")); /* never in the URL */
    gc = json_object_get(b, "generationConfig");
    assert_string_equal(json_string_value(json_object_get(gc, "responseMimeType")),
                        "application/json");
    assert_int_equal(json_integer_value(json_object_get(gc, "maxOutputTokens")), 50);
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(json_object_get(b, "systemInstruction"), "parts"), 0),
            "text")),
        "Be brief.");
    assert_int_equal(json_array_size(json_object_get(b, "contents")), 2);
    json_decref(b);
    fl_llm_wire_deinit(&w);
    build("gemini", "{\"prompt\": \"x\"}", false, &w, &b);
    assert_string_equal(w.url, "http://h:1/base/models/m-1:generateContent");
    json_decref(b);
    fl_llm_wire_deinit(&w);
}

static void test_llm_providers_ollama_request(void **state)
{
    fl_llm_wire w;
    json_t *b;

    (void)state;
    build("ollama", args_text, false, &w, &b);
    assert_string_equal(w.url, "http://h:1/base/api/chat");
    assert_true(json_is_false(json_object_get(b, "stream"))); /* said: Ollama streams by default */
    assert_string_equal(json_string_value(json_object_get(b, "format")), "json");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(b, "options"), "num_predict")), 50);
    json_decref(b);
    fl_llm_wire_deinit(&w);
}

static void parse_ok(const char *kind, const char *body, const char *text, long long in,
                     long long out, const char *finish)
{
    fl_llm_response r;
    fl_err err = FL_ERR_INIT;

    fl_llm_response_init(&r, 1 << 20);
    assert_int_equal(fl_llm_adapter_get(kind)->parse(body, strlen(body), &r, &err), FL_OK);
    assert_string_equal(r.text.data, text);
    assert_int_equal(r.tokens_in, in);
    assert_int_equal(r.tokens_out, out);
    assert_string_equal(r.finish_reason, finish);
    fl_llm_response_deinit(&r);
}

static void test_llm_providers_parse_answers(void **state)
{
    (void)state;
    parse_ok("openai",
             "{\"id\":\"c1\",\"object\":\"chat.completion\",\"model\":\"gpt-x\",\"choices\":[{"
             "\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello!\"},"
             "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":"
             "3,\"total_tokens\":12}}",
             "Hello!", 9, 3, "stop");
    parse_ok("anthropic",
             "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\","
             "\"content\":[{\"type\":\"text\",\"text\":\"Hi \"},{\"type\":\"text\",\"text\":"
             "\"there\"}],\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":10,"
             "\"output_tokens\":2}}",
             "Hi there", 10, 2, "end_turn");
    parse_ok("gemini",
             "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Yo\"}],\"role\":\"model\"},"
             "\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":4,"
             "\"candidatesTokenCount\":1,\"totalTokenCount\":5},\"modelVersion\":\"gemini-x\"}",
             "Yo", 4, 1, "STOP");
    parse_ok("ollama",
             "{\"model\":\"llama3\",\"created_at\":\"2024-01-01T00:00:00Z\",\"message\":{\"role\":"
             "\"assistant\",\"content\":\"Hey\"},\"done\":true,\"done_reason\":\"stop\","
             "\"prompt_eval_count\":7,\"eval_count\":2}",
             "Hey", 7, 2, "stop");
}

static void test_llm_providers_parse_rejects(void **state)
{
    static const char *const kinds[] = {"openai", "anthropic", "gemini", "ollama"};
    fl_llm_response r;
    fl_err err = FL_ERR_INIT;

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        fl_llm_response_init(&r, 1 << 20);
        assert_int_equal(fl_llm_adapter_get(kinds[i])->parse("{}", 2, &r, &err), FL_EINVAL);
        assert_int_equal(fl_llm_adapter_get(kinds[i])->parse("not json", 8, &r, &err), FL_EINVAL);
        fl_llm_response_deinit(&r);
    }
    assert_null(fl_llm_adapter_get("local"));
    assert_null(fl_llm_adapter_get("nope"));
}

typedef struct feed {
    const fl_llm_adapter *ad;
    fl_llm_response *r;
} feed;

static fl_rc on_frame(void *arg, const fl_llm_frame *f, fl_err *err)
{
    feed *fd = arg;

    return fd->ad->frame(f, fd->r, err);
}

/* Feeds a recorded stream in 7-byte chunks. */
static void stream_ok(const char *kind, const char *wire, const char *text, long long in,
                      long long out, bool done)
{
    fl_llm_response r;
    fl_llm_splitter sp;
    fl_err err = FL_ERR_INIT;
    feed fd = {fl_llm_adapter_get(kind), &r};
    size_t len = strlen(wire);

    fl_llm_response_init(&r, 1 << 20);
    fl_llm_splitter_init(&sp, fd.ad->framing, 1 << 16);
    for (size_t at = 0; at < len; at += 7) {
        assert_int_equal(
            fl_llm_splitter_feed(&sp, wire + at, len - at < 7 ? len - at : 7, on_frame, &fd, &err),
            FL_OK);
    }
    assert_int_equal(fl_llm_splitter_finish(&sp, on_frame, &fd, &err), FL_OK);
    assert_string_equal(r.text.data, text);
    assert_int_equal(r.tokens_in, in);
    assert_int_equal(r.tokens_out, out);
    assert_int_equal(r.done, done);
    fl_llm_splitter_deinit(&sp);
    fl_llm_response_deinit(&r);
}

static void test_llm_providers_streams(void **state)
{
    (void)state;
    stream_ok("openai",
              "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}"
              ",\"finish_reason\":null}]}\n\n"
              "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n"
              "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":"
              "\"stop\"}]}\n\n"
              "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\n"
              "data: [DONE]\n\n",
              "Hello", 5, 2, true);
    stream_ok("anthropic",
              "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":"
              "\"claude-x\",\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n"
              "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0}\n\n"
              "event: ping\ndata: {\"type\": \"ping\"}\n\n"
              "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":"
              "{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n"
              "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
              "\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\n"
              "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
              "Hi", 12, 3, true);
    stream_ok("gemini",
              "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"A\"}]}}]}\r\n\r\n"
              "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"B\"}]},\"finishReason\":"
              "\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":2}}"
              "\r\n\r\n",
              "AB", 3, 2, true);
    stream_ok("ollama",
              "{\"model\":\"l\",\"message\":{\"role\":\"assistant\",\"content\":\"X\"},\"done\":"
              "false}\n{\"model\":\"l\",\"message\":{\"role\":\"assistant\",\"content\":\"Y\"},"
              "\"done\":false}\n{\"model\":\"l\",\"message\":{\"role\":\"assistant\",\"content\":"
              "\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":8,"
              "\"eval_count\":2}\n",
              "XY", 8, 2, true);
    /* cut short: no end marker */
    stream_ok("openai", "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n", "Hel", -1,
              -1, false);
}

static void test_llm_providers_request_errors(void **state)
{
    static const char *const bad[] = {
        "{}",
        "{\"prompt\": 1}",
        "{\"messages\": [{\"role\": \"bot\", \"content\": \"x\"}]}",
        "{\"messages\": [{\"role\": \"system\", \"content\": \"only system\"}]}",
        "{\"prompt\": \"x\", \"max_tokens\": \"5\"}",
        "{\"messages\": {}}"};
    fl_llm_request req;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *args = json_loads(bad[i], 0, NULL);
        fl_err err = FL_ERR_INIT;

        assert_int_equal(fl_llm_request_init(&req, args, NULL, &err), FL_EINVAL);
        assert_true(err.msg[0] != '\0');
        fl_llm_request_deinit(&req);
        json_decref(args);
    }
}

static void test_llm_providers_json_output(void **state)
{
    fl_llm_response r;
    json_t *o = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    fl_llm_response_init(&r, 1024);
    const char *fenced = "```json\n{\"intent\": \"x\"}\n```\n";

    fl_llm_response_add_text(&r, fenced, strlen(fenced), &err);
    assert_int_equal(fl_llm_response_json(&r, &o, &err), FL_OK);
    assert_string_equal(json_string_value(json_object_get(o, "intent")), "x");
    json_decref(o);
    fl_buf_reset(&r.text);
    fl_llm_response_add_text(&r, "[1]", 3, &err);
    assert_int_equal(fl_llm_response_json(&r, &o, &err), FL_EINVAL);
    fl_llm_response_deinit(&r);
}

static void test_llm_providers_error_classes(void **state)
{
    fl_http_response resp;
    fl_llm_error e;

    (void)state;
    memset(&resp, 0, sizeof(resp));
    resp.status = 429;
    resp.retry_after = "2";
    fl_llm_error_from_http(&resp, 0, &e);
    assert_int_equal(e.kind, FL_LLM_ERR_RATE_LIMITED);
    assert_true(e.retryable);
    assert_int_equal(e.retry_after_ms, 2000);
    resp.retry_after = NULL;
    resp.status = 503;
    fl_llm_error_from_http(&resp, 0, &e);
    assert_true(e.kind == FL_LLM_ERR_UNAVAILABLE && e.retryable && e.retry_after_ms == -1);
    resp.status = 401;
    fl_llm_error_from_http(&resp, 0, &e);
    assert_true(e.kind == FL_LLM_ERR_REJECTED && !e.retryable);
    resp.status = 0;
    fl_err_set(&resp.err, FL_ETIMEDOUT, "timed out");
    fl_llm_error_from_http(&resp, 0, &e);
    assert_true(e.kind == FL_LLM_ERR_TIMEOUT && e.retryable);
    assert_string_equal(fl_llm_err_kind_name(e.kind), "timeout");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llm_providers_openai_request),
        cmocka_unit_test(test_llm_providers_anthropic_request),
        cmocka_unit_test(test_llm_providers_gemini_request),
        cmocka_unit_test(test_llm_providers_ollama_request),
        cmocka_unit_test(test_llm_providers_parse_answers),
        cmocka_unit_test(test_llm_providers_parse_rejects),
        cmocka_unit_test(test_llm_providers_streams),
        cmocka_unit_test(test_llm_providers_request_errors),
        cmocka_unit_test(test_llm_providers_json_output),
        cmocka_unit_test(test_llm_providers_error_classes),
    };

    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
