/* engine/agents_registry.c -- agent profiles as a set: files, the registry, lookups and
 * the API's JSON form (see engine/agents.h).
 *
 * Thread-safety: loading belongs to one thread; a loaded registry is immutable. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "core/mem.h"
#include "engine/agents.h"
#include "engine/yaml_dir.h"

#define MAX_PROBLEMS 1000

struct fl_agents {
    fl_agent **items; /* sorted by id */
    size_t n;
};

static const char *const slot_type_names[] = {"string", "int",      "number", "bool",  "date",
                                              "time",   "datetime", "list",   "phone", "email"};

/* ---- one profile --------------------------------------------------------------------- */

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i]);
    }
    free(v);
}

void fl_agent_free(fl_agent *a)
{
    if (!a) {
        return;
    }
    for (size_t i = 0; i < a->nintents; i++) {
        free(a->intents[i].name);
        free(a->intents[i].description);
        free_strv(a->intents[i].keywords, a->intents[i].nkeywords);
        free(a->intents[i].required);
        free(a->intents[i].action);
    }
    free(a->intents);
    for (size_t i = 0; i < a->nslots; i++) {
        free(a->slots[i].name);
        free(a->slots[i].description);
        free(a->slots[i].ask);
    }
    free(a->slots);
    free_strv(a->actions, a->nactions);
    free(a->id);
    free(a->name);
    free(a->description);
    free(a->system_prompt);
    free(a->preferred_provider);
    free(a->greeting);
    free(a->confirm);
    free(a->done);
    free(a->path);
    free(a);
}

fl_rc fl_agent_load(const char *path, fl_agent **out, fl_diags *diags)
{
    fl_buf b;
    fl_err err = FL_ERR_INIT;
    fl_rc rc;

    *out = NULL;
    fl_buf_init(&b, FL_AGENT_MAX_BYTES + 1);
    rc = fl_buf_read_file(&b, path, &err);
    if (rc == FL_ETOOBIG) {
        fl_diags_add(diags, path, 1, 1, "the profile is larger than %d bytes", FL_AGENT_MAX_BYTES);
    } else if (rc != FL_OK) {
        fl_diags_add(diags, path, 0, 0, "%s", err.msg);
    } else {
        rc = fl_agent_parse(b.data ? b.data : "", b.len, path, out, diags);
    }
    fl_buf_deinit(&b);
    return rc;
}

const fl_agent_slot *fl_agent_slot_get(const fl_agent *a, const char *name)
{
    for (size_t i = 0; i < a->nslots; i++) {
        if (strcmp(a->slots[i].name, name) == 0) {
            return &a->slots[i];
        }
    }
    return NULL;
}

const fl_agent_intent *fl_agent_intent_get(const fl_agent *a, const char *name)
{
    for (size_t i = 0; i < a->nintents; i++) {
        if (strcmp(a->intents[i].name, name) == 0) {
            return &a->intents[i];
        }
    }
    return NULL;
}

bool fl_agent_allows(const fl_agent *a, const char *action)
{
    for (size_t i = 0; i < a->nactions; i++) {
        if (strcmp(a->actions[i], action) == 0) {
            return true;
        }
    }
    return false;
}

static json_t *strv_json(char *const *v, size_t n)
{
    json_t *arr = json_array();

    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, json_string(v[i]));
    }
    return arr;
}

static json_t *intent_json(const fl_agent *a, const fl_agent_intent *in)
{
    json_t *req = json_array();

    for (size_t i = 0; i < in->nrequired; i++) {
        json_array_append_new(req, json_string(a->slots[in->required[i]].name));
    }
    return json_pack("{s:s, s:s, s:o, s:o, s:s?}", "name", in->name, "description", in->description,
                     "keywords", strv_json(in->keywords, in->nkeywords), "required_slots", req,
                     "action", in->action);
}

json_t *fl_agent_to_json(const fl_agent *a, bool with_prompt)
{
    json_t *intents = json_array(), *slots = json_array(), *o;

    for (size_t i = 0; i < a->nintents; i++) {
        json_array_append_new(intents, intent_json(a, &a->intents[i]));
    }
    for (size_t i = 0; i < a->nslots; i++) {
        json_array_append_new(slots, json_pack("{s:s, s:s, s:s}", "name", a->slots[i].name, "type",
                                               slot_type_names[a->slots[i].type], "description",
                                               a->slots[i].description));
    }
    o = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:s}", "id", a->id, "name", a->name,
                  "description", a->description, "intents", intents, "slots", slots,
                  "allowed_actions", strv_json(a->actions, a->nactions), "preferred_provider",
                  a->preferred_provider);
    if (with_prompt) {
        json_object_set_new(o, "system_prompt", json_string(a->system_prompt));
    }
    return o;
}

/* ---- the set ------------------------------------------------------------------------- */

