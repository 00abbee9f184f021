/* api/routes_workflows_put.c -- PUT /api/v1/workflows/{name}: a new version of a
 * definition, validated by the engine's loader.
 *
 * Versions. The stored version is the YAML's `version:` when it is greater than every
 * version of the name the tenant sees (its own and the shipped ones), else that greatest
 * version + 1; when it differs, the stored text's `version:` is rewritten to it
 * (fl_workflow_set_version), because the engine takes a definition's version from its
 * text. Numbering above the shipped versions keeps the registry's lookups unambiguous
 * (a tenant's own version N hides the shipped version N). A body that is the latest
 * version's text -- byte for byte, or but for its `version:` value -- is that version
 * again: 200, nothing stored, so deploying the same file twice is a no-op.
 *
 * In effect: the row is committed before the response is sent, and the engine counts
 * each tenant's definitions once per batch (consumers/engine_batch.c), so an event
 * produced after this PUT returned is decided with the new definition.
 *
 * A `schedule:` upserts the tenant's schedules row in the same statement (the spec is
 * updated, a pending next_at kept); a version without one removes the row.
 *
 * Thread-safety: handlers run on civetweb workers, each with its own request. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/instances_int.h"
#include "core/clock.h"
#include "core/mem.h"
#include "engine/timers.h"

#define MAX_PROBLEMS 100
#define MAX_ATTEMPTS 3

static const char sql_latest[] =
    "SELECT json_build_object('latest', (SELECT json_build_object('version', d.version, "
    "'source', d.source) FROM definitions d WHERE d.name = $2 AND (d.tenant = $1 OR d.shipped) "
    "ORDER BY (d.tenant = $1) DESC, d.version DESC LIMIT 1), 'max', (SELECT max(d.version) "
    "FROM definitions d WHERE d.name = $2 AND (d.tenant = $1 OR d.shipped)))";

static const char sql_insert[] =
    "WITH d AS (INSERT INTO definitions (tenant, name, version, source, checksum) "
    "VALUES ($1, $2, $3::int, $4, encode(sha256(convert_to($4, 'UTF8')), 'hex')) "
    "ON CONFLICT DO NOTHING RETURNING *), "
    "s AS (INSERT INTO schedules (tenant, workflow, cron, every_ms, next_at) "
    "SELECT d.tenant, d.name, $5, $6::bigint, to_timestamp($7::bigint / 1000.0) FROM d "
    "WHERE $5::text IS NOT NULL OR $6::bigint IS NOT NULL ON CONFLICT (tenant, workflow) "
    "DO UPDATE SET cron = EXCLUDED.cron, every_ms = EXCLUDED.every_ms RETURNING 1), "
    "x AS (DELETE FROM schedules z USING d WHERE z.tenant = d.tenant AND z.workflow = d.name "
    "AND $5::text IS NULL AND $6::bigint IS NULL RETURNING 1) "
    "SELECT json_build_object('version', d.version) FROM d";

/* application/yaml or text/yaml, parameters (charset) ignored. */
static bool is_yaml(const char *ct)
{
    size_t n;

    if (!ct) {
        return false;
    }
    n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) {
        n--;
    }
    return (n == 16 && strncasecmp(ct, "application/yaml", n) == 0) ||
           (n == 9 && strncasecmp(ct, "text/yaml", n) == 0);
}

static int answer_problems(fl_req *r, fl_diags *d)
{
    json_t *errors = json_array();

    fl_diags_sort(d);
    for (size_t i = 0; i < d->count; i++) {
        json_array_append_new(errors,
                              json_pack("{s:i, s:i, s:s}", "line", (int)d->items[i].line, "col",
                                        (int)d->items[i].col, "message", d->items[i].msg));
    }
    if (d->dropped) {
        json_array_append_new(errors, json_pack("{s:i, s:i, s:s}", "line", 0, "col", 0, "message",
                                                "more problems were found and not listed"));
    }
    return fl_problem_errors(r, 422, "the workflow definition is invalid", errors);
}

/* Parses the body with the engine's loader; answers 422 with every problem. */
static bool parse_or_answer(fl_req *r, const char *name, const char *text, size_t len,
                            fl_workflow **out)
{
    fl_workflow_limits lim = FL_WORKFLOW_LIMITS_DEFAULT;
    fl_diags d;

    fl_diags_init(&d, MAX_PROBLEMS);
    if (fl_workflow_parse(text, len, name, &lim, out, &d) == FL_OK &&
        strcmp((*out)->name, name) != 0) {
        fl_diags_add(&d, name, (*out)->pos.line, (*out)->pos.col,
                     "workflow name \"%s\" does not match \"%s\" in the path", (*out)->name, name);
        fl_workflow_free(*out);
        *out = NULL;
    }
    if (!*out && d.count == 0) {
        fl_diags_add(&d, name, 0, 0, "the definition is invalid");
    }
    if (!*out) {
        answer_problems(r, &d);
    }
    fl_diags_deinit(&d);
    return *out != NULL;
}

