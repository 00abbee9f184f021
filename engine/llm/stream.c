/* engine/llm/stream.c -- the frame splitter (see stream.h). A small line machine: bytes
 * gather into `line` until an end of line; each complete line is then either an NDJSON
 * frame or one SSE field. Nothing depends on where the chunks were cut, which the unit
 * test checks by feeding every recorded stream split at every byte. */
#include "engine/llm/stream.h"

#include <string.h>

void fl_llm_splitter_init(fl_llm_splitter *s, fl_llm_framing framing, size_t max_bytes)
{
    memset(s, 0, sizeof(*s));
    s->framing = framing;
    fl_buf_init(&s->line, max_bytes);
    fl_buf_init(&s->data, max_bytes);
    fl_buf_init(&s->event, 256);
}

void fl_llm_splitter_deinit(fl_llm_splitter *s)
{
    fl_buf_deinit(&s->line);
    fl_buf_deinit(&s->data);
    fl_buf_deinit(&s->event);
}

static fl_rc dispatch(fl_llm_splitter *s, fl_llm_frame_fn fn, void *arg, fl_err *err)
{
    fl_llm_frame f = {s->event.data ? s->event.data : "", s->event.len,
                      s->data.data ? s->data.data : "", s->data.len};
    fl_rc rc = s->has_data ? fn(arg, &f, err) : FL_OK;

    fl_buf_reset(&s->data);
    fl_buf_reset(&s->event);
    s->has_data = false;
    return rc;
}

/* One SSE field line: name[:[ ]value]. */
static fl_rc sse_field(fl_llm_splitter *s, const char *l, size_t n, fl_err *err)
{
    const char *colon = memchr(l, ':', n);
    size_t name_len = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    size_t vlen = (size_t)(l + n - v);
    fl_rc rc = FL_OK;

    if (vlen && *v == ' ') {
        v++;
        vlen--;
    }
    if (name_len == 4 && memcmp(l, "data", 4) == 0) {
        if (s->has_data) {
            rc = fl_buf_append(&s->data, "\n", 1, err);
        }
        if (rc == FL_OK) {
            rc = fl_buf_append(&s->data, v, vlen, err);
        }
        s->has_data = true;
    } else if (name_len == 5 && memcmp(l, "event", 5) == 0) {
        fl_buf_reset(&s->event);
        rc = fl_buf_append(&s->event, v, vlen, err);
    }
    return rc; /* comments (name_len 0), id, retry and unknown fields are ignored */
}

static bool blank(const char *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!strchr(" \t", l[i])) {
            return false;
        }
    }
    return true;
}

static fl_rc end_line(fl_llm_splitter *s, fl_llm_frame_fn fn, void *arg, fl_err *err)
{
    const char *l = s->line.data ? s->line.data : "";
    size_t n = s->line.len;
    fl_rc rc;

    if (s->framing == FL_LLM_FRAMING_NDJSON) {
        fl_llm_frame f = {"", 0, l, n};

        rc = blank(l, n) ? FL_OK : fn(arg, &f, err);
    } else if (n == 0) {
        rc = dispatch(s, fn, arg, err);
    } else {
        rc = sse_field(s, l, n, err);
    }
    fl_buf_reset(&s->line);
    return rc;
}

/* Bytes before the first \r or \n (a chunk is not NUL-terminated: no strcspn). */
static size_t line_run(const char *p, size_t n)
{
    size_t i = 0;

    while (i < n && p[i] != '\r' && p[i] != '\n') {
        i++;
    }
    return i;
}

fl_rc fl_llm_splitter_feed(fl_llm_splitter *s, const char *p, size_t n, fl_llm_frame_fn fn,
                           void *arg, fl_err *err)
{
    fl_rc rc = FL_OK;
    size_t i = 0;

    while (i < n && rc == FL_OK) {
        size_t run = line_run(p + i, n - i);

        if (run == 0 && p[i] == '\n' && s->after_cr) {
            s->after_cr = false; /* the \n of a \r\n split by the chunking */
            i++;
            continue;
        }
        s->after_cr = false;
        rc = fl_buf_append(&s->line, p + i, run, err);
        i += run;
        if (rc == FL_OK && i < n) {
            s->after_cr = p[i] == '\r';
            i++;
            rc = end_line(s, fn, arg, err);
        }
    }
    return rc;
}

fl_rc fl_llm_splitter_finish(fl_llm_splitter *s, fl_llm_frame_fn fn, void *arg, fl_err *err)
{
    fl_rc rc = FL_OK;

    if (s->line.len > 0) {
        rc = end_line(s, fn, arg, err);
    }
    if (rc == FL_OK && s->framing == FL_LLM_FRAMING_SSE) {
        rc = dispatch(s, fn, arg, err);
    }
    return rc;
}
