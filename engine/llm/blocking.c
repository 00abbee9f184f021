/* engine/llm/blocking.c -- one LLM call run to its end on the caller's thread (see
 * fl_llm_call_blocking in chain.h): the chain's state machine unchanged, its SEND steps
 * performed here with curl, its WAIT steps slept.
 *
 * Why not core/http: its client owns a thread that runs every callback, so streamed text
 * would have to cross threads to reach the caller's connection, and a shared client has
 * no owner that could stop it before curl_global_cleanup. Here each calling thread keeps
 * one easy handle (a pthread key, freed when the thread exits, i.e. at mg_stop, before
 * main's curl_global_cleanup): connections and DNS answers are reused across requests
 * served by the same thread, and streamed text reaches on_delta on that thread as curl
 * hands it over. The transfer is set up as core/http sets up its own: http/https only, no
 * redirects, no signals, a per-attempt timeout, a response size cap, errors mapped to the
 * same fl_rc codes (R4.3: CURLcode stops here). */
#include "engine/llm/chain_int.h"

#include "core/log.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONNECT_TIMEOUT_MS 5000L

typedef struct blk {
    fl_llm_call *call;
    fl_llm_delta_fn on_delta;
    void *arg;
    size_t sent;          /* bytes of the attempt's text handed to on_delta */
    bool delivered;       /* some text of this call has reached the client */
    const char *provider; /* the member of the attempt under way (for messages) */
    size_t received, max;
    fl_err abort; /* why on_body stopped the transfer */
} blk;

static pthread_key_t easy_key;
static pthread_once_t easy_once = PTHREAD_ONCE_INIT;

static void easy_free(void *easy)
{
    curl_easy_cleanup(easy);
}

static void easy_key_init(void)
{
    fl_assert(pthread_key_create(&easy_key, easy_free) == 0);
}

/* This thread's easy handle, its options reset (its connection cache kept). */
static CURL *thread_easy(void)
{
    CURL *e;

    (void)pthread_once(&easy_once, easy_key_init);
    e = pthread_getspecific(easy_key);
    if (e) {
        curl_easy_reset(e);
        return e;
    }
    e = curl_easy_init();
    fl_assert(e != NULL); /* only NULL on OOM */
    fl_assert(pthread_setspecific(easy_key, e) == 0);
    return e;
}

size_t fl_llm_chain_size(const fl_llm_chain *chain)
{
    return chain->n;
}

const fl_config_llm_provider *fl_llm_chain_provider(const fl_llm_chain *chain, size_t i)
{
    fl_assert(i < chain->n);
    return chain->members[i].p;
}

/* Hands the text the attempt has gathered since the last time to on_delta. */
static fl_rc deliver(blk *b)
{
    const fl_buf *t = &b->call->at.resp.text;
    fl_rc rc;

    if (!b->on_delta || t->len <= b->sent) {
        return FL_OK;
    }
    rc = b->on_delta(b->arg, t->data + b->sent, t->len - b->sent);
    b->sent = t->len;
    b->delivered = true;
    return rc;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    blk *b = userdata;
    size_t n = size * nmemb;
    fl_rc rc;

    if (n > b->max - b->received) {
        fl_err_set(&b->abort, FL_ETOOBIG, "the answer is too large: over %zu bytes", b->max);
        return 0; /* not n: curl aborts the transfer */
    }
    b->received += n;
    (void)fl_llm_call_on_data(b->call, ptr, n); /* never fails (chain.h) */
    rc = deliver(b);
    if (rc != FL_OK) {
        fl_err_set(&b->abort, rc, "the client went away");
        return 0;
    }
    return n;
}

static struct curl_slist *headers_of(const fl_http_request *req)
{
    struct curl_slist *h = NULL;
    char *line;

