/* api/server.c -- civetweb lifecycle, the shared services of fl_api, the health routes. */
#include "api/server.h"

#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/dispatch.h"
#include "api/keys.h"
#include "api/notify.h"
#include "api/ratelimit.h"
#include "api/request.h"
#include "api/routes.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/agents.h"

struct fl_server {
    struct mg_context *ctx;
    fl_api api;
};

/* The process is up and serving: no dependency is consulted (Kubernetes restarts on a
 * failing liveness probe, so it must not fail because Postgres is down). */
static int handle_livez(fl_req *r)
{
    return fl_reply(r, 200, json_pack("{s:s}", "status", "ok"));
}

static int handle_readyz(fl_req *r)
{
    json_t *snap = fl_health_snapshot(r->api->health);
    const char *status = json_string_value(json_object_get(snap, "status"));

    return fl_reply(r, status && !strcmp(status, "ready") ? 200 : 503, snap);
}

static const fl_route health_routes[] = {
    {"GET", "/livez", handle_livez, FL_SCOPE_NONE, 0},
    {"GET", "/readyz", handle_readyz, FL_SCOPE_NONE, 0},
};

void fl_routes_health(fl_router *rt)
{
    fl_router_add(rt, health_routes, sizeof(health_routes) / sizeof(health_routes[0]));
}

void fl_server_add_routes(fl_router *rt)
{
    fl_routes_health(rt);
    fl_routes_docs(rt);
    fl_routes_keys(rt);
    fl_routes_events(rt);
    fl_routes_workflows(rt);
    fl_routes_instances(rt);
    fl_routes_dead_letters(rt);
    fl_routes_conversations(rt);
    fl_routes_compat(rt);
    fl_routes_metrics(rt);
    fl_routes_analytics(rt);
    fl_routes_businesses(rt);
    fl_routes_memory(rt);
    fl_routes_gateway(rt);
}

/* civetweb's own messages become JSON log lines. */
static int log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    fl_log(FL_WARN, "http.server", FL_STR("msg", message));
    return 1;
}

static int http_error(struct mg_connection *conn, int status, const char *errmsg)
{
    fl_server *srv = mg_get_user_data(mg_get_context(conn));

    return fl_dispatch_error(conn, status, errmsg, &srv->api);
}

typedef struct options {
    char ports[300], threads[16], timeout[16], header[24];
    const char *argv[32];
} options;

static void build_options(const fl_config *cfg, options *o)
{
    size_t n = 0;

    snprintf(o->ports, sizeof(o->ports), "%s:%d", cfg->http.listen, cfg->http.port);
    /* every open stream holds a worker: size for both, so streams never starve the API */
    snprintf(o->threads, sizeof(o->threads), "%d", cfg->http.threads + cfg->api.max_streams);
    snprintf(o->timeout, sizeof(o->timeout), "%d", cfg->http.request_timeout_ms);
    snprintf(o->header, sizeof(o->header), "%lld", cfg->api.max_header_bytes);
    o->argv[n++] = "listening_ports", o->argv[n++] = o->ports;
    o->argv[n++] = "num_threads", o->argv[n++] = o->threads;
    o->argv[n++] = "request_timeout_ms", o->argv[n++] = o->timeout;
    o->argv[n++] = "max_request_size", o->argv[n++] = o->header;
    o->argv[n++] = "tcp_nodelay", o->argv[n++] = "1";
    o->argv[n++] = "enable_keep_alive", o->argv[n++] = "yes";
    o->argv[n++] = "keep_alive_timeout_ms", o->argv[n++] = "30000";
    o->argv[n++] = "enable_directory_listing", o->argv[n++] = "no";
    o->argv[n] = NULL;
}

static fl_rc api_open(fl_api *api, const fl_server_deps *deps, fl_err *err)
{
    const fl_config *cfg = deps->cfg;
    fl_rc rc;

    api->cfg = cfg;
    api->pool = deps->pool;
    api->producer = deps->producer;
    api->health = deps->health;
    api->llm = deps->llm;
    api->ids = fl_ids_new(fl_clock_system());
    api->keys = fl_keys_new(deps->pool, cfg->api.key_cache_ttl_ms, cfg->db.connect_timeout_ms);
    api->limiter = fl_ratelimit_new(cfg->api.rate_limit, cfg->api.rate_burst);
    api->router = fl_router_new();
    fl_server_add_routes(api->router);
    atomic_init(&api->streams, 0);
    /* invalid profiles stop the start; each problem is logged as agents.invalid */
    rc = fl_agents_load_config(&api->agents, &cfg->engine, err);
    return rc == FL_OK ? fl_notify_start(&api->notify, &cfg->db, err) : rc;
}

static void api_close(fl_api *api)
{
    fl_notify_free(api->notify);
    fl_router_free(api->router);
    fl_ratelimit_free(api->limiter);
    fl_keys_free(api->keys);
    fl_ids_free(api->ids);
    fl_agents_free(api->agents);
}

fl_rc fl_server_start(fl_server **out, const fl_server_deps *deps, fl_err *err)
{
    char why[256] = "";
    unsigned code = 0;
    options o = {.ports = ""};
    struct mg_callbacks cb = {.log_message = log_message, .http_error = http_error};
    struct mg_init_data init = {.callbacks = &cb, .configuration_options = o.argv};
    struct mg_error_data error = {.code = &code, .text = why, .text_buffer_size = sizeof(why)};
    fl_server *srv = fl_xcalloc(1, sizeof(*srv));
    fl_rc rc = api_open(&srv->api, deps, err);

    *out = NULL;
    if (rc != FL_OK) {
        api_close(&srv->api);
        free(srv);
        return rc;
    }
    build_options(deps->cfg, &o);
    init.user_data = srv;
    srv->ctx = mg_start2(&init, &error);
    if (!srv->ctx) {
        api_close(&srv->api);
        free(srv);
        return fl_err_set(err, FL_EUNAVAIL, "could not listen on \"%s\": %s", o.ports,
                          *why ? why : "unknown civetweb error");
    }
    mg_set_request_handler(srv->ctx, "/", fl_dispatch, &srv->api);
    fl_log(FL_INFO, "http.listening", FL_STR("address", o.ports));
    *out = srv;
    return FL_OK;
}

void fl_server_stop(fl_server *srv)
{
    if (!srv) {
        return;
    }
    fl_notify_stop(srv->api.notify); /* wake long-polls so mg_stop does not wait them out */
    mg_stop(srv->ctx);               /* returns once every worker has finished its request */
    api_close(&srv->api);
    free(srv);
}
