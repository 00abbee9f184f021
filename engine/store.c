/* engine/store.c -- the store's lifecycle and its reads: definitions, the running
 * instances of a set of keys, and inbox lookups. The batch (the hot-path write) is in
 * engine/store_batch.c, engine/store_step.c and engine/store_pipe.c.
 *
 * Design: reads that take a list (keys, event refs) pass it as ONE jsonb parameter and
 * unnest it in SQL, so a batch of events costs one query whatever its size, and no SQL
 * text is ever built from values.
 *
 * Thread-safety: see engine/store.h; each call borrows its own pooled connection. */
#include "engine/store_int.h"

#include "core/json.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

fl_rc fl_store_open(fl_store **out, fl_pg_pool *pool, const fl_store_opts *opts, fl_err *err)
{
    fl_store *st;

    *out = NULL;
    if (!opts->source || !*opts->source || !opts->default_topic || !*opts->default_topic ||
        !opts->workflow_events_topic || !*opts->workflow_events_topic || !opts->dead_letter_topic ||
        !*opts->dead_letter_topic) {
        return fl_err_set(err, FL_EINVAL, "cannot open the store: a topic or the source is empty");
    }
    st = fl_xcalloc(1, sizeof(*st));
    st->pool = pool;
    st->source = fl_xstrdup(opts->source);
    st->default_topic = fl_xstrdup(opts->default_topic);
    st->wf_topic = fl_xstrdup(opts->workflow_events_topic);
    st->dlq_topic = fl_xstrdup(opts->dead_letter_topic);
    st->topic_for = opts->topic_for;
    st->topic_arg = opts->topic_arg;
    st->acquire_timeout_ms = opts->acquire_timeout_ms;
    st->timeout_ms = opts->timeout_ms;
    pthread_mutex_init(&st->mu, NULL);
    *out = st;
    return FL_OK;
}

void fl_store_close(fl_store *st)
{
    if (!st) {
        return;
    }
    pthread_mutex_destroy(&st->mu);
    free(st->source);
    free(st->default_topic);
    free(st->wf_topic);
    free(st->dlq_topic);
    free(st);
}

/* One statement on a pooled connection; a broken connection is discarded by release. */
static fl_rc exec1(fl_store *st, const char *sql, int n, const char *const *params,
                   fl_pg_rows **out, fl_err *err)
{
    fl_pg_stmt stmt = {sql, n, params, st->timeout_ms};
    fl_pg_conn *conn = NULL;
    fl_rc rc;

    rc = fl_pg_acquire(st->pool, st->acquire_timeout_ms, &conn, err);
    if (rc == FL_OK) {
        rc = fl_pg_exec(conn, &stmt, out, err);
    }
    fl_pg_release(st->pool, conn);
    return rc;
}

/* ---- definitions ---------------------------------------------------------------------- */

/* The inserted row's checksum, or the existing one's: the CTE's insert is invisible to
 * the outer SELECT's snapshot, so exactly one branch gives a row -- except when a
 * concurrent insert of the same key commits in between (then neither: retry). */
static const char sql_definition_save[] =
    "WITH c AS (SELECT COALESCE($5::text, encode(sha256(convert_to($4::text, 'UTF8')), 'hex')) "
    "AS sum), ins AS (INSERT INTO definitions (tenant, name, version, source, checksum, shipped) "
    "SELECT $1::text, $2::text, $3::int, $4::text, c.sum, $6::boolean FROM c "
    "ON CONFLICT DO NOTHING RETURNING checksum) "
    "SELECT checksum, (SELECT sum FROM c) FROM ins UNION ALL "
    "SELECT checksum, (SELECT sum FROM c) FROM definitions "
    "WHERE tenant = $1 AND name = $2 AND version = $3::int";

