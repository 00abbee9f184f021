/* tests/fuzz/fuzz_llm_stream.c -- the streamed-answer path on arbitrary bytes: the frame
 * splitter (SSE or NDJSON, chosen by the first byte) fed in chunks cut where the second
 * byte says, every frame applied to the matching adapter(s). Any input must end in FL_OK
 * or an error; never a crash, leak or hang. */
#include <stdint.h>
#include <stdlib.h>

#include "core/log.h"
#include "engine/llm/llm.h"
#include "engine/llm/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct ctx {
    const fl_llm_adapter *ad;
    fl_llm_response r;
} ctx;

static fl_rc on_frame(void *arg, const fl_llm_frame *f, fl_err *err)
{
    ctx *c = arg;

    (void)c->ad->frame(f, &c->r, err); /* a bad frame is the adapter's to report */
    fl_err_clear(err);
    return FL_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const kinds[] = {"openai", "anthropic", "gemini", "ollama"};
    fl_llm_splitter sp;
    fl_err err = FL_ERR_INIT;
    ctx c;
    size_t cut;

    if (size < 2) {
        return 0;
    }
    fl_log_set_level(FL_ERROR);
    c.ad = fl_llm_adapter_get(kinds[data[0] % 4]);
    cut = data[1];
    data += 2;
    size -= 2;
    fl_llm_response_init(&c.r, 4096);
    fl_llm_splitter_init(&sp, c.ad->framing, 4096);
    for (size_t at = 0; at < size;) {
        size_t n = cut == 0 ? size - at : (cut < size - at ? cut : size - at);

        if (fl_llm_splitter_feed(&sp, (const char *)data + at, n, on_frame, &c, &err) != FL_OK) {
            break;
        }
        at += n;
    }
    (void)fl_llm_splitter_finish(&sp, on_frame, &c, &err);
    fl_llm_splitter_deinit(&sp);
    fl_llm_response_deinit(&c.r);
    return 0;
}
