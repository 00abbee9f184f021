/* core/config.c -- the configuration table and its three sources (R7).
 *
 * Every setting is one row of `opts` below: its key, type, default, bounds and help.
 * The YAML loader, the FLOWD_* environment, the --key=value flags, `flowd config dump`
 * and the README reference are all driven by that one table. */
#include "core/config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <librdkafka/rdkafka.h>

#include "core/config_int.h"
#include "core/log.h"

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const metrics_auth[] = {"none", "read", NULL};

#define OPT(field, key, type, def, min, max, secret, choices, help) \
    {key, type, offsetof(fl_config, field), def, min, max, secret, choices, help}
#define TOPIC(field, name, help)                                                      \
    OPT(kafka.topics.field, "topics." #field, FL_CONFIG_STR, name, 0, 0, false, NULL, \
        "topic: " help),

const fl_config_opt fl_config__opts[] = {
    OPT(http.listen, "http.listen", FL_CONFIG_STR, "127.0.0.1", 0, 0, false, NULL,
        "address the HTTP API binds to (IPv4; TLS is terminated by a proxy)"),
    OPT(http.port, "http.port", FL_CONFIG_INT, "8080", 1, 65535, false, NULL,
        "TCP port of the HTTP API"),
    OPT(http.threads, "http.threads", FL_CONFIG_INT, "64", 2, 4096, false, NULL,
        "HTTP worker threads: civetweb gives each open connection, keep-alive ones too, a "
        "thread (api.max_streams more are added for streams)"),
    OPT(http.max_body_bytes, "http.max_body_bytes", FL_CONFIG_BYTES, "1MiB", 1024, 64LL << 20,
        false, NULL, "largest request body accepted (413 beyond)"),
    OPT(http.request_timeout_ms, "http.request_timeout", FL_CONFIG_DURATION, "30s", 100, 3600000,
        false, NULL, "time allowed to read a request and write its response"),
    OPT(api.create_wait_ms, "api.create_wait", FL_CONFIG_DURATION, "5s", 0, 600000, false, NULL,
        "how long a create (201) waits for the engine before answering 202 with Location"),
    OPT(api.max_wait_ms, "api.max_wait", FL_CONFIG_DURATION, "60s", 0, 3600000, false, NULL,
        "longest ?wait= (long-poll) a request may ask for"),
    OPT(api.max_streams, "api.max_streams", FL_CONFIG_INT, "32", 1, 10000, false, NULL,
        "concurrent SSE streams and long-polls (each holds a worker thread; 503 beyond)"),
    OPT(api.sse_heartbeat_ms, "api.sse_heartbeat", FL_CONFIG_DURATION, "15s", 100, 600000, false,
        NULL, "interval of the comment line sent on an idle SSE stream"),
    OPT(api.rate_limit, "api.rate_limit", FL_CONFIG_INT, "1000", 0, 10000000, false, NULL,
        "requests per second per API key (token bucket; 0 = unlimited)"),
    OPT(api.rate_burst, "api.rate_burst", FL_CONFIG_INT, "2000", 1, 10000000, false, NULL,
        "requests an API key may send at once before the rate applies"),
    OPT(api.max_json_depth, "api.max_json_depth", FL_CONFIG_INT, "32", 1, 1000, false, NULL,
        "nesting depth allowed in a JSON request body"),
    OPT(api.max_header_bytes, "api.max_header_bytes", FL_CONFIG_BYTES, "16KiB", 1024, 1 << 20,
        false, NULL, "largest request line plus headers"),
    OPT(api.idempotency_ttl_ms, "api.idempotency_ttl", FL_CONFIG_DURATION, "24h", 1000,
        7 * 86400000LL, false, NULL, "how long an Idempotency-Key and its response are kept"),
    OPT(api.key_cache_ttl_ms, "api.key_cache_ttl", FL_CONFIG_DURATION, "1s", 0, 600000, false, NULL,
        "how long a checked API key is trusted without asking PostgreSQL (revocation delay)"),
    OPT(api.metrics_auth, "api.metrics_auth", FL_CONFIG_STR, "none", 0, 0, false, metrics_auth,
        "scope /metrics needs: none or read"),
    OPT(api.event_routes, "api.event_routes", FL_CONFIG_STR,
        "conversation.=conversation.events,appointment.=appointment.events,order.=order.events", 0,
        0, false, NULL,
        "POST /events routing: comma-separated type-prefix=topic, first match wins; "
        "other types go to topics.flowd_events"),
    OPT(db.url, "db.url", FL_CONFIG_STR, "", 0, 0, true, NULL,
        "libpq connection URI or key=value string; empty = the standard PG* variables"),
    OPT(db.pool_size, "db.pool_size", FL_CONFIG_INT, "8", 1, 512, false, NULL,
        "PostgreSQL connections per process"),
    OPT(db.connect_timeout_ms, "db.connect_timeout", FL_CONFIG_DURATION, "5s", 1000, 600000, false,
        NULL, "time allowed to open one PostgreSQL connection"),
    OPT(db.statement_timeout_ms, "db.statement_timeout", FL_CONFIG_DURATION, "30s", 0, 3600000,
        false, NULL, "server-side statement_timeout of flowd's sessions (0 = none)"),
    OPT(kafka.metadata_timeout_ms, "kafka_client.metadata_timeout", FL_CONFIG_DURATION, "2s", 100,
        60000, false, NULL, "time allowed for one Kafka metadata request"),
    OPT(kafka.produce_timeout_ms, "kafka_client.produce_timeout", FL_CONFIG_DURATION, "10s", 100,
        300000, false, NULL, "time allowed for a produced event's delivery report"),
    OPT(kafka.topics.partitions, "topics.partitions", FL_CONFIG_INT, "6", 1, 10000, false, NULL,
        "partitions of every topic flowd creates (engine inputs must be equal)"),
    OPT(kafka.topics.replication_factor, "topics.replication_factor", FL_CONFIG_INT, "1", 1, 16,
        false, NULL, "replication factor of the topics flowd creates"),
    FL_TOPIC_LIST(TOPIC) OPT(engine.group, "engine.group", FL_CONFIG_STR, "flowd-engine", 0, 0,
                             false, NULL, "Kafka consumer group of the engine"),
    OPT(engine.instance_id, "engine.instance_id", FL_CONFIG_STR, "", 0, 0, false, NULL,
        "group.instance.id for static membership; empty = the host name"),
    OPT(engine.workflows_dir, "engine.workflows_dir", FL_CONFIG_STR, "workflows", 0, 0, false, NULL,
        "directory of the shipped workflow definitions"),
    OPT(engine.agents_dir, "engine.agents_dir", FL_CONFIG_STR, "", 0, 0, false, NULL,
        "directory of the agent profiles; empty = engine.workflows_dir/agents"),
    OPT(engine.default_tenant, "engine.default_tenant", FL_CONFIG_STR, "default", 0, 0, false, NULL,
        "tenant of events from other producers that carry no ce_tenant"),
    OPT(engine.batch_size, "engine.batch_size", FL_CONFIG_INT, "500", 1, 100000, false, NULL,
        "events applied per PostgreSQL transaction"),
    OPT(engine.batch_wait_ms, "engine.batch_wait", FL_CONFIG_DURATION, "5ms", 0, 10000, false, NULL,
        "at most this long after its first event a batch takes more that are already buffered; it "
        "closes at once when none are"),
    OPT(engine.max_step_attempts, "engine.max_step_attempts", FL_CONFIG_INT, "5", 1, 1000, false,
        NULL, "a step that keeps failing is dead-lettered after this many attempts"),
    OPT(engine.max_event_bytes, "engine.max_event_bytes", FL_CONFIG_BYTES, "1MiB", 1024, 64LL << 20,
        false, NULL, "larger events are dead-lettered"),
    OPT(workers.relay_batch_size, "relay.batch_size", FL_CONFIG_INT, "500", 1, 100000, false, NULL,
        "outbox rows published per relay pass"),
    OPT(workers.relay_interval_ms, "relay.interval", FL_CONFIG_DURATION, "100ms", 1, 60000, false,
        NULL, "outbox poll interval when idle"),
    OPT(workers.timers_interval_ms, "timers.interval", FL_CONFIG_DURATION, "200ms", 10, 60000,
        false, NULL, "how often due timers and schedules are claimed"),
    OPT(workers.timers_batch_size, "timers.batch_size", FL_CONFIG_INT, "500", 1, 100000, false,
        NULL, "due timers claimed per transaction"),
    OPT(workers.activities_concurrency, "activities.concurrency", FL_CONFIG_INT, "64", 1, 10000,
        false, NULL, "activity calls in flight per process"),
    OPT(workers.activities_interval_ms, "activities.interval", FL_CONFIG_DURATION, "200ms", 10,
        60000, false, NULL, "activity poll interval when idle"),
    OPT(workers.activities_timeout_ms, "activities.timeout", FL_CONFIG_DURATION, "30s", 100,
        3600000, false, NULL, "default time allowed for one activity call"),
    OPT(workers.activities_max_response_bytes, "activities.max_response_bytes", FL_CONFIG_BYTES,
        "4MiB", 1024, 256LL << 20, false, NULL, "largest HTTP response an activity accepts"),
    OPT(workers.analytics_interval_ms, "analytics.interval", FL_CONFIG_DURATION, "5m", 0, 86400000,
        false, NULL,
        "period of the aggregate event each active tenant gets on topics.business_analytics "
        "(timers role; 0 = off; below 1s counts as 1s)"),
    OPT(roles, "roles", FL_CONFIG_STR, "api,engine,timers,relay,activities", 0, 0, false, NULL,
        "what this process runs: a comma-separated subset of api, engine, timers, relay, "
        "activities"),
    OPT(log.level, "log.level", FL_CONFIG_STR, "info", 0, 0, false, log_levels,
        "least severe level written: debug, info, warn or error"),
    OPT(shutdown_timeout_ms, "shutdown_timeout", FL_CONFIG_DURATION, "10s", 100, 600000, false,
        NULL, "bound on an orderly stop after SIGTERM/SIGINT"),
    OPT(health_interval_ms, "health.interval", FL_CONFIG_DURATION, "1s", 100, 60000, false, NULL,
        "how often readiness re-checks PostgreSQL, Kafka and the schema"),
};

