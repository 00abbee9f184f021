/* api/conversations_messages.c -- POST /conversations/{id}/messages (202, ?wait= for the
 * reply, or the reply as Server-Sent Events) and GET /conversations/{id}/messages (the
 * transcript, with ?after= and a long-poll ?wait=).
 *
 * Waiting never holds a database connection: the worker sleeps on the LISTEN hub
 * (api/notify.h) and reads Postgres after each notification about the conversation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/body.h"
#include "api/conversations_int.h"
#include "api/notify.h"
#include "api/publish.h"
#include "core/mem.h"

/* {content}: a non-empty string, nothing else. Returns the content or NULL after
 * collecting errors. */
static const char *message_content(const json_t *body, json_t **errors)
{
    const char *content = json_string_value(json_object_get(body, "content"));
    const char *key;
    const json_t *v;

    json_object_foreach((json_t *)body, key, v)
    {
        if (strcmp(key, "content") != 0) {
            fl_body_error(errors, "", "unknown member \"%s\"", key);
        }
    }
    if (!content || !content[0]) {
        fl_body_error(errors, "/content", "is required: a non-empty string");
        return NULL;
    }
    return *errors ? NULL : content;
}

/* The 202: the ids, and where the transcript continues for a long-poll. */
static int accepted(fl_req *r, const fl_conv *c, const char *event_id, const char *message_id)
{
    fl_req_header_add(r, "Location", FL_CONV_PATH "/%s/messages?after=%lld", c->id, c->max_seq);
    return fl_reply(r, 202,
                    json_pack("{s:s, s:s, s:s}", "event_id", event_id, "message_id", message_id,
                              "conversation_id", c->id));
}

int fl_conv__post_to(fl_req *r, fl_conv *c, const char *content, int wait_ms, bool sse)
{
    uint64_t since = fl_publish_since(r);
    uint64_t dsince = r->api->notify ? fl_notify_delta_now(r->api->notify) : 0;
    char message_id[FL_UUID_STRLEN + 1], event_id[FL_PUBLISH_ID_SIZE];
    json_t *reply = NULL;

    if (strcmp(c->status, "ended") == 0) {
        return fl_problem(r, 409, "conversation \"%s\" has ended", c->id);
    }
    if (!fl_conv__send_message(r, c->id, content, message_id, event_id)) {
        return r->status;
    }
    if (sse) {
        fl_conv_turn t = {c->id, c->max_seq, since, dsince, event_id, message_id};

        return fl_conv__stream_reply(r, &t, wait_ms > 0 ? wait_ms : r->api->cfg->api.max_wait_ms);
    }
    if (wait_ms <= 0) {
        return accepted(r, c, event_id, message_id);
    }
    if (!fl_conv__wait_reply(r, c->id, c->max_seq, message_id, since, wait_ms, &reply)) {
        return r->status;
    }
    if (!reply) {
        return accepted(r, c, event_id, message_id);
    }
    json_object_set_new(reply, "event_id", json_string(event_id));
    json_object_set_new(reply, "message_id", json_string(message_id));
    json_object_set_new(reply, "conversation_id", json_string(c->id));
    return fl_reply(r, 200, reply);
}

int fl_conv__post_message(fl_req *r)
{
    json_t *body = NULL, *errors = NULL;
    const char *content;
    int wait_ms = 0;
    bool sse = fl_sse__wanted(r), streaming = false;
    fl_conv c = {0};

    if (!fl_req_wait_ms(r, &wait_ms) || !fl_req_json(r, &body)) {
        return r->status;
    }
    content = message_content(body, &errors);
    if (!content) {
        fl_problem_errors(r, 400, "the message is invalid", errors);
        goto out;
    }
    streaming = wait_ms > 0 || sse;
    if (streaming && !fl_req_stream_enter(r)) {
        streaming = false;
        goto out;
    }
    if (fl_conv__lookup(r, fl_req_param(r, 0), &c)) {
        fl_conv__post_to(r, &c, content, wait_ms, sse);
    }
out:
    if (streaming) {
        fl_req_stream_leave(r);
    }
    fl_conv__release(&c);
    json_decref(body);
    return r->status;
}

/* ---- GET .../messages --------------------------------------------------------------- */

