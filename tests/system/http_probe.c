/* tests/system/http_probe.c -- drives core/http and core/backoff for the system tests
 * (test_http_client.py). It prints one JSON object per line on stdout.
 *
 *   http_probe URL N [TIMEOUT_MS [MAX_BYTES [MAX_HOST_CONNECTIONS]]]
 *       N concurrent requests -> one {"event":"response","i":I,"rc":..,"status":..,
 *       "bytes":..,"ms":..,"http_version":..,"content_type":..,"error":..} each, then
 *       {"event":"done","n":N,"ms":T}
 *   http_probe retry URL ATTEMPTS DELAY_MS KEY
 *       POSTs with Idempotency-Key KEY under an exponential policy until a non-retryable
 *       outcome or ATTEMPTS -> {"event":"attempt",...,"delay_ms":D} per attempt, then
 *       {"event":"result",...}
 *   http_probe stream URL
 *       streaming mode -> {"event":"chunk","len":L,"ms":T} per chunk, then a response
 *   http_probe stop URL
 *       one request, then fl_http_stop after 200 ms -> its response and {"event":"stopped",
 *       "ms":T} (how long the stop took)
 *
 * Test code, not product code: printing on stdout is its purpose. */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/backoff.h"
#include "core/clock.h"
#include "core/http.h"
#include "core/log.h"

typedef struct probe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done; /* guarded by mu */
    int64_t t0;
} probe;

/* strtol with a check: atoi cannot report errors (lint bans it) */
static long num(const char *s)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);

    if (end == s || *end != '\0') {
        fprintf(stderr, "http_probe: \"%s\" is not a number\n", s);
        exit(2);
    }
    return v;
}

static int64_t mono_ms(void)
{
    return fl_clock_mono_ms(fl_clock_system());
}

static void emit(json_t *o)
{
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

    printf("%s\n", line);
    fflush(stdout);
    free(line);
    json_decref(o);
}

static json_t *describe(const fl_http_response *r)
{
    return json_pack("{s:s,s:s,s:i,s:I,s:I,s:i,s:s?,s:s?,s:s}", "event", "response", "rc",
                     fl_rc_name(r->err.code), "status", (int)r->status, "bytes",
                     (json_int_t)r->body_len, "ms", (json_int_t)r->total_ms, "http_version",
                     r->http_version, "content_type", r->content_type, "retry_after",
                     r->retry_after, "error", r->err.msg);
}

typedef struct slot {
    probe *p;
    int i;
} slot;

/* Runs on the client thread: prints and counts, nothing more. */
static void on_done(void *arg, fl_http_response *resp)
{
    slot *s = arg;
    json_t *o = describe(resp);

    json_object_set_new(o, "i", json_integer(s->i));
    emit(o);
    pthread_mutex_lock(&s->p->mu);
    s->p->done++;
    pthread_cond_signal(&s->p->cv);
    pthread_mutex_unlock(&s->p->mu);
}