const size_t fl_config__nopts = sizeof(fl_config__opts) / sizeof(fl_config__opts[0]);

#define MAX_FILE_BYTES (1 << 20)

const fl_config_opt *fl_config__find(const char *key)
{
    for (size_t i = 0; i < fl_config__nopts; i++) {
        if (strcmp(fl_config__opts[i].key, key) == 0) {
            return &fl_config__opts[i];
        }
    }
    return NULL;
}

/* A section is a key prefix of some row ("http" of "http.port"). */
bool fl_config__is_section(const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < fl_config__nopts; i++) {
        if (strncmp(fl_config__opts[i].key, key, n) == 0 && fl_config__opts[i].key[n] == '.') {
            return true;
        }
    }
    return false;
}

fl_rc fl_config__error(fl_err *err, const fl_config_origin *o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

fl_rc fl_config__error(fl_err *err, const fl_config_origin *o, const char *fmt, ...)
{
    char what[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (o->file) {
        return fl_err_set(err, FL_EINVAL, "%s:%zu:%zu: error: %s", o->file, o->line, o->col, what);
    }
    return fl_err_set(err, FL_EINVAL, "%s: error: %s", o->name, what);
}

typedef struct unit {
    const char *suffix;
    long long scale;
} unit;

/* A non-negative integer followed by one of `units` (an empty suffix means a bare number
 * is allowed); the result is number x scale, refused on overflow. */
static bool parse_scaled(const char *s, const unit *units, size_t nunits, long long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (end == s || errno || v < 0) {
        return false;
    }
    for (size_t i = 0; i < nunits; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (v > LLONG_MAX / units[i].scale) {
                return false;
            }
            *out = v * units[i].scale;
            return true;
        }
    }
    return false;
}

/* "10s", "250ms", "5m", "1h" -> milliseconds. A bare 0 is accepted, other bare numbers
 * are not: "timeout: 30" would be ambiguous. */
bool fl_config_parse_duration(const char *s, long long *ms)
{
    static const unit units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};

    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return true;
    }
    return parse_scaled(s, units, sizeof(units) / sizeof(units[0]), ms);
}

