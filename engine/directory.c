/* engine/directory.c -- businesses and their services in PostgreSQL (engine/directory.h):
 * reads, creates, full replacements, deletes, and flowd.business.update's partial update.
 *
 * A checked body travels to PostgreSQL as one jsonb parameter and the statement takes its
 * fields apart, so every statement is parameterized and one body shape serves the API
 * and the activities. Each write is one statement: it applies whole or not at all.
 * Ids are made by PostgreSQL (gen_random_uuid). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/mem.h"
#include "engine/directory_int.h"

fl_rc fl_dir__json(const fl_dir_ctx *c, const char *sql, int nparams, const char *const *params,
                   json_t **out, fl_err *err)
{
    fl_pg_stmt st = {sql, nparams, params, c->timeout_ms};
    fl_pg_conn *conn = NULL;
    fl_pg_rows *rows = NULL;
    const char *text = NULL;
    json_error_t jerr;
    fl_rc rc;

    *out = NULL;
    rc = fl_pg_acquire(c->pool, c->acquire_timeout_ms, &conn, err);
    if (rc != FL_OK) {
        return rc;
    }
    rc = fl_pg_exec(conn, &st, &rows, err);
    fl_pg_release(c->pool, conn);
    if (rc == FL_OK && fl_pg_rows_count(rows) > 0) {
        text = fl_pg_rows_get(rows, 0, 0);
    }
    if (text) {
        *out = fl_json_from_pg(text, JSON_DECODE_ANY, &jerr);
        if (*out == NULL) {
            rc = fl_err_set(err, FL_EINTERNAL, "the database returned invalid JSON: %s", jerr.text);
        }
    }
    fl_pg_rows_free(rows);
    return rc;
}

/* A JSON null or nothing found -> FL_ENOTFOUND with a message naming what. */
static fl_rc found(fl_rc rc, json_t **out, fl_err *err, const char *what, const char *id)
{
    if (rc == FL_OK && (*out == NULL || json_is_null(*out))) {
        json_decref(*out);
        *out = NULL;
        return fl_err_set(err, FL_ENOTFOUND, "no %s \"%.64s\"", what, id);
    }
    return rc;
}

/* The columns a business takes from a checked body `j`. */
#define BIZ_VALUES                                                                              \
    "j->>'name', j->>'category', coalesce(j->>'description', ''), j->>'address', j->>'city', "  \
    "j->>'phone', coalesce(nullif(j->'hours', 'null'::jsonb), '{}'), (j->>'rating')::numeric, " \
    "(j->>'price_level')::smallint, coalesce(nullif(j->'metadata', 'null'::jsonb), '{}')"

#define BIZ_COLUMNS \
    "name, category, description, address, city, phone, hours, rating, price_level, metadata"

#define NOW_MS "date_trunc('milliseconds', now())"

static const char sql_get[] =
    "SELECT CASE WHEN $3::bool THEN json_build_object(" FL_DIR_BIZ_FIELDS
    ", 'services', " FL_DIR_BIZ_SERVICES ") ELSE json_build_object(" FL_DIR_BIZ_FIELDS ") END "
    "FROM businesses b WHERE b.tenant = $1 AND b.id = $2::uuid";

static const char sql_create[] =
    "WITH x AS (SELECT $2::jsonb AS j), b AS (INSERT INTO businesses (id, tenant, " BIZ_COLUMNS
    ") SELECT gen_random_uuid(), $1, " BIZ_VALUES " FROM x RETURNING *) "
    "SELECT json_build_object(" FL_DIR_BIZ_FIELDS ") FROM b";

static const char sql_replace[] =
    "WITH x AS (SELECT $3::jsonb AS j), b AS (UPDATE businesses SET (" BIZ_COLUMNS
    ", updated_at) = (SELECT " BIZ_VALUES ", " NOW_MS " FROM x) "
    "WHERE tenant = $1 AND id = $2::uuid RETURNING *) "
    "SELECT json_build_object(" FL_DIR_BIZ_FIELDS ") FROM b";

