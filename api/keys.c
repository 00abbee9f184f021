/* api/keys.c -- the per-request key check and its bounded cache (api/keys.h).
 *
 * The cache is a fixed table of FL_KEYS_SLOTS entries indexed by a hash of the key id,
 * guarded by striped mutexes: memory stays bounded whatever ids clients send, a lookup
 * costs one short critical section, and a collision only costs one more query. Unknown
 * and revoked ids are cached too (negatively), so a client hammering with a dead key
 * does not turn every request into a Postgres query. The cache holds the stored digest,
 * never the secret: the secret of each request is hashed and compared in constant time. */
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "api/keys_int.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

#define FL_KEYS_SLOTS   4096
#define FL_KEYS_STRIPES 64

typedef struct cache_entry {
    char id[FL_KEY_ID_LEN + 1]; /* "" = empty slot */
    bool valid;                 /* the row exists and is not revoked */
    uint8_t hash[FL_KEY_DIGEST_LEN];
    char tenant[sizeof(((fl_principal *)0)->tenant)];
    fl_scope scope;
    int64_t expires_ms; /* monotonic */
} cache_entry;

struct fl_keys {
    fl_pg_pool *pool;
    int ttl_ms;
    int timeout_ms;
    const fl_clock *clock;
    pthread_mutex_t locks[FL_KEYS_STRIPES];
    cache_entry slots[FL_KEYS_SLOTS];
};

/* The row of one key, and last_used_at refreshed (at most once a minute) when the digest
 * the client sent matches: SQL's bytea = only gates that bookkeeping, the decision is the
 * constant-time comparison in C. */
static const char lookup_sql[] =
    "WITH k AS (SELECT id, tenant, scope, hash, revoked_at FROM api_keys WHERE id = $1), "
    "u AS (UPDATE api_keys a SET last_used_at = now() FROM k WHERE a.id = k.id "
    "AND k.revoked_at IS NULL AND k.hash = decode($2, 'hex') "
    "AND (a.last_used_at IS NULL OR a.last_used_at < now() - interval '1 minute') "
    "RETURNING 1) "
    "SELECT tenant, scope, encode(hash, 'hex'), revoked_at IS NULL FROM k";

fl_keys *fl_keys_new(fl_pg_pool *pool, int cache_ttl_ms, int timeout_ms)
{
    fl_keys *k = fl_xcalloc(1, sizeof(*k));

    k->pool = pool;
    k->ttl_ms = cache_ttl_ms > 0 ? cache_ttl_ms : 0;
    k->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    k->clock = fl_clock_system();
    for (int i = 0; i < FL_KEYS_STRIPES; i++) {
        pthread_mutex_init(&k->locks[i], NULL);
    }
    return k;
}

void fl_keys_free(fl_keys *k)
{
    if (k == NULL) {
        return;
    }
    for (int i = 0; i < FL_KEYS_STRIPES; i++) {
        pthread_mutex_destroy(&k->locks[i]);
    }
    free(k);
}

static size_t slot_of(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (const char *p = id; *p; p++) {
        h = (h ^ (uint8_t)*p) * 16777619u;
    }
    return h % FL_KEYS_SLOTS;
}

static bool cache_get(fl_keys *k, const char *id, cache_entry *out)
{
    size_t s = slot_of(id);
    pthread_mutex_t *lock = &k->locks[s % FL_KEYS_STRIPES];
    bool hit;

    if (k->ttl_ms == 0) {
        return false;
    }
    pthread_mutex_lock(lock);
    hit = !strcmp(k->slots[s].id, id) && k->slots[s].expires_ms > fl_clock_mono_ms(k->clock);
    if (hit) {
        *out = k->slots[s];
    }
    pthread_mutex_unlock(lock);
    return hit;
}

static void cache_put(fl_keys *k, cache_entry *e)
{
    size_t s = slot_of(e->id);
    pthread_mutex_t *lock = &k->locks[s % FL_KEYS_STRIPES];

    if (k->ttl_ms == 0) {
        return;
    }
    e->expires_ms = fl_clock_mono_ms(k->clock) + k->ttl_ms;
    pthread_mutex_lock(lock);
    k->slots[s] = *e;
    pthread_mutex_unlock(lock);
}

/* Reads key `id` from Postgres into *e (e->valid false when unknown or revoked). */
static fl_rc lookup(fl_keys *k, const char *id, const uint8_t digest[FL_KEY_DIGEST_LEN],
                    cache_entry *e, fl_err *err)
{
    char hex[2 * FL_KEY_DIGEST_LEN + 1];
    const char *params[2] = {id, hex};
    fl_pg_stmt st = {lookup_sql, 2, params, k->timeout_ms};
    fl_pg_conn *conn = NULL;
    fl_pg_rows *rows = NULL;
    fl_rc rc;

    fl_keys__hex(digest, FL_KEY_DIGEST_LEN, hex);
    memset(e, 0, sizeof(*e));
    snprintf(e->id, sizeof(e->id), "%s", id);
    rc = fl_pg_acquire(k->pool, k->timeout_ms, &conn, err);
    if (rc == FL_OK) {
        rc = fl_pg_exec(conn, &st, &rows, err);
    }
    fl_pg_release(k->pool, conn);
    if (rc == FL_OK && fl_pg_rows_count(rows) == 1) {
        const char *valid = fl_pg_rows_get(rows, 0, 3);
        snprintf(e->tenant, sizeof(e->tenant), "%s", fl_pg_rows_get(rows, 0, 0));
        e->scope = fl_scope_parse(fl_pg_rows_get(rows, 0, 1));
        e->valid = valid && valid[0] == 't' && e->scope != FL_SCOPE_NONE &&
                   fl_keys__unhex(fl_pg_rows_get(rows, 0, 2), e->hash, FL_KEY_DIGEST_LEN);
    }
    fl_pg_rows_free(rows);
    return rc;
}

fl_rc fl_keys_check(fl_keys *k, const char *authorization, fl_principal *who, fl_err *err)
{
    fl_key_text key;
    uint8_t digest[FL_KEY_DIGEST_LEN];
    cache_entry e;
    fl_err db = FL_ERR_INIT;
    fl_rc rc;

    if (authorization == NULL) {
        return fl_err_set(err, FL_EINVAL, "an API key is required (Authorization: Bearer ...)");
    }
    if (!fl_keys__parse_bearer(authorization, &key)) {
        return fl_err_set(err, FL_EINVAL, "the API key is malformed");
    }
    fl_keys__digest(key.secret, digest);
    if (!cache_get(k, key.id, &e)) {
        rc = lookup(k, key.id, digest, &e, &db);
        if (rc != FL_OK) {
            /* whatever went wrong (down, timeout, a query error) the caller answers 503;
             * the cause goes to the log, not to the client */
            fl_log(FL_WARN, "api.key_check_failed", FL_STR("key_id", key.id),
                   FL_STR("error", db.msg));
            return fl_err_set(err, FL_EUNAVAIL, "API keys cannot be checked now");
        }
        cache_put(k, &e);
    }
    if (!e.valid || !fl_keys__digest_equal(digest, e.hash)) {
        return fl_err_set(err, FL_EINVAL, "the API key is unknown or revoked");
    }
    snprintf(who->tenant, sizeof(who->tenant), "%s", e.tenant);
    snprintf(who->key_id, sizeof(who->key_id), "%s", e.id);
    who->scope = e.scope;
    return FL_OK;
}
