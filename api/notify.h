/* api/notify.h -- the one LISTEN flowd_changes connection of the process, and waiting on it.
 *
 * The engine sends `NOTIFY flowd_changes` with a small JSON payload on every commit:
 *   {"tenant", "instance_id", "workflow", "key", "seq"}   (a conversation's id is its key)
 * (see engine/store*.c). A background thread LISTENs on its own libpq connection (not a
 * pooled one: it holds session state) and keeps the last FL_NOTIFY_RING payloads in a ring
 * with a global sequence number; every arrival wakes all waiters, and each checks the
 * ring for its id. A waiter that fell behind the ring (or a reconnect, which may have
 * lost notifications) is woken as if its id had changed: callers always re-read Postgres
 * after a wake, so a spurious wake costs one query and a lost one is impossible.
 *
 * Usage, e.g. ?wait= on GET /conversations/{id}/messages:
 *
 *     uint64_t since = fl_notify_now(n);    // BEFORE reading Postgres
 *     ...read; if nothing new:
 *     while (fl_notify_wait(n, conv_id, &since, deadline_ms)) { ...read again...; }
 *
 * Thread-safety: all functions may be called from any thread. */
#ifndef FL_API_NOTIFY_H
#define FL_API_NOTIFY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/err.h"

#define FL_NOTIFY_RING 4096

typedef struct fl_notify fl_notify;

/* Starts the listener thread; it connects with cfg->url and reconnects with backoff, so
 * Postgres being down at start is not an error. Ownership: *out (fl_notify_free).
 * Errors: FL_EINVAL (unparsable db.url). */
fl_rc fl_notify_start(fl_notify **out, const fl_config_db *cfg, fl_err *err);

/* Wakes every waiter; from then on waits return false at once (the server calls this
 * before mg_stop so long-polls and streams end promptly). NULL-safe, idempotent. */
void fl_notify_stop(fl_notify *n);

/* Stops (as fl_notify_stop), joins the thread and frees. No waiter may remain. NULL-safe. */
void fl_notify_free(fl_notify *n);

/* The sequence number of the latest notification seen. */
uint64_t fl_notify_now(fl_notify *n);

/* Waits until a notification after *since names `id` (matched against instance_id and
 * key, so a conversation id works; NULL = any notification), or until deadline_ms (the fl_clock_mono_ms(fl_clock_system()) timebase).
 * Returns true on a (possibly spurious) wake and advances *since; false on the deadline
 * or when the hub is stopping. */
bool fl_notify_wait(fl_notify *n, const char *id, uint64_t *since, int64_t deadline_ms);

/* Test hook: feeds one payload as if it had arrived from Postgres. */
void fl_notify_inject(fl_notify *n, const char *payload);

/* ---- streamed reply text: LISTEN flowd_deltas ------------------------------------------
 * The activity worker sends `NOTIFY flowd_deltas` with small chunks of a streamed LLM
 * answer, {tenant, conversation, reply (activity id), seq, text} (engine/activities_
 * deltas.c). They are ephemeral: the hub keeps the last FL_NOTIFY_DELTA_RING in a ring of
 * their own, and each one also wakes the waiters of its conversation like a change (so a
 * stream in fl_notify_wait sees it at once). A stream that falls behind the ring loses
 * the oldest chunks; the stored reply (message.completed) is what it can always rely on. */
#define FL_NOTIFY_DELTA_RING 1024

/* The sequence number of the latest delta seen (take it BEFORE reading Postgres). */
uint64_t fl_notify_delta_now(fl_notify *n);

/* Appends to `out` (a JSON array) the deltas after *since of tenant's conversation, in
 * arrival order, as {reply, seq, text, restart} (restart: drop the text shown so far, a
 * new attempt starts over), and advances *since. */
void fl_notify_deltas(fl_notify *n, const char *tenant, const char *conversation, uint64_t *since,
                      json_t *out);

/* Test hook: feeds one flowd_deltas payload. */
void fl_notify_inject_delta(fl_notify *n, const char *payload);

#endif