fl_rc fl_store_definition_save(fl_store *st, const fl_store_definition *def, fl_err *err)
{
    char version[16];
    const char *p[6] = {def->tenant, def->name,     version,
                        def->source, def->checksum, def->shipped ? "true" : "false"};
    fl_pg_rows *rows = NULL;
    const char *have;
    fl_rc rc = FL_OK;

    snprintf(version, sizeof(version), "%d", def->version);
    for (int attempt = 0; attempt < 2 && rc == FL_OK && !rows; attempt++) {
        rc = exec1(st, sql_definition_save, 6, p, &rows, err);
        if (rc == FL_OK && fl_pg_rows_count(rows) == 0) {
            fl_pg_rows_free(rows);
            rows = NULL;
        }
    }
    if (rc != FL_OK) {
        goto out;
    }
    /* column 1 is the checksum of this text (given, or computed by the server) */
    have = rows ? fl_pg_rows_get(rows, 0, 0) : NULL;
    if (!have || strcmp(have, fl_pg_rows_get(rows, 0, 1)) != 0) {
        rc = fl_err_set(err, FL_ECONFLICT,
                        "cannot save workflow \"%s\" version %d: that version exists with "
                        "different content",
                        def->name, def->version);
    }
out:
    fl_pg_rows_free(rows);
    return rc;
}

/* The spec is updated, next_at kept: a restart must not postpone (or repeat) a tick. */
static const char sql_schedule_save[] =
    "INSERT INTO schedules (tenant, workflow, cron, every_ms, next_at) "
    "VALUES ($1, $2, $3, $4::bigint, to_timestamp($5::bigint / 1000.0)) "
    "ON CONFLICT (tenant, workflow) DO UPDATE SET cron = EXCLUDED.cron, "
    "every_ms = EXCLUDED.every_ms";

fl_rc fl_store_schedule_save(fl_store *st, const fl_store_schedule *s, fl_err *err)
{
    char every[24], next[24];
    const char *p[5] = {s->tenant, s->workflow, s->cron, s->cron ? NULL : every, next};
    fl_pg_rows *rows = NULL;
    fl_rc rc;

    snprintf(every, sizeof(every), "%lld", (long long)s->every_ms);
    snprintf(next, sizeof(next), "%lld", (long long)s->next_at_ms);
    rc = exec1(st, sql_schedule_save, 5, p, &rows, err);
    fl_pg_rows_free(rows);
    return rc;
}

static const char sql_definitions_list[] =
    "SELECT tenant, name, version, source, checksum, shipped FROM definitions "
    "WHERE tenant = $1 OR shipped ORDER BY name, version, shipped, tenant";

fl_rc fl_store_definitions_list(fl_store *st, const char *tenant, fl_store_definitions *out,
                                fl_err *err)
{
    const char *p[1] = {tenant};
    fl_rc rc;

    memset(out, 0, sizeof(*out));
    rc = exec1(st, sql_definitions_list, 1, p, &out->rows, err);
    if (rc != FL_OK) {
        goto out;
    }
    out->count = fl_pg_rows_count(out->rows);
    out->items = fl_xcalloc(out->count ? out->count : 1, sizeof(*out->items));
    for (size_t i = 0; i < out->count; i++) {
        fl_store_definition *d = &out->items[i];
        d->tenant = fl_pg_rows_get(out->rows, i, 0);
        d->name = fl_pg_rows_get(out->rows, i, 1);
        d->version = (int)strtol(fl_pg_rows_get(out->rows, i, 2), NULL, 10);
        d->source = fl_pg_rows_get(out->rows, i, 3);
        d->checksum = fl_pg_rows_get(out->rows, i, 4);
        d->shipped = strcmp(fl_pg_rows_get(out->rows, i, 5), "t") == 0;
    }
out:
    return rc;
}

void fl_store_definitions_deinit(fl_store_definitions *defs)
{
    free(defs->items);
    fl_pg_rows_free(defs->rows);
    memset(defs, 0, sizeof(*defs));
}

/* ---- instances ------------------------------------------------------------------------ */

static const char sql_instances_load[] =
    "SELECT k.ord - 1, i.id, i.tenant, i.key, i.workflow, i.version, i.state, i.status, "
    "i.context, i.usage, i.machine, i.row_version "
    "FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS k(e, ord) "
    "JOIN instances i ON i.tenant = k.e->>0 AND i.key = k.e->>1 AND i.status = 'running' "
    "ORDER BY k.ord, i.created_at, i.id";

