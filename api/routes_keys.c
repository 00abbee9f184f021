/* api/routes_keys.c -- /api/v1/keys: create, list, read and revoke API keys (admin scope).
 *
 * Tenant rule: an admin key acts on its own tenant's keys only; another tenant's key
 * answers 404 as if it did not exist. The one exception is the operators' tenant
 * `system` (it owns the shipped scheduled workflows and acts across tenants): its admin
 * keys may create keys for any tenant (creating the tenant), list any tenant's keys with
 * ?tenant=, and read or revoke any key. Bootstrapping needs no API key at all:
 * `flowd keys create --tenant system --name ops --scopes admin` on the database host.
 *
 * The key text is in the 201 body only; it is never stored or shown again. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/body.h"
#include "api/keys_int.h"
#include "api/routes.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/cloudevent.h"

#define SYSTEM_TENANT "system"

static bool is_system(const fl_req *r)
{
    return !strcmp(r->who.tenant, SYSTEM_TENANT);
}

/* scopes: ["read","write"] or "read,write" -> a comma list (the string itself, or the
 * array joined into buf); NULL with errors otherwise. */
static const char *take_scopes(const json_t *v, char *buf, size_t size, json_t **errors)
{
    const char *list = json_string_value(v);
    size_t i, n = 0;
    const json_t *item;

    buf[0] = '\0';
    if (list == NULL && json_is_array(v) && json_array_size(v) <= 3) {
        json_array_foreach(v, i, item)
        {
            if (fl_scope_parse(json_string_value(item)) == FL_SCOPE_NONE) {
                fl_body_error(errors, "/scopes", "item %zu must be read, write or admin", i);
                return NULL;
            }
            n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? "," : "", json_string_value(item));
        }
        list = buf;
    }
    if (fl_keys__scopes_parse(list) == FL_SCOPE_NONE) {
        fl_body_error(errors, "/scopes",
                      "is required: an array of read, write, admin or a comma-separated string");
        return NULL;
    }
    return list;
}

/* The body's tenant (default: the caller's), name and scopes; false when answered. */
static bool create_args(fl_req *r, const json_t *body, const char **tenant, const char **name,
                        const char **scopes, char *buf, size_t size)
{
    const json_t *t = json_object_get(body, "tenant");
    json_t *errors = NULL;
    const char *key;
    const json_t *v;

    json_object_foreach((json_t *)body, key, v)
    {
        if (strcmp(key, "tenant") && strcmp(key, "name") && strcmp(key, "scopes")) {
            fl_body_error(&errors, "", "unknown member \"%s\"", key);
        }
    }
    *tenant = t && !json_is_null(t) ? json_string_value(t) : r->who.tenant;
    if (*tenant == NULL || !fl_ce_tenant_valid(*tenant)) {
        fl_body_error(&errors, "/tenant",
                      "must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit");
    }
    *name = json_string_value(json_object_get(body, "name"));
    if (!fl_keys__name_valid(*name)) {
        fl_body_error(&errors, "/name", "is required: 1-%d characters without control characters",
                      FL_KEY_NAME_MAX);
    }
    *scopes = take_scopes(json_object_get(body, "scopes"), buf, size, &errors);
    if (errors) {
        fl_problem_errors(r, 400, "the key is invalid", errors);
        return false;
    }
    if (strcmp(*tenant, r->who.tenant) != 0 && !is_system(r)) {
        fl_problem(r, 403, "an admin key of tenant \"%s\" may create keys only for that tenant",
                   r->who.tenant);
        return false;
    }
    return true;
}

static int create_key(fl_req *r)
{
    const char *tenant, *name, *scopes;
    char buf[64], *secret = NULL;
    json_t *body = NULL, *row = NULL;
    fl_err err = FL_ERR_INIT;
    fl_rc rc;

    if (!fl_req_json(r, &body)) {
        return r->status;
    }
    if (!create_args(r, body, &tenant, &name, &scopes, buf, sizeof(buf))) {
        goto out;
    }
    rc = fl_keys_create(r->api->pool, tenant, name, scopes, &secret, &row, &err);
    if (rc != FL_OK) {
        fl_problem_rc(r, rc == FL_ECONFLICT || rc == FL_EIO ? FL_EINTERNAL : rc, &err);
        goto out;
    }
    fl_log(
        FL_INFO, "api.key_created", FL_STR("key_id", json_string_value(json_object_get(row, "id"))),
        FL_STR("tenant", tenant), FL_STR("scope", json_string_value(json_object_get(row, "scope"))),
        FL_STR("by_key_id", r->who.key_id), FL_STR("request_id", r->request_id));
    json_object_set_new(row, "key", json_string(secret));
    fl_req_header_add(r, "Location", "/api/v1/keys/%s",
                      json_string_value(json_object_get(row, "id")));
    fl_reply(r, 201, row);
    row = NULL;
out:
    if (secret) {
        OPENSSL_cleanse(secret, strlen(secret));
    }
    free(secret);
    json_decref(row);
    json_decref(body);
    return r->status;
}

