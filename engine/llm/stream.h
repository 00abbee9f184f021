/* engine/llm/stream.h -- the incremental frame splitter of streamed LLM answers: bytes
 * in, in chunks cut anywhere, frames out, for the three framings the providers use:
 * data-only SSE ending in `data: [DONE]` (OpenAI, Gemini), named-event SSE (Anthropic)
 * and NDJSON (Ollama).
 *
 * SSE follows the WHATWG event-stream rules that matter here: lines end in \n, \r\n or
 * \r (also when a chunk ends between \r and \n); `data:` lines of one event are joined
 * with \n; `event:` names it; a blank line dispatches it; `:` lines are comments; other
 * fields (id, retry) are ignored; one space after the colon is dropped. NDJSON: every
 * non-blank line is a frame. What a frame means is the adapter's business (llm.h).
 *
 * Thread-safety: a splitter belongs to one thread at a time. */
#ifndef FL_ENGINE_LLM_STREAM_H
#define FL_ENGINE_LLM_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "core/mem.h"
#include "engine/llm/llm.h"

/* Called once per frame; a return other than FL_OK stops feeding and is returned. */
typedef fl_rc (*fl_llm_frame_fn)(void *arg, const fl_llm_frame *f, fl_err *err);

typedef struct fl_llm_splitter {
    fl_llm_framing framing;
    fl_buf line;  /* the line being read */
    fl_buf data;  /* SSE: the data lines of the event being read */
    fl_buf event; /* SSE: its event name */
    bool has_data;
    bool after_cr; /* the last byte was \r: a \n right after it ends nothing */
} fl_llm_splitter;

/* max_bytes caps one line and one event's data (a stream that never ends a line must
 * not grow memory without bound). */
void fl_llm_splitter_init(fl_llm_splitter *s, fl_llm_framing framing, size_t max_bytes);
void fl_llm_splitter_deinit(fl_llm_splitter *s);

/* Feeds bytes. Errors: FL_ETOOBIG (a line or event over the cap), or fn's code. */
fl_rc fl_llm_splitter_feed(fl_llm_splitter *s, const char *p, size_t n, fl_llm_frame_fn fn,
                           void *arg, fl_err *err);

/* The stream ended: a last NDJSON line without a newline is a frame; an SSE event
 * without its blank line is dispatched too (servers that close right after it).
 * Errors: as feed. */
fl_rc fl_llm_splitter_finish(fl_llm_splitter *s, fl_llm_frame_fn fn, void *arg, fl_err *err);

#endif
