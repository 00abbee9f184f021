/* core/http.c -- the client object, its submission queue and its one thread driving the
 * curl multi handle (see http.h). Transfer set-up and result mapping: core/http_xfer.c. */
#include "core/http.h"

#include <stdlib.h>
#include <string.h>

#include "core/http_int.h"
#include "core/log.h"

/* While stopping, poll in short slices so the grace deadline is checked often. */
#define STOP_POLL_MS 50
/* Otherwise the thread sleeps until curl's own timers or a wakeup. */
#define IDLE_POLL_MS 1000

static void must(CURLMcode mc)
{
    /* These only fail on a bad handle or option, which is a programmer error, or on
     * OOM, which aborts anyway (R5.1). */
    fl_assert(mc == CURLM_OK);
}

static void fail_stopping(fl_http__xfer *x)
{
    fl_err why = FL_ERR_INIT;

    fl_err_set(&why, FL_EUNAVAIL,
               "could not complete request to \"%s\": the HTTP client is stopping", x->url_safe);
    fl_http__xfer_complete(x, CURLE_OK, &why);
}

void fl_http_new(fl_http **out, const fl_http_opts *opts)
{
    fl_http *c = fl_xcalloc(1, sizeof(*c));

    fl_assert(opts->default_timeout_ms > 0 && opts->max_host_connections >= 0);
    c->opts = *opts;
    c->user_agent = fl_xstrdup(opts->user_agent != NULL ? opts->user_agent : "flowd");
    c->opts.user_agent = c->user_agent;
    c->multi = curl_multi_init();
    fl_assert(c->multi != NULL); /* only NULL on OOM */
    must(curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, opts->max_host_connections));
    must(curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, opts->max_total_connections));
    /* multiplex HTTP/2 streams over one connection (libcurl's default, said out loud) */
    must(curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX));
    pthread_mutex_init(&c->mu, NULL);
    atomic_init(&c->stopping, false);
    *out = c;
}

void fl_http_free(fl_http *client)
{
    if (client == NULL) {
        return;
    }
    fl_http_stop(client);
    /* never started: what was queued is still owed its done callback */
    while (client->queue_head != NULL) {
        fl_http__xfer *x = client->queue_head;
        client->queue_head = x->next;
        fail_stopping(x);
    }
    curl_multi_cleanup(client->multi);
    pthread_mutex_destroy(&client->mu);
    free(client->user_agent);
    free(client);
}

fl_rc fl_http_submit(fl_http *client, const fl_http_request *req, fl_http_done_fn done, void *arg,
                     fl_err *err)
{
    fl_rc rc;
    fl_http__xfer *x = NULL;
    bool closed;

    rc = fl_http__xfer_new(&client->opts, req, done, arg, &x, err);
    if (rc != FL_OK) {
        goto out;
    }
    pthread_mutex_lock(&client->mu);
    closed = client->closed;
    if (!closed) {
        if (client->queue_tail != NULL) {
            client->queue_tail->next = x;
        } else {
            client->queue_head = x;
        }
        client->queue_tail = x;
    }
    pthread_mutex_unlock(&client->mu);
    if (closed) {
        rc = fl_err_set(err, FL_EUNAVAIL,
                        "could not send request to \"%s\": the HTTP client is stopping",
                        x->url_safe);
        goto out;
    }
    x = NULL; /* now owned by the client thread */
    /* thread-safe by contract, and harmless before the thread starts */
    curl_multi_wakeup(client->multi);
out:
    fl_http__xfer_free(x);
    return rc;
}

/* Moves the submitted transfers into the multi (client thread). */
static void take_queue(fl_http *c)
{
    fl_http__xfer *x;

    pthread_mutex_lock(&c->mu);
    x = c->queue_head;
    c->queue_head = NULL;
    c->queue_tail = NULL;
    pthread_mutex_unlock(&c->mu);
    while (x != NULL) {
        fl_http__xfer *next = x->next;
        x->prev = NULL;
        x->next = c->active;
        if (c->active != NULL) {
            c->active->prev = x;
        }
        c->active = x;
        must(curl_multi_add_handle(c->multi, x->easy));
        x = next;
    }
}