/* "1048576", "512KiB", "1MiB", "2GiB" -> bytes. */
static bool parse_bytes(const char *s, long long *bytes)
{
    static const unit units[] = {
        {"", 1}, {"B", 1}, {"KiB", 1LL << 10}, {"MiB", 1LL << 20}, {"GiB", 1LL << 30}};

    return parse_scaled(s, units, sizeof(units) / sizeof(units[0]), bytes);
}

static bool parse_int(const char *s, long long *out)
{
    char *end;

    errno = 0;
    *out = strtoll(s, &end, 10);
    return end != s && *end == '\0' && errno == 0;
}

static bool in_choices(const char *const *choices, const char *s)
{
    for (; *choices; choices++) {
        if (strcmp(*choices, s) == 0) {
            return true;
        }
    }
    return false;
}

static fl_rc check_range(const fl_config_opt *o, long long v, const fl_config_origin *org,
                         fl_err *err)
{
    char bounds[96];

    if (v >= o->min && v <= o->max) {
        return FL_OK;
    }
    if (o->type == FL_CONFIG_INT) {
        snprintf(bounds, sizeof(bounds), "an integer from %lld to %lld", o->min, o->max);
    } else if (o->type == FL_CONFIG_BYTES) {
        snprintf(bounds, sizeof(bounds), "a size from %lld to %lld bytes", o->min, o->max);
    } else {
        snprintf(bounds, sizeof(bounds), "a duration from %lldms to %lldms", o->min, o->max);
    }
    return fl_config__error(err, org, "invalid value for \"%s\": must be %s", o->key, bounds);
}

