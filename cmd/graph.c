/* cmd/graph.c -- `flowd graph FILE [--format mermaid|dot]`: the state diagram
 * of one definition on stdout (engine/graph.h says what it shows).
 *
 * The definition is loaded and checked exactly as `flowd validate` does,
 * because a diagram of an invalid definition would mislead: its problems go to
 * stderr as FILE:LINE:COL: error: MESSAGE and the exit status is 1. Usage and
 * I/O errors exit 2. It reads no configuration: like validate, it must work on
 * an author's laptop. */
#include <stdio.h>

#include "cmd/cli.h"
#include "core/diag.h"
#include "core/mem.h"
#include "engine/graph.h"
#include "engine/workflow.h"

/* A diagram is a few lines per transition; the loader caps a definition at 1
 * MiB. */
#define GRAPH_MAX_BYTES (64u << 20)
#define GRAPH_MAX_DIAGS 1000

/* Not found and unreadable files are I/O errors (2); anything the loader
 * reports about the text, a too-large file included, makes the definition
 * invalid (1). */
static int load_status(fl_rc rc)
{
    return rc == FL_ENOTFOUND || rc == FL_EIO ? FL_EXIT_USAGE : FL_EXIT_FAIL;
}

static int write_out(const fl_buf *out)
{
    if (fwrite(out->data, 1, out->len, stdout) != out->len || fflush(stdout) != 0) {
        fprintf(stderr, "flowd: could not write the graph: output error\n");
        return FL_EXIT_USAGE;
    }
    return FL_EXIT_OK;
}

int fl_cmd_graph(const fl_cli *cli)
{
    fl_workflow_limits lim = FL_WORKFLOW_LIMITS_DEFAULT;
    fl_graph_format fmt = FL_GRAPH_MERMAID;
    fl_workflow *wf = NULL;
    fl_diags diags;
    fl_buf out;
    fl_err err = FL_ERR_INIT;
    fl_rc rc;
    int status;

    if (cli->nwords != 2 || !fl_graph_format_parse(cli->format, &fmt)) {
        fl_cli_usage();
        return FL_EXIT_USAGE;
    }
    fl_diags_init(&diags, GRAPH_MAX_DIAGS);
    fl_buf_init(&out, GRAPH_MAX_BYTES);
    rc = fl_workflow_load(cli->words[1], &lim, &wf, &diags);
    if (rc != FL_OK) {
        fl_cli_print_diags(&diags);
        status = load_status(rc);
    } else if (fl_graph_render(wf, fmt, &out, &err) != FL_OK) {
        fprintf(stderr, "flowd: cannot render \"%s\": %s\n", cli->words[1], err.msg);
        status = FL_EXIT_FAIL;
    } else {
        status = write_out(&out);
    }
    fl_buf_deinit(&out);
    fl_workflow_free(wf);
    fl_diags_deinit(&diags);
    return status;
}