static void unlink_active(fl_http *c, fl_http__xfer *x)
{
    if (x->prev != NULL) {
        x->prev->next = x->next;
    } else {
        c->active = x->next;
    }
    if (x->next != NULL) {
        x->next->prev = x->prev;
    }
    must(curl_multi_remove_handle(c->multi, x->easy));
}

/* Completes every finished transfer curl reports. */
static void reap(fl_http *c)
{
    int left = 0;

    for (;;) {
        CURLMsg *m = curl_multi_info_read(c->multi, &left);
        fl_http__xfer *x = NULL;

        if (m == NULL) {
            break;
        }
        if (m->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        unlink_active(c, x);
        fl_http__xfer_complete(x, m->data.result, NULL); /* m is invalid from here */
    }
}

static void *http_main(void *arg)
{
    fl_http *c = arg;
    int64_t deadline = -1;
    int running = 0;

    for (;;) {
        /* read before take_queue: once stopping is seen, the queue is closed for good */
        bool stopping = atomic_load(&c->stopping);
        take_queue(c);
        curl_multi_perform(c->multi, &running);
        reap(c);
        if (stopping && deadline < 0) {
            deadline = fl_http__mono_ms() + c->opts.stop_grace_ms;
        }
        if (stopping && (c->active == NULL || fl_http__mono_ms() >= deadline)) {
            break;
        }
        curl_multi_poll(c->multi, NULL, 0, stopping ? STOP_POLL_MS : IDLE_POLL_MS, NULL);
    }
    while (c->active != NULL) {
        fl_http__xfer *x = c->active;
        unlink_active(c, x);
        fail_stopping(x);
    }
    return NULL;
}

fl_rc fl_http_start(fl_http *client, fl_err *err)
{
    int e;

    fl_assert(!client->thread_started && !atomic_load(&client->stopping)); /* no restart */
    e = pthread_create(&client->thread, NULL, http_main, client);
    if (e != 0) {
        return fl_err_set(err, FL_EINTERNAL, "could not start the HTTP client thread: %s",
                          strerror(e));
    }
    client->thread_started = true;
    return FL_OK;
}

void fl_http_stop(fl_http *client)
{
    if (client == NULL) {
        return;
    }
    pthread_mutex_lock(&client->mu);
    client->closed = true;
    pthread_mutex_unlock(&client->mu);
    if (!client->thread_started) {
        return;
    }
    atomic_store(&client->stopping, true);
    curl_multi_wakeup(client->multi);
    pthread_join(client->thread, NULL);
    client->thread_started = false;
}

typedef struct sync_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;              /* guarded by mu */
    fl_http_response *resp; /* guarded by mu */
} sync_wait;

static void sync_done(void *arg, fl_http_response *resp)
{
    sync_wait *w = arg;

    pthread_mutex_lock(&w->mu);
    *w->resp = *resp; /* the waiter owns every field now */
    memset(resp, 0, sizeof(*resp));
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu); /* w may be gone once the lock is released */
}

fl_rc fl_http_call_sync(fl_http *client, const fl_http_request *req, fl_http_response *resp,
                        fl_err *err)
{
    sync_wait w = {.done = false, .resp = resp};
    fl_rc rc;

    memset(resp, 0, sizeof(*resp));
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    rc = fl_http_submit(client, req, sync_done, &w, err);
    if (rc != FL_OK) {
        fl_err_set(&resp->err, rc, "%s", err != NULL ? err->msg : "request refused");
        goto out;
    }
    /* no timed wait needed: every request has a timeout, and stop completes the rest */
    pthread_mutex_lock(&w.mu);
    while (!w.done) {
        pthread_cond_wait(&w.cv, &w.mu);
    }
    pthread_mutex_unlock(&w.mu);
    rc = resp->err.code;
    if (rc != FL_OK) {
        fl_err_set(err, rc, "%s", resp->err.msg);
    }
out:
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rc;
}
