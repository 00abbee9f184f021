/* api/conversations_sse.c -- Server-Sent Events: GET /conversations/{id}/events and the
 * streamed reply of POST /conversations/{id}/messages (Accept: text/event-stream).
 *
 * Events: `message.delta` and `message.completed` (assistant and system messages of the
 * transcript; user messages are the client's own and are not repeated), `stage.changed`
 * (a history row whose state differs from the one before), `error` (the conversation
 * entered ERROR_RECOVERY; also, without an id, a stream that must stop on a server-side
 * failure).
 *
 * Event ids make resumption exact. A stream position is two counters "H-M": H counts
 * the events of history rows, M those of transcript rows; row n's events are numbered
 * 2n-1 (the first of a pair: error, or message.delta) and 2n (the last: stage.changed,
 * message.completed). Each event's id is the position right after it, so
 * `Last-Event-ID: H-M` resumes with history events numbered > H and message events
 * numbered > M: nothing sent twice, nothing skipped, whatever interleaving the merge
 * chose. The two sequences are each written in order by the engine (one writer per
 * key), so a row never appears behind a position already passed. Without Last-Event-ID
 * a stream starts at "now"; `Last-Event-ID: 0-0` replays the whole conversation.
 *
 * The body is chunked (no Content-Length), so keep-alive survives the end of a stream.
 * Once the header is out nothing may answer a problem, so the stream's own reads use the
 * pool directly and report failures as an `error` event. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/conversations_int.h"
#include "api/notify.h"
#include "api/publish.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/mem.h"

#define RETRY_MS 3000 /* the client's reconnect delay (the `retry:` field) */

bool fl_sse__wanted(const fl_req *r)
{
    const char *accept = fl_req_header(r, "Accept");

    return accept && strstr(accept, "text/event-stream") != NULL;
}

static bool chunk(fl_req *r, const char *data, size_t len)
{
    return mg_send_chunk(r->conn, data, (unsigned int)len) > 0;
}

bool fl_sse__begin(fl_req *r)
{
    char head[1536];
    char retry[64];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\n"
                     "Content-Type: text/event-stream\r\n"
                     "Cache-Control: no-store\r\n"
                     "X-Accel-Buffering: no\r\n"
                     "Transfer-Encoding: chunked\r\n"
                     "X-Request-Id: %s\r\n"
                     "%s%s%s"
                     "%s\r\n",
                     r->request_id, r->traceparent[0] ? "traceparent: " : "", r->traceparent,
                     r->traceparent[0] ? "\r\n" : "", r->extra);

    r->status = 200;
    if (n < 0 || (size_t)n >= sizeof(head) || mg_write(r->conn, head, (size_t)n) != n) {
        return false;
    }
    n = snprintf(retry, sizeof(retry), "retry: %d\n\n", RETRY_MS);
    return chunk(r, retry, (size_t)n);
}