static fl_rc parse_number(const fl_config_opt *o, const char *value, long long *v,
                          const fl_config_origin *org, fl_err *err)
{
    bool ok = o->type == FL_CONFIG_INT     ? parse_int(value, v)
              : o->type == FL_CONFIG_BYTES ? parse_bytes(value, v)
                                           : fl_config_parse_duration(value, v);

    if (!ok) {
        return fl_config__error(
            err, org, "invalid value for \"%s\": \"%s\" is not %s", o->key, value,
            o->type == FL_CONFIG_INT     ? "an integer"
            : o->type == FL_CONFIG_BYTES ? "a size such as 1048576, 512KiB or 1MiB"
                                         : "a duration such as 250ms, 10s or 5m");
    }
    return check_range(o, *v, org, err);
}

/* Parses `value` for row `o` and stores it in cfg. */
fl_rc fl_config__set(fl_config *cfg, const fl_config_opt *o, const char *value,
                     const fl_config_origin *org, fl_err *err)
{
    char *field = (char *)cfg + o->offset;
    long long v = 0;
    fl_rc rc;

    if (o->type == FL_CONFIG_STR) {
        if (o->choices && !in_choices(o->choices, value)) {
            return fl_config__error(err, org,
                                    "invalid value for \"%s\": \"%s\" is not one of the allowed "
                                    "values",
                                    o->key, value);
        }
        free(*(char **)field);
        *(char **)field = fl_xstrdup(value);
        return FL_OK;
    }
    rc = parse_number(o, value, &v, org, err);
    if (rc != FL_OK) {
        return rc;
    }
    if (o->type == FL_CONFIG_BYTES) {
        *(long long *)field = v;
    } else {
        *(int *)field = (int)v;
    }
    return FL_OK;
}

static void set_prop(fl_config_kafka *k, const char *key, const char *value)
{
    for (size_t i = 0; i < k->nprops; i++) {
        if (strcmp(k->props[i].key, key) == 0) {
            free(k->props[i].value);
            k->props[i].value = fl_xstrdup(value);
            return;
        }
    }
    k->props = fl_xrealloc(k->props, (k->nprops + 1) * sizeof(*k->props));
    k->props[k->nprops].key = fl_xstrdup(key);
    k->props[k->nprops].value = fl_xstrdup(value);
    k->nprops++;
}

const char *fl_config_kafka_prop(const fl_config_kafka *kafka, const char *key)
{
    for (size_t i = 0; i < kafka->nprops; i++) {
        if (strcmp(kafka->props[i].key, key) == 0) {
            return kafka->props[i].value;
        }
    }
    return NULL;
}

