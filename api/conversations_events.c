/* api/conversations_events.c -- GET /conversations/{id}/events: the conversation as
 * Server-Sent Events, resumable with Last-Event-ID (positions: api/conversations_sse.c).
 *
 * Loop: read the history and transcript rows after the position (one statement, one
 * snapshot), merge them by time, send their events; then sleep on the LISTEN hub until
 * a notification about the conversation or the next heartbeat. The stream ends when the
 * client is gone (a failed write), when the server stops, or once a conversation that
 * no longer runs has nothing left to send. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/conversations_int.h"
#include "api/notify.h"
#include "api/publish.h"
#include "core/clock.h"
#include "core/mem.h"

#define BATCH_ROWS 100

typedef struct pos {
    long long h; /* history events sent: 2n-1 / 2n for row n */
    long long m; /* transcript events sent */
} pos;

typedef struct stream {
    fl_req *r;
    const char *key;
    const char *instance_id;
    pos at;
    bool running;
    bool more; /* a list came back full: read again at once */
    json_t *last_error;
    uint64_t dsince; /* the LISTEN hub's delta position (api/notify.h) */
    fl_buf live;     /* streamed text relayed since the last assistant message */
} stream;

/* "H-M" with two non-negative integers, as our ids are written. */
static bool parse_pos(const char *s, pos *out)
{
    char *end;
    long long h, m;

    if (!s || !s[0] || s[0] == '-' || s[0] == '+') {
        return false;
    }
    h = strtoll(s, &end, 10);
    if (*end != '-' || end[1] == '-' || end[1] == '+' || !end[1] || h < 0) {
        return false;
    }
    m = strtoll(end + 1, &end, 10);
    if (*end || m < 0) {
        return false;
    }
    *out = (pos){h, m};
    return true;
}

static bool send_at(stream *s, const char *name, const json_t *data)
{
    char id[48];

    snprintf(id, sizeof(id), "%lld-%lld", s->at.h, s->at.m);
    return fl_sse__event(s->r, id, name, data);
}

/* The events of history row `row`: error (entering ERROR_RECOVERY) and stage.changed. */
static bool history_events(stream *s, const json_t *row)
{
    long long n = json_integer_value(json_object_get(row, "seq"));
    const char *from = json_string_value(json_object_get(row, "from"));
    const char *to = json_string_value(json_object_get(row, "to"));
    bool changed = to && (!from || strcmp(from, to) != 0);
    bool ok = true;

    if (changed && strcmp(to, "ERROR_RECOVERY") == 0 && s->at.h < 2 * n - 1) {
        json_t *e = json_pack("{s:s, s:s, s:I, s:O}", "code", "stage_error", "stage", to, "seq",
                              (json_int_t)n, "detail", s->last_error ? s->last_error : json_null());

        s->at.h = 2 * n - 1;
        ok = send_at(s, "error", e);
        json_decref(e);
    }
    s->at.h = 2 * n;
    if (ok && changed) {
        json_t *d = json_pack("{s:s?, s:s, s:I, s:O, s:O}", "from", from, "to", to, "seq",
                              (json_int_t)n, "event_type", json_object_get(row, "event_type"), "at",
                              json_object_get(row, "at"));

        ok = send_at(s, "stage.changed", d);
        json_decref(d);
    }
    return ok;
}

/* Live text of a streamed reply (NOTIFY flowd_deltas, relayed by the hub): message.delta
 * events without an id, {reply, seq, content} -- ephemeral; the stored message that
 * follows is the resumable message.completed. {reply, seq, content: "", restart: true}:
 * the provider failed mid-answer and another attempt starts over; drop what was shown. */
bool fl_conv__relay_deltas(fl_req *r, const char *key, uint64_t *dsince, fl_buf *live)
{
    fl_notify *n = r->api->notify;
    json_t *list, *d;
    size_t i;
    bool ok = true;

    if (!n) {
        return true;
    }
    list = json_array();
    fl_notify_deltas(n, r->who.tenant, key, dsince, list);
    json_array_foreach(list, i, d)
    {
        const json_t *text = json_object_get(d, "text");
        json_t *e = json_pack("{s:O, s:O, s:O}", "reply", json_object_get(d, "reply"), "seq",
                              json_object_get(d, "seq"), "content", text);

        if (json_is_true(json_object_get(d, "restart"))) {
            live->len = 0;
            json_object_set_new(e, "restart", json_true());
        }
        (void)fl_buf_append(live, json_string_value(text), json_string_length(text), NULL);
        ok = ok && fl_sse__event(r, NULL, "message.delta", e);
        json_decref(e);
    }
    json_decref(list);
    return ok;
}

