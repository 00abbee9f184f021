/* api/notify.c -- the LISTEN flowd_changes hub (api/notify.h).
 *
 * Design: one thread owns one libpq connection outside the pool (LISTEN is session
 * state). It connects without blocking (PQconnectStartParams + PQconnectPoll) and waits
 * on PQsocket with poll() in slices of SLICE_MS, so a stop is seen within a slice even
 * while Postgres is unreachable; a broken connection is dropped and re-opened with
 * exponential backoff. Every notification becomes one ring entry under `mu`, and one
 * broadcast wakes every waiter, which then scans the entries it has not seen yet.
 *
 * The ring keeps 64-bit FNV-1a hashes of the instance id and the key, not the strings:
 * no allocation per notification, and a collision is only a spurious wake, which the
 * contract allows (waiters re-read Postgres). A payload that does not parse, and every
 * (re)connect, are entries that match everyone: what happened before them is unknown.
 *
 * The same connection LISTENs on flowd_deltas (streamed reply text, see the header): those
 * payloads go to a second ring, kept whole (they are what a stream relays), and each also
 * makes a change entry for its conversation so its waiters wake.
 *
 * Thread-safety: see the header; the rings, seqs and stopping flag are guarded by mu. */
#include "api/notify.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/backoff.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

#define CHANNEL          "flowd_changes"
#define DELTAS_CHANNEL   "flowd_deltas"
#define SLICE_MS         200
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS   5000

typedef struct ring_entry {
    bool all; /* matches every id: a reconnect or an unreadable payload */
    uint64_t instance_id, key;
} ring_entry;

typedef struct delta_entry {
    uint64_t conv;   /* hash of the conversation id */
    json_t *payload; /* {tenant, conversation, reply, seq, text}, owned */
} delta_entry;

struct fl_notify {
    char *url;
    int connect_timeout_ms;
    pthread_t thread;
    bool started;            /* the thread runs and must be joined */
    atomic_bool stop_thread; /* read by the thread between slices */
    pthread_mutex_t mu;
    pthread_cond_t cv;               /* CLOCK_MONOTONIC: broadcast on every entry and on stop */
    bool stopping;                   /* guarded by mu */
    int waiters;                     /* guarded by mu: threads inside fl_notify_wait */
    uint64_t seq;                    /* guarded by mu: entries so far; entry s is ring[s % N] */
    ring_entry ring[FL_NOTIFY_RING]; /* guarded by mu */
    uint64_t dseq;                   /* guarded by mu: deltas so far */
    delta_entry deltas[FL_NOTIFY_DELTA_RING]; /* guarded by mu */
};

static uint64_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    }
    return h;
}