size_t fl_config_topic_names(const fl_config_topics *t, const char *names[FL_CONFIG_TOPIC_COUNT])
{
    size_t n = 0;
#define X(field, name, help) names[n++] = t->field;
    FL_TOPIC_LIST(X)
#undef X
    return n;
}

static fl_rc check_kafka_prop(const char *key, const char *value, const fl_config_origin *o,
                              fl_err *err)
{
    char why[160];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_res_t res = rd_kafka_conf_set(conf, key, value, why, sizeof(why));

    rd_kafka_conf_destroy(conf);
    if (res == RD_KAFKA_CONF_OK) {
        return FL_OK;
    }
    if (res == RD_KAFKA_CONF_UNKNOWN) {
        return fl_config__error(err, o, "unknown Kafka property \"%s\"", key);
    }
    return fl_config__error(err, o, "invalid value for Kafka property \"%s\": %s", key, why);
}

fl_rc fl_config__set_kafka(fl_config_kafka *k, const char *key, const char *value,
                           const fl_config_origin *o, fl_err *err)
{
    fl_rc rc = check_kafka_prop(key, value, o, err);

    if (rc != FL_OK) {
        return rc;
    }
    if (k->nprops >= FL_CONFIG_MAX_KAFKA_PROPS && !fl_config_kafka_prop(k, key)) {
        return fl_config__error(err, o, "too many Kafka properties (at most %d)",
                                FL_CONFIG_MAX_KAFKA_PROPS);
    }
    set_prop(k, key, value);
    return FL_OK;
}

/* One `key: value` of the kafka: map. */
/* ---- environment and flags ---------------------------------------------------------- */

/* "http.max_body_bytes" -> "FLOWD_HTTP_MAX_BODY_BYTES" */
void fl_config__env_name(const char *key, const char *suffix, char *out, size_t size)
{
    size_t n = (size_t)snprintf(out, size, "FLOWD_");
    for (; *key && n + 1 < size; key++) {
        out[n++] = *key == '.' ? '_' : (char)(*key >= 'a' && *key <= 'z' ? *key - 32 : *key);
    }
    out[n] = '\0';
    snprintf(out + n, size - n, "%s", suffix);
}

const char *fl_config__env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);

    for (; envp && *envp; envp++) {
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=') {
            return *envp + n + 1;
        }
    }
    return NULL;
}

/* FLOWD_X_FILE names a file holding the value (Docker/Kubernetes secrets); one trailing
 * newline is dropped. */
static fl_rc read_value_file(const char *path, const fl_config_origin *o, char **out, fl_err *err)
{
    fl_buf b;
    fl_err ferr = FL_ERR_INIT;
    fl_rc rc;

    fl_buf_init(&b, 64 * 1024);
    rc = fl_buf_read_file(&b, path, &ferr);
    if (rc != FL_OK) {
        fl_buf_deinit(&b);
        return fl_config__error(err, o, "%s", ferr.msg);
    }
    if (b.len && b.data[b.len - 1] == '\n') {
        b.data[--b.len] = '\0';
    }
    if (b.len && b.data[b.len - 1] == '\r') {
        b.data[--b.len] = '\0';
    }
    *out = fl_buf_steal(&b);
    return FL_OK;
}

static fl_rc load_env_opt(fl_config *cfg, const fl_config_opt *o, char *const *envp, fl_err *err)
{
    char name[128], fname[140];
    const char *v, *path;
    char *content = NULL;
    fl_rc rc;

    fl_config__env_name(o->key, "", name, sizeof(name));
    fl_config__env_name(o->key, "_FILE", fname, sizeof(fname));
    v = fl_config__env_get(envp, name);
    path = fl_config__env_get(envp, fname);
    if (v && path) {
        return fl_config__error(err, &(fl_config_origin){.name = name},
                                "both %s and %s_FILE are set", name, name);
    }
    if (path) {
        rc = read_value_file(path, &(fl_config_origin){.name = fname}, &content, err);
        if (rc == FL_OK) {
            rc = fl_config__set(cfg, o, content, &(fl_config_origin){.name = fname}, err);
        }
        free(content);
        return rc;
    }
    return v ? fl_config__set(cfg, o, v, &(fl_config_origin){.name = name}, err) : FL_OK;
}