static const char sql_delete[] =
    "WITH d AS (DELETE FROM businesses WHERE tenant = $1 AND id = $2::uuid RETURNING 1) "
    "SELECT 'true'::json FROM d";

fl_rc fl_dir_business_get(const fl_dir_ctx *c, const char *id, bool with_services, json_t **out,
                          fl_err *err)
{
    const char *p[3] = {c->tenant, id, with_services ? "true" : "false"};

    *out = NULL;
    if (!fl_dir_uuid_valid(id)) {
        return fl_err_set(err, FL_ENOTFOUND, "no business \"%.64s\"", id ? id : "");
    }
    return found(fl_dir__json(c, sql_get, 3, p, out, err), out, err, "business", id);
}

fl_rc fl_dir_business_create(const fl_dir_ctx *c, const json_t *body, json_t **out, fl_err *err)
{
    char *text = json_dumps(body, JSON_COMPACT);
    const char *p[2] = {c->tenant, text};
    fl_rc rc = fl_dir__json(c, sql_create, 2, p, out, err);

    free(text);
    if (rc == FL_OK && *out == NULL) {
        rc = fl_err_set(err, FL_EINTERNAL, "the business was not stored");
    }
    return rc;
}

fl_rc fl_dir_business_replace(const fl_dir_ctx *c, const char *id, const json_t *body, json_t **out,
                              fl_err *err)
{
    char *text;
    fl_rc rc;

    *out = NULL;
    if (!fl_dir_uuid_valid(id)) {
        return fl_err_set(err, FL_ENOTFOUND, "no business \"%.64s\"", id ? id : "");
    }
    text = json_dumps(body, JSON_COMPACT);
    {
        const char *p[3] = {c->tenant, id, text};
        rc = fl_dir__json(c, sql_replace, 3, p, out, err);
    }
    free(text);
    return found(rc, out, err, "business", id);
}

fl_rc fl_dir_business_delete(const fl_dir_ctx *c, const char *id, fl_err *err)
{
    const char *p[2] = {c->tenant, id};
    json_t *out = NULL;
    fl_rc rc;

    if (!fl_dir_uuid_valid(id)) {
        return fl_err_set(err, FL_ENOTFOUND, "no business \"%.64s\"", id ? id : "");
    }
    rc = found(fl_dir__json(c, sql_delete, 2, p, &out, err), &out, err, "business", id);
    json_decref(out);
    return rc;
}

/* ---- services ------------------------------------------------------------------------ */

#define SVC_COLUMNS "name, description, price, currency, duration_minutes, category, available"

#define SVC_VALUES(j)                                                                  \
    j "->>'name', coalesce(" j "->>'description', ''), (" j "->>'price')::numeric, "   \
      "coalesce(" j "->>'currency', 'USD'), (" j "->>'duration_minutes')::integer, " j \
      "->>'category', coalesce((" j "->>'available')::boolean, true)"

static const char sql_svc_list[] =
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM businesses b WHERE b.tenant = $1 AND b.id = $2::uuid) "
    "THEN (SELECT coalesce(json_agg(" FL_DIR_SVC_OBJECT " ORDER BY lower(s.name), s.id), '[]') "
    "FROM services s WHERE s.business_id = $2::uuid) END";

/* NULL: no such business; "conflict": the name is taken; else the service. */
static const char sql_svc_create[] =
    "WITH x AS (SELECT $3::jsonb AS j), "
    "b AS (SELECT id FROM businesses WHERE tenant = $1 AND id = $2::uuid), "
    "s AS (INSERT INTO services (id, tenant, business_id, " SVC_COLUMNS
    ") SELECT gen_random_uuid(), $1, b.id, " SVC_VALUES(
        "j") " FROM b, x "
             "ON CONFLICT DO NOTHING RETURNING *) "
             "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM b) THEN NULL "
             "WHEN NOT EXISTS (SELECT 1 FROM s) THEN '\"conflict\"'::json "
             "ELSE (SELECT " FL_DIR_SVC_OBJECT " FROM s) END";

