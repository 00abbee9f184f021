/* cmd/validate.c -- `flowd validate` (being written; replaced by the real command). */
#include <stdio.h>

#include "cmd/cli.h"

int fl_cmd_validate(const fl_cli *cli)
{
    (void)cli;
    fprintf(stderr, "flowd: validate is not built yet\n");
    return FL_EXIT_USAGE;
}
