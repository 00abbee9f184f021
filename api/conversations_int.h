/* api/conversations_int.h -- private to the conversation routes (api/routes_conversations.c,
 * api/conversations_*.c and api/routes_compat.c).
 *
 * Model: a conversation IS an instance of the shipped `conversation` workflow whose key is
 * the conversation id (a UUIDv7 made here). The API never writes it: every change is a
 * command event on topics.conversation_events keyed by that id (api/publish.h).
 *
 * Conversation {id, flow_type, business_id, user_id, agent, stage, status, usage,
 * metadata, created_at, updated_at}: stage is the instance's state; status is
 *   ended      the instance is no longer running (completed, cancelled or failed) or is in
 *              ENDED;
 *   escalated  running and its context says `escalated: true` (escalate_to_human);
 *   active     otherwise.
 * flow_type, business_id, user_id, metadata and agent live in the instance's context
 * (workflows/conversation.yaml copies them from conversation.started in GREETING).
 *
 * Message {id, seq, role, content, agent, message_id, usage, created_at} from the engine's
 * `messages` transcript; id is "<conversation id>:<seq>"; message_id, on a user's row, is
 * the id POST .../messages returned (carried by the event, kept by the engine, and the
 * workflow's ctx.last_message_id); usage, on an assistant's row, is the call's accounting.
 *
 * Thread-safety: every function serves one request on its worker thread. */
#ifndef FL_API_CONVERSATIONS_INT_H
#define FL_API_CONVERSATIONS_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/request.h"
#include "core/ids.h"

#define FL_CONV_WORKFLOW "conversation"
#define FL_CONV_PATH     "/api/v1/conversations"

/* The command event types the workflow handles (workflows/conversation.yaml). */
#define FL_CONV_STARTED         "conversation.started"
#define FL_CONV_MESSAGE         "conversation.message.received"
#define FL_CONV_SWITCH          "conversation.agent_switch_requested"
#define FL_CONV_END             "conversation.end_requested"
#define FL_CONV_RECOVER         "conversation.recover_requested"
#define FL_CONV_INSTANCE_CANCEL "flowd.instance.cancel"

/* RFC 3339 UTC with milliseconds, from a timestamptz column or expression. */
#define FL_CONV_TS(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* The conversation object of an `instances` row aliased `i` (SQL, one json value). */
extern const char fl_conv__sql_object[];
/* The status of `i` as text: 'active' | 'ended' | 'escalated'. */
extern const char fl_conv__sql_status[];
/* The message object of a `messages` row aliased `m`. */
extern const char fl_conv__sql_message[];
/* The assistant's reply to a user message: $1 tenant, $2 conversation, $3 the seq the
 * user's message comes after, $4 its text; one fl_conv__sql_message object or no row.
 * Shared by the waiting POST (conversations_read.c) and the streamed one
 * (conversations_sse.c), which must find the same row. */
extern const char fl_conv__sql_reply[];

/* What a handler knows of one conversation after fl_conv__lookup. */
typedef struct fl_conv {
    char id[FL_UUID_STRLEN + 1];
    char instance_id[40];
    char status[16];   /* active | ended | escalated */
    long long max_seq; /* the transcript's last seq (0 when empty) */
    json_t *object;    /* the conversation object (owned) */
} fl_conv;

/* Finds the caller's conversation `id` (the route's {id}). Answers 404 itself when it is
 * unknown or another tenant's. Returns false after answering; on true `c` holds it and
 * must be released with fl_conv__release. */
bool fl_conv__lookup(fl_req *r, const char *id, fl_conv *c);
void fl_conv__release(fl_conv *c);

/* The conversation object only, or *out NULL when absent. False after answering. */
bool fl_conv__read(fl_req *r, const char *id, json_t **out);

/* True when agent names a loaded agent profile (r->api->agents, engine/agents.h). */
bool fl_conv__agent_known(const fl_req *r, const char *agent);
/* GET /agents' list: [{id, name, description, intents, slots, allowed_actions,
 * preferred_provider}], sorted by id. Ownership: new reference. */
json_t *fl_conv__agents_json(const fl_req *r);

/* A new UUIDv7 from the server's generator. */
void fl_conv__new_id(fl_req *r, char out[FL_UUID_STRLEN + 1]);

/* Validates the create body (POST /conversations; agent ids against r's profiles); appends {pointer, detail} to *errors.
 * `allow` lists extra members the caller accepts (NULL-terminated, may be NULL).
 * Ownership: *data_out (the conversation.started data) is a new reference on success. */
bool fl_conv__create_data(const fl_req *r, json_t *body, const char *const *allow,
                          json_t **data_out, json_t **errors);

/* Publishes conversation.started for `id` with `data` and waits api.create_wait for the
 * instance. On true *conv_out is the conversation object (201) or NULL (202: not yet);
 * event_id receives the event id. False after answering (503 ...). */
bool fl_conv__start(fl_req *r, const char *id, const json_t *data, char *event_id,
                    json_t **conv_out);

