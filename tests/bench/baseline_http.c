/* tests/bench/baseline_http.c -- S1's baseline (issue 8): the trivial civetweb handler that
 * POST /api/v1/events is measured against. It reads the whole request body and answers
 * 202 with a small JSON object, nothing else: no auth, no parsing, no Kafka.
 *
 * It runs civetweb exactly as api/server.c does (the options of build_options():
 * listening port on 127.0.0.1, the same thread count, tcp_nodelay=1, keep-alive with a
 * 30 s timeout, the same request timeout and header size cap, no directory listing), is
 * compiled with the same compiler options (the Makefile's bench rule) and, like flowd,
 * writes the response headers and the body with separate calls.
 *
 *     baseline_http PORT THREADS
 *
 * Serves until SIGINT or SIGTERM. Prints "baseline_http: listening on PORT" when ready. */
#include <civetweb.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char reply[] = "{\"accepted\":1,\"results\":[{\"status\":202}]}";

/* Reads and drops the body, then answers 202. */
static int on_events(struct mg_connection *conn, void *cbdata)
{
    char buf[8192];
    char head[256];
    int n;

    (void)cbdata;
    do {
        n = mg_read(conn, buf, sizeof(buf));
    } while (n > 0);
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\n\r\n",
                 sizeof(reply) - 1);
    mg_write(conn, head, (size_t)n);
    mg_write(conn, reply, sizeof(reply) - 1);
    return 202;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Blocks the stop signals (before civetweb starts its threads) and waits for one. */
static void wait_for_stop(const sigset_t *set)
{
    int sig = 0;

    sigwait(set, &sig);
}

/* civetweb with api/server.c's options (civetweb copies them, so locals will do). */
static struct mg_context *start_server(long port, long threads)
{
    char ports[64];
    char nthreads[16];
    const char *opts[] = {"listening_ports",
                          ports,
                          "num_threads",
                          nthreads,
                          "request_timeout_ms",
                          "30000",
                          "max_request_size",
                          "16384",
                          "tcp_nodelay",
                          "1",
                          "enable_keep_alive",
                          "yes",
                          "keep_alive_timeout_ms",
                          "30000",
                          "enable_directory_listing",
                          "no",
                          NULL};
    struct mg_context *ctx;

    snprintf(ports, sizeof(ports), "127.0.0.1:%ld", port);
    snprintf(nthreads, sizeof(nthreads), "%ld", threads);
    ctx = mg_start(NULL, NULL, opts);
    if (ctx != NULL) {
        mg_set_request_handler(ctx, "/api/v1/events$", on_events, NULL);
    }
    return ctx;
}

int main(int argc, char **argv)
{
    long port = 0;
    long threads = 0;
    sigset_t set;
    struct mg_context *ctx;

    if (argc != 3 || parse_int(argv[1], 1, 65535, &port) != 0 ||
        parse_int(argv[2], 1, 1024, &threads) != 0) {
        fprintf(stderr, "usage: baseline_http PORT THREADS\n");
        return 2;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    mg_init_library(0);
    ctx = start_server(port, threads);
    if (ctx == NULL) {
        fprintf(stderr, "baseline_http: civetweb did not start on port %ld\n", port);
        return 1;
    }
    printf("baseline_http: listening on %ld\n", port);
    fflush(stdout);
    wait_for_stop(&set);
    mg_stop(ctx);
    mg_exit_library();
    return 0;
}
