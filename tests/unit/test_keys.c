/* tests/unit/test_keys.c -- API key text, digests, scopes and the check's answers that
 * need no database (api/keys_int.h, api/keys.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "api/keys_int.h"
#include "fake_clock.h"

#define GOOD_ID      "0123456789abcdef"
#define GOOD_SECRET  "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde"
#define GOOD_KEY     "fk_" GOOD_ID "_" GOOD_SECRET
#define OTHER_SECRET "ZbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde"

static void test_keys_parse_accepts_the_documented_format(void **state)
{
    fl_key_text k;

    (void)state;
    assert_int_equal(strlen(GOOD_KEY), FL_KEY_LEN);
    assert_true(fl_keys__parse(GOOD_KEY, &k));
    assert_string_equal(k.id, GOOD_ID);
    assert_string_equal(k.secret, GOOD_SECRET);
}

static void test_keys_parse_rejects_everything_else(void **state)
{
    static const char *const bad[] = {
        "",
        "fk_",
        "fk_" GOOD_ID "_" GOOD_SECRET "x", /* too long */
        "fk_" GOOD_ID "_"
        "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd", /* too short */
        "fx_" GOOD_ID "_" GOOD_SECRET,                /* prefix */
        "FK_" GOOD_ID "_" GOOD_SECRET,
        "fk_0123456789ABCDEF_" GOOD_SECRET, /* upper-case id */
        "fk_0123456789abcdeg_" GOOD_SECRET, /* not hex */
        "fk_" GOOD_ID "-" GOOD_SECRET,      /* separator */
        "fk_" GOOD_ID "_"
        "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/abcde", /* std base64 */
        "fk_" GOOD_ID "_"
        "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd=", /* padding */
        " fk_" GOOD_ID "_"
        "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd",
    };
    fl_key_text k;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(fl_keys__parse(bad[i], &k));
    }
    assert_false(fl_keys__parse(NULL, &k));
}

static void test_keys_parse_bearer(void **state)
{
    fl_key_text k;

    (void)state;
    assert_true(fl_keys__parse_bearer("Bearer " GOOD_KEY, &k));
    assert_string_equal(k.id, GOOD_ID);
    assert_true(fl_keys__parse_bearer("bearer   " GOOD_KEY, &k));
    assert_true(fl_keys__parse_bearer("BEARER " GOOD_KEY, &k));
    assert_false(fl_keys__parse_bearer(GOOD_KEY, &k));
    assert_false(fl_keys__parse_bearer("Basic " GOOD_KEY, &k));
    assert_false(fl_keys__parse_bearer("Bearer", &k));
    assert_false(fl_keys__parse_bearer("Bearer ", &k));
    assert_false(fl_keys__parse_bearer("Bearer " GOOD_KEY " ", &k));
    assert_false(fl_keys__parse_bearer("Bearer " GOOD_KEY ",x", &k));
    assert_false(fl_keys__parse_bearer("Bearer\t" GOOD_KEY, &k));
    assert_false(fl_keys__parse_bearer(NULL, &k));
}

static void test_keys_format_round_trips(void **state)
{
    uint8_t raw[FL_KEY_ID_BYTES + FL_KEY_SECRET_BYTES];
    char key[FL_KEY_LEN + 1], again[FL_KEY_LEN + 1];
    fl_key_text k;

    (void)state;
    for (int round = 0; round < 200; round++) {
        assert_int_equal(fl_keys__random(raw, sizeof(raw), NULL), FL_OK);
        fl_keys__format(raw, raw + FL_KEY_ID_BYTES, key);
        assert_int_equal(strlen(key), FL_KEY_LEN);
        assert_true(fl_keys__parse(key, &k));
        assert_true(fl_keys__id_valid(k.id));
        fl_keys__format(raw, raw + FL_KEY_ID_BYTES, again);
        assert_string_equal(key, again);
    }
}

static void test_keys_format_known_bytes(void **state)
{
    uint8_t id[FL_KEY_ID_BYTES] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
    uint8_t secret[FL_KEY_SECRET_BYTES];
    char key[FL_KEY_LEN + 1];

    (void)state;
    memset(secret, 0xff, sizeof(secret)); /* all ones: "/" in standard base64 */
    fl_keys__format(id, secret, key);
    assert_string_equal(key, "fk_0123456789abcdef_"
                             "__________________________________________8");
}

