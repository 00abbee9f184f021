/* api/routes_workflows.c -- /api/v1/workflows: listing, reading, graphs (PUT is in
 * api/routes_workflows_put.c).
 *
 * Visibility follows the engine's registry (engine/registry.h): a tenant sees its own
 * definitions plus the shipped ones (tenant "system", shipped = true), and its own
 * definition of a name hides the shipped one of that name. "Latest" is the newest
 * version of the definition the tenant sees.
 *
 * Thread-safety: handlers run on civetweb workers, each with its own request. */
#include <stdlib.h>
#include <string.h>

#include "api/instances_int.h"
#include "api/routes.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/cloudevent.h"
#include "engine/graph.h"

#define GRAPH_MAX_BYTES (1 << 20)

/* One row per name: the newest version of the definition the tenant sees, by name. */
static const char sql_list[] =
    "WITH v AS (SELECT DISTINCT ON (d.name) d.* FROM definitions d "
    "WHERE (d.tenant = $1 OR d.shipped) AND ($2::text IS NULL OR d.name > $2) "
    "ORDER BY d.name, (d.tenant = $1) DESC, d.version DESC) "
    "SELECT COALESCE(json_agg(" FL_INST_DEF_OBJECT ") ORDER BY d.name), '[]') "
    "FROM (SELECT * FROM v ORDER BY name LIMIT $3::int) d";

static const char sql_one[] =
    "SELECT " FL_INST_DEF_OBJECT ", 'source', d.source) FROM definitions d "
    "WHERE d.name = $2 AND (d.tenant = $1 OR d.shipped) AND ($3::int <= 0 OR d.version = $3) "
    "ORDER BY (d.tenant = $1) DESC, d.version DESC LIMIT 1";

bool fl_inst__name_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 128 || s[0] < 'a' || s[0] > 'z') {
        return false;
    }
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

bool fl_inst__uuid_valid(const char *s)
{
    if (strlen(s) != 36) {
        return false;
    }
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i])) {
            return false;
        }
    }
    return true;
}

bool fl_inst__query(fl_req *r, const char *name, char *buf, size_t size, const char **out)
{
    size_t n;

    *out = NULL;
    if (!fl_req_query(r, name, buf, size)) {
        return true;
    }
    n = strlen(buf);
    if (n + 1 >= size || !fl_ce_utf8_valid(buf, n)) {
        fl_problem(r, 400, "%s must be UTF-8 text of at most %zu bytes", name, size - 2);
        return false;
    }
    *out = buf;
    return true;
}

fl_workflow *fl_inst__parse(const char *name, const char *source)
{
    fl_workflow_limits lim = FL_WORKFLOW_LIMITS_DEFAULT;
    fl_workflow *wf = NULL;
    fl_diags d;

    fl_diags_init(&d, 1);
    if (fl_workflow_parse(source, strlen(source), name, &lim, &wf, &d) != FL_OK) {
        fl_log(FL_WARN, "api.definition_invalid", FL_STR("workflow", name),
               FL_STR("problem", d.count ? d.items[0].msg : ""));
    }
    fl_diags_deinit(&d);
    return wf;
}

/* {initial, states, triggers, schedule?, description?}: what the definition declares. */
static void add_summary(json_t *def, const fl_workflow *wf)
{
    json_t *states = json_array(), *triggers = json_array();

    for (size_t i = 0; i < wf->nstates; i++) {
        json_array_append_new(states, json_string(wf->states[i].name));
    }
    for (size_t i = 0; i < wf->ntriggers; i++) {
        json_array_append_new(triggers, json_string(wf->triggers[i]));
    }
    json_object_set_new(def, "initial", json_string(wf->states[wf->initial].name));
    json_object_set_new(def, "states", states);
    json_object_set_new(def, "triggers", triggers);
    if (wf->description) {
        json_object_set_new(def, "description", json_string(wf->description));
    }
    if (wf->schedule.kind == FL_SCHEDULE_CRON) {
        json_object_set_new(def, "schedule", json_pack("{s:s}", "cron", wf->schedule.cron));
    } else if (wf->schedule.kind == FL_SCHEDULE_EVERY) {
        json_object_set_new(def, "schedule",
                            json_pack("{s:I}", "every_ms", (json_int_t)wf->schedule.every_ms));
    }
}

bool fl_inst__definition(fl_req *r, const char *name, int version, json_t **out)
{
    char v[16];
    const char *p[3] = {r->who.tenant, name, v};
    fl_workflow *wf;

    *out = NULL;
    snprintf(v, sizeof(v), "%d", version);
    if (!fl_inst__name_valid(name)) {
        fl_problem(r, 404, "no workflow \"%s\"", name);
        return false;
    }
    if (!fl_req_db_json(r, sql_one, 3, p, out)) {
        return false;
    }
    if (!*out && version > 0) {
        fl_problem(r, 404, "no version %d of workflow \"%s\"", version, name);
        return false;
    }
    if (!*out) {
        fl_problem(r, 404, "no workflow \"%s\"", name);
        return false;
    }
    wf = fl_inst__parse(name, json_string_value(json_object_get(*out, "source")));
    if (wf) {
        add_summary(*out, wf);
    }
    fl_workflow_free(wf);
    return true;
}

