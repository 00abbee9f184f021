/* cmd/validate.c -- `flowd validate FILE...`: checks workflow definitions as a set.
 *
 * Output contract (tests/system/test_validate.py, tests/data/workflows):
 *   - every problem is one line on stderr, `FILE:LINE:COL: error: MESSAGE`, sorted by
 *     file, line and column; a problem without a position (a file that cannot be read)
 *     is `FILE: error: MESSAGE`;
 *   - each file without a problem gets one `FILE: ok` line on stdout;
 *   - exit 0 when every file is valid, 1 when any problem was found, 2 on usage errors
 *     (no file) and when a file cannot be read (the other files are still checked).
 * It reads no configuration and touches no database or broker: it is a pure check of
 * the files, usable in CI and editors.
 *
 * Thread-safety: main thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "core/diag.h"
#include "core/mem.h"
#include "engine/workflow.h"

#define MAX_PROBLEMS 10000

static bool file_has_problem(const fl_diags *d, const char *path)
{
    for (size_t i = 0; i < d->count; i++) {
        if (!strcmp(d->items[i].file, path)) {
            return true;
        }
    }
    return false;
}

static void report(const fl_cli *cli, fl_diags *d)
{
    fl_cli_print_diags(d);
    for (size_t i = 1; i < cli->nwords; i++) {
        if (!file_has_problem(d, cli->words[i])) {
            printf("%s: ok\n", cli->words[i]);
        }
    }
}

int fl_cmd_validate(const fl_cli *cli)
{
    fl_workflow_limits lim = FL_WORKFLOW_LIMITS_DEFAULT;
    fl_workflow **wfs = NULL;
    size_t n = 0;
    fl_diags d;
    int status = FL_EXIT_OK;

    if (cli->nwords < 2) {
        fprintf(stderr, "usage: flowd validate FILE...\n");
        return FL_EXIT_USAGE;
    }
    fl_diags_init(&d, MAX_PROBLEMS);
    wfs = fl_xcalloc(cli->nwords, sizeof(*wfs));
    for (size_t i = 1; i < cli->nwords; i++) {
        fl_rc rc = fl_workflow_load(cli->words[i], &lim, &wfs[n], &d);
        if (rc == FL_OK) {
            n++;
        } else if (rc == FL_ENOTFOUND || rc == FL_EIO) {
            status = FL_EXIT_USAGE;
        }
    }
    fl_workflow_check_set(wfs, n, &d);
    report(cli, &d);
    if (status == FL_EXIT_OK && (d.count || d.dropped)) {
        status = FL_EXIT_FAIL;
    }
    for (size_t i = 0; i < n; i++) {
        fl_workflow_free(wfs[i]);
    }
    free(wfs);
    fl_diags_deinit(&d);
    return status;
}
