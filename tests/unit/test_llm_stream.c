/* tests/unit/test_llm_stream.c -- the frame splitter of streamed LLM answers: recorded
 * streams of each framing (data-only SSE with [DONE], Anthropic's named events, Ollama's
 * NDJSON) give the same frames whatever the chunking -- fed whole, byte by byte, and
 * split in two at every offset -- plus CRLF/CR line ends, comments, multi-line data and
 * the size cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/llm/stream.h"

/* The frames seen, as "event|data\n" lines. */
typedef struct seen {
    fl_buf out;
    int n;
} seen;

static fl_rc collect(void *arg, const fl_llm_frame *f, fl_err *err)
{
    seen *s = arg;

    s->n++;
    return fl_buf_appendf(&s->out, err, "%.*s|%.*s\n", (int)f->event_len, f->event,
                          (int)f->data_len, f->data);
}

/* Feeds text in pieces cut at the given offsets (sorted, < len); returns the frames. */
static char *run(fl_llm_framing framing, const char *text, const size_t *cuts, size_t ncuts)
{
    fl_llm_splitter sp;
    seen s = {.n = 0};
    size_t at = 0, len = strlen(text);
    fl_err err = FL_ERR_INIT;

    fl_buf_init(&s.out, 1 << 20);
    fl_llm_splitter_init(&sp, framing, 1 << 16);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        /* a copy without a NUL after it: the splitter must not read past a chunk */
        char *chunk = malloc(end - at + 1);

        memcpy(chunk, text + at, end - at);
        assert_int_equal(fl_llm_splitter_feed(&sp, chunk, end - at, collect, &s, &err), FL_OK);
        free(chunk);
        at = end;
    }
    assert_int_equal(fl_llm_splitter_finish(&sp, collect, &s, &err), FL_OK);
    fl_llm_splitter_deinit(&sp);
    if (!s.out.data) {
        return strdup("");
    }
    return fl_buf_steal(&s.out);
}

/* Same frames for the whole text, every two-way split, and byte by byte. */
static void same_everywhere(fl_llm_framing framing, const char *text, const char *want)
{
    size_t len = strlen(text);
    size_t *bytes = calloc(len + 1, sizeof(*bytes));
    char *got = run(framing, text, NULL, 0);

    assert_string_equal(got, want);
    free(got);
    for (size_t cut = 1; cut < len; cut++) {
        got = run(framing, text, &cut, 1);
        assert_string_equal(got, want);
        free(got);
    }
    for (size_t i = 1; i < len; i++) {
        bytes[i - 1] = i;
    }
    got = run(framing, text, bytes, len > 0 ? len - 1 : 0);
    assert_string_equal(got, want);
    free(got);
    free(bytes);
}

static void test_llm_stream_openai_data_only(void **state)
{
    (void)state;
    same_everywhere(FL_LLM_FRAMING_SSE,
                    "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
                    "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n"
                    "data: [DONE]\n\n",
                    "|{\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n"
                    "|{\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n"
                    "|[DONE]\n");
}

static void test_llm_stream_anthropic_named_events(void **state)
{
    (void)state;
    same_everywhere(FL_LLM_FRAMING_SSE,
                    "event: message_start\r\ndata: {\"type\":\"message_start\"}\r\n\r\n"
                    "event: ping\r\ndata: {}\r\n\r\n"
                    ": a comment\r\n"
                    "event: content_block_delta\r\nid: 7\r\n"
                    "data: {\"delta\":{\"text\":\"Hi\"}}\r\n\r\n"
                    "event: message_stop\r\ndata: {}\r\n\r\n",
                    "message_start|{\"type\":\"message_start\"}\n"
                    "ping|{}\n"
                    "content_block_delta|{\"delta\":{\"text\":\"Hi\"}}\n"
                    "message_stop|{}\n");
}

static void test_llm_stream_ndjson(void **state)
{
    (void)state;
    same_everywhere(FL_LLM_FRAMING_NDJSON,
                    "{\"message\":{\"content\":\"a\"},\"done\":false}\n\n"
                    "{\"message\":{\"content\":\"b\"},\"done\":false}\r\n"
                    "{\"done\":true,\"eval_count\":2}",
                    "|{\"message\":{\"content\":\"a\"},\"done\":false}\n"
                    "|{\"message\":{\"content\":\"b\"},\"done\":false}\n"
                    "|{\"done\":true,\"eval_count\":2}\n");
}

static void test_llm_stream_sse_details(void **state)
{
    (void)state;
    /* CR-only line ends, multi-line data joined with \n, no space after the colon, an
     * event without data (not dispatched), a last event without its blank line */
    same_everywhere(FL_LLM_FRAMING_SSE,
                    "data:one\rdata: two\r\revent: lonely\r\n\r\nevent: x\ndata: last",
                    "|one\ntwo\nx|last\n");
}

static fl_rc stop_at_second(void *arg, const fl_llm_frame *f, fl_err *err)
{
    int *n = arg;

    (void)f;
    return ++*n == 2 ? fl_err_set(err, FL_EINVAL, "stop") : FL_OK;
}

static void test_llm_stream_callback_error_and_cap(void **state)
{
    fl_llm_splitter sp;
    fl_err err = FL_ERR_INIT;
    int n = 0;
    char big[200];

    (void)state;
    fl_llm_splitter_init(&sp, FL_LLM_FRAMING_NDJSON, 64);
    assert_int_equal(fl_llm_splitter_feed(&sp, "a\nb\nc\n", 6, stop_at_second, &n, &err),
                     FL_EINVAL);
    assert_int_equal(n, 2);
    fl_llm_splitter_deinit(&sp);

    memset(big, 'x', sizeof(big));
    fl_err_clear(&err);
    fl_llm_splitter_init(&sp, FL_LLM_FRAMING_SSE, 64);
    assert_int_equal(fl_llm_splitter_feed(&sp, big, sizeof(big), stop_at_second, &n, &err),
                     FL_ETOOBIG);
    fl_llm_splitter_deinit(&sp);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llm_stream_openai_data_only),
        cmocka_unit_test(test_llm_stream_anthropic_named_events),
        cmocka_unit_test(test_llm_stream_ndjson),
        cmocka_unit_test(test_llm_stream_sse_details),
        cmocka_unit_test(test_llm_stream_callback_error_and_cap),
    };

    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
