/* engine/activities_history.c -- `call: flowd.conversation.history`: a conversation's
 * latest turns from its transcript, the conversation's short-term memory (issue 6 item 8),
 * for a workflow to send to `call: llm` as the messages before the one it answers:
 *
 *   with {conversation? (default: the instance's key), turns? (1..50, default 10),
 *         max_tokens? (1..100000, default 2000), before_seq? (>= 1)}
 *   -> {messages: [{role, content}], tokens}
 *
 * The transcript is the messages table (schemas/sql/002_engine.sql), keyed by tenant and
 * conversation; the engine writes it (engine/store_pipe.c) with the instance key as the
 * conversation, so a conversation instance reads its own transcript by default. Only
 * user and assistant rows count (system rows are the workflow's own prompts).
 *
 * Which rows: those written before this call was scheduled (the activity row's
 * created_at), so a retry reads the same turns and a message arriving meanwhile is not
 * mistaken for history; of them, the ones before `before_seq`, or without it the ones
 * before the newest user message -- the message being answered, which the workflow sends
 * itself and which must not go twice. Then the last `turns` rows, of which the oldest are
 * dropped until their estimated tokens fit `max_tokens`. A token is estimated as 4 bytes
 * of UTF-8 (a message's bytes / 4, rounded up): no tokenizer is needed, and for English
 * text it errs on the generous side. The result is oldest first; `tokens` is the estimate
 * of what it holds.
 *
 * One read-only statement in the instance's tenant: idempotent, as an at-least-once
 * activity must be. Failures: history.invalid (a bad `with`, final), history.unavailable
 * (the database is down or busy, retryable), history.error. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/pg.h"
#include "engine/activities_int.h"

#define ACQUIRE_TIMEOUT_MS 5000
#define TURNS_DEF          10
#define TURNS_MAX          50
#define TOKENS_DEF         2000
#define TOKENS_MAX         100000
#define CONVERSATION_MAX   256

/* $1 activity id, $2 tenant, $3 conversation, $4 before_seq or NULL, $5 turns,
 * $6 max_tokens. The running sum from the newest row keeps a newest-first run of rows
 * that fits the budget; max(seq) stands in for "no before_seq and no user message". */
static const char sql_history[] =
    "WITH cut AS (SELECT created_at FROM activities WHERE id = $1 AND tenant = $2), "
    "recent AS (SELECT m.seq, m.role, m.content, (octet_length(m.content) + 3) / 4 AS tokens "
    "FROM messages m, cut WHERE m.tenant = $2 AND m.conversation = $3 "
    "AND m.role IN ('user', 'assistant') AND m.created_at <= cut.created_at "
    "AND m.seq < coalesce($4::bigint, (SELECT max(u.seq) FROM messages u WHERE u.tenant = $2 "
    "AND u.conversation = $3 AND u.role = 'user' AND u.created_at <= cut.created_at), "
    "9223372036854775807) ORDER BY m.seq DESC LIMIT $5::int), "
    "kept AS (SELECT *, sum(tokens) OVER (ORDER BY seq DESC) AS total FROM recent) "
    "SELECT json_build_object('messages', coalesce(json_agg(json_build_object('role', role, "
    "'content', content) ORDER BY seq) FILTER (WHERE total <= $6::int), '[]'::json), "
    "'tokens', coalesce(sum(tokens) FILTER (WHERE total <= $6::int), 0)) FROM kept";

typedef struct history_args {
    const char *conversation;
    json_int_t turns;
    json_int_t max_tokens;
    json_int_t before_seq; /* 0: none */
} history_args;