static void push(fl_notify *n, const ring_entry *e)
{
    pthread_mutex_lock(&n->mu);
    n->seq++;
    n->ring[n->seq % FL_NOTIFY_RING] = *e;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

/* One payload {tenant, instance_id, workflow, key, seq}; anything else wakes everyone. */
static void push_payload(fl_notify *n, const char *payload)
{
    json_t *j = json_loads(payload ? payload : "", 0, NULL);
    const char *id = json_string_value(json_object_get(j, "instance_id"));
    const char *key = json_string_value(json_object_get(j, "key"));
    ring_entry e = {true, 0, 0};

    if (id || key) {
        e = (ring_entry){false, id ? hash_id(id) : 0, key ? hash_id(key) : 0};
    }
    push(n, &e);
    json_decref(j);
}

void fl_notify_inject(fl_notify *n, const char *payload)
{
    push_payload(n, payload);
}

/* One flowd_deltas payload: into the delta ring, and a wake for its conversation. */
static void push_delta(fl_notify *n, const char *payload)
{
    json_t *j = json_loads(payload ? payload : "", 0, NULL);
    const char *conv = json_string_value(json_object_get(j, "conversation"));
    delta_entry *d;
    ring_entry e;

    if (!conv || !json_is_string(json_object_get(j, "text"))) {
        json_decref(j);
        return; /* not ours: nothing to relay */
    }
    e = (ring_entry){false, 0, hash_id(conv)};
    pthread_mutex_lock(&n->mu);
    n->dseq++;
    d = &n->deltas[n->dseq % FL_NOTIFY_DELTA_RING];
    json_decref(d->payload);
    *d = (delta_entry){e.key, j};
    n->seq++;
    n->ring[n->seq % FL_NOTIFY_RING] = e;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

void fl_notify_inject_delta(fl_notify *n, const char *payload)
{
    push_delta(n, payload);
}

/* One of the two sequence counters, read under mu: the listener thread bumps them. */
static uint64_t locked_read(fl_notify *n, const uint64_t *counter)
{
    uint64_t s;

    pthread_mutex_lock(&n->mu);
    s = *counter;
    pthread_mutex_unlock(&n->mu);
    return s;
}

uint64_t fl_notify_delta_now(fl_notify *n)
{
    return locked_read(n, &n->dseq);
}

void fl_notify_deltas(fl_notify *n, const char *tenant, const char *conversation, uint64_t *since,
                      json_t *out)
{
    uint64_t h = hash_id(conversation);

    pthread_mutex_lock(&n->mu);
    if (n->dseq - *since > FL_NOTIFY_DELTA_RING) {
        *since = n->dseq - FL_NOTIFY_DELTA_RING; /* the older ones are gone */
    }
    for (uint64_t s = *since + 1; s <= n->dseq; s++) {
        const delta_entry *d = &n->deltas[s % FL_NOTIFY_DELTA_RING];
        const json_t *p = d->payload;

        if (d->conv != h ||
            strcmp(json_string_value(json_object_get(p, "conversation")), conversation) != 0 ||
            !json_is_string(json_object_get(p, "tenant")) ||
            strcmp(json_string_value(json_object_get(p, "tenant")), tenant) != 0) {
            continue;
        }
        json_array_append_new(
            out, json_pack("{s:O?, s:O?, s:O, s:b}", "reply", json_object_get(p, "reply"), "seq",
                           json_object_get(p, "seq"), "text", json_object_get(p, "text"), "restart",
                           json_is_true(json_object_get(p, "restart"))));
    }
    *since = n->dseq;
    pthread_mutex_unlock(&n->mu);
}

uint64_t fl_notify_now(fl_notify *n)
{
    return locked_read(n, &n->seq);
}

/* True when an entry in (since, n->seq] may concern h (h == 0: any). Called under mu. */
static bool seen_since(const fl_notify *n, uint64_t since, uint64_t h)
{
    if (h == 0 || n->seq - since >= FL_NOTIFY_RING) {
        return true; /* fell behind the ring: what was overwritten is unknown */
    }
    for (uint64_t s = since + 1; s <= n->seq; s++) {
        const ring_entry *e = &n->ring[s % FL_NOTIFY_RING];
        if (e->all || e->instance_id == h || e->key == h) {
            return true;
        }
    }
    return false;
}

static int64_t mono_ms(void)
{
    return fl_clock_mono_ms(fl_clock_system());
}

bool fl_notify_wait(fl_notify *n, const char *id, uint64_t *since, int64_t deadline_ms)
{
    uint64_t h = id ? hash_id(id) : 0;
    struct timespec at = {(time_t)(deadline_ms / 1000), (long)(deadline_ms % 1000) * 1000000L};
    bool woke = false;

    pthread_mutex_lock(&n->mu);
    n->waiters++;
    while (!n->stopping) {
        if (n->seq > *since) {
            woke = seen_since(n, *since, h);
            *since = n->seq;
            if (woke) {
                break;
            }
        }
        if (mono_ms() >= deadline_ms) {
            break;
        }
        pthread_cond_timedwait(&n->cv, &n->mu, &at);
    }
    woke = woke && !n->stopping;
    if (--n->waiters == 0 && n->stopping) {
        pthread_cond_broadcast(&n->cv); /* fl_notify_free waits for the last one */
    }
    pthread_mutex_unlock(&n->mu); /* n may be freed from here on */
    return woke;
}

/* ---- the listener thread ----------------------------------------------------------------- */

static bool stopping(fl_notify *n)
{
    return atomic_load(&n->stop_thread);
}

/* Sleeps up to ms, returning early (false) when the hub stops. */
static bool nap(fl_notify *n, int64_t ms)
{
    struct timespec at = fl_clock_mono_deadline(ms);

    pthread_mutex_lock(&n->mu);
    if (!n->stopping) {
        pthread_cond_timedwait(&n->cv, &n->mu, &at);
    }
    pthread_mutex_unlock(&n->mu);
    return !stopping(n);
}

/* Waits for the socket in one slice. Returns false on a socket error. */
static bool wait_socket(PGconn *pg, short events)
{
    struct pollfd p = {PQsocket(pg), events, 0};

    return p.fd >= 0 && poll(&p, 1, SLICE_MS) >= 0;
}

/* Connects without blocking longer than a slice at a time. NULL on failure or stop. */
static PGconn *connect_async(fl_notify *n)
{
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {n->url, "flowd-notify", NULL};
    int64_t deadline = mono_ms() + n->connect_timeout_ms;
    PGconn *pg = PQconnectStartParams(keys, vals, 1);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;

    while (pg && PQstatus(pg) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
           st != PGRES_POLLING_FAILED && !stopping(n) && mono_ms() < deadline) {
        if (!wait_socket(pg, st == PGRES_POLLING_READING ? POLLIN : POLLOUT)) {
            break;
        }
        st = PQconnectPoll(pg);
    }
    if (pg && st == PGRES_POLLING_OK) {
        return pg;
    }
    fl_log(
        FL_WARN, "notify.connect_failed",
        FL_STR("error", pg && PQstatus(pg) == CONNECTION_BAD ? PQerrorMessage(pg) : "timed out"));
    PQfinish(pg);
    return NULL;
}

static bool listen_on(PGconn *pg)
{
    PGresult *res = PQexec(pg, "LISTEN " CHANNEL "; LISTEN " DELTAS_CHANNEL);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;

    PQclear(res);
    return ok && PQsetnonblocking(pg, 1) == 0;
}

/* Reads notifications until the connection breaks or the hub stops. */
static void serve(fl_notify *n, PGconn *pg)
{
    PGnotify *nf;

    while (!stopping(n)) {
        if (!wait_socket(pg, POLLIN) || !PQconsumeInput(pg)) {
            fl_log(FL_WARN, "notify.disconnected", FL_STR("error", PQerrorMessage(pg)));
            return;
        }
        for (nf = PQnotifies(pg); nf; nf = PQnotifies(pg)) {
            if (strcmp(nf->relname, DELTAS_CHANNEL) == 0) {
                push_delta(n, nf->extra);
            } else {
                push_payload(n, nf->extra);
            }
            PQfreemem(nf);
        }
    }
}

static void *notify_main(void *arg)
{
    fl_notify *n = arg;
    fl_backoff_policy pol = {FL_BACKOFF_EXPONENTIAL, BACKOFF_FIRST_MS, BACKOFF_MAX_MS, 0, 0.5};
    uint64_t seed = (uint64_t)mono_ms() ^ (uint64_t)(uintptr_t)n;
    const ring_entry everyone = {true, 0, 0};
    int failures = 0;

    while (!stopping(n)) {
        PGconn *pg = connect_async(n);
        if (pg && listen_on(pg)) {
            failures = 0;
            fl_log(FL_INFO, "notify.listening", FL_STR("channel", CHANNEL));
            push(n, &everyone); /* what was sent while we were away is unknown */
            serve(n, pg);
        }
        PQfinish(pg);
        if (!stopping(n)) {
            nap(n, fl_backoff_delay_ms(&pol, ++failures, fl_backoff_splitmix64, &seed, -1));
        }
    }
    return NULL;
}

fl_rc fl_notify_start(fl_notify **out, const fl_config_db *cfg, fl_err *err)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(cfg->url ? cfg->url : "", &msg);
    fl_notify *n;

    *out = NULL;
    PQconninfoFree(opts);
    if (!opts) {
        fl_err_set(err, FL_EINVAL, "cannot parse db.url: %s", msg ? msg : "out of memory");
        PQfreemem(msg);
        return FL_EINVAL;
    }
    n = fl_xcalloc(1, sizeof(*n));
    n->url = fl_xstrdup(cfg->url ? cfg->url : "");
    n->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
    pthread_mutex_init(&n->mu, NULL);
    fl_clock_cond_init(&n->cv);
    atomic_init(&n->stop_thread, false);
    if (pthread_create(&n->thread, NULL, notify_main, n) != 0) {
        fl_notify_free(n); /* not started: nothing to join */
        return fl_err_set(err, FL_EINTERNAL, "could not start the notification thread");
    }
    n->started = true;
    *out = n;
    return FL_OK;
}

void fl_notify_stop(fl_notify *n)
{
    if (!n) {
        return;
    }
    pthread_mutex_lock(&n->mu);
    n->stopping = true;
    atomic_store(&n->stop_thread, true);
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

void fl_notify_free(fl_notify *n)
{
    if (!n) {
        return;
    }
    fl_notify_stop(n);
    if (n->started) {
        pthread_join(n->thread, NULL);
    }
    /* waiters still inside fl_notify_wait hold the mutex and condvar: let them leave */
    pthread_mutex_lock(&n->mu);
    while (n->waiters > 0) {
        pthread_cond_wait(&n->cv, &n->mu);
    }
    pthread_mutex_unlock(&n->mu);
    for (size_t i = 0; i < FL_NOTIFY_DELTA_RING; i++) {
        json_decref(n->deltas[i].payload);
    }
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
    free(n->url);
    free(n);
}
