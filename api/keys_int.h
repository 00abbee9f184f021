/* api/keys_int.h -- private to the keys module (api/keys*.c, api/routes_keys.c, api/idem.c,
 * tests/unit/test_keys.c): the key text format, digests and the SQL that renders a key.
 *
 * Thread-safety: every function is reentrant. */
#ifndef FL_API_KEYS_INT_H
#define FL_API_KEYS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/keys.h"
#include "core/clock.h"

#define FL_KEY_ID_BYTES     8
#define FL_KEY_ID_LEN       16 /* lower-case hex of FL_KEY_ID_BYTES */
#define FL_KEY_SECRET_BYTES 32
#define FL_KEY_SECRET_LEN   43 /* base64url of FL_KEY_SECRET_BYTES, unpadded */
#define FL_KEY_LEN          (3 + FL_KEY_ID_LEN + 1 + FL_KEY_SECRET_LEN) /* "fk_<id>_<secret>" */
#define FL_KEY_DIGEST_LEN   32                                          /* SHA-256 */
#define FL_KEY_NAME_MAX     200

/* A parsed key: both halves NUL-terminated. */
typedef struct fl_key_text {
    char id[FL_KEY_ID_LEN + 1];
    char secret[FL_KEY_SECRET_LEN + 1];
} fl_key_text;

/* "fk_<16 lower hex>_<43 base64url>" exactly -> out. False for anything else. */
bool fl_keys__parse(const char *key, fl_key_text *out);

/* 16 lower-case hex digits: the id half of a key. */
bool fl_keys__id_valid(const char *id);

/* An Authorization value: the scheme "Bearer" (any case), one or more spaces, a key, and
 * nothing after it. False when absent (NULL) or malformed. */
bool fl_keys__parse_bearer(const char *authorization, fl_key_text *out);

/* The key text for raw id and secret bytes; out holds FL_KEY_LEN + 1 bytes. */
void fl_keys__format(const uint8_t id[FL_KEY_ID_BYTES], const uint8_t secret[FL_KEY_SECRET_BYTES],
                     char out[FL_KEY_LEN + 1]);

/* SHA-256 of the secret's text: what api_keys.hash stores. */
void fl_keys__digest(const char *secret, uint8_t out[FL_KEY_DIGEST_LEN]);

/* Constant-time comparison of two digests (CRYPTO_memcmp). */
bool fl_keys__digest_equal(const uint8_t a[FL_KEY_DIGEST_LEN], const uint8_t b[FL_KEY_DIGEST_LEN]);

/* A comma list of scopes ("read,write", spaces around items allowed) -> the strongest;
 * FL_SCOPE_NONE when empty or when any item is unknown. */
fl_scope fl_keys__scopes_parse(const char *list);

/* 1..FL_KEY_NAME_MAX characters of UTF-8 without control characters. */
bool fl_keys__name_valid(const char *name);

/* n random bytes from getrandom(). Errors: FL_EINTERNAL. */
fl_rc fl_keys__random(uint8_t *out, size_t n, fl_err *err);

/* Lower-case hex of n bytes into out (2n + 1 bytes); hex -> bytes (false unless exactly
 * 2n hex digits). */
void fl_keys__hex(const uint8_t *in, size_t n, char *out);
bool fl_keys__unhex(const char *hex, uint8_t *out, size_t n);

/* For tests: the clock the cache reads; an entry put in the cache as if just read from
 * Postgres; how many key lookups were sent to Postgres. */
void fl_keys__set_clock(fl_keys *k, const fl_clock *clock);
void fl_keys__cache_seed(fl_keys *k, const char *id, const uint8_t hash[FL_KEY_DIGEST_LEN],
                         const char *tenant, fl_scope scope);
long fl_keys__lookups(fl_keys *k);

/* SQL: RFC 3339 UTC with milliseconds for a timestamptz column (NULL stays NULL). */
#define FL_KEYS_TS_SQL(col) \
    "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* SQL: the JSON of the api_keys row aliased k (never the hash). */
#define FL_KEYS_JSON_SQL                                                                   \
    "json_build_object('id', k.id, 'tenant', k.tenant, 'name', k.name, 'scope', k.scope, " \
    "'scopes', CASE k.scope WHEN 'read' THEN json_build_array('read') "                    \
    "WHEN 'write' THEN json_build_array('read', 'write') "                                 \
    "ELSE json_build_array('read', 'write', 'admin') END, "                                \
    "'created_at', " FL_KEYS_TS_SQL(                                                       \
        "k.created_at") ", "                                                               \
                        "'last_used_at', " FL_KEYS_TS_SQL(                                 \
                            "k.last_used_at") ", "                                         \
                                              "'revoked_at', " FL_KEYS_TS_SQL("k.revoked_at") ")"

#endif
