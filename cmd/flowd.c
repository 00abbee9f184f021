/* cmd/flowd.c -- main(): block the stop signals, parse arguments, run the command. */
#include <civetweb.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "core/json_arena.h"

extern char **environ;

int main(int argc, char **argv)
{
    fl_cli cli = {0};
    fl_err err = FL_ERR_INIT;
    sigset_t stop;
    int status;

    /* Block before any thread exists so every thread inherits the mask and only `serve`
   * receives SIGINT/SIGTERM, via sigwait (R9): no async signal handler at all. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (fl_cli_parse(&cli, argc, argv, &err) != FL_OK) {
        fprintf(stderr, "flowd: %s\n", err.msg);
        fl_cli_usage();
        return FL_EXIT_USAGE;
    }
    cli.envp = environ;
    cli.stop_signals = &stop;

    /* process-wide library set-up belongs to main, before any thread starts (R8.1) */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    mg_init_library(0);
    fl_json_arena_install();
    status = fl_cli_run(&cli);
    mg_exit_library();
    curl_global_cleanup();
    return status;
}