static fl_rc load_env(fl_config *cfg, char *const *envp, fl_err *err)
{
    const char *bootstrap = fl_config__env_get(envp, "FLOWD_KAFKA_BOOTSTRAP_SERVERS");
    fl_rc rc;

    for (size_t i = 0; i < fl_config__nopts; i++) {
        rc = load_env_opt(cfg, &fl_config__opts[i], envp, err);
        if (rc != FL_OK) {
            return rc;
        }
    }
    /* the one kafka: map entry with an environment override: it differs per machine */
    if (bootstrap) {
        return fl_config__set_kafka(&cfg->kafka, "bootstrap.servers", bootstrap,
                                    &(fl_config_origin){.name = "FLOWD_KAFKA_BOOTSTRAP_SERVERS"},
                                    err);
    }
    return FL_OK;
}

static fl_rc load_flags(fl_config *cfg, const fl_config_flag *flags, size_t nflags, fl_err *err)
{
    fl_rc rc;

    for (size_t i = 0; i < nflags; i++) {
        char name[300];
        const fl_config_opt *o = fl_config__find(flags[i].key);
        snprintf(name, sizeof(name), "--%s", flags[i].key);
        if (strncmp(flags[i].key, "kafka.", 6) == 0) {
            rc = fl_config__set_kafka(&cfg->kafka, flags[i].key + 6, flags[i].value,
                                      &(fl_config_origin){.name = name}, err);
        } else if (o) {
            rc = fl_config__set(cfg, o, flags[i].value, &(fl_config_origin){.name = name}, err);
        } else {
            rc = fl_err_set(err, FL_EINVAL, "%s: error: unknown option", name);
        }
        if (rc != FL_OK) {
            return rc;
        }
    }
    return FL_OK;
}

/* ---- load and free ------------------------------------------------------------------ */

static fl_rc load_defaults(fl_config *cfg, fl_err *err)
{
    fl_rc rc;

    for (size_t i = 0; i < fl_config__nopts; i++) {
        rc = fl_config__set(cfg, &fl_config__opts[i], fl_config__opts[i].def,
                            &(fl_config_origin){.name = "default"}, err);
        if (rc != FL_OK) {
            return rc;
        }
    }
    return FL_OK;
}

static fl_rc load_file(fl_config *cfg, const char *path, fl_err *err)
{
    fl_buf text;
    fl_rc rc;

    fl_buf_init(&text, MAX_FILE_BYTES);
    rc = fl_buf_read_file(&text, path, err);
    if (rc == FL_OK) {
        rc = fl_config__load_yaml(cfg, path, text.data ? text.data : "", text.len, err);
    }
    fl_buf_deinit(&text);
    return rc;
}

fl_rc fl_config_load(fl_config **out, const char *path, char *const *envp,
                     const fl_config_flag *flags, size_t nflags, fl_err *err)
{
    fl_config *cfg = fl_xcalloc(1, sizeof(*cfg));
    fl_rc rc;

    *out = NULL;
    rc = load_defaults(cfg, err);
    if (rc != FL_OK) {
        goto out;
    }
    if (path) {
        cfg->path = fl_xstrdup(path);
        rc = load_file(cfg, path, err);
        if (rc != FL_OK) {
            goto out;
        }
    }
    rc = load_env(cfg, envp, err);
    if (rc != FL_OK) {
        goto out;
    }
    rc = load_flags(cfg, flags, nflags, err);
    if (rc != FL_OK) {
        goto out;
    }
    rc = fl_config__check(cfg, envp, err);
    if (rc != FL_OK) {
        goto out;
    }
    *out = cfg;
    cfg = NULL;
out:
    fl_config_free(cfg);
    return rc;
}

void fl_config_free(fl_config *cfg)
{
    if (!cfg) {
        return;
    }
    for (size_t i = 0; i < fl_config__nopts; i++) {
        if (fl_config__opts[i].type == FL_CONFIG_STR) {
            free(*(char **)((char *)cfg + fl_config__opts[i].offset));
        }
    }
    for (size_t i = 0; i < cfg->kafka.nprops; i++) {
        free(cfg->kafka.props[i].key);
        free(cfg->kafka.props[i].value);
    }
    free(cfg->kafka.props);
    free(cfg->path);
    free(cfg);
}
