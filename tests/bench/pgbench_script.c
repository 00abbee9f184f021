/* tests/bench/pgbench_script.c -- writes the engine's batch as a pgbench script (the
 * baseline of the engine benchmark, S2) on stdout, through fl_store_script_format, so
 * the yardstick is the engine's own SQL and follows it when it changes.
 *
 * pgbench_script BATCH_SIZE STEPS TENANT WORKFLOW SOURCE TOPIC START_TYPE NEXT_TYPE */
#include <stdio.h>
#include <stdlib.h>

#include "engine/store.h"

static int number(const char *s, const char *what, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (end == s || *end || v < 1 || v > 1000000) {
        fprintf(stderr, "pgbench_script: %s \"%s\" is not a positive number\n", what, s);
        return 1;
    }
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    fl_store_script_opts o = {0};
    fl_err err = FL_ERR_INIT;
    char *text = NULL;

    if (argc != 9) {
        fprintf(stderr, "usage: pgbench_script BATCH_SIZE STEPS TENANT WORKFLOW SOURCE TOPIC "
                        "START_TYPE NEXT_TYPE\n");
        return 2;
    }
    if (number(argv[1], "batch size", &o.batch_size) || number(argv[2], "steps", &o.steps)) {
        return 2;
    }
    o.tenant = argv[3];
    o.workflow = argv[4];
    o.source = argv[5];
    o.topic = argv[6];
    o.start_type = argv[7];
    o.next_type = argv[8];
    if (fl_store_script_format(&o, &text, &err) != FL_OK) {
        fprintf(stderr, "pgbench_script: %s\n", err.msg);
        return 1;
    }
    fputs(text, stdout);
    free(text);
    return fflush(stdout) == 0 ? 0 : 1;
}