    for (size_t i = 0; i < req->n_headers; i++) {
        line = fl_xasprintf("%s: %s", req->headers[i].name, req->headers[i].value);
        h = curl_slist_append(h, line);
        memset(line, 0, strlen(line)); /* it may hold a key */
        free(line);
    }
    if (req->idempotency_key) {
        line = fl_xasprintf("Idempotency-Key: %s", req->idempotency_key);
        h = curl_slist_append(h, line);
        free(line);
    }
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    fl_assert(h != NULL);                /* only NULL on OOM */
    return h;
}

static void must(CURLcode cc)
{
    fl_assert(cc == CURLE_OK); /* a bad option (programmer error) or OOM */
}

static void setup(CURL *e, blk *b, const fl_http_request *req, struct curl_slist *h, char *errbuf)
{
    must(curl_easy_setopt(e, CURLOPT_URL, req->url));
    must(curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L));
    must(curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https"));
    must(curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf));
    must(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body));
    must(curl_easy_setopt(e, CURLOPT_WRITEDATA, b));
    must(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms));
    must(curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS));
    must(curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)b->max));
    must(curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""));
    must(curl_easy_setopt(e, CURLOPT_USERAGENT, "flowd"));
    must(curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS));
    must(curl_easy_setopt(e, CURLOPT_HTTPHEADER, h));
    /* POSTFIELDS is not copied: the wire body lives in the call until on_response */
    must(curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len));
    must(curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body));
}

static char *header_dup(CURL *e, const char *name)
{
    struct curl_header *h = NULL;

    if (curl_easy_header(e, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK) {
        return NULL;
    }
    return fl_xstrdup(h->value);
}

static fl_rc code_of(CURLcode cc)
{
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return FL_ETIMEDOUT;
    case CURLE_FILESIZE_EXCEEDED:
        return FL_ETOOBIG;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return FL_EUNAVAIL; /* worth another attempt */
    default:
        return FL_EIO;
    }
}

/* The response as core/http would have reported it (streaming mode: no body). */
static void fill(CURL *e, CURLcode cc, const blk *b, const char *errbuf, fl_http_response *resp)
{
    char why[CURL_ERROR_SIZE];

    memset(resp, 0, sizeof(*resp));
    if (b->abort.code != FL_OK) {
        resp->err = b->abort;
    } else if (cc != CURLE_OK) {
        snprintf(why, sizeof(why), "%s", *errbuf ? errbuf : curl_easy_strerror(cc));
        why[0] = (char)tolower((unsigned char)why[0]);
        fl_err_set(&resp->err, code_of(cc), "could not complete the request: %s", why);
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp->status);
    resp->content_type = header_dup(e, "Content-Type");
    resp->retry_after = header_dup(e, "Retry-After");
    resp->body = fl_xstrdup("");
}

/* The client went away mid-answer. The provider did nothing wrong: its guard hears of a
 * success (which also ends a half-open probe) rather than a breaker failure, and the call
 * is abandoned without judging the attempt. */
static void client_left(fl_llm_call *c)
{
    fl_llm_member *m = fl_llm__member(c);

    fl_llm_guard_success(&m->guard, 0, fl_clock_now_ms(c->chain->clock));
    fl_llm__attempt_deinit(&c->at);
    c->phase = PH_DONE;
}

/* One SEND step: performs it and reports it to the call. false = on_delta refused. */
static bool attempt(blk *b, const fl_http_request *req)
{
    CURL *e = thread_easy();
    struct curl_slist *h = headers_of(req);
    char errbuf[CURL_ERROR_SIZE] = "";
    fl_http_response resp;
    CURLcode cc;
    bool left;

    b->sent = 0;
    b->received = 0;
    b->provider = fl_llm__member(b->call)->p->name;
    b->max = req->max_response_bytes;
    fl_err_clear(&b->abort);
    setup(e, b, req, h, errbuf);
    cc = curl_easy_perform(e);
    fill(e, cc, b, errbuf, &resp);
    must(curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL)); /* h is freed next */
    curl_slist_free_all(h);
    fl_log(FL_DEBUG, "llm.attempt", FL_INT("status", resp.status), FL_STR("error", resp.err.msg));
    left = b->abort.code != FL_OK && b->abort.code != FL_ETOOBIG;
    if (left) {
        client_left(b->call);
    } else {
        fl_llm_call_on_response(b->call, &resp);
    }
    fl_http_response_deinit(&resp);
    return !left;
}

