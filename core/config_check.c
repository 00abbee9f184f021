/* core/config_check.c -- the rules that span settings or that a row's bounds cannot say,
 * checked once after every source is applied, and where the configuration file is.
 *
 * Thread-safety: reentrant. */
#include <stdbool.h>
#include <string.h>

#include "core/config_int.h"

/* librdkafka's in-process mock cluster (test.mock.num.brokers) is for a quick look on a
 * machine with no JVM. CI must prove flowd against the real broker, so it is refused
 * there, whoever asked for it. */
static fl_rc refuse_mock_under_ci(const fl_config *cfg, char *const *envp, fl_err *err)
{
    const char *ci = fl_config__env_get(envp, "CI");

    if (ci && !strcmp(ci, "true") && fl_config_kafka_prop(&cfg->kafka, "test.mock.num.brokers")) {
        return fl_err_set(err, FL_EINVAL,
                          "librdkafka's mock cluster (kafka.test.mock.num.brokers) "
                          "is never used under CI=true: use the real broker");
    }
    return FL_OK;
}

static const char *const role_names[] = {"api", "engine", "timers", "relay", "activities"};

bool fl_config_has_role(const fl_config *cfg, const char *role)
{
    size_t n = strlen(role);

    for (const char *p = cfg->roles; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, role, n) == 0) {
            return true;
        }
        p += len + (p[len] == ',');
    }
    return false;
}

/* Every name in `roles` must be known: a typo must not silently run nothing. */
static fl_rc check_roles(const char *roles, fl_err *err)
{
    for (const char *p = roles; *p;) {
        size_t len = strcspn(p, ","), i = 0;
        while (i < sizeof(role_names) / sizeof(role_names[0]) &&
               !(strlen(role_names[i]) == len && strncmp(p, role_names[i], len) == 0)) {
            i++;
        }
        if (i == sizeof(role_names) / sizeof(role_names[0])) {
            return fl_err_set(err, FL_EINVAL,
                              "unknown role \"%.*s\" in \"roles\" (use api, "
                              "engine, timers, relay, activities)",
                              (int)len, p);
        }
        p += len + (p[len] == ',');
    }
    return FL_OK;
}

/* Rules that span rows or that bounds cannot say. */
static fl_rc check_values(const fl_config *cfg, fl_err *err)
{
    const char *names[FL_CONFIG_TOPIC_COUNT];
    size_t n = fl_config_topic_names(&cfg->kafka.topics, names);

    if (!*cfg->http.listen) {
        return fl_err_set(err, FL_EINVAL, "\"http.listen\" must not be empty");
    }
    if (check_roles(cfg->roles, err) != FL_OK) {
        return FL_EINVAL;
    }
    if (!*cfg->engine.group) {
        return fl_err_set(err, FL_EINVAL, "\"engine.group\" must not be empty");
    }
    for (size_t i = 0; i < n; i++) {
        if (!*names[i]) {
            return fl_err_set(err, FL_EINVAL, "topic names must not be empty");
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(names[i], names[j]) == 0) {
                return fl_err_set(err, FL_EINVAL, "topic \"%s\" is configured twice", names[i]);
            }
        }
    }
    return FL_OK;
}

fl_rc fl_config__check(fl_config *cfg, char *const *envp, fl_err *err)
{
    fl_rc rc = check_values(cfg, err);

    if (rc == FL_OK) {
        rc = refuse_mock_under_ci(cfg, envp, err);
    }
    if (rc == FL_OK) {
        /* not const: the llm: section's API keys are read from the environment here */
        rc = fl_config__llm_resolve(&cfg->llm, envp, err);
    }
    return rc;
}

const char *fl_config_default_path(const char *flag_path, char *const *envp,
                                   bool (*exists)(const char *path))
{
    static const char *const candidates[] = {"var/flowd.yaml", "flowd.yaml"};
    const char *env = fl_config__env_get(envp, "FLOWD_CONFIG");

    if (flag_path) {
        return flag_path;
    }
    if (env && *env) {
        return env;
    }
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        if (exists(candidates[i])) {
            return candidates[i];
        }
    }
    return NULL;
}
