/* api/keys.h -- API keys: creation, listing, revocation and the per-request check.
 *
 * A key is "fk_<id>_<secret>": id is 16 lowercase hex (the row's primary key, shown in
 * listings), secret 32 bytes from getrandom() in base64url (43 characters). Only the
 * SHA-256 of the secret is stored (table api_keys, schemas/sql/003_api.sql); the check
 * compares digests with CRYPTO_memcmp (constant time). A key belongs to one tenant and
 * holds one scope (read < write < admin; stronger implies weaker). The first key created
 * for a tenant creates the tenant row, in the same transaction.
 *
 * Checked keys are cached in memory for api.key_cache_ttl (1 s by default) so the hot path
 * does not ask Postgres per request; revocation therefore takes effect within that TTL.
 *
 * Thread-safety: every function may be called from any thread. */
#ifndef FL_API_KEYS_H
#define FL_API_KEYS_H

#include <jansson.h>

#include "api/request.h"
#include "core/pg.h"

typedef struct fl_keys fl_keys;

fl_keys *fl_keys_new(fl_pg_pool *pool, int cache_ttl_ms, int timeout_ms);
void fl_keys_free(fl_keys *k); /* NULL-safe */

/* Checks an Authorization header value ("Bearer fk_..."). On FL_OK *who is filled.
 * Errors: FL_EINVAL (missing, malformed, unknown, revoked: all answered 401 alike),
 * FL_EUNAVAIL (Postgres down and the key not cached: 503). */
fl_rc fl_keys_check(fl_keys *k, const char *authorization, fl_principal *who, fl_err *err);

/* "read" | "write" | "admin" -> scope; FL_SCOPE_NONE when unknown. */
fl_scope fl_scope_parse(const char *s);
const char *fl_scope_name(fl_scope s);

/* Creates a key. *secret is the full key text, shown once (caller frees); *row is
 * {id, tenant, name, scope, created_at} (new reference). `scopes` may be a comma list
 * ("read,write"): the key gets the strongest. Errors: FL_EINVAL (bad tenant, name or
 * scope), FL_EUNAVAIL. */
fl_rc fl_keys_create(fl_pg_pool *pool, const char *tenant, const char *name, const char *scopes,
                     char **secret, json_t **row, fl_err *err);

/* The keys of a tenant (NULL = every tenant), newest first, revoked ones included with
 * revoked_at. Ownership: *rows new reference (array). */
fl_rc fl_keys_list(fl_pg_pool *pool, const char *tenant, json_t **rows, fl_err *err);

/* Revokes key `id` of `tenant` (NULL = any tenant). Errors: FL_ENOTFOUND. */
fl_rc fl_keys_revoke(fl_pg_pool *pool, const char *tenant, const char *id, fl_err *err);

#endif
