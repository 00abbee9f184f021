/* tests/unit/test_idem.c -- sealing recorded Idempotency-Key responses (api/idem_int.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "api/idem_int.h"

#define SECRET "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde"
#define OTHER  "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcdf"

static const char body[] = "{\"id\":\"0123456789abcdef\",\"key\":\"fk_0123456789abcdef_secret\"}";

static void test_idem_seal_round_trips(void **state)
{
    uint8_t *sealed = NULL;
    size_t n = 0, len = 0;
    char *plain = NULL;

    (void)state;
    assert_true(fl_idem__seal(SECRET, body, strlen(body), &sealed, &n));
    assert_int_equal(n, strlen(body) + FL_IDEM_SEAL_OVERHEAD);
    assert_null(memmem(sealed, n, "fk_", 3)); /* nothing readable is stored */
    assert_true(fl_idem__open(SECRET, sealed, n, &plain, &len));
    assert_int_equal(len, strlen(body));
    assert_string_equal(plain, body);
    free(plain);
    free(sealed);
}

static void test_idem_seal_empty_body(void **state)
{
    uint8_t *sealed = NULL;
    size_t n = 0, len = 1;
    char *plain = NULL;

    (void)state;
    assert_true(fl_idem__seal(SECRET, "", 0, &sealed, &n));
    assert_int_equal(n, FL_IDEM_SEAL_OVERHEAD);
    assert_true(fl_idem__open(SECRET, sealed, n, &plain, &len));
    assert_int_equal(len, 0);
    assert_string_equal(plain, "");
    free(plain);
    free(sealed);
}

static void test_idem_seal_needs_the_same_secret_and_intact_data(void **state)
{
    uint8_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0, len = 0;
    char *plain = NULL;

    (void)state;
    assert_true(fl_idem__seal(SECRET, body, strlen(body), &a, &na));
    assert_true(fl_idem__seal(SECRET, body, strlen(body), &b, &nb));
    assert_memory_not_equal(a, b, na); /* a fresh nonce each time */
    assert_false(fl_idem__open(OTHER, a, na, &plain, &len));
    a[na / 2] ^= 1;
    assert_false(fl_idem__open(SECRET, a, na, &plain, &len));
    assert_false(fl_idem__open(SECRET, b, nb - 1, &plain, &len));
    assert_false(fl_idem__open(SECRET, b, 3, &plain, &len));
    assert_null(plain);
    free(a);
    free(b);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idem_seal_round_trips),
        cmocka_unit_test(test_idem_seal_empty_body),
        cmocka_unit_test(test_idem_seal_needs_the_same_secret_and_intact_data),
    };

    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