static json_t *parse_col(const fl_pg_rows *rows, size_t r, int col)
{
    const char *s = fl_pg_rows_get(rows, r, col);

    return s ? fl_json_from_pg(s, JSON_DECODE_ANY, NULL) : NULL;
}

/* The row in fl_instance_to_json's form: the columns plus the machine's own fields. */
static json_t *row_json(const fl_pg_rows *rows, size_t r)
{
    json_t *m = parse_col(rows, r, 10);
    json_t *j = json_is_object(m) ? json_copy(m) : json_object();

    json_object_set_new(j, "id", json_string(fl_pg_rows_get(rows, r, 1)));
    json_object_set_new(j, "tenant", json_string(fl_pg_rows_get(rows, r, 2)));
    json_object_set_new(j, "key", json_string(fl_pg_rows_get(rows, r, 3)));
    json_object_set_new(j, "workflow", json_string(fl_pg_rows_get(rows, r, 4)));
    json_object_set_new(j, "version", json_integer(strtol(fl_pg_rows_get(rows, r, 5), NULL, 10)));
    json_object_set_new(j, "state", json_string(fl_pg_rows_get(rows, r, 6)));
    json_object_set_new(j, "status", json_string(fl_pg_rows_get(rows, r, 7)));
    json_object_set_new(j, "context", parse_col(rows, r, 8));
    json_object_set_new(j, "usage", parse_col(rows, r, 9));
    json_decref(m);
    return j;
}

static fl_rc instance_from_row(const fl_pg_rows *rows, size_t r, const fl_store_resolver *res,
                               fl_store_loaded *out, fl_err *err)
{
    const char *id = fl_pg_rows_get(rows, r, 1);
    const char *name = fl_pg_rows_get(rows, r, 4);
    int version = (int)strtol(fl_pg_rows_get(rows, r, 5), NULL, 10);
    json_t *j = NULL;
    fl_err why = FL_ERR_INIT;
    fl_rc rc;

    out->key_index = (size_t)strtoull(fl_pg_rows_get(rows, r, 0), NULL, 10);
    out->row_version = strtoll(fl_pg_rows_get(rows, r, 11), NULL, 10);
    out->wf = res->fn(res->arg, fl_pg_rows_get(rows, r, 2), name, version);
    if (!out->wf) {
        rc = fl_err_set(err, FL_ENOTFOUND, "instance %s runs on unknown workflow \"%s\" version %d",
                        id, name, version);
        goto out;
    }
    j = row_json(rows, r);
    rc = fl_instance_from_json(j, out->wf, &out->inst, &why);
    if (rc != FL_OK) {
        /* a stored row that does not fit its definition is a storage problem */
        rc = fl_err_set(err, FL_EIO, "cannot load instance %s: %s", id, why.msg);
    }
out:
    json_decref(j);
    return rc;
}

/* [[tenant, key], ...] as jsonb text. Ownership: caller frees. */
static char *keys_json(const fl_store_key *keys, size_t n)
{
    json_t *a = json_array();
    char *s;

    for (size_t i = 0; i < n; i++) {
        json_array_append_new(a, json_pack("[s, s]", keys[i].tenant, keys[i].key));
    }
    s = fl_store__json(a);
    json_decref(a);
    return s;
}

fl_rc fl_store_instances_load(fl_store *st, const fl_store_key *keys, size_t nkeys,
                              const fl_store_resolver *res, fl_store_instances *out, fl_err *err)
{
    char *arg = keys_json(keys, nkeys);
    const char *p[1] = {arg};
    fl_pg_rows *rows = NULL;
    fl_rc rc;

    memset(out, 0, sizeof(*out));
    rc = exec1(st, sql_instances_load, 1, p, &rows, err);
    if (rc != FL_OK) {
        goto out;
    }
    out->items = fl_xcalloc(fl_pg_rows_count(rows) + 1, sizeof(*out->items));
    for (size_t r = 0; r < fl_pg_rows_count(rows) && rc == FL_OK; r++) {
        rc = instance_from_row(rows, r, res, &out->items[out->count], err);
        out->count += rc == FL_OK;
    }
out:
    fl_pg_rows_free(rows);
    free(arg);
    return rc;
}