bool fl_sse__event(fl_req *r, const char *id, const char *name, const json_t *data)
{
    char *text = json_dumps(data, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    fl_buf b;
    bool ok;

    fl_buf_init(&b, SIZE_MAX);
    if (id) {
        (void)fl_buf_appendf(&b, NULL, "id: %s\n", id);
    }
    /* compact JSON has no newline, so one data line carries it */
    (void)fl_buf_appendf(&b, NULL, "event: %s\ndata: %s\n\n", name, text ? text : "null");
    ok = chunk(r, b.data, b.len);
    fl_buf_deinit(&b);
    free(text);
    return ok;
}

bool fl_sse__comment(fl_req *r, const char *text)
{
    char line[128];
    int n = snprintf(line, sizeof(line), ": %s\n\n", text);

    return chunk(r, line, (size_t)n);
}

void fl_sse__end(fl_req *r)
{
    (void)mg_send_chunk(r->conn, "", 0); /* the last chunk */
}

/* ---- reading without answering -------------------------------------------------------- */

fl_rc fl_conv__db_json(fl_req *r, const char *sql, int n, const char *const *p, json_t **out,
                       fl_err *err)
{
    const fl_config *cfg = r->api->cfg;
    fl_pg_stmt st = {sql, n, p, cfg->http.request_timeout_ms};
    fl_pg_conn *conn = NULL;
    fl_pg_rows *rows = NULL;
    const char *text;
    fl_rc rc = fl_pg_acquire(r->api->pool, cfg->db.connect_timeout_ms, &conn, err);

    *out = NULL;
    if (rc == FL_OK) {
        rc = fl_pg_exec(conn, &st, &rows, err);
        fl_pg_release(r->api->pool, conn);
    }
    text = rc == FL_OK && fl_pg_rows_count(rows) > 0 ? fl_pg_rows_get(rows, 0, 0) : NULL;
    if (text) {
        *out = fl_json_from_pg(text, JSON_DECODE_ANY, NULL);
    }
    fl_pg_rows_free(rows);
    return rc;
}

void fl_conv__stream_failed(fl_req *r, const char *code, const char *detail)
{
    json_t *e = json_pack("{s:s, s:s}", "code", code, "detail", detail);

    (void)fl_sse__event(r, NULL, "error", e);
    json_decref(e);
}

fl_conv_woke fl_conv__sleep(fl_req *r, const char *key, uint64_t *since, int64_t until)
{
    fl_notify *n = r->api->notify;
    int64_t now = fl_clock_mono_ms(fl_clock_system());

    if (now >= until) {
        return FL_CONV_WOKE_TIMEOUT;
    }
    if (!n) { /* no LISTEN hub in this process: poll */
        int64_t ms = until - now < 250 ? until - now : 250;
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

        nanosleep(&ts, NULL);
        return FL_CONV_WOKE_CHANGE;
    }
    if (fl_notify_wait(n, key, since, until)) {
        return FL_CONV_WOKE_CHANGE;
    }
    /* false before the deadline: the hub is stopping (the server is shutting down) */
    return fl_clock_mono_ms(fl_clock_system()) + 5 < until ? FL_CONV_WOKE_STOP
                                                           : FL_CONV_WOKE_TIMEOUT;
}

/* ---- the streamed reply of POST .../messages ------------------------------------------ */

static fl_rc find_reply(fl_req *r, const char *conv_id, long long after, const char *message_id,
                        json_t **out, fl_err *err)
{
    char a[24];
    const char *p[4] = {r->who.tenant, conv_id, a, message_id};

    snprintf(a, sizeof(a), "%lld", after);
    return fl_conv__db_json(r, fl_conv__sql_reply, 4, p, out, err);
}

/* What the live deltas have not shown of the reply as one message.delta (all of it when
 * the provider did not stream), then message.completed; no ids: a client that loses this
 * stream resumes on .../events. */
static bool send_reply(fl_req *r, json_t *reply, const fl_conv_turn *t, fl_buf *live)
{
    json_t *rest = fl_conv__unseen(live, json_object_get(reply, "content"));
    json_t *delta = json_pack("{s:O, s:O, s:o}", "id", json_object_get(reply, "id"), "seq",
                              json_object_get(reply, "seq"), "content", rest);
    bool ok = true;

    if (json_string_length(rest) > 0 || !json_string_value(rest)) {
        ok = fl_sse__event(r, NULL, "message.delta", delta);
    }
    json_object_set_new(reply, "event_id", json_string(t->event_id));
    json_object_set_new(reply, "message_id", json_string(t->message_id));
    ok = ok && fl_sse__event(r, NULL, "message.completed", reply);
    json_decref(delta);
    return ok;
}

int fl_conv__stream_reply(fl_req *r, const fl_conv_turn *t, int wait_ms)
{
    int64_t now = fl_clock_mono_ms(fl_clock_system());
    int64_t deadline = now + wait_ms, beat = r->api->cfg->api.sse_heartbeat_ms;
    int64_t next_beat = now + beat;
    uint64_t since = t->since, dsince = t->dsince;
    json_t *reply = NULL;
    fl_err err = FL_ERR_INIT;
    fl_buf live;
    bool alive = fl_sse__begin(r);

    fl_buf_init(&live, 1 << 20);
    while (alive && fl_conv__relay_deltas(r, t->conv_id, &dsince, &live)) {
        if (find_reply(r, t->conv_id, t->after, t->message_id, &reply, &err) != FL_OK) {
            fl_conv__stream_failed(r, "unavailable", "could not read the transcript");
            break;
        }
        if (reply) {
            alive = send_reply(r, reply, t, &live);
            break;
        }
        fl_conv_woke w =
            fl_conv__sleep(r, t->conv_id, &since, next_beat < deadline ? next_beat : deadline);
        if (w == FL_CONV_WOKE_STOP || (w == FL_CONV_WOKE_TIMEOUT && next_beat >= deadline)) {
            fl_conv__stream_failed(r, "timeout",
                                   "no reply in time; read it from .../messages later");
            break;
        }
        if (w == FL_CONV_WOKE_TIMEOUT) {
            alive = fl_sse__comment(r, "heartbeat");
            next_beat = fl_clock_mono_ms(fl_clock_system()) + beat;
        }
    }
    json_decref(reply);
    fl_buf_deinit(&live);
    fl_sse__end(r);
    return r->status;
}
