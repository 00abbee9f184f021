/* engine/registry.c -- the engine's cache of parsed definitions (engine/registry.h).
 *
 * Design: a flat array of entries searched linearly. A process sees tens of definitions,
 * and a scan of them costs less than the hashing it would replace; lookups never
 * allocate. Entries are only ever appended, so borrowed pointers stay valid. The re-read
 * rate limit is a small ring of (tenant, type, time) that forgets the oldest entry.
 *
 * Thread-safety: one thread (see the header). */
#include "engine/registry.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "engine/timers.h"
#include "engine/yaml_dir.h"

#define MAX_PROBLEMS     200
#define REFRESH_SLOTS    256
#define REFRESH_EVERY_MS 1000

typedef struct entry {
    char *tenant;
    bool shipped;
    char *source; /* the YAML text, or NULL */
    fl_workflow *wf;
} entry;

typedef struct refresh_slot {
    char *tenant, *type;
    int64_t at_ms;
} refresh_slot;

/* The number of definitions a tenant had stored when its definitions were last read. */
typedef struct seen_count {
    char *tenant;
    int64_t count;
} seen_count;

struct fl_registry {
    fl_workflow_limits lim;
    entry *items;
    size_t count, cap;
    seen_count *seen;
    size_t nseen, cseen;
    refresh_slot slots[REFRESH_SLOTS];
    size_t next_slot;
};

fl_registry *fl_registry_new(const fl_workflow_limits *lim)
{
    fl_registry *r = fl_xcalloc(1, sizeof(*r));

    r->lim = *lim;
    return r;
}

void fl_registry_free(fl_registry *r)
{
    if (!r) {
        return;
    }
    for (size_t i = 0; i < r->count; i++) {
        free(r->items[i].tenant);
        free(r->items[i].source);
        fl_workflow_free(r->items[i].wf);
    }
    for (size_t i = 0; i < REFRESH_SLOTS; i++) {
        free(r->slots[i].tenant);
        free(r->slots[i].type);
    }
    for (size_t i = 0; i < r->nseen; i++) {
        free(r->seen[i].tenant);
    }
    free(r->seen);
    free(r->items);
    free(r);
}

static const entry *find_exact(const fl_registry *r, const char *tenant, const char *name,
                               int version)
{
    for (size_t i = 0; i < r->count; i++) {
        const entry *e = &r->items[i];
        if (e->wf->version == version && strcmp(e->tenant, tenant) == 0 &&
            strcmp(e->wf->name, name) == 0) {
            return e;
        }
    }
    return NULL;
}

/* The event types a definition names become label values of
 * flowd_events_received_total (others count as "other", keeping the labels bounded). */
static void allow_event_types(const fl_workflow *wf)
{
    for (size_t i = 0; i < wf->ntriggers; i++) {
        fl_metrics_event_type_allow(wf->triggers[i]);
    }
    for (size_t s = 0; s < wf->nstates; s++) {
        for (size_t t = 0; t < wf->states[s].transitions.count; t++) {
            fl_metrics_event_type_allow(wf->states[s].transitions.items[t].event);
        }
    }
    for (size_t t = 0; t < wf->any_state.count; t++) {
        fl_metrics_event_type_allow(wf->any_state.items[t].event);
    }
}

void fl_registry_add_take(fl_registry *r, const char *tenant, bool shipped, const char *source,
                          fl_workflow *wf)
{
    entry *e;

    if (find_exact(r, tenant, wf->name, wf->version)) {
        fl_workflow_free(wf);
        return;
    }
    if (r->count == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 16;
        r->items = fl_xrealloc(r->items, r->cap * sizeof(*r->items));
    }
    allow_event_types(wf);
    e = &r->items[r->count++];
    e->tenant = fl_xstrdup(tenant);
    e->shipped = shipped;
    e->source = source ? fl_xstrdup(source) : NULL;
    e->wf = wf;
}

/* The newest (or the given) version of name among tenant's own entries (own = true) or
 * among the shipped ones (own = false). */
static const entry *find_in(const fl_registry *r, const char *tenant, const char *name, int version,
                            bool own)
{
    const entry *best = NULL;

    for (size_t i = 0; i < r->count; i++) {
        const entry *e = &r->items[i];
        bool mine = own ? strcmp(e->tenant, tenant) == 0 : e->shipped;
        if (!mine || strcmp(e->wf->name, name) != 0) {
            continue;
        }
        if (version > 0 ? e->wf->version == version
                        : (!best || e->wf->version > best->wf->version)) {
            best = e;
        }
    }
    return best;
}