static void wait_for(probe *p, int n)
{
    pthread_mutex_lock(&p->mu);
    while (p->done < n) {
        pthread_cond_wait(&p->cv, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
}

static int concurrent(const char *url, int n, long timeout_ms, size_t max_bytes, long per_host)
{
    fl_http_opts opts = FL_HTTP_OPTS_INIT;
    fl_http *c = NULL;
    probe p = {.done = 0, .t0 = mono_ms()};
    slot *slots = calloc((size_t)n, sizeof(*slots));
    fl_http_request req = {.url = url, .timeout_ms = timeout_ms, .max_response_bytes = max_bytes};
    fl_err err = FL_ERR_INIT;
    int status = 0;

    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    opts.max_host_connections = per_host;
    fl_http_new(&c, &opts);
    if (fl_http_start(c, &err) != FL_OK) {
        n = 0;
        status = 1;
    }
    for (int i = 0; i < n; i++) {
        slots[i] = (slot){.p = &p, .i = i};
        if (fl_http_submit(c, &req, on_done, &slots[i], &err) != FL_OK) {
            emit(json_pack("{s:s,s:s}", "event", "error", "error", err.msg));
            n = i;
            status = 1;
        }
    }
    wait_for(&p, n);
    emit(json_pack("{s:s,s:i,s:I}", "event", "done", "n", n, "ms", (json_int_t)(mono_ms() - p.t0)));
    fl_http_free(c);
    free(slots);
    return status;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

static void emit_attempt(const fl_http_response *resp, int i, const char *key, int64_t delay)
{
    json_t *o = describe(resp);

    json_object_set_new(o, "event", json_string("attempt"));
    json_object_set_new(o, "attempt", json_integer(i));
    json_object_set_new(o, "idempotency_key", json_string(key));
    json_object_set_new(o, "delay_ms", json_integer(delay));
    emit(o);
}

/* One attempt's outcome decides: done, or wait the policy's delay and go again. */
static int retry(fl_http *c, const char *url, int attempts, long delay_ms, const char *key)
{
    fl_backoff_policy pol = FL_BACKOFF_POLICY_INIT;
    uint64_t seed = 1;
    fl_http_request req = {.method = "POST",
                           .url = url,
                           .body = "{}",
                           .body_len = 2,
                           .timeout_ms = 2000,
                           .idempotency_key = key};
    fl_http_response resp;
    int i;

    pol.delay_ms = delay_ms;
    pol.jitter = 0.2;
    for (i = 1; i <= attempts; i++) {
        fl_err err = FL_ERR_INIT;
        int64_t ra = -1, delay = -1;
        bool again;

        fl_http_call_sync(c, &req, &resp, &err);
        again = i < attempts && fl_backoff_is_retryable(resp.err.code, resp.status);
        if (again && resp.retry_after != NULL) {
            fl_backoff_parse_retry_after(resp.retry_after, fl_clock_now_ms(fl_clock_system()), &ra,
                                         NULL);
        }
        if (again) {
            delay = fl_backoff_delay_ms(&pol, i, fl_backoff_splitmix64, &seed, ra);
        }
        emit_attempt(&resp, i, key, delay);
        fl_http_response_deinit(&resp);
        if (!again) {
            break;
        }
        sleep_ms(delay);
    }
    emit(json_pack("{s:s,s:i}", "event", "result", "attempts", i > attempts ? attempts : i));
    return 0;
}

static fl_rc on_chunk(void *arg, const char *data, size_t len)
{
    probe *p = arg;

    (void)data;
    emit(json_pack("{s:s,s:I,s:I}", "event", "chunk", "len", (json_int_t)len, "ms",
                   (json_int_t)(mono_ms() - p->t0)));
    return FL_OK;
}

static void on_done_simple(void *arg, fl_http_response *resp)
{
    slot s = {.p = arg, .i = 0};

    on_done(&s, resp);
}

static int one(fl_http *c, const char *url, bool streaming, bool stop_early)
{
    probe p = {.done = 0, .t0 = mono_ms()};
    fl_http_request req = {.url = url, .timeout_ms = 60000, .max_response_bytes = 1 << 20};
    fl_err err = FL_ERR_INIT;
    int64_t t;

    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    req.on_data = streaming ? on_chunk : NULL;
    if (fl_http_submit(c, &req, on_done_simple, &p, &err) != FL_OK) {
        emit(json_pack("{s:s,s:s}", "event", "error", "error", err.msg));
        return 1;
    }
    if (stop_early) {
        sleep_ms(200);
        t = mono_ms();
        fl_http_stop(c);
        fl_http_stop(c); /* idempotent */
        emit(json_pack("{s:s,s:I}", "event", "stopped", "ms", (json_int_t)(mono_ms() - t)));
    }
    wait_for(&p, 1);
    return 0;
}

int main(int argc, char **argv)
{
    fl_http_opts opts = FL_HTTP_OPTS_INIT;
    fl_http *c = NULL;
    fl_err err = FL_ERR_INIT;
    int status = 2;

    curl_global_init(CURL_GLOBAL_DEFAULT); /* main's job (R8.1) */
    fl_log_set_level(FL_WARN);
    if (argc >= 3 && strcmp(argv[1], "retry") != 0 && strcmp(argv[1], "stream") != 0 &&
        strcmp(argv[1], "stop") != 0) {
        status = concurrent(argv[1], (int)num(argv[2]), argc > 3 ? num(argv[3]) : 0,
                            argc > 4 ? (size_t)num(argv[4]) : 0, argc > 5 ? num(argv[5]) : 8);
        goto out;
    }
    opts.stop_grace_ms = 300;
    fl_http_new(&c, &opts);
    if (fl_http_start(c, &err) != FL_OK) {
        goto out;
    }
    if (argc == 6 && strcmp(argv[1], "retry") == 0) {
        status = retry(c, argv[2], (int)num(argv[3]), num(argv[4]), argv[5]);
    } else if (argc == 3) {
        status = one(c, argv[2], strcmp(argv[1], "stream") == 0, strcmp(argv[1], "stop") == 0);
    } else {
        fprintf(stderr, "usage: see the comment at the top of tests/system/http_probe.c\n");
    }
out:
    fl_http_free(c);
    curl_global_cleanup();
    return status;
}
