/* tests/fuzz/replay.c -- runs a libFuzzer target over files, without libFuzzer.
 *
 * `make test` builds every fuzz target with gcc + ASan/UBSan against this driver and
 * replays the seed corpus, so a seed that once crashed stays fixed. The coverage-guided
 * campaign (`make fuzz`) links the same target with clang's -fsanitize=fuzzer instead. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    int failed = 0;

    for (int i = 1; i < argc; i++) {
        fl_buf b;
        fl_err err = FL_ERR_INIT;
        fl_buf_init(&b, 16 << 20);
        if (fl_buf_read_file(&b, argv[i], &err) != FL_OK) {
            fprintf(stderr, "replay: %s\n", err.msg);
            failed++;
        } else {
            LLVMFuzzerTestOneInput((const uint8_t *)(b.data ? b.data : ""), b.len);
        }
        fl_buf_deinit(&b);
    }
    printf("replay: %d inputs, %d unreadable\n", argc - 1, failed);
    return failed ? 1 : 0;
}
