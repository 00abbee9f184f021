/* tests/bench/loadgen.c -- an open-loop HTTP/1.1 load generator (wrk2's idea, small):
 * requests are scheduled at a constant rate, request n at start + n / rate, whatever the
 * server does, and each latency runs from that intended send time to the last byte of
 * the response, so a stalled server is charged for every request it delayed (no
 * coordinated omission). A request whose time has come waits for a free keep-alive
 * connection; its wait counts.
 *
 *     loadgen -p PORT -r RATE -d SECONDS -c CONNS -b BODYFILE [-u PATH] [-t TAG]
 *             [-w SETTLE_SECONDS] [-H 'Name: value']...
 *
 * Sends POST PATH (default /api/v1/events) with the body and headers given; with -t, each
 * request also carries `ce-id: TAG-n` and `ce-subject: TAG-n` (n = 0, 1, ...), so a
 * CloudEvent's instance key names its request. With -w, the run first sends at the same
 * rate for SETTLE_SECONDS whose latencies are not recorded (new connections, first
 * requests on each: wrk2's calibration idea), then the measured SECONDS; every status is
 * counted. One thread, epoll, 127.0.0.1 only.
 * Prints one JSON object: counts per status, latency percentiles in ms, and
 * start_mono (CLOCK_MONOTONIC seconds at n = 0) for callers that time later stages. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MAX_CONNS = 1024, MAX_HEADERS = 32, RBUF = 65536, WBUF = 65536, DRAIN_S = 10 };

typedef struct conn {
    int fd;
    bool busy;
    long n;      /* the request in flight */
    size_t woff; /* bytes of wbuf written */
    size_t wlen; /* bytes of wbuf to write */
    size_t rlen; /* bytes in rbuf */
    char *wbuf;
    char *rbuf;
} conn;

typedef struct opts {
    int port, conns;
    double rate, seconds, settle;
    const char *path, *tag, *body_file;
    const char *headers[MAX_HEADERS];
    int nheaders;
} opts;

typedef struct gen {
    opts o;
    char *body;
    size_t body_len;
    conn *c;
    int *idle; /* stack of idle connection indexes */
    int nidle;
    int ep;
    long total, next, done, errors, reconnects;
    long first_recorded, recorded; /* requests before first_recorded only settle */
    long status[600];
    int64_t start, last; /* n = 0's intended time; the last response */
    double *lat_ms;
} gen;

static int64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t intended(const gen *g, long n)
{
    return g->start + (int64_t)((double)n * 1e9 / g->o.rate);
}

static void die(const char *what)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, errno ? strerror(errno) : "failed");
    exit(1);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = malloc(WBUF);
    size_t n;

    if (f == NULL || buf == NULL) {
        die(path);
    }
    n = fread(buf, 1, WBUF - 1, f);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* ---- connections ------------------------------------------------------------------- */

static int dial(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0) {
        die("socket");
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS) {
        die("connect");
    }
    return fd;
}

static void watch(gen *g, int i, bool out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.u32 = (uint32_t)i};

    if (epoll_ctl(g->ep, EPOLL_CTL_MOD, g->c[i].fd, &ev) != 0) {
        die("epoll_ctl");
    }
}

static void conn_open(gen *g, int i)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    conn *c = &g->c[i];

    c->fd = dial(g->o.port);
    c->busy = false;
    c->rlen = 0;
    if (epoll_ctl(g->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        die("epoll_ctl");
    }
    g->idle[g->nidle++] = i;
}

/* The server closed the connection or it failed: a request in flight is an error. */
static void conn_reset(gen *g, int i)
{
    conn *c = &g->c[i];

    epoll_ctl(g->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->busy) {
        g->errors++;
    } else {
        for (int k = 0; k < g->nidle; k++) {
            if (g->idle[k] == i) {
                g->idle[k] = g->idle[--g->nidle];
                break;
            }
        }
    }
    g->reconnects++;
    conn_open(g, i);
}

/* ---- requests ---------------------------------------------------------------------- */

static size_t format_request(const gen *g, long n, char *out, size_t cap)
{
    size_t len = (size_t)snprintf(out, cap, "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", g->o.path,
                                  g->o.port);

    for (int h = 0; h < g->o.nheaders && len < cap; h++) {
        len += (size_t)snprintf(out + len, cap - len, "%s\r\n", g->o.headers[h]);
    }
    if (g->o.tag != NULL && len < cap) {
        len += (size_t)snprintf(out + len, cap - len, "ce-id: %s-%ld\r\nce-subject: %s-%ld\r\n",
                                g->o.tag, n, g->o.tag, n);
    }
    if (len < cap) {
        len += (size_t)snprintf(out + len, cap - len, "Content-Length: %zu\r\n\r\n", g->body_len);
    }
    if (len + g->body_len >= cap) {
        errno = 0;
        die("request too large");
    }
    memcpy(out + len, g->body, g->body_len);
    return len + g->body_len;
}