static char *name_cursor(const json_t *item)
{
    return fl_page_cursor(json_string_value(json_object_get(item, "name")), NULL);
}

static int list_workflows(fl_req *r)
{
    fl_page pg;
    char limit[16];
    const char *p[3] = {r->who.tenant, NULL, limit};
    json_t *rows = NULL;

    if (!fl_req_page(r, &pg)) {
        return r->status;
    }
    p[1] = pg.has_cursor ? pg.after[0] : NULL;
    snprintf(limit, sizeof(limit), "%d", pg.limit + 1);
    if (!fl_req_db_json(r, sql_list, 3, p, &rows)) {
        return r->status;
    }
    return fl_reply(r, 200, fl_page_wrap(&pg, rows ? rows : json_array(), name_cursor));
}

static int get_workflow(fl_req *r)
{
    json_t *def;

    if (!fl_inst__definition(r, fl_req_param(r, 0), 0, &def)) {
        return r->status;
    }
    return fl_reply(r, 200, def);
}

/* A version in a path: a positive decimal integer; anything else names no version. */
static int path_version(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);

    return *s >= '1' && *s <= '9' && *end == '\0' && v <= 1000000000L ? (int)v : 0;
}

static int get_version(fl_req *r)
{
    int v = path_version(fl_req_param(r, 1));
    json_t *def;

    if (v <= 0) {
        return fl_problem(r, 404, "no version \"%s\" of workflow \"%s\"", fl_req_param(r, 1),
                          fl_req_param(r, 0));
    }
    if (!fl_inst__definition(r, fl_req_param(r, 0), v, &def)) {
        return r->status;
    }
    return fl_reply(r, 200, def);
}

/* Renders def's source; answers itself on failure. Ownership: *out (free()). */
static bool render(fl_req *r, const json_t *def, fl_graph_format f, char **out)
{
    const char *name = json_string_value(json_object_get(def, "name"));
    fl_workflow *wf = fl_inst__parse(name, json_string_value(json_object_get(def, "source")));
    fl_err err = FL_ERR_INIT;
    fl_buf b;
    bool ok = false;

    fl_buf_init(&b, GRAPH_MAX_BYTES);
    if (!wf) {
        fl_problem(r, 500, "the stored definition no longer parses");
    } else if (fl_graph_render(wf, f, &b, &err) != FL_OK) {
        fl_problem_rc(r, FL_EINTERNAL, &err);
    } else {
        *out = fl_buf_steal(&b);
        ok = true;
    }
    fl_buf_deinit(&b);
    fl_workflow_free(wf);
    return ok;
}

/* ?format=mermaid|dot (default mermaid), ?version=N (default latest) -> {name, version,
 * format, graph}. */
static int get_graph(fl_req *r)
{
    char fmt[16] = "mermaid", ver[16] = "";
    fl_graph_format f;
    int v = 0;
    json_t *def = NULL;
    char *text = NULL;

    fl_req_query(r, "format", fmt, sizeof(fmt));
    if (!fl_graph_format_parse(fmt, &f)) {
        return fl_problem(r, 400, "format must be \"mermaid\" or \"dot\"");
    }
    if (fl_req_query(r, "version", ver, sizeof(ver)) && (v = path_version(ver)) <= 0) {
        return fl_problem(r, 400, "version must be a positive integer");
    }
    if (!fl_inst__definition(r, fl_req_param(r, 0), v, &def) || !render(r, def, f, &text)) {
        json_decref(def);
        return r->status;
    }
    json_t *body = json_pack("{s:O, s:O, s:s, s:s}", "name", json_object_get(def, "name"),
                             "version", json_object_get(def, "version"), "format",
                             f == FL_GRAPH_DOT ? "dot" : "mermaid", "graph", text);
    free(text);
    json_decref(def);
    return fl_reply(r, 200, body);
}

static const fl_route routes[] = {
    {"GET", "/api/v1/workflows", list_workflows, FL_SCOPE_READ, 0},
    {"GET", "/api/v1/workflows/{name}", get_workflow, FL_SCOPE_READ, 0},
    {"PUT", "/api/v1/workflows/{name}", fl_inst__put_workflow, FL_SCOPE_WRITE, 0},
    {"GET", "/api/v1/workflows/{name}/versions/{version}", get_version, FL_SCOPE_READ, 0},
    {"GET", "/api/v1/workflows/{name}/graph", get_graph, FL_SCOPE_READ, 0},
};

void fl_routes_workflows(fl_router *rt)
{
    fl_router_add(rt, routes, sizeof(routes) / sizeof(routes[0]));
}