/* An optional integer member in [min, max]: absent or null keeps *out. */
static bool int_member(const json_t *args, const char *name, json_int_t min, json_int_t max,
                       json_int_t *out)
{
    const json_t *v = json_object_get(args, name);

    if (!v || json_is_null(v)) {
        return true;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

static const char *const history_members[] = {"conversation", "turns", "max_tokens", "before_seq",
                                              NULL};

/* Reads `with` into *h; false after filling a failure. */
static bool read_args(const fl_act_job *job, history_args *h, fl_act_outcome *o)
{
    const json_t *conv = json_object_get(job->args, "conversation");
    const char *unknown = fl_json_unknown_member(job->args, history_members);
    const char *bad = NULL;

    *h = (history_args){job->key, TURNS_DEF, TOKENS_DEF, 0};
    if (!json_is_object(job->args)) {
        bad = "with must be an object";
    } else if (unknown) {
        fl_activities__fail(o, "history.invalid", false, "%s: unknown member \"%.64s\"", job->call,
                            unknown);
        return false;
    } else if (conv && !json_is_null(conv) &&
               (!json_is_string(conv) || json_string_length(conv) == 0 ||
                json_string_length(conv) > CONVERSATION_MAX)) {
        bad = "conversation must be a string of 1 to 256 bytes";
    } else if (!int_member(job->args, "turns", 1, TURNS_MAX, &h->turns)) {
        bad = "turns must be an integer from 1 to 50";
    } else if (!int_member(job->args, "max_tokens", 1, TOKENS_MAX, &h->max_tokens)) {
        bad = "max_tokens must be an integer from 1 to 100000";
    } else if (!int_member(job->args, "before_seq", 1, INT64_MAX, &h->before_seq)) {
        bad = "before_seq must be a positive integer";
    }
    if (bad) {
        fl_activities__fail(o, "history.invalid", false, "%s: %s", job->call, bad);
        return false;
    }
    if (json_is_string(conv)) {
        h->conversation = json_string_value(conv);
    }
    return true;
}

/* Runs the statement; *out is the result object. */
static fl_rc history_read(fl_activities *a, const fl_act_job *job, const history_args *h,
                          json_t **out, fl_err *err)
{
    char before[24], turns[24], tokens[24];
    const char *p[6] = {job->id, job->tenant, h->conversation, h->before_seq ? before : NULL,
                        turns,   tokens};
    int st_ms = a->cfg->db.statement_timeout_ms;
    fl_pg_stmt st = {sql_history, 6, p, st_ms > 0 ? st_ms + 1000 : 30000};
    fl_pg_conn *conn = NULL;
    fl_pg_rows *rows = NULL;
    const char *text = NULL;
    json_error_t jerr;
    fl_rc rc;

    snprintf(before, sizeof(before), "%lld", (long long)h->before_seq);
    snprintf(turns, sizeof(turns), "%lld", (long long)h->turns);
    snprintf(tokens, sizeof(tokens), "%lld", (long long)h->max_tokens);
    rc = fl_pg_acquire(a->pool, ACQUIRE_TIMEOUT_MS, &conn, err);
    if (rc != FL_OK) {
        return rc;
    }
    rc = fl_pg_exec(conn, &st, &rows, err);
    fl_pg_release(a->pool, conn);
    if (rc == FL_OK && fl_pg_rows_count(rows) > 0) {
        text = fl_pg_rows_get(rows, 0, 0);
    }
    *out = text ? fl_json_from_pg(text, 0, &jerr) : NULL;
    if (rc == FL_OK && !*out) {
        rc = fl_err_set(err, FL_EINTERNAL, "the database returned no history: %s",
                        text ? jerr.text : "no row");
    }
    fl_pg_rows_free(rows);
    return rc;
}

void fl_activities__history(fl_activities *a, const fl_act_job *job, fl_act_outcome *o)
{
    fl_err err = FL_ERR_INIT;
    json_t *result = NULL;
    history_args h;
    fl_rc rc;

    if (!read_args(job, &h, o)) {
        return;
    }
    if (!h.conversation) {
        fl_activities__fail(o, "history.invalid", false, "%s: the instance has no key", job->call);
        return;
    }
    rc = history_read(a, job, &h, &result, &err);
    if (rc == FL_OK) {
        fl_activities__outcome_deinit(o);
        o->ok = true;
        o->result = result;
    } else if (rc == FL_EUNAVAIL || rc == FL_ETIMEDOUT || rc == FL_ECONFLICT) {
        fl_activities__fail(o, "history.unavailable", true, "%s", err.msg);
    } else {
        fl_activities__fail(o, "history.error", false, "%s", err.msg);
    }
}
