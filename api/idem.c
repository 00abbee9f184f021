/* api/idem.c -- Idempotency-Key records in table idempotency_keys (api/idem.h).
 *
 * begin claims the (API key, Idempotency-Key) row with one INSERT .. ON CONFLICT: the
 * primary key makes two concurrent first requests race safely (the loser sees the
 * winner's 'running' row and gets 409). A row is taken over when it expired
 * (api.idempotency_ttl) or when it has been 'running' longer than any request can run
 * (http.request_timeout + api.max_wait): that one was left by a process that died
 * mid-request, and without the lease its key would answer 409 for a whole day.
 *
 * The response is stored by fl_idem_record, which fl_req_send calls before it writes (not
 * by finish, as idem.h sketches): a client that saw the response and retries at once gets
 * the replay, never a 409 from a row not yet marked done. Its body is sealed under a key
 * derived from the caller's API key secret (api/idem_int.h). fl_idem_finish deletes the
 * row when no response went through fl_req_send. Both only touch the row this request
 * claimed (same request hash, still 'running'), so a request that outlived its lease
 * cannot overwrite the response of the one that took over. */
#include "api/idem.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/idem_int.h"
#include "api/keys_int.h"
#include "core/log.h"
#include "core/mem.h"

#define IDEM_KEY_MAX  255
#define IDEM_BODY_MAX (4 << 20) /* larger responses are not kept: the retry runs again */

struct fl_idem {
    char key_id[40];
    char key[IDEM_KEY_MAX + 1];
    char hash[2 * FL_KEY_DIGEST_LEN + 1];
    char secret[FL_KEY_SECRET_LEN + 1]; /* the caller's, to seal and open its responses */
    bool settled;                       /* the row was stored or deleted for the response */
};

static const char claim_sql[] =
    "INSERT INTO idempotency_keys AS i (api_key_id, idem_key, tenant, request_hash, state) "
    "VALUES ($1, $2, $3, decode($4, 'hex'), 'running') "
    "ON CONFLICT (api_key_id, idem_key) DO UPDATE SET tenant = EXCLUDED.tenant, "
    "request_hash = EXCLUDED.request_hash, state = 'running', status = NULL, "
    "content_type = NULL, location = NULL, body = NULL, created_at = now() "
    "WHERE i.created_at < now() - $5::bigint * interval '1 millisecond' "
    "OR (i.state = 'running' AND i.created_at < now() - $6::bigint * interval '1 millisecond') "
    "RETURNING 1";

static const char read_sql[] =
    "SELECT state, request_hash = decode($3, 'hex'), status, content_type, location, "
    "encode(body, 'hex') FROM idempotency_keys WHERE api_key_id = $1 AND idem_key = $2";

static const char done_sql[] =
    "UPDATE idempotency_keys SET state = 'done', status = $4, content_type = $5, "
    "location = $6, body = decode($7, 'hex') WHERE api_key_id = $1 AND idem_key = $2 "
    "AND request_hash = decode($3, 'hex') AND state = 'running'";

static const char drop_sql[] =
    "DELETE FROM idempotency_keys WHERE api_key_id = $1 AND idem_key = $2 "
    "AND request_hash = decode($3, 'hex') AND state = 'running'";

/* A small batch of expired rows, oldest first (the created_at index); see finish. */
static const char sweep_sql[] =
    "DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys "
    "WHERE created_at < now() - $1::bigint * interval '1 millisecond' "
    "ORDER BY created_at LIMIT 100)";

static void free_idem(fl_idem *id)
{
    OPENSSL_cleanse(id->secret, sizeof(id->secret));
    free(id);
}