static bool relay_deltas(stream *s)
{
    return fl_conv__relay_deltas(s->r, s->key, &s->dsince, &s->live);
}

json_t *fl_conv__unseen(fl_buf *live, const json_t *content)
{
    const char *c = json_string_value(content);

    if (!c || live->len == 0 || strncmp(c, live->data, live->len) != 0) {
        return json_incref((json_t *)content);
    }
    c += live->len;
    live->len = 0;
    return json_string(c);
}

/* The events of transcript row `row`: message.delta and message.completed. */
static bool message_events(stream *s, const json_t *row)
{
    const json_t *msg = json_object_get(row, "m");
    long long n = json_integer_value(json_object_get(msg, "seq"));
    const char *role = json_string_value(json_object_get(msg, "role"));
    bool ok = true;

    if (role && strcmp(role, "user") == 0) {
        s->at.m = 2 * n; /* the client's own words: nothing to send */
        return true;
    }
    if (s->at.m < 2 * n - 1) {
        json_t *rest = fl_conv__unseen(&s->live, json_object_get(msg, "content"));
        json_t *d = json_pack("{s:O, s:I, s:o}", "id", json_object_get(msg, "id"), "seq",
                              (json_int_t)n, "content", rest);

        s->at.m = 2 * n - 1;
        if (json_string_length(json_object_get(d, "content")) > 0 || !json_string_value(rest)) {
            ok = send_at(s, "message.delta", d);
        }
        json_decref(d);
    }
    s->at.m = 2 * n;
    return ok && send_at(s, "message.completed", msg);
}

/* Sends the rows of one read in time order (messages first on a tie: a reply written
 * with its transition reads before the stage it leads to). A full list limits the merge
 * to what it covers, so the next read continues in order. */
static bool merge(stream *s, const json_t *hist, const json_t *msgs)
{
    size_t i = 0, j = 0, nh = json_array_size(hist), nm = json_array_size(msgs);
    bool hfull = nh >= BATCH_ROWS, mfull = nm >= BATCH_ROWS;
    bool ok = true;

    s->more = hfull || mfull;
    while (ok && (i < nh || j < nm)) {
        const json_t *h = json_array_get(hist, i), *m = json_array_get(msgs, j);
        double th = h ? json_number_value(json_object_get(h, "t")) : 0;
        double tm = m ? json_number_value(json_object_get(m, "t")) : 0;

        if ((!h && hfull) || (!m && mfull)) {
            break;
        }
        if (m && (!h || tm <= th)) {
            ok = message_events(s, m);
            j++;
        } else {
            ok = history_events(s, h);
            i++;
        }
    }
    return ok;
}

static const char sql_batch_fmt[] =
    "SELECT json_build_object("
    "'running', (SELECT status = 'running' FROM instances WHERE id = $3::uuid), "
    "'last_error', (SELECT context->'last_error' FROM instances WHERE id = $3::uuid), "
    "'history', (SELECT COALESCE(json_agg(json_build_object('seq', h.seq, 'from', h.from_state, "
    "'to', h.to_state, 'event_type', h.event_type, 'at', %s, "
    "'t', extract(epoch FROM h.created_at)::float8) ORDER BY h.seq), '[]') FROM "
    "(SELECT * FROM history WHERE instance_id = $3::uuid AND seq >= $4::bigint "
    "ORDER BY seq LIMIT %d) h), "
    "'messages', (SELECT COALESCE(json_agg(json_build_object('m', %s, "
    "'t', extract(epoch FROM m.created_at)::float8) ORDER BY m.seq), '[]') FROM "
    "(SELECT * FROM messages WHERE tenant = $1 AND conversation = $2 AND seq >= $5::bigint "
    "ORDER BY seq LIMIT %d) m))";

