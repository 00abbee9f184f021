/* tests/unit/test_router.c -- route matching: literals beat parameters, 404 vs 405 with
 * Allow, HEAD answered by GET routes, percent-decoded parameters, the sorted listing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/router.h"

static int h_a(fl_req *r)
{
    (void)r;
    return 1;
}

static int h_b(fl_req *r)
{
    (void)r;
    return 2;
}

static const fl_route routes[] = {
    {"GET", "/api/v1/conversations/{id}", h_a, FL_SCOPE_READ, 0},
    {"POST", "/api/v1/conversations/create", h_b, FL_SCOPE_WRITE, 0},
    {"POST", "/api/v1/conversations", h_b, FL_SCOPE_WRITE, FL_ROUTE_IDEMPOTENT},
    {"GET", "/api/v1/conversations", h_a, FL_SCOPE_READ, 0},
    {"POST", "/api/v1/instances/{id}/signal", h_b, FL_SCOPE_WRITE, 0},
    {"GET", "/api/v1/workflows/{name}/versions/{v}", h_a, FL_SCOPE_READ, 0},
    {"GET", "/livez", h_a, FL_SCOPE_NONE, FL_ROUTE_HIDDEN},
};

static int setup(void **state)
{
    fl_router *rt = fl_router_new();

    fl_router_add(rt, routes, sizeof(routes) / sizeof(routes[0]));
    *state = rt;
    return 0;
}

static int teardown(void **state)
{
    fl_router_free(*state);
    return 0;
}

static void test_router_literal_beats_parameter(void **state)
{
    fl_route_match m;

    assert_true(fl_router_match(*state, "POST", "/api/v1/conversations/create", &m));
    assert_ptr_equal(m.route, &routes[1]);
    assert_int_equal(m.nparams, 0);
}

/* civetweb decoded the path already: a second decode would corrupt ids holding '%'. */
static void test_router_binds_parameters_without_decoding_again(void **state)
{
    fl_route_match m;

    assert_true(fl_router_match(*state, "GET", "/api/v1/workflows/a%41 b/versions/3", &m));
    assert_ptr_equal(m.route, &routes[5]);
    assert_int_equal(m.nparams, 2);
    assert_string_equal(m.params[0], "a%41 b");
    assert_string_equal(m.params[1], "3");
}

static void test_router_method_mismatch_is_405_with_allow(void **state)
{
    fl_route_match m;

    assert_false(fl_router_match(*state, "DELETE", "/api/v1/conversations", &m));
    assert_string_equal(m.allow, "POST, GET, HEAD");
}

static void test_router_unknown_path_is_404(void **state)
{
    fl_route_match m;

    assert_false(fl_router_match(*state, "GET", "/api/v1/nothing", &m));
    assert_string_equal(m.allow, "");
    assert_false(fl_router_match(*state, "GET", "/api/v1/conversations/x/y/z", &m));
    assert_string_equal(m.allow, "");
}

static void test_router_head_uses_get(void **state)
{
    fl_route_match m;

    assert_true(fl_router_match(*state, "HEAD", "/api/v1/conversations/abc", &m));
    assert_ptr_equal(m.route, &routes[0]);
    assert_string_equal(m.params[0], "abc");
}

static void test_router_trailing_slash_matches_same_route(void **state)
{
    fl_route_match m;

    assert_true(fl_router_match(*state, "GET", "/api/v1/conversations/", &m));
    assert_ptr_equal(m.route, &routes[3]);
}

static void test_router_lists_sorted_without_hidden(void **state)
{
    fl_buf b;

    fl_buf_init(&b, 1 << 16);
    fl_router_list(*state, &b);
    assert_string_equal(b.data, "GET /api/v1/conversations\n"
                                "POST /api/v1/conversations\n"
                                "POST /api/v1/conversations/create\n"
                                "GET /api/v1/conversations/{id}\n"
                                "POST /api/v1/instances/{id}/signal\n"
                                "GET /api/v1/workflows/{name}/versions/{v}\n");
    fl_buf_deinit(&b);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_router_literal_beats_parameter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_router_binds_parameters_without_decoding_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_router_method_mismatch_is_405_with_allow, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_router_unknown_path_is_404, setup, teardown),
        cmocka_unit_test_setup_teardown(test_router_head_uses_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_router_trailing_slash_matches_same_route, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_router_lists_sorted_without_hidden, setup, teardown),
    };

    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
