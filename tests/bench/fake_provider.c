/* tests/bench/fake_provider.c -- S4's fake LLM provider (issue 8): OpenAI Chat Completions
 * (`POST .../chat/completions`, a whole `chat.completion` answer) with a chosen latency and
 * injected faults, fast enough for thousands of calls per second.
 *
 * Each request draws from splitmix64(seed + n), n its arrival number, so a run with the same
 * seed makes the same sequence of answers whatever the concurrency. A request is:
 *
 *   - a fault with probability FAULT (default 0.05), split in four equal parts:
 *     429 with `Retry-After: 1`, 500, 503 (all three answered at once, as a rate limiter or
 *     an overloaded front end does), and a hold of HOLD ms (default 1500) before a 200 that
 *     a client with a 1 s timeout never sees;
 *   - otherwise a 200 after LATENCY ms +- JITTER (default 500 ms +- 20 %, uniform).
 *
 * The body is read and parsed with jansson (a request that is not a JSON object with a
 * `messages` array is a 400); the answer is made with jansson. civetweb gives each
 * connection a thread for as long as it stays open, and the latency is a sleep on that
 * thread, so THREADS must cover every connection the client may open (its in-flight cap
 * plus a margin). `GET /stats` answers the counters: requests, ok, and each fault.
 *
 *     fake_provider PORT THREADS [LATENCY_MS JITTER FAULT SEED HOLD_MS]
 *
 * Serves until SIGINT or SIGTERM. Prints "fake_provider: listening on PORT" when ready. */
#include <civetweb.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BODY (256 * 1024)

enum { K_OK, K_429, K_500, K_503, K_HOLD, K_N };

static struct {
    long latency_ms;
    double jitter;
    double fault;
    uint64_t seed;
    long hold_ms;
} cfg = {500, 0.2, 0.05, 1, 1500};

static atomic_ullong arrivals;
static atomic_ullong counts[K_N];
static atomic_ullong bad_requests;
static atomic_llong in_progress; /* requests read and not yet answered */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static double unit(uint64_t x)
{
    return (double)(x >> 11) / 9007199254740992.0; /* [0, 1) from the top 53 bits */
}

static void sleep_ms(double ms)
{
    struct timespec ts;

    if (ms <= 0) {
        return;
    }
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1000) * 1e6);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void send_json(struct mg_connection *conn, int status, const char *extra, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    size_t len = text != NULL ? strlen(text) : 0;

    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n",
              status, mg_get_response_code_text(conn, status), extra, len);
    mg_write(conn, text, len);
    free(text);
    json_decref(body);
}

static json_t *error_body(const char *message, const char *type)
{
    return json_pack("{s:{s:s, s:s}}", "error", "message", message, "type", type);
}

/* The whole body parsed, or NULL (too large, not a JSON object with messages). */
static json_t *read_request(struct mg_connection *conn)
{
    char *buf = malloc(MAX_BODY);
    size_t len = 0;
    int n;
    json_t *req = NULL;

    if (buf == NULL) {
        return NULL;
    }
    while (len < MAX_BODY && (n = mg_read(conn, buf + len, MAX_BODY - len)) > 0) {
        len += (size_t)n;
    }
    if (len < MAX_BODY) {
        req = json_loadb(buf, len, 0, NULL);
    }
    free(buf);
    if (!json_is_array(json_object_get(req, "messages"))) {
        json_decref(req);
        return NULL;
    }
    return req;
}

static json_t *completion(const json_t *req, uint64_t n)
{
    const char *model = json_string_value(json_object_get(req, "model"));
    size_t msgs = json_array_size(json_object_get(req, "messages"));
    char id[48];

    snprintf(id, sizeof(id), "chatcmpl-%llu", (unsigned long long)n);
    return json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:s}], s:{s:i, s:i, s:i}}", "id",
                     id, "object", "chat.completion", "created", (json_int_t)time(NULL), "model",
                     model != NULL ? model : "fake-bench", "choices", "index", 0, "message", "role",
                     "assistant", "content", "Hello from the bench provider.", "finish_reason",
                     "stop", "usage", "prompt_tokens", (int)(8 * msgs), "completion_tokens", 6,
                     "total_tokens", (int)(8 * msgs) + 6);
}

/* Which answer request n gets, and after how many ms. */
static int decide(uint64_t n, double *delay_ms)
{
    uint64_t r = splitmix64(cfg.seed ^ (n * 0x2545f4914f6cdd1dULL));
    double u = unit(r);
    double v = unit(splitmix64(r));

    if (u < cfg.fault) {
        int kind = K_429 + (int)(u / cfg.fault * 4);

        *delay_ms = kind == K_HOLD ? (double)cfg.hold_ms : 0;
        return kind > K_HOLD ? K_HOLD : kind;
    }
    *delay_ms = (double)cfg.latency_ms * (1.0 - cfg.jitter + 2.0 * cfg.jitter * v);
    return K_OK;
}

