/* core/http.c -- the client object, its submission queue and its one thread driving the
 * curl multi handle (see http.h). Transfer set-up and result mapping: core/http_xfer.c.
 *
 * The thread uses curl's socket interface (curl_multi_socket_action) on an epoll set:
 * curl says which sockets to watch (sock_cb) and when its next timeout is (timer_cb), and
 * the thread tells it only about the sockets that are ready. curl_multi_perform and
 * curl_multi_poll walk every transfer on every wake-up, which with thousands of calls in
 * flight (S4: 2,000) cost more CPU than the calls themselves. An eventfd in the same set
 * wakes the thread for new submissions and for a stop. */
#include "core/http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/http_int.h"
#include "core/log.h"

/* While stopping, poll in short slices so the grace deadline is checked often. */
#define STOP_POLL_MS 50
/* Otherwise the thread sleeps until curl's own timers or a wakeup. */
#define IDLE_POLL_MS 1000
/* Ready sockets taken per epoll_wait. */
#define MAX_EVENTS   256

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

/* curl: watch s for `what` (CURL_POLL_IN/OUT/INOUT), or stop watching it (REMOVE). */
static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    fl_http *c = userp;
    struct epoll_event ev = {.events = 0, .data.fd = s};

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        /* curl may have closed it already, which removed it from the set: ignore ENOENT */
        (void)epoll_ctl(c->epfd, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
    if (socketp == NULL || epoll_ctl(c->epfd, EPOLL_CTL_MOD, s, &ev) != 0) {
        /* new to curl, or a number reused after a close that dropped it from the set */
        if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, s, &ev) != 0 && errno == EEXIST) {
            (void)epoll_ctl(c->epfd, EPOLL_CTL_MOD, s, &ev);
        }
        curl_multi_assign(c->multi, s, c); /* any non-NULL mark: "in the set" */
    }
    return 0;
}

/* curl: call socket_action(CURL_SOCKET_TIMEOUT) in timeout_ms (-1: no timer). */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    fl_http *c = userp;

    (void)multi;
    c->timer_ms = timeout_ms < 0 ? -1 : fl_http__mono_ms() + timeout_ms;
    return 0;
}

static void wake(fl_http *c)
{
    uint64_t one = 1;

    /* only fails when the counter would overflow, and then a wakeup is pending anyway */
    (void)!write(c->wake_fd, &one, sizeof(one));
}

static void open_events(fl_http *c)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = -1};

    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    fl_assert(c->epfd >= 0 && c->wake_fd >= 0); /* only out of descriptors at start */
    ev.data.fd = c->wake_fd;
    fl_assert(epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->wake_fd, &ev) == 0);
    c->timer_ms = -1;
    must(curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb));
    must(curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c));
    must(curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb));
    must(curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c));
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
    open_events(c);
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
    close(client->epfd);
    close(client->wake_fd);
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
    x = NULL;     /* now owned by the client thread */
    wake(client); /* harmless before the thread starts: it looks at the queue first */
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

/* How long epoll may sleep: until curl's timer, at most max_ms. */
static int wait_ms(const fl_http *c, int max_ms)
{
    int64_t left;

    if (c->timer_ms < 0) {
        return max_ms;
    }
    left = c->timer_ms - fl_http__mono_ms();
    return left <= 0 ? 0 : left < max_ms ? (int)left : max_ms;
}

/* One wait for ready sockets, curl's timer or a wakeup, and curl's work on them. */
static void step(fl_http *c, int max_ms)
{
    struct epoll_event evs[MAX_EVENTS];
    int running = 0;
    int n = epoll_wait(c->epfd, evs, MAX_EVENTS, wait_ms(c, max_ms));
    CURLMcode mc;

    for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd;
        int mask = (evs[i].events & (EPOLLIN | EPOLLHUP) ? CURL_CSELECT_IN : 0) |
                   (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                   (evs[i].events & EPOLLERR ? CURL_CSELECT_ERR : 0);
        uint64_t count;

        if (fd == c->wake_fd) {
            (void)!read(c->wake_fd, &count, sizeof(count)); /* reset; the queue says what */
            continue;
        }
        mc = curl_multi_socket_action(c->multi, fd, mask, &running);
        /* BAD_SOCKET: an earlier action of this batch closed it */
        fl_assert(mc == CURLM_OK || mc == CURLM_BAD_SOCKET);
    }
    if (c->timer_ms >= 0 && fl_http__mono_ms() >= c->timer_ms) {
        c->timer_ms = -1; /* timer_cb sets the next one from inside the call */
        must(curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running));
    }
    reap(c);
}

static void *http_main(void *arg)
{
    fl_http *c = arg;
    int64_t deadline = -1;

    pthread_setname_np(pthread_self(), "fl-http"); /* seen in /proc, top -H, gdb */
    for (;;) {
        /* read before take_queue: once stopping is seen, the queue is closed for good */
        bool stopping = atomic_load(&c->stopping);
        take_queue(c);
        if (stopping && deadline < 0) {
            deadline = fl_http__mono_ms() + c->opts.stop_grace_ms;
        }
        if (stopping && (c->active == NULL || fl_http__mono_ms() >= deadline)) {
            break;
        }
        step(c, stopping ? STOP_POLL_MS : IDLE_POLL_MS);
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
    wake(client);
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