/* First row that may still have an event to send: row n owns positions 2n-1 and 2n. */
static long long first_row(long long at)
{
    return at / 2 + 1;
}

/* One read and its events. False when the client is gone or the read failed. */
static bool pump(stream *s)
{
    char sql[4096], h[24], m[24];
    const char *p[5] = {s->r->who.tenant, s->key, s->instance_id, h, m};
    json_t *res = NULL;
    fl_err err = FL_ERR_INIT;
    bool ok;

    snprintf(h, sizeof(h), "%lld", first_row(s->at.h));
    snprintf(m, sizeof(m), "%lld", first_row(s->at.m));
    snprintf(sql, sizeof(sql), sql_batch_fmt, FL_CONV_TS("h.created_at"), BATCH_ROWS,
             fl_conv__sql_message, BATCH_ROWS);
    if (fl_conv__db_json(s->r, sql, 5, p, &res, &err) != FL_OK || !res) {
        fl_conv__stream_failed(s->r, "unavailable", "could not read the conversation");
        json_decref(res);
        return false;
    }
    s->running = json_is_true(json_object_get(res, "running"));
    s->last_error = json_object_get(res, "last_error");
    ok = merge(s, json_object_get(res, "history"), json_object_get(res, "messages"));
    s->last_error = NULL;
    json_decref(res);
    return ok;
}

static void run(stream *s, uint64_t since)
{
    int64_t beat = s->r->api->cfg->api.sse_heartbeat_ms;
    int64_t next_beat = fl_clock_mono_ms(fl_clock_system()) + beat;

    while (relay_deltas(s) && pump(s)) {
        if (s->more) {
            continue;
        }
        if (!s->running) {
            break; /* ended, and everything it wrote has been sent */
        }
        fl_conv_woke w = fl_conv__sleep(s->r, s->key, &since, next_beat);
        if (w == FL_CONV_WOKE_STOP) {
            break;
        }
        if (w == FL_CONV_WOKE_TIMEOUT) {
            if (!fl_sse__comment(s->r, "heartbeat")) {
                break;
            }
            next_beat = fl_clock_mono_ms(fl_clock_system()) + beat;
        }
    }
}

/* The starting position: Last-Event-ID (header, or ?last_event_id= for clients that
 * cannot set headers), else the end of what exists now. */
static bool start_pos(fl_req *r, const fl_conv *c, pos *out)
{
    char q[64];
    const char *id = fl_req_header(r, "Last-Event-ID");
    const char *p[1] = {c->instance_id};
    fl_pg_rows *rows = NULL;

    if (!id && fl_req_query(r, "last_event_id", q, sizeof(q))) {
        id = q;
    }
    if (id) {
        if (!parse_pos(id, out)) {
            fl_problem(r, 400, "Last-Event-ID must be an id of this stream (\"H-M\"), got \"%s\"",
                       id);
            return false;
        }
        return true;
    }
    if (!fl_req_db(r, "SELECT COALESCE(max(seq), 0) FROM history WHERE instance_id = $1::uuid", 1,
                   p, &rows)) {
        return false;
    }
    *out = (pos){2 * strtoll(fl_pg_rows_get(rows, 0, 0), NULL, 10), 2 * c->max_seq};
    fl_pg_rows_free(rows);
    return true;
}

int fl_conv__events(fl_req *r)
{
    fl_conv c;
    uint64_t since = fl_publish_since(r); /* before any read */
    stream s = {r, NULL, NULL, {0, 0}, true, false, NULL, 0, {0}};

    if (!fl_conv__lookup(r, fl_req_param(r, 0), &c)) {
        return r->status;
    }
    if (start_pos(r, &c, &s.at) && fl_req_stream_enter(r)) {
        s.key = c.id;
        s.instance_id = c.instance_id;
        s.dsince = r->api->notify ? fl_notify_delta_now(r->api->notify) : 0;
        fl_buf_init(&s.live, 1 << 20);
        if (fl_sse__begin(r)) {
            run(&s, since);
        }
        fl_sse__end(r);
        fl_req_stream_leave(r);
        fl_buf_deinit(&s.live);
    }
    fl_conv__release(&c);
    return r->status;
}