const fl_workflow *fl_registry_get(const fl_registry *r, const char *tenant, const char *name,
                                   int version)
{
    const entry *e = find_in(r, tenant, name, version, true);

    if (!e) {
        e = find_in(r, tenant, name, version, false);
    }
    return e ? e->wf : NULL;
}

size_t fl_registry_triggered(const fl_registry *r, const char *tenant, const char *type,
                             const fl_workflow **out, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < r->count; i++) {
        const entry *e = &r->items[i];
        const fl_workflow *wf;
        if (!e->shipped && strcmp(e->tenant, tenant) != 0) {
            continue;
        }
        /* only the definition the tenant sees under this name counts, once */
        wf = fl_registry_get(r, tenant, e->wf->name, 0);
        if (wf != e->wf || !fl_workflow_is_triggered_by(wf, type)) {
            continue;
        }
        if (n < max) {
            out[n] = wf;
        }
        n++;
    }
    return n;
}

const fl_workflow *fl_registry_scheduled(const fl_registry *r, const char *tenant, const char *name)
{
    const fl_workflow *wf = fl_registry_get(r, tenant, name, 0);

    return wf && wf->schedule.kind != FL_SCHEDULE_NONE ? wf : NULL;
}

bool fl_registry_may_refresh(fl_registry *r, const char *tenant, const char *type, int64_t now_ms)
{
    refresh_slot *s;

    for (size_t i = 0; i < REFRESH_SLOTS; i++) {
        s = &r->slots[i];
        if (s->tenant && strcmp(s->tenant, tenant) == 0 && strcmp(s->type, type) == 0) {
            if (now_ms - s->at_ms < REFRESH_EVERY_MS) {
                return false;
            }
            s->at_ms = now_ms;
            return true;
        }
    }
    s = &r->slots[r->next_slot];
    r->next_slot = (r->next_slot + 1) % REFRESH_SLOTS;
    free(s->tenant);
    free(s->type);
    s->tenant = fl_xstrdup(tenant);
    s->type = fl_xstrdup(type);
    s->at_ms = now_ms;
    return true;
}

static seen_count *seen_find(const fl_registry *r, const char *tenant)
{
    for (size_t i = 0; i < r->nseen; i++) {
        if (strcmp(r->seen[i].tenant, tenant) == 0) {
            return &r->seen[i];
        }
    }
    return NULL;
}

bool fl_registry_is_stale(const fl_registry *r, const char *tenant, int64_t stored)
{
    const seen_count *s = seen_find(r, tenant);

    return !s || s->count != stored;
}

void fl_registry_set_seen(fl_registry *r, const char *tenant, int64_t stored)
{
    seen_count *s = seen_find(r, tenant);

    if (!s) {
        if (r->nseen == r->cseen) {
            r->cseen = r->cseen ? 2 * r->cseen : 16;
            r->seen = fl_xrealloc(r->seen, r->cseen * sizeof(*r->seen));
        }
        s = &r->seen[r->nseen++];
        s->tenant = fl_xstrdup(tenant);
    }
    s->count = stored;
}

/* ---- loading --------------------------------------------------------------------------- */

/* Reads and parses one file; problems go to diags. Ownership: *wf and *text are owned by
 * the caller on FL_OK. */
static fl_rc load_file(const fl_registry *r, const char *path, fl_workflow **wf, char **text,
                       fl_diags *diags)
{
    fl_buf b;
    fl_err err = FL_ERR_INIT;
    fl_rc rc;

    fl_buf_init(&b, r->lim.max_bytes + 1);
    rc = fl_buf_read_file(&b, path, &err);
    if (rc != FL_OK) {
        fl_diags_add(diags, path, 0, 0, "%s", err.msg);
        goto out;
    }
    rc = fl_workflow_parse(b.data ? b.data : "", b.len, path, &r->lim, wf, diags);
    if (rc == FL_OK) {
        *text = fl_buf_steal(&b);
    }
out:
    fl_buf_deinit(&b);
    return rc;
}