void fl_agents_check_set(fl_agent *const *profiles, size_t n, bool need_fallback, const char *dir,
                         fl_diags *diags)
{
    bool fallback = false;

    for (size_t i = 0; i < n; i++) {
        fallback = fallback || strcmp(profiles[i]->id, FL_AGENTS_FALLBACK) == 0;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(profiles[i]->id, profiles[j]->id) == 0) {
                fl_diags_add(diags, profiles[i]->path, profiles[i]->line, profiles[i]->col,
                             "duplicate agent id \"%s\" (also in %s)", profiles[i]->id,
                             profiles[j]->path);
                break;
            }
        }
    }
    if (need_fallback && !fallback) {
        fl_diags_add(diags, dir ? dir : "<agents>", 0, 0,
                     "no \"%s\" profile: the fallback agent must exist", FL_AGENTS_FALLBACK);
    }
}

fl_agents *fl_agents_new(void)
{
    return fl_xcalloc(1, sizeof(fl_agents));
}

void fl_agents_free(fl_agents *r)
{
    if (!r) {
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        fl_agent_free(r->items[i]);
    }
    free(r->items);
    free(r);
}

static int cmp_agent(const void *x, const void *y)
{
    return strcmp((*(fl_agent *const *)x)->id, (*(fl_agent *const *)y)->id);
}

/* Parses every file into r->items (the valid ones) and checks them as a set. */
static void load_files(fl_agents *r, char **paths, size_t n, const char *dir, fl_diags *diags)
{
    r->items = fl_xcalloc(n + 1, sizeof(*r->items));
    for (size_t i = 0; i < n; i++) {
        if (fl_agent_load(paths[i], &r->items[r->n], diags) == FL_OK) {
            r->n++;
        }
    }
    fl_agents_check_set(r->items, r->n, true, dir, diags);
    qsort(r->items, r->n, sizeof(*r->items), cmp_agent);
}

fl_rc fl_agents_load_dir(fl_agents **out, const char *dir, fl_diags *diags, fl_err *err)
{
    fl_agents *r = fl_agents_new();
    char **paths = NULL;
    size_t n = 0, before = diags->count + diags->dropped;
    fl_rc rc = fl_yaml_dir_list(dir, "agents", &paths, &n, err);

    *out = NULL;
    if (rc == FL_OK && n > FL_AGENTS_MAX_PROFILES) {
        fl_diags_add(diags, dir, 0, 0, "more than %d agent profiles", FL_AGENTS_MAX_PROFILES);
    } else if (rc == FL_OK) {
        load_files(r, paths, n, dir, diags);
    }
    if (rc == FL_OK && diags->count + diags->dropped > before) {
        fl_diags_sort(diags);
        rc = fl_err_set(err, FL_EINVAL, "%zu problems in the agent profiles of \"%s\"",
                        diags->count + diags->dropped - before, dir);
    }
    if (rc == FL_OK) {
        *out = r;
        r = NULL;
    }
    free_strv(paths, n);
    fl_agents_free(r);
    return rc;
}

/* ---- configuration ------------------------------------------------------------------- */

char *fl_agents_dir_dup(const fl_config_engine *engine)
{
    if (engine->agents_dir && *engine->agents_dir) {
        return fl_xstrdup(engine->agents_dir);
    }
    return fl_xasprintf("%s/agents", engine->workflows_dir ? engine->workflows_dir : ".");
}

static bool derived_and_missing(const fl_config_engine *engine, const char *dir)
{
    struct stat st;

    return !(engine->agents_dir && *engine->agents_dir) && stat(dir, &st) != 0;
}

fl_rc fl_agents_load_config(fl_agents **out, const fl_config_engine *engine, fl_err *err)
{
    char *dir = fl_agents_dir_dup(engine);
    fl_diags d;
    fl_rc rc = FL_OK;

    *out = NULL;
    fl_diags_init(&d, MAX_PROBLEMS);
    if (derived_and_missing(engine, dir)) {
        fl_log(FL_WARN, "agents.missing", FL_STR("dir", dir));
        *out = fl_agents_new();
        goto out;
    }
    rc = fl_agents_load_dir(out, dir, &d, err);
    fl_yaml_dir_log_problems(&d, "agents.invalid");
    if (rc == FL_OK) {
        fl_log(FL_INFO, "agents.loaded", FL_STR("dir", dir),
               FL_INT("agents", (long long)fl_agents_count(*out)));
    }
out:
    fl_diags_deinit(&d);
    free(dir);
    return rc;
}

/* ---- lookups ------------------------------------------------------------------------- */

const fl_agent *fl_agents_get(const fl_agents *r, const char *id)
{
    size_t lo = 0, hi = r ? r->n : 0;

    while (id && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->items[mid]->id, id);
        if (c == 0) {
            return r->items[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

const fl_agent *fl_agents_fallback(const fl_agents *r)
{
    return fl_agents_get(r, FL_AGENTS_FALLBACK);
}

size_t fl_agents_count(const fl_agents *r)
{
    return r ? r->n : 0;
}

const fl_agent *fl_agents_at(const fl_agents *r, size_t i)
{
    return r && i < r->n ? r->items[i] : NULL;
}

json_t *fl_agents_to_json(const fl_agents *r, bool with_prompt)
{
    json_t *arr = json_array();

    for (size_t i = 0; i < fl_agents_count(r); i++) {
        json_array_append_new(arr, fl_agent_to_json(r->items[i], with_prompt));
    }
    return arr;
}
