/* cmd/validate.c -- `flowd validate FILE...`: checks workflow definitions as a set, and
 * agent profiles: a file whose directory is named `agents` (workflows/agents/x.yaml) is
 * checked as a profile (engine/agents.h, docs/agents.md), the others as workflows.
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
#include <unistd.h>

#include "cmd/cli.h"
#include "core/diag.h"
#include "core/mem.h"
#include "engine/agents.h"
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

/* True when path's directory is named `agents` (the current directory for a bare name). */
static bool is_agent_profile(const char *path)
{
    const char *slash = strrchr(path, '/'), *dir = path;
    char cwd[4096];

    if (!slash) {
        if (!getcwd(cwd, sizeof(cwd))) {
            return false;
        }
        slash = cwd + strlen(cwd);
        dir = cwd;
    }
    while (slash > dir && slash[-1] == '/') {
        slash--;
    }
    return slash - dir >= 6 && strncmp(slash - 6, "agents", 6) == 0 &&
           (slash - dir == 6 || slash[-7] == '/');
}

/* Agent profiles are checked as their own set: ids are unique among the given files (the
 * fallback profile is required by `flowd serve`'s directory load, not here, so a single
 * profile can be checked alone). */
static void check_agents(const fl_cli *cli, fl_diags *d, int *status)
{
    fl_agent **agents = fl_xcalloc(cli->nwords, sizeof(*agents));
    size_t n = 0;

    for (size_t i = 1; i < cli->nwords; i++) {
        fl_rc rc = FL_OK;
        if (is_agent_profile(cli->words[i])) {
            rc = fl_agent_load(cli->words[i], &agents[n], d);
            n += rc == FL_OK;
        }
        if (rc == FL_ENOTFOUND || rc == FL_EIO) {
            *status = FL_EXIT_USAGE;
        }
    }
    fl_agents_check_set(agents, n, false, NULL, d);
    for (size_t i = 0; i < n; i++) {
        fl_agent_free(agents[i]);
    }
    free(agents);
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
        fl_rc rc = FL_OK;
        if (!is_agent_profile(cli->words[i])) {
            rc = fl_workflow_load(cli->words[i], &lim, &wfs[n], &d);
            n += rc == FL_OK;
        }
        if (rc == FL_ENOTFOUND || rc == FL_EIO) {
            status = FL_EXIT_USAGE;
        }
    }
    fl_workflow_check_set(wfs, n, &d);
    check_agents(cli, &d, &status);
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
