/* api/keys_admin.c -- creating, listing and revoking keys (api/keys.h); shared by the
 * /api/v1/keys routes and `flowd keys`. */
#include <openssl/crypto.h>
#include <string.h>

#include "api/keys_int.h"
#include "core/json.h"
#include "core/mem.h"
#include "engine/cloudevent.h"

/* Bounds one administrative statement (acquire + run); these are rare, human-paced calls. */
#define ADMIN_TIMEOUT_MS 10000

/* The tenant row and the key in one statement, hence one transaction: a tenant exists from
 * its first key (issue 5), and a failed insert leaves no tenant behind. */
static const char create_sql[] =
    "WITH t AS (INSERT INTO tenants (id, name) VALUES ($2, $2) ON CONFLICT (id) DO NOTHING) "
    "INSERT INTO api_keys AS k (id, tenant, name, scope, hash) "
    "VALUES ($1, $2, $3, $4, decode($5, 'hex')) RETURNING " FL_KEYS_JSON_SQL;

static const char list_sql[] =
    "SELECT coalesce(json_agg(" FL_KEYS_JSON_SQL " ORDER BY k.created_at DESC, k.id DESC), '[]') "
    "FROM api_keys k WHERE ($1::text IS NULL OR k.tenant = $1)";

/* Revoking twice is not an error: the first revocation time is kept. */
static const char revoke_sql[] = "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) "
                                 "WHERE id = $1 AND ($2::text IS NULL OR tenant = $2) RETURNING id";

/* Runs one statement and returns the first column of its first row parsed as JSON
 * (*out NULL when there is no row). */
static fl_rc run_json(fl_pg_pool *pool, const char *sql, int n, const char *const *params,
                      json_t **out, fl_err *err)
{
    fl_pg_stmt st = {sql, n, params, ADMIN_TIMEOUT_MS};
    fl_pg_conn *conn = NULL;
    fl_pg_rows *rows = NULL;
    const char *text;
    fl_rc rc;

    *out = NULL;
    rc = fl_pg_acquire(pool, ADMIN_TIMEOUT_MS, &conn, err);
    if (rc == FL_OK) {
        rc = fl_pg_exec(conn, &st, &rows, err);
    }
    fl_pg_release(pool, conn);
    text = rc == FL_OK ? fl_pg_rows_get(rows, 0, 0) : NULL;
    if (text != NULL) {
        *out = fl_json_from_pg(text, 0, NULL);
        if (*out == NULL) {
            rc = fl_err_set(err, FL_EINTERNAL, "the database returned invalid JSON");
        }
    }
    fl_pg_rows_free(rows);
    return rc;
}

static fl_rc check_create_args(const char *tenant, const char *name, const char *scopes,
                               fl_scope *scope, fl_err *err)
{
    if (tenant == NULL || !fl_ce_tenant_valid(tenant)) {
        return fl_err_set(err, FL_EINVAL,
                          "tenant must be 1-64 characters of [A-Za-z0-9._-] starting with a "
                          "letter or digit");
    }
    if (!fl_keys__name_valid(name)) {
        return fl_err_set(err, FL_EINVAL,
                          "name must be 1-%d characters of UTF-8 without control characters",
                          FL_KEY_NAME_MAX);
    }
    *scope = fl_keys__scopes_parse(scopes);
    if (*scope == FL_SCOPE_NONE) {
        return fl_err_set(err, FL_EINVAL,
                          "scopes must be a comma-separated list of read, write and admin");
    }
    return FL_OK;
}

/* One attempt with fresh random id and secret. */
static fl_rc create_once(fl_pg_pool *pool, const char *tenant, const char *name, fl_scope scope,
                         char *key, json_t **row, fl_err *err)
{
    uint8_t raw[FL_KEY_ID_BYTES + FL_KEY_SECRET_BYTES], digest[FL_KEY_DIGEST_LEN];
    char id[FL_KEY_ID_LEN + 1], hash[2 * FL_KEY_DIGEST_LEN + 1];
    const char *params[5] = {id, tenant, name, fl_scope_name(scope), hash};
    fl_key_text parts;
    fl_rc rc = fl_keys__random(raw, sizeof(raw), err);

    if (rc != FL_OK) {
        return rc;
    }
    fl_keys__format(raw, raw + FL_KEY_ID_BYTES, key);
    OPENSSL_cleanse(raw, sizeof(raw));
    fl_keys__parse(key, &parts);
    memcpy(id, parts.id, sizeof(id));
    fl_keys__digest(parts.secret, digest);
    OPENSSL_cleanse(&parts, sizeof(parts));
    fl_keys__hex(digest, FL_KEY_DIGEST_LEN, hash);
    return run_json(pool, create_sql, 5, params, row, err);
}

fl_rc fl_keys_create(fl_pg_pool *pool, const char *tenant, const char *name, const char *scopes,
                     char **secret, json_t **row, fl_err *err)
{
    char key[FL_KEY_LEN + 1];
    fl_scope scope = FL_SCOPE_NONE;
    fl_rc rc = check_create_args(tenant, name, scopes, &scope, err);

    *secret = NULL;
    *row = NULL;
    /* 64 random bits of id: a collision is a unique violation, and another id fixes it */
    for (int attempt = 0; rc == FL_OK && attempt < 3; attempt++) {
        fl_err one = FL_ERR_INIT;
        rc = create_once(pool, tenant, name, scope, key, row, &one);
        if (rc == FL_ECONFLICT && attempt < 2) {
            rc = FL_OK;
            continue;
        }
        if (rc != FL_OK) {
            fl_err_set(err, rc, "%s", one.msg);
        } else if (*row == NULL) {
            rc = fl_err_set(err, FL_EINTERNAL, "the key was not stored");
        }
        break;
    }
    if (rc == FL_OK) {
        *secret = fl_xstrdup(key);
    }
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

fl_rc fl_keys_list(fl_pg_pool *pool, const char *tenant, json_t **rows, fl_err *err)
{
    const char *params[1] = {tenant};
    fl_rc rc = run_json(pool, list_sql, 1, params, rows, err);

    if (rc == FL_OK && !json_is_array(*rows)) {
        json_decref(*rows);
        *rows = NULL;
        rc = fl_err_set(err, FL_EINTERNAL, "the database returned no key list");
    }
    return rc;
}

fl_rc fl_keys_revoke(fl_pg_pool *pool, const char *tenant, const char *id, fl_err *err)
{
    const char *params[2] = {id, tenant};
    fl_pg_stmt st = {revoke_sql, 2, params, ADMIN_TIMEOUT_MS};
    fl_pg_conn *conn = NULL;
    fl_pg_rows *rows = NULL;
    fl_rc rc;

    /* an id that cannot exist is simply not found (no query, no SQL error on odd input) */
    if (!fl_keys__id_valid(id)) {
        return fl_err_set(err, FL_ENOTFOUND, "no such API key");
    }
    rc = fl_pg_acquire(pool, ADMIN_TIMEOUT_MS, &conn, err);
    if (rc == FL_OK) {
        rc = fl_pg_exec(conn, &st, &rows, err);
    }
    fl_pg_release(pool, conn);
    if (rc == FL_OK && fl_pg_rows_count(rows) == 0) {
        rc = fl_err_set(err, FL_ENOTFOUND, "no API key \"%s\"", id);
    }
    fl_pg_rows_free(rows);
    return rc;
}