static const char sql_svc_replace[] =
    "WITH x AS (SELECT $4::jsonb AS j), s AS (UPDATE services SET (" SVC_COLUMNS
    ", updated_at) = (SELECT " SVC_VALUES(
        "j") ", " NOW_MS " FROM x) "
             "WHERE tenant = $1 AND business_id = $2::uuid AND id = $3::uuid RETURNING *) "
             "SELECT " FL_DIR_SVC_OBJECT " FROM s";

static const char sql_svc_delete[] =
    "WITH d AS (DELETE FROM services WHERE tenant = $1 AND business_id = $2::uuid "
    "AND id = $3::uuid RETURNING 1) SELECT 'true'::json FROM d";

fl_rc fl_dir_services_list(const fl_dir_ctx *c, const char *business_id, json_t **out, fl_err *err)
{
    const char *p[2] = {c->tenant, business_id};

    *out = NULL;
    if (!fl_dir_uuid_valid(business_id)) {
        return fl_err_set(err, FL_ENOTFOUND, "no business \"%.64s\"", business_id);
    }
    return found(fl_dir__json(c, sql_svc_list, 2, p, out, err), out, err, "business", business_id);
}

fl_rc fl_dir_service_create(const fl_dir_ctx *c, const char *business_id, const json_t *body,
                            json_t **out, fl_err *err)
{
    char *text;
    fl_rc rc;

    *out = NULL;
    if (!fl_dir_uuid_valid(business_id)) {
        return fl_err_set(err, FL_ENOTFOUND, "no business \"%.64s\"", business_id);
    }
    text = json_dumps(body, JSON_COMPACT);
    {
        const char *p[3] = {c->tenant, business_id, text};
        rc = found(fl_dir__json(c, sql_svc_create, 3, p, out, err), out, err, "business",
                   business_id);
    }
    free(text);
    if (rc == FL_OK && json_is_string(*out)) {
        json_decref(*out);
        *out = NULL;
        rc = fl_err_set(err, FL_ECONFLICT, "the business already has a service named \"%.200s\"",
                        json_string_value(json_object_get(body, "name")));
    }
    return rc;
}

fl_rc fl_dir_service_replace(const fl_dir_ctx *c, const char *business_id, const char *id,
                             const json_t *body, json_t **out, fl_err *err)
{
    char *text;
    fl_rc rc;

    *out = NULL;
    if (!fl_dir_uuid_valid(business_id) || !fl_dir_uuid_valid(id)) {
        return fl_err_set(err, FL_ENOTFOUND, "no service \"%.64s\"", id);
    }
    text = json_dumps(body, JSON_COMPACT);
    {
        const char *p[4] = {c->tenant, business_id, id, text};
        rc = found(fl_dir__json(c, sql_svc_replace, 4, p, out, err), out, err, "service", id);
    }
    free(text);
    if (rc == FL_ECONFLICT) {
        rc = fl_err_set(err, FL_ECONFLICT, "the business already has a service named \"%.200s\"",
                        json_string_value(json_object_get(body, "name")));
    }
    return rc;
}

fl_rc fl_dir_service_delete(const fl_dir_ctx *c, const char *business_id, const char *id,
                            fl_err *err)
{
    const char *p[3] = {c->tenant, business_id, id};
    json_t *out = NULL;
    fl_rc rc;

    if (!fl_dir_uuid_valid(business_id) || !fl_dir_uuid_valid(id)) {
        return fl_err_set(err, FL_ENOTFOUND, "no service \"%.64s\"", id);
    }
    rc = found(fl_dir__json(c, sql_svc_delete, 3, p, &out, err), &out, err, "service", id);
    json_decref(out);
    return rc;
}

/* ---- flowd.business.update ----------------------------------------------------------- */

