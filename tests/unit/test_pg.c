/* tests/unit/test_pg.c -- the pool's behaviour without a PostgreSQL server: lazy open,
 * connection-string validation, error messages without secrets, and bounded connects.
 * The "servers" are loopback sockets owned by the test: one bound but not listening
 * (the kernel refuses connections), one listening but never answering (a hung server). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/pg.h"

#define SECRET "pw-s3cr3t"

/* A loopback TCP socket on an ephemeral port; listening or not. Returns the fd. */
static int loopback_socket(int listening, int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    if (listening) {
        assert_int_equal(listen(fd, 8), 0);
    }
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static fl_pg_pool *pool_for_port(int port, int connect_timeout_ms, char *url, size_t size)
{
    fl_config_db db = {.url = url,
                       .pool_size = 2,
                       .connect_timeout_ms = connect_timeout_ms,
                       .statement_timeout_ms = 1000};
    fl_pg_pool *pool = NULL;
    fl_err err = FL_ERR_INIT;

    snprintf(url, size, "postgresql://flowd:" SECRET "@127.0.0.1:%d/flowd", port);
    assert_int_equal(fl_pg_pool_open(&pool, &db, &err), FL_OK);
    return pool;
}

static long long elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000LL + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static void test_pg_open_rejects_bad_url_without_leaking_password(void **state)
{
    char url[] = "postgresql://flowd:" SECRET "@db:5432/flowd?no_such_option=1";
    fl_config_db db = {.url = url, .pool_size = 1, .connect_timeout_ms = 1000};
    fl_pg_pool *pool = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_pg_pool_open(&pool, &db, &err), FL_EINVAL);
    assert_null(pool);
    assert_string_equal(err.msg, "invalid db.url: not a libpq connection URI or key=value string");
}

static void test_pg_open_rejects_empty_pool(void **state)
{
    char url[] = "";
    fl_config_db db = {.url = url, .pool_size = 0};
    fl_pg_pool *pool = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_pg_pool_open(&pool, &db, &err), FL_EINVAL);
    assert_null(pool);
    assert_string_equal(err.msg, "invalid db.pool_size 0: must be at least 1");
}

/* flowd must start while PostgreSQL is down: open never connects. */
static void test_pg_open_succeeds_while_server_is_down(void **state)
{
    char url[128];
    int port;
    int fd = loopback_socket(0, &port);
    fl_pg_pool *pool = pool_for_port(port, 1000, url, sizeof(url));
    fl_pg_stats st;

    (void)state;
    fl_pg_pool_stats(pool, &st);
    assert_int_equal(st.size, 2);
    assert_int_equal(st.in_use + st.idle, 0);
    assert_int_equal(st.connects_total + st.connect_errors_total, 0);
    fl_pg_pool_close(pool);
    close(fd);
}

static void test_pg_acquire_reports_refused_connection_by_host_and_port(void **state)
{
    char url[128], want[160];
    int port;
    int fd = loopback_socket(0, &port);
    fl_pg_pool *pool = pool_for_port(port, 1000, url, sizeof(url));
    fl_pg_conn *conn = NULL;
    fl_err err = FL_ERR_INIT;
    fl_pg_stats st;

    (void)state;
    assert_int_equal(fl_pg_acquire(pool, 1000, &conn, &err), FL_EUNAVAIL);
    assert_null(conn);
    snprintf(want, sizeof(want),
             "could not connect to PostgreSQL \"127.0.0.1:%d\": connection refused", port);
    assert_string_equal(err.msg, want);
    fl_pg_pool_stats(pool, &st);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.connect_errors_total, 1);
    fl_pg_pool_close(pool);
    close(fd);
}

/* A server that accepts TCP but never answers must not hold /readyz: the connect is
 * bounded by db.connect_timeout_ms even when the caller allows longer. */
static void test_pg_ping_is_bounded_when_server_hangs(void **state)
{
    char url[128], want[160];
    int port;
    int fd = loopback_socket(1, &port);
    fl_pg_pool *pool = pool_for_port(port, 200, url, sizeof(url));
    fl_err err = FL_ERR_INIT;
    struct timespec t0;
    long long ms;

    (void)state;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(fl_pg_ping(pool, 5000, &err), FL_EUNAVAIL);
    ms = elapsed_ms(&t0);
    assert_true(ms >= 150 && ms < 2000);
    snprintf(want, sizeof(want),
             "could not connect to PostgreSQL \"127.0.0.1:%d\": timeout expired", port);
    assert_string_equal(err.msg, want);
    assert_null(strstr(err.msg, SECRET));
    fl_pg_pool_close(pool);
    close(fd);
}

static void test_pg_close_and_release_accept_null(void **state)
{
    (void)state;
    fl_pg_pool_close(NULL);
    fl_pg_release(NULL, NULL);
    fl_pg_discard(NULL, NULL);
    fl_pg_rows_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pg_open_rejects_bad_url_without_leaking_password),
        cmocka_unit_test(test_pg_open_rejects_empty_pool),
        cmocka_unit_test(test_pg_open_succeeds_while_server_is_down),
        cmocka_unit_test(test_pg_acquire_reports_refused_connection_by_host_and_port),
        cmocka_unit_test(test_pg_ping_is_bounded_when_server_hangs),
        cmocka_unit_test(test_pg_close_and_release_accept_null),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