static bool key_valid(const char *key)
{
    size_t n = strlen(key);

    if (n == 0 || n > IDEM_KEY_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (key[i] < 0x20 || key[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

/* SHA-256 of method, request target and body, NUL-separated so fields cannot run into
 * each other. */
static void request_hash(const fl_req *r, const char *body, size_t len, char out[65])
{
    const char *path = r->ri->local_uri_raw ? r->ri->local_uri_raw : r->ri->local_uri;
    const char *qs = r->ri->query_string ? r->ri->query_string : "";
    uint8_t d[FL_KEY_DIGEST_LEN];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    fl_assert(ctx != NULL);
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, r->ri->request_method, strlen(r->ri->request_method) + 1);
    EVP_DigestUpdate(ctx, path ? path : "", path ? strlen(path) + 1 : 1);
    EVP_DigestUpdate(ctx, qs, strlen(qs) + 1);
    EVP_DigestUpdate(ctx, body, len);
    EVP_DigestFinal_ex(ctx, d, NULL);
    EVP_MD_CTX_free(ctx);
    fl_keys__hex(d, sizeof(d), out);
}

/* Sends the stored response again. r->idem is NULL here, so it is not recorded anew. */
static void replay(fl_req *r, const fl_idem *id, fl_pg_rows *rows)
{
    const char *status = fl_pg_rows_get(rows, 0, 2), *ct = fl_pg_rows_get(rows, 0, 3);
    const char *loc = fl_pg_rows_get(rows, 0, 4), *hex = fl_pg_rows_get(rows, 0, 5);
    size_t n = hex ? strlen(hex) / 2 : 0, len = 0;
    uint8_t *sealed = fl_xmalloc(n + 1);
    char *body = NULL;

    if (!fl_keys__unhex(hex, sealed, n) || !fl_idem__open(id->secret, sealed, n, &body, &len)) {
        fl_log(FL_ERROR, "idem.unseal_failed", FL_STR("request_id", r->request_id));
        fl_problem(r, 500, "the recorded response cannot be read");
        goto out;
    }
    if (loc && loc[0]) {
        fl_req_header_add(r, "Location", "%s", loc);
    }
    fl_req_header_add(r, "Idempotent-Replayed", "true");
    fl_req_send(r, (int)strtol(status ? status : "500", NULL, 10),
                ct && ct[0] ? ct : "application/octet-stream", body, len);
out:
    if (body) {
        OPENSSL_cleanse(body, len);
    }
    free(body);
    free(sealed);
}

/* Answers from an existing live row: 422, 409 or the replay. */
static void answer_existing(fl_req *r, const fl_idem *id, fl_pg_rows *rows)
{
    const char *state = fl_pg_rows_get(rows, 0, 0), *same = fl_pg_rows_get(rows, 0, 1);

    if (!same || same[0] != 't') {
        fl_problem(r, 422,
                   "this Idempotency-Key was already used with a different request; "
                   "use a new key for a new request");
    } else if (state && !strcmp(state, "running")) {
        fl_req_header_add(r, "Retry-After", "1");
        fl_problem(r, 409, "a request with this Idempotency-Key is still being processed");
    } else {
        replay(r, id, rows);
    }
}

/* One claim attempt: 1 = claimed, 0 = answered from the existing row, -1 = the row
 * vanished between the two statements (retry), -2 = answered with an error. */
static int claim(fl_req *r, const fl_idem *id)
{
    const fl_config *cfg = r->api->cfg;
    char ttl[24], lease[24];
    const char *cp[6] = {id->key_id, id->key, r->who.tenant, id->hash, ttl, lease};
    const char *rp[3] = {id->key_id, id->key, id->hash};
    fl_pg_rows *rows = NULL;
    int out = -2;

    snprintf(ttl, sizeof(ttl), "%d", cfg->api.idempotency_ttl_ms);
    snprintf(lease, sizeof(lease), "%lld",
             (long long)cfg->http.request_timeout_ms + cfg->api.max_wait_ms);
    if (!fl_req_db(r, claim_sql, 6, cp, &rows)) {
        return -2;
    }
    if (fl_pg_rows_count(rows) == 1) {
        out = 1;
    } else {
        fl_pg_rows_free(rows);
        rows = NULL;
        if (fl_req_db(r, read_sql, 3, rp, &rows)) {
            out = fl_pg_rows_count(rows) == 1 ? 0 : -1;
            if (out == 0) {
                answer_existing(r, id, rows);
            }
        }
    }
    fl_pg_rows_free(rows);
    return out;
}

fl_idem_outcome fl_idem_begin(fl_req *r, const char *idempotency_key)
{
    fl_idem *id;
    fl_key_text caller;
    const char *body;
    size_t len;
    int got = -1;

    if (!key_valid(idempotency_key)) {
        fl_problem(r, 400, "Idempotency-Key must be 1-%d printable ASCII characters", IDEM_KEY_MAX);
        return FL_IDEM_ANSWERED;
    }
    if (!fl_keys__parse_bearer(fl_req_header(r, "Authorization"), &caller)) {
        /* idempotent routes all need a key, so this is a route table mistake */
        fl_problem(r, 400, "Idempotency-Key needs an API key");
        return FL_IDEM_ANSWERED;
    }
    if (!fl_req_body(r, &body, &len)) {
        return FL_IDEM_ANSWERED;
    }
    id = fl_xcalloc(1, sizeof(*id));
    memcpy(id->secret, caller.secret, sizeof(id->secret));
    OPENSSL_cleanse(&caller, sizeof(caller));
    snprintf(id->key_id, sizeof(id->key_id), "%s", r->who.key_id);
    snprintf(id->key, sizeof(id->key), "%s", idempotency_key);
    request_hash(r, body, len, id->hash);
    /* the row can vanish between claim and read (its request ended in a 5xx): claim again */
    for (int i = 0; i < 3 && got == -1; i++) {
        got = claim(r, id);
    }
    if (got == 1) {
        r->idem = id;
        return FL_IDEM_PROCEED;
    }
    if (got == -1) {
        fl_req_header_add(r, "Retry-After", "1");
        fl_problem(r, 409, "a request with this Idempotency-Key is still being processed");
    }
    free_idem(id);
    return FL_IDEM_ANSWERED;
}

/* The value of `name` among the "Name: value\r\n" lines collected by fl_req_header_add. */
static void extra_header(const fl_req *r, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);

    out[0] = '\0';
    for (const char *p = r->extra; *p;) {
        const char *eol = strstr(p, "\r\n");
        size_t line = eol ? (size_t)(eol - p) : strlen(p);
        if (line > n + 2 && !strncasecmp(p, name, n) && p[n] == ':' && p[n + 1] == ' ') {
            snprintf(out, size, "%.*s", (int)(line - n - 2), p + n + 2);
            return;
        }
        p += line + (eol ? 2 : 0);
    }
}

/* Runs one bookkeeping statement. Its failure is not the client's problem (the response
 * is decided already), so it is logged; a row left 'running' is taken over after its
 * lease. */
static void run_quiet(fl_req *r, const char *event, const char *sql, int n,
                      const char *const *params)
{
    fl_pg_stmt st = {sql, n, params, r->api->cfg->db.connect_timeout_ms};
    fl_pg_conn *conn = NULL;
    fl_err err = FL_ERR_INIT;
    fl_rc rc = fl_pg_acquire(r->api->pool, r->api->cfg->db.connect_timeout_ms, &conn, &err);

    if (rc == FL_OK) {
        rc = fl_pg_exec(conn, &st, NULL, &err);
    }
    fl_pg_release(r->api->pool, conn);
    if (rc != FL_OK) {
        fl_log(FL_WARN, event, FL_STR("request_id", r->request_id), FL_STR("error", err.msg));
    }
}

static void drop(fl_req *r, const fl_idem *id)
{
    const char *p[3] = {id->key_id, id->key, id->hash};

    run_quiet(r, "idem.drop_failed", drop_sql, 3, p);
}

/* Stores the response before it is written (fl_req_send calls this first), so a client
 * that has seen the response and retries gets the replay, never a 409. */
void fl_idem_record(fl_req *r, int status, const char *content_type, const char *body, size_t len)
{
    fl_idem *id = r->idem;
    char code[16], location[512], *hex;
    uint8_t *sealed = NULL;
    size_t n = 0;

    if (id == NULL || id->settled) {
        return; /* only the first response of a request is the request's response */
    }
    id->settled = true;
    if (status >= 500 || len > IDEM_BODY_MAX ||
        !fl_idem__seal(id->secret, body, len, &sealed, &n)) {
        drop(r, id); /* a retry runs again */
        return;
    }
    snprintf(code, sizeof(code), "%d", status);
    extra_header(r, "Location", location, sizeof(location));
    hex = fl_xmalloc(2 * n + 1);
    fl_keys__hex(sealed, n, hex);
    {
        const char *p[7] = {id->key_id, id->key, id->hash, code, content_type ? content_type : "",
                            location,   hex};
        run_quiet(r, "idem.store_failed", done_sql, 7, p);
    }
    free(hex);
    free(sealed);
}

void fl_idem_finish(fl_req *r)
{
    fl_idem *id = r->idem;
    char ttl[24];
    const char *sweep[1] = {ttl};

    r->idem = NULL;
    if (id == NULL) {
        return;
    }
    if (!id->settled) {
        drop(r, id); /* no response went through fl_req_send (a stream, a dropped client) */
    }
    /* Expired rows are swept by the requests themselves, about one in 256 (the request
     * hash is uniform), in batches of 100: no extra thread, and bounded work per request. */
    if (id->hash[0] == '0' && id->hash[1] == '0') {
        snprintf(ttl, sizeof(ttl), "%d", r->api->cfg->api.idempotency_ttl_ms);
        run_quiet(r, "idem.sweep_failed", sweep_sql, 1, sweep);
    }
    free_idem(id);
}
