/* tests/fuzz/fuzz_config.c -- the configuration YAML loader on arbitrary bytes.
 * Any input must give FL_OK or an error message; never a crash, leak or hang. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/flowd-fuzz-config-XXXXXX";
    int fd = mkstemp(path);
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;

    if (fd < 0) {
        return 0;
    }
    if (write(fd, data, size) == (ssize_t)size) {
        fl_log_set_level(FL_ERROR);
        if (fl_config_load(&cfg, path, NULL, NULL, 0, &err) == FL_OK) {
            fl_config_free(cfg);
        } else {
            fl_assert(err.msg[0] != '\0'); /* every failure explains itself */
        }
    }
    close(fd);
    unlink(path);
    return 0;
}