void fl_store_instances_deinit(fl_store_instances *list)
{
    for (size_t i = 0; i < list->count; i++) {
        fl_instance_free(list->items[i].inst);
    }
    free(list->items);
    memset(list, 0, sizeof(*list));
}

/* ---- inbox ---------------------------------------------------------------------------- */

/* The inbox lookup ($1: [[tenant, source, id], ...]; kind 0, the index of each seen event)
 * and the definition counts by the primary key's index ($2: [tenant, ...]; kind 1, the
 * index and the count), in one statement: the engine makes both before every batch. */
static const char sql_lookup[] =
    "SELECT 0, k.ord - 1, 0 FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS k(e, ord) "
    "WHERE EXISTS (SELECT 1 FROM inbox b WHERE b.tenant = k.e->>0 AND b.source = k.e->>1 "
    "AND b.id = k.e->>2) "
    "UNION ALL SELECT 1, t.ord - 1, (SELECT count(*) FROM definitions d WHERE d.tenant = t.v) "
    "FROM jsonb_array_elements_text($2::jsonb) WITH ORDINALITY AS t(v, ord)";

/* The two jsonb parameters of sql_lookup. A ref without id is null there, which matches
 * nothing but keeps the positions of the refs after it. */
static void lookup_params(const fl_store_batch_lookup *q, char *p[2])
{
    json_t *a = json_array(), *t = json_array();

    for (size_t i = 0; i < q->nrefs; i++) {
        const fl_store_event_ref *r = &q->refs[i];
        json_array_append_new(a, json_pack("[s, s, s?]", r->tenant, r->source, r->id));
    }
    for (size_t i = 0; i < q->ntenants; i++) {
        json_array_append_new(t, json_string(q->tenants[i]));
    }
    p[0] = fl_store__json(a);
    p[1] = fl_store__json(t);
    json_decref(a);
    json_decref(t);
}

fl_rc fl_store_lookup(fl_store *st, const fl_store_batch_lookup *q, fl_err *err)
{
    char *p[2];
    fl_pg_rows *rows = NULL;
    fl_rc rc;

    for (size_t i = 0; i < q->nrefs; i++) {
        q->seen_out[i] = false;
    }
    for (size_t i = 0; i < q->ntenants; i++) {
        q->counts_out[i] = 0;
    }
    lookup_params(q, p);
    rc = exec1(st, sql_lookup, 2, (const char *const *)p, &rows, err);
    for (size_t r = 0; rc == FL_OK && r < fl_pg_rows_count(rows); r++) {
        bool seen = strcmp(fl_pg_rows_get(rows, r, 0), "0") == 0;
        size_t i = (size_t)strtoull(fl_pg_rows_get(rows, r, 1), NULL, 10);
        if (seen && i < q->nrefs) {
            q->seen_out[i] = true;
        } else if (!seen && i < q->ntenants) {
            q->counts_out[i] = strtoll(fl_pg_rows_get(rows, r, 2), NULL, 10);
        }
    }
    fl_pg_rows_free(rows);
    free(p[0]);
    free(p[1]);
    return rc;
}

fl_rc fl_store_inbox_seen(fl_store *st, const fl_store_event_ref *refs, size_t n, bool *seen_out,
                          fl_err *err)
{
    fl_store_batch_lookup q = {refs, n, seen_out, NULL, 0, NULL};

    return fl_store_lookup(st, &q, err);
}

fl_rc fl_store_definitions_count(fl_store *st, const char *const *tenants, size_t n,
                                 int64_t *counts_out, fl_err *err)
{
    fl_store_batch_lookup q = {NULL, 0, NULL, tenants, n, counts_out};

    return fl_store_lookup(st, &q, err);
}