/* True when text is the latest version's source, or would be with its version. */
static bool same_as_latest(const char *text, size_t len, const json_t *latest)
{
    const char *src = json_string_value(json_object_get(latest, "source"));
    int v = (int)json_integer_value(json_object_get(latest, "version"));
    char *as_latest = NULL;
    bool same;

    if (!src) {
        return false;
    }
    if (strlen(src) == len && memcmp(src, text, len) == 0) {
        return true;
    }
    same = fl_workflow_set_version(text, len, v, &as_latest, NULL) == FL_OK &&
           strcmp(as_latest, src) == 0;
    free(as_latest);
    return same;
}

typedef struct put_ctx {
    const char *name;
    const char *text;
    size_t len;
    const fl_workflow *wf;
    int version; /* out: the version answered */
    bool stored; /* out: a new row (201) rather than the latest again (200) */
} put_ctx;

/* The schedules parameters ($5 cron, $6 every_ms, $7 first next_at in ms). */
static void schedule_params(const fl_workflow *wf, char every[24], char next[24], const char **p)
{
    int64_t now = fl_clock_now_ms(fl_clock_system());
    int64_t at = now;

    p[0] = p[1] = NULL;
    if (wf->schedule.kind == FL_SCHEDULE_CRON) {
        p[0] = wf->schedule.cron;
        at = fl_cron_next(wf->schedule.cron, now);
    } else if (wf->schedule.kind == FL_SCHEDULE_EVERY) {
        snprintf(every, 24, "%lld", (long long)wf->schedule.every_ms);
        p[1] = every;
        at = now + wf->schedule.every_ms;
    }
    snprintf(next, 24, "%lld", (long long)(at < 0 ? now : at));
    p[2] = next;
}

/* Inserts version v; *inserted is false when a concurrent PUT took it first. */
static bool insert(fl_req *r, put_ctx *c, int v, bool *inserted)
{
    char ver[16], every[24], next[24];
    char *text = NULL;
    const char *p[7] = {r->who.tenant, c->name, ver, c->text};
    json_t *row = NULL;
    bool ok;

    snprintf(ver, sizeof(ver), "%d", v);
    if (v != c->wf->version) {
        if (fl_workflow_set_version(c->text, c->len, v, &text, NULL) != FL_OK) {
            fl_problem(r, 500, "could not number the new version");
            return false;
        }
        p[3] = text;
    }
    schedule_params(c->wf, every, next, &p[4]);
    ok = fl_req_db_json(r, sql_insert, 7, p, &row);
    *inserted = ok && row;
    json_decref(row);
    free(text);
    return ok;
}

/* One attempt: the latest version again, or a new one. *retry when a concurrent PUT won. */
static bool save(fl_req *r, put_ctx *c, bool *retry)
{
    const char *p[2] = {r->who.tenant, c->name};
    json_t *cur = NULL;
    const json_t *latest;
    int max, v;
    bool ok, inserted = false;

    *retry = false;
    if (!fl_req_db_json(r, sql_latest, 2, p, &cur)) {
        return false;
    }
    latest = json_object_get(cur, "latest");
    max = (int)json_integer_value(json_object_get(cur, "max"));
    if (json_is_object(latest) && same_as_latest(c->text, c->len, latest)) {
        c->version = (int)json_integer_value(json_object_get(latest, "version"));
        c->stored = false;
        json_decref(cur);
        return true;
    }
    json_decref(cur);
    v = c->wf->version > max ? c->wf->version : max + 1;
    ok = insert(r, c, v, &inserted);
    *retry = ok && !inserted;
    c->version = v;
    c->stored = true;
    return ok && inserted;
}

int fl_inst__put_workflow(fl_req *r)
{
    put_ctx c = {fl_req_param(r, 0), NULL, 0, NULL, 0, false};
    fl_workflow *wf = NULL;
    json_t *def = NULL;
    bool retry = true, ok = false;

    if (!is_yaml(fl_req_header(r, "Content-Type"))) {
        return fl_problem(r, 415, "the body must be application/yaml or text/yaml");
    }
    if (!fl_req_body(r, &c.text, &c.len) || !parse_or_answer(r, c.name, c.text, c.len, &wf)) {
        return r->status;
    }
    c.wf = wf;
    for (int i = 0; i < MAX_ATTEMPTS && retry && !ok; i++) {
        ok = save(r, &c, &retry);
    }
    fl_workflow_free(wf);
    if (!ok) {
        return r->status
                   ? r->status
                   : fl_problem(r, 409, "concurrent changes to workflow \"%s\"; retry", c.name);
    }
    if (!fl_inst__definition(r, c.name, c.version, &def)) {
        return r->status;
    }
    if (c.stored) {
        fl_req_header_add(r, "Location", "/api/v1/workflows/%s/versions/%d", c.name, c.version);
    }
    return fl_reply(r, c.stored ? 201 : 200, def);
}
