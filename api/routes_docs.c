/* api/routes_docs.c -- GET /openapi.json and GET /docs: the OpenAPI document compiled into
 * the binary (api/docs.h), converted to JSON and rendered to HTML once, on first use.
 *
 * Neither route needs a key (issue 5): the document describes the API, not anyone's data.
 *
 * Thread-safety: the cache is written once under pthread_once and only read after. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "api/docs.h"
#include "api/request.h"
#include "api/routes.h"
#include "core/log.h"
#include "core/yaml_json.h"

/* The exception to "no mutable globals" (R9): this derives only from constant data
 * compiled into the binary, is written once under pthread_once and never changes after,
 * and every worker would otherwise redo the same conversion. */
static struct {
    pthread_once_t once;
    char *json; /* compact, in the document's key order */
    char *html;
} cache = {.once = PTHREAD_ONCE_INIT};

static void build_cache(void)
{
    fl_err err = FL_ERR_INIT;
    json_t *doc = NULL;

    /* a document that does not convert is a build defect (the unit tests convert it) */
    if (fl_yaml_json_parse(fl_openapi_yaml, fl_openapi_yaml_len, NULL, &doc, &err) != FL_OK) {
        fl_log(FL_ERROR, "api.openapi_invalid", FL_STR("file", "api/openapi.yaml"),
               FL_STR("msg", err.msg));
        return;
    }
    cache.json = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    cache.html = fl_docs_html(doc);
    json_decref(doc);
}

static int send_cached(fl_req *r, const char *text, const char *content_type)
{
    if (!text) {
        return fl_problem(r, 500, "the embedded OpenAPI document cannot be served");
    }
    return fl_req_send(r, 200, content_type, text, strlen(text));
}

static int handle_openapi(fl_req *r)
{
    pthread_once(&cache.once, build_cache);
    return send_cached(r, cache.json, "application/json");
}

static int handle_docs(fl_req *r)
{
    pthread_once(&cache.once, build_cache);
    return send_cached(r, cache.html, "text/html; charset=utf-8");
}

static const fl_route docs_routes[] = {
    {"GET", "/openapi.json", handle_openapi, FL_SCOPE_NONE, 0},
    {"GET", "/docs", handle_docs, FL_SCOPE_NONE, 0},
};

void fl_routes_docs(fl_router *rt)
{
    fl_router_add(rt, docs_routes, sizeof(docs_routes) / sizeof(docs_routes[0]));
}