/* Publishes conversation.message.received {content, message_id} for c; message_id and
 * event_id receive their ids. False after answering. */
bool fl_conv__send_message(fl_req *r, const char *conv_id, const char *content, char *message_id,
                           char *event_id);

/* Waits up to wait_ms for the next assistant message after the user message message_id
 * (fl_conv__send_message's) posted after transcript seq `after`. *reply_out is the
 * message or NULL (not in time). False after answering (a database failure). */
bool fl_conv__wait_reply(fl_req *r, const char *conv_id, long long after, const char *message_id,
                         uint64_t since, int wait_ms, json_t **reply_out);

/* Posts `content` to c and answers: 202 {event_id, message_id, conversation_id}, 200 with
 * the reply (wait_ms > 0 and it came in time), or the reply streamed (sse); 409 when c
 * has ended. The caller holds the stream slot when it waits. */
int fl_conv__post_to(fl_req *r, fl_conv *c, const char *content, int wait_ms, bool sse);

/* Publishes one command event of `type` for c and answers 202 {event_id, conversation_id}
 * (+ Location), or 200 when wait_ms > 0 and the engine applied it in time (its history
 * names the event): with the conversation, or with `object_sql` (a json expression over
 * the instance row `i`) when that is not NULL. */
int fl_conv__command(fl_req *r, fl_conv *c, const char *type, const json_t *data, int wait_ms,
                     const char *object_sql);

/* Handlers shared by the routes of api/routes_conversations.c and api/routes_compat.c. */
int fl_conv__create(fl_req *r);
int fl_conv__post_message(fl_req *r);
int fl_conv__list_messages(fl_req *r);
int fl_conv__events(fl_req *r);
int fl_conv__agents(fl_req *r);

/* ---- Server-Sent Events (api/conversations_sse.c) ----------------------------------- */

/* Sends the 200 header block of an event stream (chunked, no Content-Length) and the
 * `retry:` hint. False when the client is gone. */
bool fl_sse__begin(fl_req *r);
/* One event; id may be NULL. `data` is borrowed. False when the client is gone. */
bool fl_sse__event(fl_req *r, const char *id, const char *name, const json_t *data);
/* A comment line (heartbeat). False when the client is gone. */
bool fl_sse__comment(fl_req *r, const char *text);
/* Ends the chunked body. */
void fl_sse__end(fl_req *r);
/* True when the request asks for an event stream (Accept: text/event-stream). */
bool fl_sse__wanted(const fl_req *r);

/* Runs one statement whose first cell is a JSON value, without answering the request
 * (for streams whose header is already out). Errors: FL_EUNAVAIL, FL_EIO, FL_ETIMEDOUT. */
fl_rc fl_conv__db_json(fl_req *r, const char *sql, int n, const char *const *p, json_t **out,
                       fl_err *err);
/* An `error` event without an id: a stream stops for a reason of ours. */
void fl_conv__stream_failed(fl_req *r, const char *code, const char *detail);

typedef enum fl_conv_woke {
    FL_CONV_WOKE_CHANGE,  /* a notification about the key (possibly spurious) */
    FL_CONV_WOKE_TIMEOUT, /* `until` passed */
    FL_CONV_WOKE_STOP,    /* the LISTEN hub is stopping: the server shuts down */
} fl_conv_woke;
/* Sleeps until a notification about key after *since, or until `until` (monotonic ms,
 * fl_clock_mono_ms timebase). Polls every 250 ms when the process has no hub. */
fl_conv_woke fl_conv__sleep(fl_req *r, const char *key, uint64_t *since, int64_t until);

/* The live text of the replies being streamed in conversation key (NOTIFY flowd_deltas,
 * relayed by the hub, api/notify.h) since *dsince, sent as message.delta events {reply,
 * seq, content} without ids; {..., content: "", restart: true} when a provider failed
 * mid-answer and another attempt starts over. The text shown is kept in live (emptied by
 * a restart). False when the client has gone (api/conversations_events.c). */
bool fl_conv__relay_deltas(fl_req *r, const char *key, uint64_t *dsince, fl_buf *live);

/* The part of a stored message's content the live deltas have not shown: all of it, or
 * the rest when live is its beginning (then live is used up). A new reference. */
json_t *fl_conv__unseen(fl_buf *live, const json_t *content);

/* POST .../messages with Accept: text/event-stream: the reply's live deltas as they come,
 * then the rest of it as one message.delta and message.completed on this response
 * (api/conversations_sse.c). */
typedef struct fl_conv_turn {
    const char *conv_id;
    long long after; /* the transcript's last seq before the message was sent */
    uint64_t since;  /* fl_publish_since before it was sent */
    uint64_t dsince; /* fl_notify_delta_now before it was sent */
    const char *event_id, *message_id;
} fl_conv_turn;
int fl_conv__stream_reply(fl_req *r, const fl_conv_turn *t, int wait_ms);

#endif
