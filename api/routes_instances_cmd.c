/* api/routes_instances_cmd.c -- POST /api/v1/instances/{id}/signal and /cancel.
 *
 * Both publish one command event on the instance's key (api/publish.h) to
 * topics.flowd_events and answer 202 {event_id}. With ?wait= they hold the request (one
 * of api.max_streams) until the engine has applied the event -- its inbox row exists,
 * which covers a signal the instance does not react to -- and answer 200 with the
 * instance as it is then; past the wait, 202 as without it.
 *
 *   signal {type, data?} -> flowd.instance.signal {type, data, instance_id}: the engine
 *          delivers it as an event of `type` (consumers/engine_apply.c). Types under
 *          "flowd." are the engine's own and refused.
 *   cancel {reason?}     -> flowd.instance.cancel {instance_id, reason?}; the body may be
 *          empty.
 *
 * An instance that is not running answers 409: nothing would change.
 *
 * Thread-safety: handlers run on civetweb workers, each with its own request. */
#include <string.h>

#include "api/body.h"
#include "api/instances_int.h"
#include "api/publish.h"
#include "engine/cloudevent.h"

#define EVENT_SIGNAL "flowd.instance.signal"
#define EVENT_CANCEL "flowd.instance.cancel"

static const char sql_applied[] =
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM inbox WHERE tenant = $1 AND source = $3 "
    "AND id = $4) THEN (SELECT " FL_INST_SQL_OBJECT " FROM instances i "
    "WHERE i.tenant = $1 AND i.id = $2::uuid) END";

typedef struct cmd_ctx {
    const char *id;
    char event_id[FL_PUBLISH_ID_SIZE];
    json_t *instance; /* owned: read once the event was applied */
} cmd_ctx;

static fl_wait_check applied(fl_req *r, void *arg)
{
    cmd_ctx *c = arg;
    const char *p[4] = {r->who.tenant, c->id, FL_PUBLISH_SOURCE, c->event_id};

    if (!fl_req_db_json(r, sql_applied, 4, p, &c->instance)) {
        return FL_WAIT_ANSWERED;
    }
    return c->instance ? FL_WAIT_DONE : FL_WAIT_NOT_YET;
}

/* Publishes, waits when asked, answers. Ownership: borrows inst; data is the caller's. */
static int publish_and_wait(fl_req *r, const json_t *inst, const char *type, const json_t *data,
                            int wait_ms)
{
    cmd_ctx c = {json_string_value(json_object_get(inst, "id")), "", NULL};
    const char *key = json_string_value(json_object_get(inst, "key"));
    fl_publish_cmd cmd = {r->api->cfg->kafka.topics.flowd_events, type, key, data};
    uint64_t since = fl_publish_since(r);
    fl_wait_result w = FL_WAITED_TIMEOUT;
    int status;

    if (wait_ms > 0 && !fl_req_stream_enter(r)) {
        return r->status;
    }
    if (fl_publish_req(r, &cmd, c.event_id) && wait_ms > 0) {
        w = fl_publish_wait(r, c.id, since, wait_ms, applied, &c);
    }
    if (wait_ms > 0) {
        fl_req_stream_leave(r);
    }
    if (r->status) {
        status = r->status; /* publishing or a read failed and answered */
    } else if (w == FL_WAITED_DONE) {
        status = fl_reply(r, 200, json_incref(c.instance));
    } else {
        fl_req_header_add(r, "Location", "/api/v1/instances/%s", c.id);
        status = fl_reply(r, 202, json_pack("{s:s}", "event_id", c.event_id));
    }
    json_decref(c.instance);
    return status;
}

/* The instance, ?wait= and the running check; false after answering. */
static bool prepare(fl_req *r, json_t **inst, int *wait_ms)
{
    const char *status;

    *inst = NULL;
    if (!fl_req_wait_ms(r, wait_ms) || !fl_inst__load(r, fl_req_param(r, 0), inst)) {
        return false;
    }
    status = json_string_value(json_object_get(*inst, "status"));
    if (!status || strcmp(status, "running") != 0) {
        fl_problem(r, 409, "the instance is %s: it takes no more events", status ? status : "?");
        json_decref(*inst);
        *inst = NULL;
        return false;
    }
    return true;
}

/* {type: string, data?: any}; unknown members and "flowd." types are errors. */
static bool signal_body(fl_req *r, const json_t *body, const char **type)
{
    json_t *errors = NULL;
    const char *k;
    const json_t *v;
    size_t n;

    json_object_foreach((json_t *)body, k, v)
    {
        if (strcmp(k, "type") != 0 && strcmp(k, "data") != 0) {
            fl_body_error(&errors, "", "unknown member \"%s\" (allowed: type, data)", k);
        }
    }
    *type = json_string_value(json_object_get(body, "type"));
    n = json_string_length(json_object_get(body, "type"));
    if (!*type || n == 0 || n > FL_CE_MAX_TYPE || strlen(*type) != n) {
        fl_body_error(&errors, "/type", "is required: a string of 1 to %d bytes without NUL",
                      FL_CE_MAX_TYPE);
    } else if (strncmp(*type, "flowd.", 6) == 0) {
        fl_body_error(&errors, "/type", "types under \"flowd.\" are reserved for the engine");
    }
    if (errors) {
        fl_problem_errors(r, 400, "the body is invalid", errors);
        return false;
    }
    return true;
}

int fl_inst__signal(fl_req *r)
{
    json_t *body = NULL, *inst = NULL, *data = NULL;
    const char *type;
    int wait_ms = 0, status;

    if (!fl_req_json(r, &body) || !signal_body(r, body, &type) || !prepare(r, &inst, &wait_ms)) {
        json_decref(body);
        return r->status;
    }
    data = json_pack("{s:s, s:O, s:O}", "type", type, "data",
                     json_object_get(body, "data") ? json_object_get(body, "data") : json_null(),
                     "instance_id", json_object_get(inst, "id"));
    status = publish_and_wait(r, inst, EVENT_SIGNAL, data, wait_ms);
    json_decref(data);
    json_decref(inst);
    json_decref(body);
    return status;
}

/* An empty body, or {reason?: string}; false after answering. */
static bool cancel_body(fl_req *r, json_t **body)
{
    const char *data, *k;
    size_t len;
    json_t *errors = NULL, *v;

    *body = NULL;
    if (!fl_req_body(r, &data, &len)) {
        return false;
    }
    if (len == 0) {
        return true;
    }
    if (!fl_req_json(r, body)) {
        return false;
    }
    json_object_foreach(*body, k, v)
    {
        if (strcmp(k, "reason") != 0) {
            fl_body_error(&errors, "", "unknown member \"%s\" (allowed: reason)", k);
        } else if (!json_is_string(v)) {
            fl_body_error(&errors, "/reason", "must be a string");
        }
    }
    if (errors) {
        fl_problem_errors(r, 400, "the body is invalid", errors);
        return false;
    }
    return true;
}

int fl_inst__cancel(fl_req *r)
{
    json_t *body = NULL, *inst = NULL, *data;
    int wait_ms = 0, status;

    if (!cancel_body(r, &body) || !prepare(r, &inst, &wait_ms)) {
        json_decref(body);
        return r->status;
    }
    data = json_pack("{s:O}", "instance_id", json_object_get(inst, "id"));
    if (json_object_get(body, "reason")) {
        json_object_set(data, "reason", json_object_get(body, "reason"));
    }
    status = publish_and_wait(r, inst, EVENT_CANCEL, data, wait_ms);
    json_decref(data);
    json_decref(inst);
    json_decref(body);
    return status;
}
