/* api/keys.c -- the per-request key check and its bounded cache (api/keys.h).
 *
 * The cache is a fixed table of FL_KEYS_SLOTS entries indexed by a hash of the key id,
 * guarded by striped mutexes: memory stays bounded whatever ids clients send, a lookup
 * costs one short critical section, and a collision only costs one more query. Unknown
 * and revoked ids are cached too (negatively), so a client hammering with a dead key
 * does not turn every request into a Postgres query. The cache holds the stored digest,
 * never the secret: the secret of each request is hashed and compared in constant time.
 *
 * Refresh ahead: a hit in the last fifth of its entry's life makes the one request that
 * sees it first re-read the key while every other request keeps using the entry, which
 * is still within its TTL. Without it, under load every request in flight when a busy
 * key's entry expired missed at once and queued on the pool (and on the row lock of the
 * last_used_at update): a 20-60 ms stall of the whole API every api.key_cache_ttl, the
 * bulk of S1's p99 (docs/benchmarks.md). An entry is never used past its TTL, so the
 * revocation delay stays api.key_cache_ttl. */
#include <pthread.h>
#include <stdatomic.h>
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
    int64_t expires_ms; /* monotonic: never used from here on */
    bool refreshing;    /* a request is re-reading it */
} cache_entry;

typedef enum { CACHE_MISS, CACHE_HIT, CACHE_HIT_REFRESH } cache_result;

struct fl_keys {
    fl_pg_pool *pool;
    int ttl_ms;
    int timeout_ms;
    const fl_clock *clock;
    atomic_long lookups; /* queries sent: tests count them */
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
    atomic_init(&k->lookups, 0);
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

/* CACHE_HIT_REFRESH: a hit the caller must refresh (it alone: the entry is marked). */
static cache_result cache_get(fl_keys *k, const char *id, cache_entry *out)
{
    size_t s = slot_of(id);
    pthread_mutex_t *lock = &k->locks[s % FL_KEYS_STRIPES];
    cache_entry *e = &k->slots[s];
    cache_result res = CACHE_MISS;
    int64_t now;

    if (k->ttl_ms == 0) {
        return CACHE_MISS;
    }
    now = fl_clock_mono_ms(k->clock);
    pthread_mutex_lock(lock);
    if (!strcmp(e->id, id) && e->expires_ms > now) {
        *out = *e;
        res = CACHE_HIT;
        if (!e->refreshing && now >= e->expires_ms - k->ttl_ms / 5) {
            e->refreshing = true;
            res = CACHE_HIT_REFRESH;
        }
    }
    pthread_mutex_unlock(lock);
    return res;
}

static void cache_put(fl_keys *k, cache_entry *e)
{
    size_t s = slot_of(e->id);
    pthread_mutex_t *lock = &k->locks[s % FL_KEYS_STRIPES];

    if (k->ttl_ms == 0) {
        return;
    }
    e->expires_ms = fl_clock_mono_ms(k->clock) + k->ttl_ms;
    e->refreshing = false;
    pthread_mutex_lock(lock);
    k->slots[s] = *e;
    pthread_mutex_unlock(lock);
}

/* A refresh that failed: the next request in the window tries again. */
static void cache_refresh_failed(fl_keys *k, const char *id)
{
    size_t s = slot_of(id);
    pthread_mutex_t *lock = &k->locks[s % FL_KEYS_STRIPES];

    pthread_mutex_lock(lock);
    if (!strcmp(k->slots[s].id, id)) {
        k->slots[s].refreshing = false;
    }
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
    atomic_fetch_add(&k->lookups, 1);
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

/* The entry for key.id: cached, refreshed or read. Errors: FL_EUNAVAIL (not cached and
 * Postgres cannot say). */
static fl_rc entry_of(fl_keys *k, const fl_key_text *key, const uint8_t *digest, cache_entry *e,
                      fl_err *err)
{
    cache_result cached = cache_get(k, key->id, e);
    cache_entry fresh;
    fl_err db = FL_ERR_INIT;

    if (cached == CACHE_HIT) {
        return FL_OK;
    }
    if (lookup(k, key->id, digest, &fresh, &db) == FL_OK) {
        cache_put(k, &fresh);
        *e = fresh;
        return FL_OK;
    }
    /* whatever went wrong (down, timeout, a query error) the cause goes to the log, not
     * to the client; a refresh that failed still has the entry, within its TTL */
    fl_log(FL_WARN, "api.key_check_failed", FL_STR("key_id", key->id), FL_STR("error", db.msg));
    if (cached == CACHE_HIT_REFRESH) {
        cache_refresh_failed(k, key->id);
        return FL_OK;
    }
    return fl_err_set(err, FL_EUNAVAIL, "API keys cannot be checked now");
}

fl_rc fl_keys_check(fl_keys *k, const char *authorization, fl_principal *who, fl_err *err)
{
    fl_key_text key;
    uint8_t digest[FL_KEY_DIGEST_LEN];
    cache_entry e;
    fl_rc rc;

    if (authorization == NULL) {
        return fl_err_set(err, FL_EINVAL, "an API key is required (Authorization: Bearer ...)");
    }
    if (!fl_keys__parse_bearer(authorization, &key)) {
        return fl_err_set(err, FL_EINVAL, "the API key is malformed");
    }
    fl_keys__digest(key.secret, digest);
    rc = entry_of(k, &key, digest, &e, err);
    if (rc != FL_OK) {
        return rc;
    }
    if (!e.valid || !fl_keys__digest_equal(digest, e.hash)) {
        return fl_err_set(err, FL_EINVAL, "the API key is unknown or revoked");
    }
    snprintf(who->tenant, sizeof(who->tenant), "%s", e.tenant);
    snprintf(who->key_id, sizeof(who->key_id), "%s", e.id);
    who->scope = e.scope;
    return FL_OK;
}

/* ---- for tests ---------------------------------------------------------------------- */

void fl_keys__set_clock(fl_keys *k, const fl_clock *clock)
{
    k->clock = clock;
}

void fl_keys__cache_seed(fl_keys *k, const char *id, const uint8_t hash[FL_KEY_DIGEST_LEN],
                         const char *tenant, fl_scope scope)
{
    cache_entry e = {.valid = true, .scope = scope};

    snprintf(e.id, sizeof(e.id), "%s", id);
    memcpy(e.hash, hash, FL_KEY_DIGEST_LEN);
    snprintf(e.tenant, sizeof(e.tenant), "%s", tenant);
    cache_put(k, &e);
}

long fl_keys__lookups(fl_keys *k)
{
    return atomic_load(&k->lookups);
}
