/* tests/fuzz/fuzz_body.c -- strict JSON request-body decoding on arbitrary bytes.
 *
 * The first byte is the depth limit (0..63), the rest the body. Any input must decode to
 * a value no deeper than the limit, or give a non-empty errors array whose entries are
 * {pointer, detail} strings with pointers that are "" or start with '/'; a decoded value
 * must serialize and decode again to an equal value; never a crash or a leak (the
 * parse runs in core/json_arena.h's arena, as in flowd). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/body.h"
#include "core/json_arena.h"
#include "core/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_errors(const json_t *errors)
{
    size_t i;
    const json_t *e;

    fl_assert(json_is_array(errors) && json_array_size(errors) > 0);
    json_array_foreach(errors, i, e)
    {
        const char *ptr = json_string_value(json_object_get(e, "pointer"));
        fl_assert(ptr != NULL && (ptr[0] == '\0' || ptr[0] == '/'));
        fl_assert(json_string_value(json_object_get(e, "detail")) != NULL);
    }
}

/* A decoded value round-trips through jansson's encoder and our decoder. */
static void round_trip(const json_t *v, int depth)
{
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    json_t *back = NULL, *errors = NULL;

    fl_assert(text != NULL);
    fl_assert(fl_body_decode(text, strlen(text), depth, &back, &errors));
    fl_assert(errors == NULL && json_equal(back, v));
    json_decref(back);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = NULL, *errors = NULL;
    int depth;

    fl_log_set_level(FL_ERROR);
    fl_json_arena_install(); /* as flowd's main does */
    if (size == 0) {
        return 0;
    }
    depth = data[0] % 64;
    if (fl_body_decode((const char *)data + 1, size - 1, depth, &v, &errors)) {
        fl_assert(v != NULL && errors == NULL);
        round_trip(v, depth);
        json_decref(v);
    } else {
        fl_assert(v == NULL);
        check_errors(errors);
        json_decref(errors);
    }
    fl_assert(fl_json_arena_live() == 0); /* LeakSanitizer does not see arena blocks */
    return 0;
}
