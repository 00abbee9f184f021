/* api/routes_events.c -- POST /api/v1/events (the CloudEvents HTTP binding), the Kafka
 * status routes, and the origin documents' two publish routes.
 *
 * POST /events: the request is decoded by api/ce_http.h (binary, structured or batch
 * mode; the caller's tenant replaces the client's), every event is routed to a topic by
 * api.event_routes (the first `type-prefix=topic` whose prefix starts the type; else
 * topics.flowd_events), an event routed to a topic the engine consumes must carry a
 * subject (it is the instance key and the Kafka key), and only then is anything
 * produced: a request is validated as a whole, so a 400 means nothing was sent.
 * Producing and the 202/503 answer are in routes_events_produce.c, the Kafka status
 * routes in routes_events_kafka.c.
 *
 * The compatibility routes publish their JSON body as the data of an event of a fixed
 * type, keyed by its `conversation_id`:
 *   POST /api/v1/kafka/events/conversation -> type "conversation.event", conversation.events
 *   POST /api/v1/kafka/events/ai-response  -> type "ai.response", ai.responses
 * through api/publish.h (source "flowd/api", a new UUIDv7 id, time = now).
 *
 * Thread-safety: handlers run on civetweb worker threads, one request each; the route
 * table is immutable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/body.h"
#include "api/ce_http.h"
#include "api/publish.h"
#include "api/request.h"
#include "api/routes.h"
#include "api/routes_events_int.h"
#include "core/mem.h"

/* Copies the trimmed text s[0..n) into out; false when it is empty or does not fit. */
static bool trimmed(const char *s, size_t n, char *out, size_t size)
{
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    if (n == 0 || n >= size) {
        return false;
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

/* The topic of an event type: the first api.event_routes entry whose prefix starts the
 * type, else topics.flowd_events. Entries without '=' or a topic are skipped. */
static void route_topic(const fl_config *cfg, const char *type, char out[EV_TOPIC_MAX])
{
    const char *p = cfg->api.event_routes ? cfg->api.event_routes : "";
    char prefix[EV_TOPIC_MAX];

    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        if (eq != NULL && trimmed(eq + 1, n - (size_t)(eq + 1 - p), out, EV_TOPIC_MAX)) {
            bool any = !trimmed(p, (size_t)(eq - p), prefix, sizeof(prefix));
            if (any || strncmp(type, prefix, strlen(prefix)) == 0) {
                return;
            }
        }
        p += n;
        p += *p == ',';
    }
    snprintf(out, EV_TOPIC_MAX, "%s", cfg->kafka.topics.flowd_events);
}

/* True for the topics the engine consumes (consumers/engine.c subscribes to these). */
static bool engine_consumes(const fl_config *cfg, const char *topic)
{
    const fl_config_topics *t = &cfg->kafka.topics;
    const char *in[] = {t->conversation_events, t->flowd_events, t->appointment_events,
                        t->order_events, t->internal};

    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        if (in[i] != NULL && strcmp(in[i], topic) == 0) {
            return true;
        }
    }
    return false;
}

/* Routes every event; answers 400 when one without a subject goes to an engine topic. */
static bool route_all(fl_req *r, const fl_ce_http_events *ev, ev_item *items)
{
    const fl_config *cfg = r->api->cfg;
    json_t *errors = NULL;
    char ptr[40];

    for (size_t i = 0; i < ev->n; i++) {
        items[i].ce = ev->events[i];
        route_topic(cfg, ev->events[i]->type, items[i].topic);
        if (ev->events[i]->subject == NULL && engine_consumes(cfg, items[i].topic)) {
            if (ev->mode == FL_CE_HTTP_BATCH) {
                snprintf(ptr, sizeof(ptr), "/%zu/subject", i);
            } else {
                snprintf(ptr, sizeof(ptr), "/subject");
            }
            fl_body_error(&errors, ptr,
                          "event \"%s\" of type \"%s\" goes to topic \"%s\", which the workflow "
                          "engine consumes: it must carry a subject (the instance key)",
                          ev->events[i]->id, ev->events[i]->type, items[i].topic);
        }
    }
    if (errors != NULL) {
        fl_problem_errors(r, 400, "events for workflows must carry a subject (the instance key)",
                          errors);
        return false;
    }
    return true;
}

static int unsupported(fl_req *r, const char *ct)
{
    if (ct != NULL && strncasecmp(ct + strspn(ct, " \t"), "application/cloudevents", 23) == 0) {
        return fl_problem(r, 415,
                          "only the JSON event format is supported: "
                          "application/cloudevents+json or "
                          "application/cloudevents-batch+json");
    }
    return fl_problem(r, 415,
                      "not a CloudEvent: send Content-Type application/cloudevents+json "
                      "(structured mode), application/cloudevents-batch+json (batch mode), "
                      "or the data with ce-specversion, ce-id, ce-source and ce-type headers "
                      "(binary mode)");
}

