/* api/server.c -- civetweb lifecycle and the health routes. */
#include "api/server.h"

#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/reply.h"
#include "core/log.h"
#include "core/mem.h"

struct fl_server {
    struct mg_context *ctx;
    fl_health *health; /* borrowed */
};

static bool is_get(const struct mg_connection *conn)
{
    const char *m = mg_get_request_info(conn)->request_method;
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
}

static int method_not_allowed(struct mg_connection *conn)
{
    return fl_reply_problem(conn, 405, "Method Not Allowed", "this resource supports GET and HEAD",
                            "Allow: GET, HEAD\r\n");
}

/* The process is up and serving: no dependency is consulted (Kubernetes restarts on a
 * failing liveness probe, so it must not fail because Postgres is down). */
static int handle_livez(struct mg_connection *conn, void *cbdata)
{
    (void)cbdata;
    if (!is_get(conn)) {
        return method_not_allowed(conn);
    }
    return fl_reply_json_take(conn, 200, json_pack("{s:s}", "status", "ok"));
}

static int handle_readyz(struct mg_connection *conn, void *cbdata)
{
    fl_server *srv = cbdata;
    json_t *snap;
    const char *status;

    if (!is_get(conn)) {
        return method_not_allowed(conn);
    }
    snap = fl_health_snapshot(srv->health);
    status = json_string_value(json_object_get(snap, "status"));
    return fl_reply_json_take(conn, status && !strcmp(status, "ready") ? 200 : 503, snap);
}

static int handle_not_found(struct mg_connection *conn, void *cbdata)
{
    char detail[300];

    (void)cbdata;
    snprintf(detail, sizeof(detail), "no resource at \"%s\"", mg_get_request_info(conn)->local_uri);
    return fl_reply_problem(conn, 404, "Not Found", detail, NULL);
}

/* civetweb's own messages become JSON log lines. */
static int log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    fl_log(FL_WARN, "http.server", FL_STR("msg", message));
    return 1;
}

static void build_options(const fl_config_http *cfg, char *ports, size_t psize, char *threads,
                          char *timeout, const char *opts[])
{
    size_t n = 0;

    snprintf(ports, psize, "%s:%d", cfg->listen, cfg->port);
    snprintf(threads, 16, "%d", cfg->threads);
    snprintf(timeout, 16, "%d", cfg->request_timeout_ms);
    opts[n++] = "listening_ports", opts[n++] = ports;
    opts[n++] = "num_threads", opts[n++] = threads;
    opts[n++] = "request_timeout_ms", opts[n++] = timeout;
    opts[n++] = "tcp_nodelay", opts[n++] = "1";
    opts[n++] = "enable_keep_alive", opts[n++] = "yes";
    opts[n++] = "keep_alive_timeout_ms", opts[n++] = "30000";
    opts[n++] = "enable_directory_listing", opts[n++] = "no";
    opts[n] = NULL;
}

static void add_routes(fl_server *srv)
{
    mg_set_request_handler(srv->ctx, "/livez$", handle_livez, srv);
    mg_set_request_handler(srv->ctx, "/readyz$", handle_readyz, srv);
    mg_set_request_handler(srv->ctx, "/", handle_not_found, srv);
}

fl_rc fl_server_start(fl_server **out, const fl_config_http *cfg, fl_health *health, fl_err *err)
{
    char ports[300], threads[16], timeout[16], why[256] = "";
    unsigned code = 0;
    const char *opts[32];
    struct mg_callbacks cb = {.log_message = log_message};
    struct mg_init_data init = {.callbacks = &cb, .configuration_options = opts};
    struct mg_error_data error = {.code = &code, .text = why, .text_buffer_size = sizeof(why)};
    fl_server *srv = fl_xcalloc(1, sizeof(*srv));

    *out = NULL;
    srv->health = health;
    build_options(cfg, ports, sizeof(ports), threads, timeout, opts);
    init.user_data = srv;
    srv->ctx = mg_start2(&init, &error);
    if (!srv->ctx) {
        free(srv);
        return fl_err_set(err, FL_EUNAVAIL, "could not listen on \"%s\": %s", ports,
                          *why ? why : "unknown civetweb error");
    }
    add_routes(srv);
    fl_log(FL_INFO, "http.listening", FL_STR("address", ports));
    *out = srv;
    return FL_OK;
}

void fl_server_stop(fl_server *srv)
{
    if (!srv) {
        return;
    }
    mg_stop(srv->ctx); /* returns once every worker has finished its request */
    free(srv);
}
