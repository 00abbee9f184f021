/* cmd/cli.h -- the `flowd` command line: argument parsing and the subcommands.
 *
 *   flowd [--config FILE] [--<setting>=VALUE ...] <command> [args]
 *
 * Every configuration key is also a flag (--http.port=9090, --kafka.<property>=...).
 * This is the CLI's output code: the only place besides core/log.c that prints.
 *
 * Thread-safety: main thread only. */
#ifndef FL_CMD_CLI_H
#define FL_CMD_CLI_H

#include <signal.h>
#include <stddef.h>

#include "core/config.h"
#include "core/diag.h"

#define FL_CLI_MAX_FLAGS 64
#define FL_CLI_MAX_WORDS 512 /* validate takes many files */

/* Exit statuses: 0 success, 1 failure (bad config, dependency down), 2 usage error. */
enum { FL_EXIT_OK = 0, FL_EXIT_FAIL = 1, FL_EXIT_USAGE = 2 };

typedef struct fl_cli {
    const char *config_path; /* --config, or NULL */
    fl_config_flag flags[FL_CLI_MAX_FLAGS];
    size_t nflags;
    const char *words[FL_CLI_MAX_WORDS]; /* the command and its arguments */
    size_t nwords;
    const char *wait;   /* --wait (topics ensure) */
    const char *format; /* --format (graph) */
    char *const *envp;
    const sigset_t *stop_signals; /* blocked in main, awaited by serve */
} fl_cli;

/* Parses argv into cli (which borrows argv's strings). Errors: FL_EINVAL (usage). */
fl_rc fl_cli_parse(fl_cli *cli, int argc, char **argv, fl_err *err);

/* Runs the command; returns the process exit status. */
int fl_cli_run(const fl_cli *cli);

/* Loads the configuration the way every command does (file discovery, env, flags) and
 * applies its log level. Ownership: *out is owned by the caller (fl_config_free). */
fl_rc fl_cli_load_config(const fl_cli *cli, fl_config **out, fl_err *err);

/* Prints located problems on stderr, sorted, one `FILE:LINE:COL: error: MESSAGE` line
 * each, and how many were left out past the list's cap. */
void fl_cli_print_diags(fl_diags *d);

/* Prints the usage text on stderr. */
void fl_cli_usage(void);

/* Commands in their own files. */
int fl_cmd_serve(const fl_cli *cli);
int fl_cmd_migrate(const fl_cli *cli);
int fl_cmd_topics(const fl_cli *cli);
int fl_cmd_validate(const fl_cli *cli); /* cmd/validate.c */
int fl_cmd_graph(const fl_cli *cli);    /* cmd/graph.c */
int fl_cmd_keys(const fl_cli *cli);     /* cmd/keys.c */

#endif
