/* core/http_int.h -- shared between core/http.c (client, thread, queue) and
 * core/http_xfer.c (one transfer: easy handle set-up, body capture, result mapping).
 * Not part of the module's interface. */
#ifndef FL_CORE_HTTP_INT_H
#define FL_CORE_HTTP_INT_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "core/http.h"
#include "core/mem.h"

typedef struct fl_http__xfer fl_http__xfer;

struct fl_http {
    fl_http_opts opts; /* opts.user_agent points at user_agent */
    char *user_agent;  /* owned copy */
    CURLM *multi;      /* client thread only, once started */
    int epfd;          /* client thread only: epoll set of curl's sockets and wake_fd */
    int wake_fd;       /* eventfd: any thread writes to wake the client thread */
    int64_t timer_ms;  /* client thread only: curl's next timeout (monotonic), -1 = none */
    pthread_t thread;
    bool thread_started; /* owner only */
    atomic_bool stopping;
    pthread_mutex_t mu;
    fl_http__xfer *queue_head; /* guarded by mu: submitted, not yet in the multi */
    fl_http__xfer *queue_tail; /* guarded by mu */
    bool closed;               /* guarded by mu: submissions are refused */
    fl_http__xfer *active;     /* client thread only: transfers in the multi */
};

struct fl_http__xfer {
    fl_http__xfer *next; /* queue or active list */
    fl_http__xfer *prev; /* active list only */
    CURL *easy;
    struct curl_slist *headers; /* curl keeps the pointer, not a copy */
    char *url_safe;             /* scheme://host:port/path, for messages */
    fl_http_done_fn done;
    fl_http_data_fn on_data;
    void *arg;
    fl_buf body; /* collected body (not in streaming mode), max = cap */
    size_t received;
    size_t max;
    long timeout_ms;
    int64_t started_ms; /* monotonic, at submit */
    fl_err abort_err;   /* why the write callback stopped the transfer */
    char errbuf[CURL_ERROR_SIZE];
};

/* Validates req and builds a transfer with its easy handle (on the caller's thread).
 * Ownership: *out is owned by the caller (fl_http__xfer_free). Errors: FL_EINVAL. */
fl_rc fl_http__xfer_new(const fl_http_opts *opts, const fl_http_request *req, fl_http_done_fn done,
                        void *arg, fl_http__xfer **out, fl_err *err);
void fl_http__xfer_free(fl_http__xfer *x);

/* Fills the response from the finished easy handle (cc is curl's result, or the
 * client's own error when why is non-NULL), calls done once and frees x. */
void fl_http__xfer_complete(fl_http__xfer *x, CURLcode cc, const fl_err *why);

int64_t fl_http__mono_ms(void);

#endif