static void test_keys_random_differs(void **state)
{
    uint8_t a[32], b[32];

    (void)state;
    assert_int_equal(fl_keys__random(a, sizeof(a), NULL), FL_OK);
    assert_int_equal(fl_keys__random(b, sizeof(b), NULL), FL_OK);
    assert_memory_not_equal(a, b, sizeof(a));
}

static void test_keys_digest_is_sha256_of_the_secret_text(void **state)
{
    uint8_t d[FL_KEY_DIGEST_LEN], e[FL_KEY_DIGEST_LEN];
    char hex[2 * FL_KEY_DIGEST_LEN + 1];

    (void)state;
    fl_keys__digest("abc", d);
    fl_keys__hex(d, sizeof(d), hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_true(fl_keys__unhex(hex, e, sizeof(e)));
    assert_true(fl_keys__digest_equal(d, e));
    e[31] ^= 1;
    assert_false(fl_keys__digest_equal(d, e));
    fl_keys__digest("abd", e);
    assert_false(fl_keys__digest_equal(d, e));
}

static void test_keys_unhex_rejects_bad_input(void **state)
{
    uint8_t out[2];

    (void)state;
    assert_true(fl_keys__unhex("0aFf", out, 2));
    assert_int_equal(out[0], 0x0a);
    assert_int_equal(out[1], 0xff);
    assert_false(fl_keys__unhex("0a", out, 2));
    assert_false(fl_keys__unhex("0aff00", out, 2));
    assert_false(fl_keys__unhex("0axf", out, 2));
    assert_false(fl_keys__unhex(NULL, out, 2));
}

static void test_keys_scopes(void **state)
{
    (void)state;
    assert_int_equal(fl_keys__scopes_parse("read"), FL_SCOPE_READ);
    assert_int_equal(fl_keys__scopes_parse("read,write"), FL_SCOPE_WRITE);
    assert_int_equal(fl_keys__scopes_parse("write,read"), FL_SCOPE_WRITE);
    assert_int_equal(fl_keys__scopes_parse(" read , admin "), FL_SCOPE_ADMIN);
    assert_int_equal(fl_keys__scopes_parse("admin"), FL_SCOPE_ADMIN);
    assert_int_equal(fl_keys__scopes_parse(""), FL_SCOPE_NONE);
    assert_int_equal(fl_keys__scopes_parse("read,"), FL_SCOPE_NONE);
    assert_int_equal(fl_keys__scopes_parse("read,,write"), FL_SCOPE_NONE);
    assert_int_equal(fl_keys__scopes_parse("owner"), FL_SCOPE_NONE);
    assert_int_equal(fl_keys__scopes_parse("READ"), FL_SCOPE_NONE);
    assert_int_equal(fl_keys__scopes_parse("readwrite"), FL_SCOPE_NONE);
    assert_int_equal(fl_keys__scopes_parse(NULL), FL_SCOPE_NONE);
    assert_int_equal(fl_scope_parse("write"), FL_SCOPE_WRITE);
    assert_int_equal(fl_scope_parse("none"), FL_SCOPE_NONE);
    assert_string_equal(fl_scope_name(FL_SCOPE_ADMIN), "admin");
    assert_string_equal(fl_scope_name(FL_SCOPE_READ), "read");
}

static void test_keys_names(void **state)
{
    char longest[FL_KEY_NAME_MAX + 2], wide[2 * FL_KEY_NAME_MAX + 1];

    (void)state;
    assert_true(fl_keys__name_valid("ci deploy key"));
    assert_true(fl_keys__name_valid("caf\xc3\xa9"));
    assert_false(fl_keys__name_valid(""));
    assert_false(fl_keys__name_valid(NULL));
    assert_false(fl_keys__name_valid("tab\there"));
    assert_false(fl_keys__name_valid("bad \xc3"));
    memset(longest, 'x', sizeof(longest));
    longest[FL_KEY_NAME_MAX] = '\0';
    assert_true(fl_keys__name_valid(longest));
    longest[FL_KEY_NAME_MAX] = 'x';
    longest[FL_KEY_NAME_MAX + 1] = '\0';
    assert_false(fl_keys__name_valid(longest));
    /* characters, not bytes: 200 two-byte characters are fine */
    for (int i = 0; i < FL_KEY_NAME_MAX; i++) {
        memcpy(wide + 2 * i, "\xc3\xa9", 2);
    }
    wide[2 * FL_KEY_NAME_MAX] = '\0';
    assert_true(fl_keys__name_valid(wide));
}

/* What the check decides before it would ask Postgres. */
static void test_keys_check_rejects_missing_and_malformed_keys(void **state)
{
    fl_keys *k = fl_keys_new(NULL, 1000, 100);
    fl_principal who;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_keys_check(k, NULL, &who, &err), FL_EINVAL);
    fl_err_clear(&err);
    assert_int_equal(fl_keys_check(k, "Bearer nope", &who, &err), FL_EINVAL);
    assert_non_null(strstr(err.msg, "malformed"));
    fl_keys_free(k);
    fl_keys_free(NULL);
}