fl_rc fl_registry_load_dir(fl_registry *r, const char *dir, fl_err *err)
{
    char **paths = NULL, **texts = NULL;
    fl_workflow **wfs = NULL;
    size_t n = 0, ok = 0;
    fl_diags d;
    fl_rc rc;

    fl_diags_init(&d, MAX_PROBLEMS);
    rc = fl_yaml_dir_list(dir, "workflows", &paths, &n, err);
    if (rc != FL_OK) {
        goto out;
    }
    wfs = fl_xcalloc(n + 1, sizeof(*wfs));
    texts = fl_xcalloc(n + 1, sizeof(*texts));
    for (size_t i = 0; i < n; i++) {
        ok += load_file(r, paths[i], &wfs[ok], &texts[ok], &d) == FL_OK;
    }
    fl_workflow_check_set(wfs, ok, &d);
    if (d.count || d.dropped) {
        fl_diags_sort(&d);
        fl_yaml_dir_log_problems(&d, "registry.invalid");
        rc = fl_err_set(err, FL_EINVAL, "%zu problems in the workflows of \"%s\"",
                        d.count + d.dropped, dir);
        goto out;
    }
    for (size_t i = 0; i < ok; i++) {
        fl_registry_add_take(r, FL_REGISTRY_SYSTEM_TENANT, true, texts[i], wfs[i]);
        wfs[i] = NULL; /* now owned by r */
    }
    fl_log(FL_INFO, "registry.loaded", FL_STR("dir", dir), FL_INT("workflows", (long long)ok));
out:
    for (size_t i = 0; i < n; i++) {
        free(paths[i]);
        free(texts ? texts[i] : NULL);
        fl_workflow_free(wfs ? wfs[i] : NULL);
    }
    free(paths);
    free(texts);
    free(wfs);
    fl_diags_deinit(&d);
    return rc;
}

/* ---- the store ------------------------------------------------------------------------- */

static fl_rc save_schedule(fl_store *st, const entry *e, int64_t now_ms, fl_err *err)
{
    const fl_schedule *s = &e->wf->schedule;
    fl_store_schedule row = {e->tenant, e->wf->name, NULL, 0, 0};

    if (s->kind == FL_SCHEDULE_CRON) {
        row.cron = s->cron;
        row.next_at_ms = fl_cron_next(s->cron, now_ms);
        if (row.next_at_ms < 0) {
            return fl_err_set(err, FL_EINVAL, "cron of workflow \"%s\" never matches", e->wf->name);
        }
    } else {
        row.every_ms = s->every_ms;
        row.next_at_ms = now_ms + s->every_ms;
    }
    return fl_store_schedule_save(st, &row, err);
}

fl_rc fl_registry_save_shipped(fl_registry *r, fl_store *st, int64_t now_ms, fl_err *err)
{
    fl_rc rc = FL_OK;

    for (size_t i = 0; i < r->count && rc == FL_OK; i++) {
        const entry *e = &r->items[i];
        fl_store_definition def = {e->tenant, e->wf->name, e->wf->version, e->source, NULL, true};
        if (!e->shipped || !e->source) {
            continue;
        }
        rc = fl_store_definition_save(st, &def, err);
        if (rc == FL_OK && e->wf->schedule.kind != FL_SCHEDULE_NONE) {
            rc = save_schedule(st, e, now_ms, err);
        }
    }
    return rc;
}

static void add_stored(fl_registry *r, const fl_store_definition *d)
{
    char path[160];
    fl_workflow *wf = NULL;
    fl_diags diags;

    snprintf(path, sizeof(path), "%s/%s@%d", d->tenant, d->name, d->version);
    fl_diags_init(&diags, 1);
    if (fl_workflow_parse(d->source, strlen(d->source), path, &r->lim, &wf, &diags) == FL_OK) {
        fl_registry_add_take(r, d->tenant, d->shipped, NULL, wf);
    } else {
        char line[512] = "";
        if (diags.count) {
            fl_diags_format(&diags, 0, line, sizeof(line));
        }
        fl_log(FL_WARN, "registry.stored_invalid", FL_STR("tenant", d->tenant),
               FL_STR("workflow", d->name), FL_STR("problem", line));
    }
    fl_diags_deinit(&diags);
}

fl_rc fl_registry_refresh(fl_registry *r, fl_store *st, const char *tenant, fl_err *err)
{
    fl_store_definitions defs;
    size_t added = r->count;
    fl_rc rc = fl_store_definitions_list(st, tenant, &defs, err);

    for (size_t i = 0; rc == FL_OK && i < defs.count; i++) {
        const fl_store_definition *d = &defs.items[i];
        if (!find_exact(r, d->tenant, d->name, d->version)) {
            add_stored(r, d);
        }
    }
    if (rc == FL_OK && r->count > added) {
        fl_log(FL_INFO, "registry.refreshed", FL_STR("tenant", tenant),
               FL_INT("added", (long long)(r->count - added)));
    }
    fl_store_definitions_deinit(&defs);
    return rc;
}
