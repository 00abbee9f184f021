/* tests/unit/test_config.c -- the configuration table, its sources and its errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"

/* Writes text to a fresh temporary file; the caller unlinks and frees the path. */
static char *write_temp(const char *text)
{
    char *path = fl_xstrdup("/tmp/flowd-test-config-XXXXXX");
    int fd = mkstemp(path);
    size_t n = strlen(text);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

/* Loads `yaml` (NULL = no file) with env and flags; returns the rc, fills cfg/err. */
static fl_rc load(const char *yaml, char *const *env, const fl_config_flag *flags, size_t nflags,
                  fl_config **cfg, fl_err *err)
{
    char *path = yaml ? write_temp(yaml) : NULL;
    fl_rc rc = fl_config_load(cfg, path, env, flags, nflags, err);

    if (path) {
        /* error messages cite the temp path: replace it with a stable name for asserts */
        char *at = strstr(err->msg, path);
        if (at) {
            char rest[256];
            snprintf(rest, sizeof(rest), "%s", at + strlen(path));
            snprintf(err->msg, sizeof(err->msg), "flowd.yaml%s", rest);
        }
        unlink(path);
        free(path);
    }
    return rc;
}

static void test_config_defaults_without_file(void **state)
{
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(load(NULL, NULL, NULL, 0, &cfg, &err), FL_OK);
    assert_string_equal(cfg->http.listen, "127.0.0.1");
    assert_int_equal(cfg->http.port, 8080);
    assert_int_equal(cfg->http.max_body_bytes, 1 << 20);
    assert_int_equal(cfg->shutdown_timeout_ms, 10000);
    assert_string_equal(cfg->kafka.topics.dead_letter, "dead.letter.queue");
    assert_string_equal(cfg->engine.group, "flowd-engine");
    fl_config_free(cfg);
}

static void test_config_file_overrides_defaults(void **state)
{
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(load("http:\n  port: 9090\n  max_body_bytes: 2MiB\nshutdown_timeout: 250ms\n"
                          "topics:\n  partitions: 3\n",
                          NULL, NULL, 0, &cfg, &err),
                     FL_OK);
    assert_int_equal(cfg->http.port, 9090);
    assert_int_equal(cfg->http.max_body_bytes, 2 << 20);
    assert_int_equal(cfg->shutdown_timeout_ms, 250);
    assert_int_equal(cfg->kafka.topics.partitions, 3);
    fl_config_free(cfg);
}

static void test_config_env_overrides_file_and_flags_override_env(void **state)
{
    char *env[] = {"FLOWD_HTTP_PORT=7000", "FLOWD_LOG_LEVEL=debug", "OTHER=1", NULL};
    fl_config_flag flags[] = {{"http.port", "7100"}};
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(load("http:\n  port: 9090\n", env, flags, 1, &cfg, &err), FL_OK);
    assert_int_equal(cfg->http.port, 7100);
    assert_string_equal(cfg->log.level, "debug");
    fl_config_free(cfg);
}

static void test_config_unknown_key_cites_line_and_column(void **state)
{
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(load("http:\n  port: 80\n  prot: 81\n", NULL, NULL, 0, &cfg, &err), FL_EINVAL);
    assert_null(cfg);
    assert_string_equal(err.msg, "flowd.yaml:3:3: error: unknown key \"http.prot\"");
}

static void test_config_bad_port_names_the_bounds(void **state)
{
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(load("http:\n  port: 99999\n", NULL, NULL, 0, &cfg, &err), FL_EINVAL);
    assert_string_equal(err.msg, "flowd.yaml:2:9: error: invalid value for \"http.port\": "
                                 "must be an integer from 1 to 65535");
}

static void test_config_non_numeric_port_is_rejected(void **state)
{
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(load("http:\n  port: 80a\n", NULL, NULL, 0, &cfg, &err), FL_EINVAL);
    assert_non_null(strstr(err.msg, "flowd.yaml:2:9: error: invalid value for \"http.port\""));
}

static void test_config_malformed_yaml_cites_line_and_column(void **state)
{
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(load("http:\n  port: 80\n listen: [x\n", NULL, NULL, 0, &cfg, &err),
                     FL_EINVAL);
    assert_true(strncmp(err.msg, "flowd.yaml:3:", 13) == 0);
    assert_non_null(strstr(err.msg, ": error: "));
}

static void test_config_duplicate_key_is_an_error(void **state)
{
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(load("log:\n  level: info\nlog:\n  level: warn\n", NULL, NULL, 0, &cfg, &err),
                     FL_EINVAL);
    assert_string_equal(err.msg, "flowd.yaml:3:1: error: duplicate key \"log\"");
}

static void test_config_kafka_map_is_passed_verbatim(void **state)
{
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(load("kafka:\n  bootstrap.servers: \"10.0.0.1:9092\"\n  linger.ms: 20\n", NULL,
                          NULL, 0, &cfg, &err),
                     FL_OK);
    assert_int_equal(cfg->kafka.nprops, 2);
    assert_string_equal(fl_config_kafka_prop(&cfg->kafka, "bootstrap.servers"), "10.0.0.1:9092");
    assert_string_equal(fl_config_kafka_prop(&cfg->kafka, "linger.ms"), "20");
    assert_null(fl_config_kafka_prop(&cfg->kafka, "acks"));
    fl_config_free(cfg);
}

static void test_config_unknown_kafka_property_is_an_error(void **state)
{
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(load("kafka:\n  bootstrap.server: x\n", NULL, NULL, 0, &cfg, &err), FL_EINVAL);
    assert_string_equal(err.msg,
                        "flowd.yaml:2:21: error: unknown Kafka property \"bootstrap.server\"");
}

static void test_config_secret_from_file(void **state)
{
    char *secret = write_temp("postgresql://u:s3cret@db/flowd\n");
    char var[300];
    char *env[] = {var, NULL};
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    snprintf(var, sizeof(var), "FLOWD_DB_URL_FILE=%s", secret);
    assert_int_equal(load(NULL, env, NULL, 0, &cfg, &err), FL_OK);
    assert_string_equal(cfg->db.url, "postgresql://u:s3cret@db/flowd");
    fl_config_free(cfg);
    unlink(secret);
    free(secret);
}

static void test_config_dump_redacts_secrets(void **state)
{
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;
    fl_buf b;

    (void)state;
    assert_int_equal(load("db:\n  url: \"postgresql://u:s3cret@db/flowd\"\nkafka:\n"
                          "  sasl.password: hunter2\n",
                          NULL, NULL, 0, &cfg, &err),
                     FL_OK);
    fl_buf_init(&b, 1 << 20);
    assert_int_equal(fl_config_dump(cfg, &b, &err), FL_OK);
    assert_null(strstr(b.data, "s3cret"));
    assert_null(strstr(b.data, "hunter2"));
    assert_non_null(strstr(b.data, "url: <redacted>"));
    assert_non_null(strstr(b.data, "port: 8080"));
    fl_buf_deinit(&b);
    fl_config_free(cfg);
}

static void test_config_dump_reloads_to_the_same_values(void **state)
{
    fl_config *cfg = NULL, *again = NULL;
    fl_err err = FL_ERR_INIT;
    fl_buf b;

    (void)state;
    assert_int_equal(
        load("http:\n  port: 9191\nhealth:\n  interval: 1500ms\n", NULL, NULL, 0, &cfg, &err),
        FL_OK);
    fl_buf_init(&b, 1 << 20);
    assert_int_equal(fl_config_dump(cfg, &b, &err), FL_OK);
    assert_int_equal(load(b.data, NULL, NULL, 0, &again, &err), FL_OK);
    assert_int_equal(again->http.port, 9191);
    assert_int_equal(again->health_interval_ms, 1500);
    fl_buf_deinit(&b);
    fl_config_free(cfg);
    fl_config_free(again);
}

static bool exists_var_only(const char *path)
{
    return strcmp(path, "var/flowd.yaml") == 0;
}

static bool exists_none(const char *path)
{
    (void)path;
    return false;
}

static void test_config_default_path_order(void **state)
{
    char *env[] = {"FLOWD_CONFIG=/etc/flowd.yaml", NULL};

    (void)state;
    assert_string_equal(fl_config_default_path("x.yaml", env, exists_var_only), "x.yaml");
    assert_string_equal(fl_config_default_path(NULL, env, exists_var_only), "/etc/flowd.yaml");
    assert_string_equal(fl_config_default_path(NULL, NULL, exists_var_only), "var/flowd.yaml");
    assert_null(fl_config_default_path(NULL, NULL, exists_none));
}

static void test_config_bad_duration_is_rejected(void **state)
{
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(load("shutdown_timeout: 10\n", NULL, NULL, 0, &cfg, &err), FL_EINVAL);
    assert_non_null(strstr(err.msg, "is not a duration"));
}

static void test_config_unknown_flag_is_rejected(void **state)
{
    fl_config_flag flags[] = {{"http.prot", "1"}};
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(load(NULL, NULL, flags, 1, &cfg, &err), FL_EINVAL);
    assert_string_equal(err.msg, "--http.prot: error: unknown option");
}

static void test_config_mock_cluster_is_refused_under_ci(void **state)
{
    char *ci[] = {"CI=true", NULL};
    fl_config_flag flags[] = {{"kafka.test.mock.num.brokers", "1"}};
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(load(NULL, ci, flags, 1, &cfg, &err), FL_EINVAL);
    assert_non_null(strstr(err.msg, "never used under CI=true"));
    fl_err_clear(&err);
    assert_int_equal(load(NULL, NULL, flags, 1, &cfg, &err), FL_OK); /* asked for, outside CI */
    fl_config_free(cfg);
}

static void test_config_reference_lists_every_key(void **state)
{
    fl_buf b;
    fl_err err = FL_ERR_INIT;

    (void)state;
    fl_buf_init(&b, 1 << 20);
    assert_int_equal(fl_config_reference(&b, &err), FL_OK);
    assert_non_null(strstr(b.data, "| `http.port` | `FLOWD_HTTP_PORT` | integer | `8080` |"));
    assert_non_null(strstr(b.data, "`topics.dead_letter`"));
    fl_buf_deinit(&b);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults_without_file),
        cmocka_unit_test(test_config_file_overrides_defaults),
        cmocka_unit_test(test_config_env_overrides_file_and_flags_override_env),
        cmocka_unit_test(test_config_unknown_key_cites_line_and_column),
        cmocka_unit_test(test_config_bad_port_names_the_bounds),
        cmocka_unit_test(test_config_non_numeric_port_is_rejected),
        cmocka_unit_test(test_config_malformed_yaml_cites_line_and_column),
        cmocka_unit_test(test_config_duplicate_key_is_an_error),
        cmocka_unit_test(test_config_kafka_map_is_passed_verbatim),
        cmocka_unit_test(test_config_unknown_kafka_property_is_an_error),
        cmocka_unit_test(test_config_secret_from_file),
        cmocka_unit_test(test_config_dump_redacts_secrets),
        cmocka_unit_test(test_config_dump_reloads_to_the_same_values),
        cmocka_unit_test(test_config_default_path_order),
        cmocka_unit_test(test_config_bad_duration_is_rejected),
        cmocka_unit_test(test_config_unknown_flag_is_rejected),
        cmocka_unit_test(test_config_mock_cluster_is_refused_under_ci),
        cmocka_unit_test(test_config_reference_lists_every_key),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