/* A well-formed key while Postgres is unreachable is a 503 (FL_EUNAVAIL), not a 401. */
static void test_keys_check_is_unavailable_without_postgres(void **state)
{
    char url[] = "postgresql://flowd@127.0.0.1:1/flowd";
    fl_config_db db = {.url = url, .pool_size = 1, .connect_timeout_ms = 500};
    fl_pg_pool *pool = NULL;
    fl_keys *k;
    fl_principal who;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_pg_pool_open(&pool, &db, &err), FL_OK);
    k = fl_keys_new(pool, 1000, 500);
    assert_int_equal(fl_keys_check(k, "Bearer " GOOD_KEY, &who, &err), FL_EUNAVAIL);
    fl_keys_free(k);
    fl_pg_pool_close(pool);
}

/* A cached key is used without a query until the last fifth of its TTL; then the first
 * request re-reads it while the entry stays usable (a failed re-read included), and
 * past the TTL it is never used. */
static void test_keys_cache_refreshes_ahead_and_never_past_its_ttl(void **state)
{
    char url[] = "postgresql://flowd@127.0.0.1:1/flowd";
    fl_config_db db = {.url = url, .pool_size = 1, .connect_timeout_ms = 200};
    fl_key_text key;
    uint8_t digest[FL_KEY_DIGEST_LEN];
    fl_pg_pool *pool = NULL;
    fl_principal who;
    fl_err err = FL_ERR_INIT;
    fl_keys *k;

    (void)state;
    assert_true(fl_keys__parse(GOOD_KEY, &key));
    fl_keys__digest(key.secret, digest);
    assert_int_equal(fl_pg_pool_open(&pool, &db, &err), FL_OK);
    k = fl_keys_new(pool, 1000, 200);
    fl_keys__set_clock(k, &fake_clock);
    fake_ms = 0;
    fl_keys__cache_seed(k, key.id, digest, "acme", FL_SCOPE_WRITE);
    fake_ms = 799;
    assert_int_equal(fl_keys_check(k, "Bearer " GOOD_KEY, &who, &err), FL_OK);
    assert_string_equal(who.tenant, "acme");
    assert_int_equal(fl_keys__lookups(k), 0);
    fake_ms = 800; /* the refresh window: one re-read, which fails, and the entry serves */
    assert_int_equal(fl_keys_check(k, "Bearer " GOOD_KEY, &who, &err), FL_OK);
    assert_int_equal(fl_keys__lookups(k), 1);
    assert_int_equal(fl_keys_check(k, "Bearer " GOOD_KEY, &who, &err), FL_OK);
    assert_int_equal(fl_keys__lookups(k), 2); /* the failed one let the next try again */
    assert_int_equal(fl_keys_check(k, "Bearer fk_" GOOD_ID "_" OTHER_SECRET, &who, &err),
                     FL_EINVAL); /* the cached digest still decides */
    fake_ms = 1000;              /* expired: a miss, and Postgres cannot answer */
    assert_int_equal(fl_keys_check(k, "Bearer " GOOD_KEY, &who, &err), FL_EUNAVAIL);
    fl_keys_free(k);
    fl_pg_pool_close(pool);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_parse_accepts_the_documented_format),
        cmocka_unit_test(test_keys_parse_rejects_everything_else),
        cmocka_unit_test(test_keys_parse_bearer),
        cmocka_unit_test(test_keys_format_round_trips),
        cmocka_unit_test(test_keys_format_known_bytes),
        cmocka_unit_test(test_keys_random_differs),
        cmocka_unit_test(test_keys_digest_is_sha256_of_the_secret_text),
        cmocka_unit_test(test_keys_unhex_rejects_bad_input),
        cmocka_unit_test(test_keys_scopes),
        cmocka_unit_test(test_keys_names),
        cmocka_unit_test(test_keys_check_rejects_missing_and_malformed_keys),
        cmocka_unit_test(test_keys_check_is_unavailable_without_postgres),
        cmocka_unit_test(test_keys_cache_refreshes_ahead_and_never_past_its_ttl),
    };

    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