typedef struct page_read {
    const char *conv_id;
    char after[24];
    char limit[16];
    json_t *rows;
} page_read;

static fl_wait_check page_arrived(fl_req *r, void *arg)
{
    page_read *pr = arg;
    char sql[2048];
    const char *p[4] = {r->who.tenant, pr->conv_id, pr->after, pr->limit};

    json_decref(pr->rows);
    pr->rows = NULL;
    snprintf(sql, sizeof(sql),
             "SELECT COALESCE(json_agg(o ORDER BY s), '[]') FROM (SELECT %s AS o, m.seq AS s "
             "FROM messages m WHERE m.tenant = $1 AND m.conversation = $2 AND m.seq > "
             "$3::bigint ORDER BY m.seq LIMIT $4::int) q",
             fl_conv__sql_message);
    if (!fl_req_db_json(r, sql, 4, p, &pr->rows)) {
        return FL_WAIT_ANSWERED;
    }
    return json_array_size(pr->rows) > 0 ? FL_WAIT_DONE : FL_WAIT_NOT_YET;
}

static char *seq_of(const json_t *item)
{
    char s[24];

    snprintf(s, sizeof(s), "%lld", (long long)json_integer_value(json_object_get(item, "seq")));
    return fl_page_cursor(s, NULL);
}

/* ?after=SEQ (default 0) and ?cursor= both mean "after this seq"; the later one wins. */
static bool after_seq(fl_req *r, const fl_page *pg, long long *out)
{
    char buf[32], *end;
    long long v = 0, cur = 0;

    if (fl_req_query(r, "after", buf, sizeof(buf))) {
        v = strtoll(buf, &end, 10);
        if (!buf[0] || *end || v < 0) {
            fl_problem(r, 400, "after must be a transcript seq (an integer >= 0), got \"%s\"", buf);
            return false;
        }
    }
    if (pg->has_cursor) {
        cur = strtoll(pg->after[0], &end, 10);
        if (*end || cur < 0) {
            fl_problem(r, 400, "cursor is not one of ours");
            return false;
        }
    }
    *out = cur > v ? cur : v;
    return true;
}

/* Reads once; with nothing new and ?wait=, sleeps (taking one of api.max_streams, as
 * only a request that really sleeps does) until a notification brings some. */
static fl_wait_result read_or_wait(fl_req *r, page_read *pr, uint64_t since, int wait_ms)
{
    fl_wait_result w;

    switch (page_arrived(r, pr)) {
    case FL_WAIT_ANSWERED:
        return FL_WAITED_ANSWERED;
    case FL_WAIT_DONE:
        return FL_WAITED_DONE;
    default:
        break;
    }
    if (wait_ms <= 0) {
        return FL_WAITED_TIMEOUT;
    }
    if (!fl_req_stream_enter(r)) {
        return FL_WAITED_ANSWERED;
    }
    w = fl_publish_wait(r, pr->conv_id, since, wait_ms, page_arrived, pr);
    fl_req_stream_leave(r);
    return w;
}

/* Answers at once when messages after `after` exist; otherwise, with ?wait=, when a
 * notification about the conversation brings some (or the bound passes: empty page). */
int fl_conv__list_messages(fl_req *r)
{
    fl_page pg;
    page_read pr = {fl_req_param(r, 0), "", "", NULL};
    long long after;
    int wait_ms = 0;
    uint64_t since = fl_publish_since(r); /* before the first read */
    json_t *conv = NULL;

    if (!fl_req_page(r, &pg) || !after_seq(r, &pg, &after) || !fl_req_wait_ms(r, &wait_ms) ||
        !fl_conv__read(r, pr.conv_id, &conv)) {
        return r->status;
    }
    if (!conv) {
        return fl_problem(r, 404, "no conversation \"%s\"", pr.conv_id);
    }
    json_decref(conv);
    snprintf(pr.after, sizeof(pr.after), "%lld", after);
    snprintf(pr.limit, sizeof(pr.limit), "%d", pg.limit + 1);
    if (read_or_wait(r, &pr, since, wait_ms) == FL_WAITED_ANSWERED) {
        json_decref(pr.rows);
        return r->status;
    }
    return fl_reply(r, 200, fl_page_wrap(&pg, pr.rows ? pr.rows : json_array(), seq_of));
}