/* A field of the update replaces the stored one only when given (`x.j ? 'field'`).
 * services: upserted by name (the last of two equal names wins), keeping their ids;
 * remove_services: deleted by name unless also upserted. The statement's CTEs share one
 * snapshot, so the answer is assembled from what they return, not re-read. */
static const char sql_update[] =
    "WITH x AS (SELECT $3::jsonb AS j), "
    "b AS (UPDATE businesses b SET "
    "description = CASE WHEN x.j ? 'description' THEN coalesce(x.j->>'description', '') "
    "ELSE b.description END, "
    "phone = CASE WHEN x.j ? 'phone' THEN x.j->>'phone' ELSE b.phone END, "
    "address = CASE WHEN x.j ? 'address' THEN x.j->>'address' ELSE b.address END, "
    "city = CASE WHEN x.j ? 'city' THEN x.j->>'city' ELSE b.city END, "
    "hours = CASE WHEN x.j ? 'hours' THEN coalesce(nullif(x.j->'hours', 'null'::jsonb), '{}') "
    "ELSE b.hours END, "
    "rating = CASE WHEN x.j ? 'rating' THEN (x.j->>'rating')::numeric ELSE b.rating END, "
    "price_level = CASE WHEN x.j ? 'price_level' THEN (x.j->>'price_level')::smallint "
    "ELSE b.price_level END, "
    "updated_at = date_trunc('milliseconds', now()) "
    "FROM x WHERE b.tenant = $1 AND b.id = $2::uuid RETURNING b.*), "
    "e AS (SELECT DISTINCT ON (lower(v.e->>'name')) v.e FROM x, "
    "jsonb_array_elements(coalesce(x.j->'services', '[]')) WITH ORDINALITY AS v(e, n) "
    "ORDER BY lower(v.e->>'name'), v.n DESC), "
    "rm AS (DELETE FROM services s USING b, x WHERE s.business_id = b.id AND lower(s.name) IN "
    "(SELECT lower(t) FROM jsonb_array_elements_text(coalesce(x.j->'remove_services', '[]')) t) "
    "AND lower(s.name) NOT IN (SELECT lower(e.e->>'name') FROM e) RETURNING s.id), "
    "up AS (INSERT INTO services (id, tenant, business_id, " SVC_COLUMNS ") "
    "SELECT gen_random_uuid(), $1, b.id, " SVC_VALUES(
        "e.e") " FROM b, e "
               "ON CONFLICT (business_id, lower(name)) DO UPDATE SET (" SVC_COLUMNS
               ", updated_at) = "
               "(excluded.name, excluded.description, excluded.price, excluded.currency, "
               "excluded.duration_minutes, excluded.category, excluded.available, " NOW_MS ") "
               "RETURNING services.*), "
               "s AS (SELECT s.* FROM services s, b WHERE s.business_id = b.id AND s.id NOT IN "
               "(SELECT id FROM rm) AND s.id NOT IN (SELECT id FROM up) UNION ALL SELECT * FROM "
               "up) "
               "SELECT json_build_object(" FL_DIR_BIZ_FIELDS ", 'services', "
               "(SELECT coalesce(json_agg(" FL_DIR_SVC_OBJECT
               " ORDER BY lower(s.name), s.id), '[]') "
               "FROM s)) FROM b";

fl_rc fl_dir_business_update(const fl_dir_ctx *c, const json_t *args, json_t **out, fl_err *err)
{
    const char *id = json_string_value(json_object_get(args, "business_id"));
    char *text;
    fl_rc rc;

    *out = NULL;
    if (!fl_dir_uuid_valid(id)) {
        return fl_err_set(err, FL_ENOTFOUND, "no business \"%.64s\"", id ? id : "");
    }
    text = json_dumps(args, JSON_COMPACT);
    {
        const char *p[3] = {c->tenant, id, text};
        rc = found(fl_dir__json(c, sql_update, 3, p, out, err), out, err, "business", id);
    }
    free(text);
    return rc;
}