/* Writes what the socket takes; asks for EPOLLOUT when some is left. */
static void flush_write(gen *g, int i)
{
    conn *c = &g->c[i];
    ssize_t w = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);

    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        conn_reset(g, i);
        return;
    }
    if (w > 0) {
        c->woff += (size_t)w;
    }
    watch(g, i, c->woff < c->wlen);
}

/* Sends every request whose time has come, while connections are free. */
static void dispatch(gen *g, int64_t now)
{
    while (g->next < g->total && g->nidle > 0 && intended(g, g->next) <= now) {
        int i = g->idle[--g->nidle];
        conn *c = &g->c[i];

        c->busy = true;
        c->n = g->next++;
        c->woff = 0;
        c->wlen = format_request(g, c->n, c->wbuf, WBUF);
        flush_write(g, i);
    }
}

/* ---- responses --------------------------------------------------------------------- */

/* Content-Length of a response head, or -1. */
static long content_length(const char *head, size_t len)
{
    static const char name[] = "\ncontent-length:";

    for (size_t k = 0; k + sizeof(name) - 1 < len; k++) {
        if (strncasecmp(head + k, name, sizeof(name) - 1) == 0) {
            return strtol(head + k + sizeof(name) - 1, NULL, 10);
        }
    }
    return -1;
}

/* Bytes of a complete response at the start of rbuf, or 0 while it is incomplete. */
static size_t complete_response(const conn *c, int *status)
{
    const char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
    size_t head;
    long body;

    if (end == NULL) {
        return 0;
    }
    head = (size_t)(end - c->rbuf) + 4;
    *status = head > 12 ? (int)strtol(c->rbuf + 9, NULL, 10) : 0;
    body = content_length(c->rbuf, head);
    if (body < 0) {
        return head; /* no Content-Length: no body (flowd and the baseline always send one) */
    }
    return head + (size_t)body <= c->rlen ? head + (size_t)body : 0;
}

static void finish(gen *g, int i, int status, int64_t now)
{
    conn *c = &g->c[i];

    if (c->n >= g->first_recorded) {
        g->lat_ms[g->recorded++] = (double)(now - intended(g, c->n)) / 1e6;
    }
    g->done++;
    g->last = now;
    g->status[status > 0 && status < 600 ? status : 0]++;
    c->busy = false;
    g->idle[g->nidle++] = i;
}

static void on_readable(gen *g, int i, int64_t now)
{
    conn *c = &g->c[i];
    ssize_t r = read(c->fd, c->rbuf + c->rlen, RBUF - c->rlen);
    int status = 0;
    size_t used;

    if (r <= 0) {
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            conn_reset(g, i);
        }
        return;
    }
    c->rlen += (size_t)r;
    used = c->busy ? complete_response(c, &status) : c->rlen;
    if (used > 0 && c->busy) {
        finish(g, i, status, now);
    }
    if (used > 0) {
        memmove(c->rbuf, c->rbuf + used, c->rlen - used);
        c->rlen -= used;
    } else if (c->rlen == RBUF) {
        conn_reset(g, i); /* a head larger than the buffer: give up on it */
    }
}

/* ---- the loop ---------------------------------------------------------------------- */

static void wait_events(gen *g, int64_t now)
{
    struct epoll_event evs[256];
    int64_t wait_ns = 100000000;
    struct timespec ts;
    int n;

    if (g->next < g->total && g->nidle > 0) {
        int64_t due = intended(g, g->next) - now;
        wait_ns = due < 0 ? 0 : due < wait_ns ? due : wait_ns;
    }
    ts.tv_sec = wait_ns / 1000000000;
    ts.tv_nsec = wait_ns % 1000000000;
    n = epoll_pwait2(g->ep, evs, 256, &ts, NULL);
    now = mono_ns();
    for (int k = 0; k < n; k++) {
        int i = (int)evs[k].data.u32;
        if (evs[k].events & EPOLLOUT) {
            flush_write(g, i);
        }
        if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            on_readable(g, i, now);
        }
    }
}

