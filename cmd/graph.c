/* cmd/graph.c -- `flowd graph` (being written; replaced by the real command). */
#include <stdio.h>

#include "cmd/cli.h"

int fl_cmd_graph(const fl_cli *cli)
{
    (void)cli;
    fprintf(stderr, "flowd: graph is not built yet\n");
    return FL_EXIT_USAGE;
}