/* Routes the decoded events, then produces them and answers (or answers why not). */
static int route_and_produce(fl_req *r, const fl_ce_http_events *ev)
{
    ev_item one; /* the usual single event: no heap block */
    ev_item *items = &one;
    int status;

    memset(&one, 0, sizeof(one));
    if (ev->n > 1) {
        items = fl_xcalloc(ev->n, sizeof(*items));
    }
    items[0].data_text = ev->data_text; /* binary mode: one event, its body as it came */
    items[0].data_text_len = ev->data_text_len;
    if (!route_all(r, ev, items)) {
        status = r->status;
    } else {
        status = ev_produce_and_answer(r, items, ev->n, ev->mode == FL_CE_HTTP_BATCH);
    }
    if (items != &one) {
        free(items);
    }
    return status;
}

/* POST /api/v1/events */
static int post_events(fl_req *r)
{
    fl_ce_http_header hdrs[64];
    fl_ce_http_request req = {.content_type = fl_req_header(r, "Content-Type"), .headers = hdrs};
    fl_ce_http_opts opts = {.tenant = r->who.tenant, .max_depth = r->api->cfg->api.max_json_depth};
    fl_ce_http_events ev = {.n = 0};
    json_t *errors = NULL;
    fl_err err = FL_ERR_INIT;
    int status;

    for (int i = 0; i < r->ri->num_headers && req.nheaders < 64; i++) {
        hdrs[req.nheaders++] =
            (fl_ce_http_header){r->ri->http_headers[i].name, r->ri->http_headers[i].value};
    }
    if (fl_ce_http_mode_of(&req) == FL_CE_HTTP_UNSUPPORTED) {
        return unsupported(r, req.content_type);
    }
    if (!fl_req_body(r, &req.body, &req.body_len)) {
        return r->status;
    }
    if (fl_ce_http_decode(&req, &opts, &ev, &errors, &err) != FL_OK) {
        return fl_problem_errors(r, err.code == FL_ETOOBIG ? 413 : 400, err.msg, errors);
    }
    status = route_and_produce(r, &ev);
    fl_ce_http_events_free(&ev);
    return status;
}

/* The compatibility routes: the body (an object with a conversation_id) as the data of
 * an event of a fixed type. */
static int publish_compat(fl_req *r, const char *topic, const char *type)
{
    json_t *body;
    json_t *errors = NULL;
    const json_t *cid;
    char id[FL_PUBLISH_ID_SIZE];

    if (!fl_req_json(r, &body)) {
        return r->status;
    }
    cid = json_object_get(body, "conversation_id");
    if (!json_is_string(cid) || json_string_length(cid) == 0 ||
        json_string_length(cid) > FL_CE_MAX_SUBJECT) {
        json_decref(body);
        fl_body_error(&errors, "/conversation_id",
                      "must be a string of 1 to %d bytes: the conversation the event is about "
                      "(its subject and Kafka key)",
                      FL_CE_MAX_SUBJECT);
        return fl_problem_errors(r, 400, "conversation_id is required", errors);
    }
    fl_publish_cmd cmd = {
        .topic = topic, .type = type, .subject = json_string_value(cid), .data = body};
    if (!fl_publish_req(r, &cmd, id)) {
        json_decref(body);
        return r->status;
    }
    json_decref(body);
    return fl_reply(r, 202, json_pack("{s:i, s:[s]}", "accepted", 1, "ids", id));
}

static int post_compat_conversation(fl_req *r)
{
    return publish_compat(r, r->api->cfg->kafka.topics.conversation_events, "conversation.event");
}

static int post_compat_ai_response(fl_req *r)
{
    return publish_compat(r, r->api->cfg->kafka.topics.ai_responses, "ai.response");
}

static const fl_route routes[] = {
    {"POST", "/api/v1/events", post_events, FL_SCOPE_WRITE, FL_ROUTE_IDEMPOTENT},
    {"GET", "/api/v1/kafka/health", ev_kafka_health, FL_SCOPE_READ, 0},
    {"GET", "/api/v1/kafka/metrics", ev_kafka_metrics, FL_SCOPE_READ, 0},
    {"POST", "/api/v1/kafka/events/conversation", post_compat_conversation, FL_SCOPE_WRITE,
     FL_ROUTE_IDEMPOTENT},
    {"POST", "/api/v1/kafka/events/ai-response", post_compat_ai_response, FL_SCOPE_WRITE,
     FL_ROUTE_IDEMPOTENT},
};

void fl_routes_events(fl_router *rt)
{
    fl_router_add(rt, routes, sizeof(routes) / sizeof(routes[0]));
}