/* The tenant whose keys a listing shows; NULL when answered (403). */
static const char *list_tenant(fl_req *r, char *buf, size_t size)
{
    if (!fl_req_query(r, "tenant", buf, size) || !buf[0] || !strcmp(buf, r->who.tenant)) {
        return r->who.tenant;
    }
    if (!is_system(r)) {
        fl_problem(r, 403, "an admin key of tenant \"%s\" may list only that tenant's keys",
                   r->who.tenant);
        return NULL;
    }
    return buf;
}

static char *cursor_of(const json_t *item)
{
    return fl_page_cursor(json_string_value(json_object_get(item, "created_at")),
                          json_string_value(json_object_get(item, "id")));
}

static const char list_sql[] =
    "SELECT coalesce(json_agg(s.j ORDER BY s.created_at DESC, s.id DESC), '[]') FROM ("
    "SELECT " FL_KEYS_JSON_SQL " AS j, k.created_at, k.id FROM api_keys k "
    "WHERE k.tenant = $1 AND ($2::timestamptz IS NULL OR (k.created_at, k.id) < ($2, $3)) "
    "ORDER BY k.created_at DESC, k.id DESC LIMIT $4) s";

static int list_keys(fl_req *r)
{
    char tbuf[128], limit[16];
    const char *tenant = list_tenant(r, tbuf, sizeof(tbuf));
    fl_page p;
    json_t *data = NULL;

    if (tenant == NULL || !fl_req_page(r, &p)) {
        return r->status;
    }
    if (p.has_cursor && (!fl_ce_time_valid(p.after[0]) || !fl_keys__id_valid(p.after[1]))) {
        return fl_problem(r, 400, "cursor is not one this server issued");
    }
    snprintf(limit, sizeof(limit), "%d", p.limit + 1);
    {
        const char *params[4] = {tenant, p.has_cursor ? p.after[0] : NULL,
                                 p.has_cursor ? p.after[1] : NULL, limit};
        if (!fl_req_db_json(r, list_sql, 4, params, &data)) {
            return r->status;
        }
    }
    if (!json_is_array(data)) {
        json_decref(data);
        data = json_array();
    }
    return fl_reply(r, 200, fl_page_wrap(&p, data, cursor_of));
}

static const char get_sql[] = "SELECT " FL_KEYS_JSON_SQL " FROM api_keys k "
                              "WHERE k.id = $1 AND ($2::text IS NULL OR k.tenant = $2)";

static int get_key(fl_req *r)
{
    const char *id = fl_req_param(r, 0);
    const char *params[2] = {id, is_system(r) ? NULL : r->who.tenant};
    json_t *row = NULL;

    if (!fl_keys__id_valid(id)) {
        return fl_problem(r, 404, "no API key \"%.64s\"", id);
    }
    if (!fl_req_db_json(r, get_sql, 2, params, &row)) {
        return r->status;
    }
    if (row == NULL) {
        return fl_problem(r, 404, "no API key \"%.64s\"", id);
    }
    return fl_reply(r, 200, row);
}

static int revoke_key(fl_req *r)
{
    const char *id = fl_req_param(r, 0);
    fl_err err = FL_ERR_INIT;
    fl_rc rc = fl_keys_revoke(r->api->pool, is_system(r) ? NULL : r->who.tenant, id, &err);

    if (rc == FL_ENOTFOUND) {
        /* the same answer for another tenant's key as for no key (issue 5) */
        return fl_problem(r, 404, "no API key \"%.64s\"", id);
    }
    if (rc != FL_OK) {
        return fl_problem_rc(r, rc == FL_EUNAVAIL ? rc : FL_EINTERNAL, &err);
    }
    fl_log(FL_INFO, "api.key_revoked", FL_STR("key_id", id), FL_STR("by_key_id", r->who.key_id),
           FL_STR("tenant", r->who.tenant), FL_STR("request_id", r->request_id));
    return fl_req_send(r, 204, "application/json", "", 0);
}

static const fl_route routes[] = {
    {"POST", "/api/v1/keys", create_key, FL_SCOPE_ADMIN, FL_ROUTE_IDEMPOTENT},
    {"GET", "/api/v1/keys", list_keys, FL_SCOPE_ADMIN, 0},
    {"GET", "/api/v1/keys/{id}", get_key, FL_SCOPE_ADMIN, 0},
    {"DELETE", "/api/v1/keys/{id}", revoke_key, FL_SCOPE_ADMIN, 0},
};

void fl_routes_keys(fl_router *rt)
{
    fl_router_add(rt, routes, sizeof(routes) / sizeof(routes[0]));
}