static void sleep_until(const fl_clock *clock, int64_t wake_ms)
{
    int64_t ms = wake_ms - fl_clock_mono_ms(clock);
    struct timespec ts;

    if (ms <= 0) {
        return;
    }
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0) {
        /* EINTR: sleep the rest */
    }
}

/* Text reached the client, then its attempt failed: the call ends there. */
static void broke_off(fl_llm_call *c, const char *provider, fl_llm_outcome *out)
{
    fl_llm_acct none = {0};

    memset(out, 0, sizeof(*out));
    out->error_type = "llm.unavailable";
    out->retryable = true;
    snprintf(out->message, sizeof(out->message), "the streamed answer of %s broke off", provider);
    out->usage = fl_llm__usage(c, &none);
}

/* What the client has not seen yet of a finished answer: the text past b->sent. */
static fl_rc deliver_rest(blk *b, const fl_llm_outcome *out)
{
    char *dumped = NULL;
    const char *text = json_string_value(out->result);
    size_t len = json_string_length(out->result);
    fl_rc rc = FL_OK;

    if (!b->on_delta || !out->ok || (!text && b->delivered)) {
        return FL_OK; /* json mode streamed: the client has had the object's text */
    }
    if (!text) { /* json mode, answered whole: the object */
        dumped = json_dumps(out->result, JSON_COMPACT);
        text = dumped ? dumped : "";
        len = strlen(text);
    }
    if (!b->delivered || len > b->sent) {
        size_t from = b->delivered ? b->sent : 0;

        rc = b->on_delta(b->arg, text + from, len - from);
    }
    free(dumped);
    return rc;
}

static void outcome_deinit(fl_llm_outcome *out)
{
    json_decref(out->result);
    json_decref(out->usage);
    memset(out, 0, sizeof(*out));
}

/* Steps the call until it is done; FL_OK or on_delta's code. */
static fl_rc drive(blk *b, fl_llm_outcome *out)
{
    fl_llm_call *c = b->call;
    fl_llm_step st;

    for (;;) {
        fl_llm_call_next(c, &st);
        if (st.kind == FL_LLM_STEP_DONE) {
            fl_llm_call_outcome(c, out);
            return FL_OK;
        }
        if (st.kind == FL_LLM_STEP_WAIT) {
            sleep_until(c->chain->clock, st.wake_ms);
            continue;
        }
        if (!attempt(b, &st.req)) {
            return b->abort.code; /* on_delta refused: the client went away */
        }
        if (b->delivered && c->phase != PH_DONE) {
            broke_off(c, b->provider, out);
            return FL_OK;
        }
    }
}

fl_rc fl_llm_call_blocking(fl_llm_chain *chain, const json_t *args, const char *idempotency_key,
                           long timeout_ms, size_t first, fl_llm_delta_fn on_delta, void *arg,
                           fl_llm_outcome *out, fl_err *err)
{
    blk b = {.on_delta = on_delta, .arg = arg};
    fl_rc rc;

    memset(out, 0, sizeof(*out));
    rc = fl_llm_call_new(&b.call, chain, args, idempotency_key, timeout_ms, err);
    if (rc != FL_OK) {
        return rc;
    }
    /* first is a member index; c->order is the chain's own order here (the gateway's
     * requests name no agent profile, so no preferred provider reorders it) */
    b.call->idx = first < chain->n ? first : 0;
    b.call->req.stream = b.call->req.stream || on_delta != NULL;
    rc = drive(&b, out);
    if (rc == FL_OK) {
        rc = deliver_rest(&b, out);
    }
    if (rc != FL_OK) {
        outcome_deinit(out);
        fl_err_set(err, rc, "the client went away");
    }
    fl_llm_call_free(b.call);
    return rc;
}
