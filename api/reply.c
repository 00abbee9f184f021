/* api/reply.c -- response writers shared by every handler. */
#include "api/reply.h"

#include <stdlib.h>
#include <string.h>

static int send_body(struct mg_connection *conn, int status, const char *type, const char *body,
                     size_t len, const char *extra)
{
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\n"
              "Content-Type: %s\r\n"
              "Content-Length: %zu\r\n"
              "Cache-Control: no-store\r\n"
              "%s\r\n",
              status, mg_get_response_code_text(conn, status), type, len, extra ? extra : "");
    if (strcmp(mg_get_request_info(conn)->request_method, "HEAD") != 0) {
        mg_write(conn, body, len);
    }
    return status;
}

int fl_reply_json_take(struct mg_connection *conn, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);

    json_decref(body);
    if (!text) {
        return fl_reply_problem(conn, 500, "Internal Server Error", "cannot encode the response",
                                NULL);
    }
    send_body(conn, status, "application/json", text, strlen(text), NULL);
    free(text);
    return status;
}

int fl_reply_problem(struct mg_connection *conn, int status, const char *title, const char *detail,
                     const char *extra)
{
    json_t *p = json_pack("{s:s,s:s,s:i}", "type", "about:blank", "title", title, "status", status);
    char *text;

    if (detail) {
        json_object_set_new(p, "detail", json_string(detail));
    }
    text = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(p);
    send_body(conn, status, "application/problem+json", text ? text : "{}", text ? strlen(text) : 2,
              extra);
    free(text);
    return status;
}