static void run(gen *g)
{
    int64_t stop;

    g->start = mono_ns() + 20000000; /* 20 ms for the connections to finish connecting */
    stop = g->start + (int64_t)((g->o.settle + g->o.seconds + DRAIN_S) * 1e9);
    while (g->done + g->errors < g->total) {
        int64_t now = mono_ns();

        if (now > stop) {
            break;
        }
        dispatch(g, now);
        wait_events(g, now);
    }
}

/* ---- set-up and the report --------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double pct(const gen *g, double p)
{
    long k = (long)ceil(p * (double)g->recorded) - 1;

    return g->recorded == 0 ? 0.0 : g->lat_ms[k < 0 ? 0 : k];
}

static void report(gen *g)
{
    double secs = (double)(g->last - g->start) / 1e9;

    qsort(g->lat_ms, (size_t)g->recorded, sizeof(double), cmp_double);
    printf("{\"rate\": %.1f, \"seconds\": %.3f, \"settle_seconds\": %.3f, \"connections\": %d, "
           "\"start_mono\": %.9f, \"scheduled\": %ld, \"sent\": %ld, \"done\": %ld, "
           "\"recorded\": %ld, \"errors\": %ld, \"reconnects\": %ld, \"unfinished\": %ld, "
           "\"achieved_per_s\": %.1f, \"status\": {",
           g->o.rate, secs, g->o.settle, g->o.conns, (double)g->start / 1e9, g->total, g->next,
           g->done, g->recorded, g->errors, g->reconnects, g->total - g->done - g->errors,
           secs > 0 ? (double)g->done / secs : 0.0);
    for (int s = 0, first = 1; s < 600; s++) {
        if (g->status[s] > 0) {
            printf("%s\"%d\": %ld", first ? "" : ", ", s, g->status[s]);
            first = 0;
        }
    }
    printf("}, \"p50_ms\": %.4f, \"p90_ms\": %.4f, \"p99_ms\": %.4f, \"p999_ms\": %.4f, "
           "\"max_ms\": %.4f}\n",
           pct(g, 0.50), pct(g, 0.90), pct(g, 0.99), pct(g, 0.999), pct(g, 1.0));
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen -p PORT -r RATE -d SECONDS -c CONNS -b BODYFILE "
                    "[-u PATH] [-t TAG] [-w SETTLE_SECONDS] [-H 'Name: value']...\n");
    exit(2);
}

static void parse_args(int argc, char **argv, opts *o)
{
    int ch;

    while ((ch = getopt(argc, argv, "p:r:d:c:b:u:t:w:H:")) != -1) {
        if (ch == 'p' || ch == 'c') {
            *(ch == 'p' ? &o->port : &o->conns) = (int)strtol(optarg, NULL, 10);
        } else if (ch == 'r' || ch == 'd' || ch == 'w') {
            *(ch == 'r' ? &o->rate : ch == 'd' ? &o->seconds : &o->settle) = strtod(optarg, NULL);
        } else if (ch == 'b' || ch == 'u' || ch == 't') {
            *(ch == 'b' ? &o->body_file : ch == 'u' ? &o->path : &o->tag) = optarg;
        } else if (ch == 'H' && o->nheaders < MAX_HEADERS) {
            o->headers[o->nheaders++] = optarg;
        } else {
            usage();
        }
    }
    if (o->port <= 0 || o->port > 65535 || o->rate <= 0 || o->seconds <= 0 || o->conns <= 0 ||
        o->conns > MAX_CONNS || o->body_file == NULL || o->settle < 0) {
        usage();
    }
}

static void setup(gen *g)
{
    g->body = read_file(g->o.body_file, &g->body_len);
    g->first_recorded = (long)(g->o.rate * g->o.settle);
    g->total = g->first_recorded + (long)(g->o.rate * g->o.seconds);
    g->lat_ms = calloc((size_t)g->total + 1, sizeof(double));
    g->c = calloc((size_t)g->o.conns, sizeof(conn));
    g->idle = calloc((size_t)g->o.conns, sizeof(int));
    g->ep = epoll_create1(0);
    if (g->lat_ms == NULL || g->c == NULL || g->idle == NULL || g->ep < 0) {
        die("set-up");
    }
    for (int i = 0; i < g->o.conns; i++) {
        g->c[i].wbuf = malloc(WBUF);
        g->c[i].rbuf = malloc(RBUF);
        if (g->c[i].wbuf == NULL || g->c[i].rbuf == NULL) {
            die("malloc");
        }
        conn_open(g, i);
    }
}

int main(int argc, char **argv)
{
    static gen g = {.o = {.path = "/api/v1/events"}};

    parse_args(argc, argv, &g.o);
    setup(&g);
    run(&g);
    report(&g);
    return 0;
}