static int on_completions(struct mg_connection *conn, void *cbdata)
{
    json_t *req = read_request(conn);
    uint64_t n;
    double delay = 0;
    int kind;

    (void)cbdata;
    if (req == NULL) {
        atomic_fetch_add(&bad_requests, 1);
        send_json(conn, 400, "", error_body("not a chat completions request", "invalid_request"));
        return 400;
    }
    n = atomic_fetch_add(&arrivals, 1);
    kind = decide(n, &delay);
    atomic_fetch_add(&counts[kind], 1);
    atomic_fetch_add(&in_progress, 1);
    sleep_ms(delay);
    atomic_fetch_sub(&in_progress, 1);
    if (kind == K_429) {
        send_json(conn, 429, "Retry-After: 1\r\n", error_body("slow down", "rate_limit_exceeded"));
    } else if (kind == K_500 || kind == K_503) {
        send_json(conn, kind == K_500 ? 500 : 503, "",
                  error_body("injected fault", "server_error"));
    } else {
        send_json(conn, 200, "", completion(req, n));
    }
    json_decref(req);
    return 200;
}

static int on_stats(struct mg_connection *conn, void *cbdata)
{
    (void)cbdata;
    send_json(conn, 200, "",
              json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "in_progress",
                        (json_int_t)atomic_load(&in_progress), "requests",
                        (json_int_t)atomic_load(&arrivals), "ok",
                        (json_int_t)atomic_load(&counts[K_OK]), "status_429",
                        (json_int_t)atomic_load(&counts[K_429]), "status_500",
                        (json_int_t)atomic_load(&counts[K_500]), "status_503",
                        (json_int_t)atomic_load(&counts[K_503]), "held",
                        (json_int_t)atomic_load(&counts[K_HOLD]), "bad_requests",
                        (json_int_t)atomic_load(&bad_requests)));
    return 200;
}

static int parse_args(int argc, char **argv, long *port, long *threads)
{
    char *end = NULL;

    if (argc != 3 && argc != 8) {
        return -1;
    }
    *port = strtol(argv[1], &end, 10);
    *threads = strtol(argv[2], NULL, 10);
    if (*end != '\0' || *port < 1 || *port > 65535 || *threads < 1 || *threads > 20000) {
        return -1;
    }
    if (argc == 8) {
        cfg.latency_ms = strtol(argv[3], NULL, 10);
        cfg.jitter = strtod(argv[4], NULL);
        cfg.fault = strtod(argv[5], NULL);
        cfg.seed = strtoull(argv[6], NULL, 10);
        cfg.hold_ms = strtol(argv[7], NULL, 10);
    }
    return cfg.latency_ms >= 0 && cfg.jitter >= 0 && cfg.jitter < 1 && cfg.fault >= 0 &&
                   cfg.fault <= 1 && cfg.hold_ms >= 0
               ? 0
               : -1;
}

static struct mg_context *start_server(long port, long threads)
{
    char ports[64];
    char nthreads[16];
    const char *opts[] = {"listening_ports",
                          ports,
                          "num_threads",
                          nthreads,
                          "connection_queue",
                          "4096",
                          "listen_backlog",
                          "4096",
                          "request_timeout_ms",
                          "30000",
                          "tcp_nodelay",
                          "1",
                          "enable_keep_alive",
                          "yes",
                          "keep_alive_timeout_ms",
                          "60000",
                          "enable_directory_listing",
                          "no",
                          NULL};
    struct mg_context *ctx;

    snprintf(ports, sizeof(ports), "127.0.0.1:%ld", port);
    snprintf(nthreads, sizeof(nthreads), "%ld", threads);
    ctx = mg_start(NULL, NULL, opts);
    if (ctx != NULL) {
        mg_set_request_handler(ctx, "**/chat/completions$", on_completions, NULL);
        mg_set_request_handler(ctx, "/stats$", on_stats, NULL);
    }
    return ctx;
}

int main(int argc, char **argv)
{
    long port = 0;
    long threads = 0;
    sigset_t set;
    int sig = 0;
    struct mg_context *ctx;

    if (parse_args(argc, argv, &port, &threads) != 0) {
        fprintf(stderr, "usage: fake_provider PORT THREADS [LATENCY_MS JITTER FAULT SEED "
                        "HOLD_MS]\n");
        return 2;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    mg_init_library(0);
    ctx = start_server(port, threads);
    if (ctx == NULL) {
        fprintf(stderr, "fake_provider: civetweb did not start on port %ld\n", port);
        return 1;
    }
    printf("fake_provider: listening on %ld\n", port);
    fflush(stdout);
    sigwait(&set, &sig);
    mg_stop(ctx);
    mg_exit_library();
    return 0;
}
