/* tests/fuzz/fuzz_yaml_json.c -- YAML -> JSON on arbitrary bytes, with small caps so the
 * fuzzer reaches them. Any input must convert or fail with "LINE:COL: message"; a value
 * must serialize and read back equal through jansson; never a crash, leak or hang. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/yaml_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_value(json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_t *back;

    fl_assert(text != NULL);
    back = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    fl_assert(back != NULL && json_equal(v, back));
    json_decref(back);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const fl_yaml_json_limits lim = {.max_bytes = 64 * 1024, .max_depth = 16, .max_nodes = 2000};
    fl_err err = FL_ERR_INIT;
    json_t *v = NULL;
    unsigned line = 0, col = 0;

    fl_log_set_level(FL_ERROR);
    if (fl_yaml_json_parse((const char *)data, size, &lim, &v, &err) == FL_OK) {
        fl_assert(v != NULL);
        check_value(v);
        json_decref(v);
    } else {
        fl_assert(v == NULL);
        /* every failure says where */
        fl_assert(sscanf(err.msg, "%u:%u: ", &line, &col) == 2 && line >= 1 && col >= 1);
    }
    return 0;
}
