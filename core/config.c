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
#include <yaml.h>

#include "core/log.h"

typedef enum opt_type { OPT_STR, OPT_INT, OPT_BYTES, OPT_DURATION } opt_type;

typedef struct opt {
  const char *key;          /* dotted YAML path; the env name is derived from it */
  opt_type type;
  size_t offset;            /* into fl_config */
  const char *def;          /* parsed like any other input, so defaults are checked too */
  long long min, max;       /* for numbers (durations in ms, sizes in bytes) */
  bool secret;              /* redacted in dumps and logs */
  const char *const *choices; /* for strings with a closed set of values */
  const char *help;
} opt;

static const char *const log_levels[] = { "debug", "info", "warn", "error", NULL };

#define OPT(field, key, type, def, min, max, secret, choices, help) \
  { key, type, offsetof(fl_config, field), def, min, max, secret, choices, help }
#define TOPIC(field, name, help) \
  OPT(kafka.topics.field, "topics." #field, OPT_STR, name, 0, 0, false, NULL, "topic: " help),

static const opt opts[] = {
  OPT(http.listen, "http.listen", OPT_STR, "127.0.0.1", 0, 0, false, NULL,
      "address the HTTP API binds to (IPv4; TLS is terminated by a proxy)"),
  OPT(http.port, "http.port", OPT_INT, "8080", 1, 65535, false, NULL, "TCP port of the HTTP API"),
  OPT(http.threads, "http.threads", OPT_INT, "16", 2, 1024, false, NULL,
      "HTTP worker threads (each open SSE stream holds one)"),
  OPT(http.max_body_bytes, "http.max_body_bytes", OPT_BYTES, "1MiB", 1024, 64LL << 20, false,
      NULL, "largest request body accepted (413 beyond)"),
  OPT(http.request_timeout_ms, "http.request_timeout", OPT_DURATION, "30s", 100, 3600000,
      false, NULL, "time allowed to read a request and write its response"),
  OPT(db.url, "db.url", OPT_STR, "", 0, 0, true, NULL,
      "libpq connection URI or key=value string; empty = the standard PG* variables"),
  OPT(db.pool_size, "db.pool_size", OPT_INT, "8", 1, 512, false, NULL,
      "PostgreSQL connections per process"),
  OPT(db.connect_timeout_ms, "db.connect_timeout", OPT_DURATION, "5s", 1000, 600000, false,
      NULL, "time allowed to open one PostgreSQL connection"),
  OPT(db.statement_timeout_ms, "db.statement_timeout", OPT_DURATION, "30s", 0, 3600000,
      false, NULL, "server-side statement_timeout of flowd's sessions (0 = none)"),
  OPT(kafka.metadata_timeout_ms, "kafka_client.metadata_timeout", OPT_DURATION, "2s", 100,
      60000, false, NULL, "time allowed for one Kafka metadata request"),
  OPT(kafka.produce_timeout_ms, "kafka_client.produce_timeout", OPT_DURATION, "10s", 100,
      300000, false, NULL, "time allowed for a produced event's delivery report"),
  OPT(kafka.topics.partitions, "topics.partitions", OPT_INT, "6", 1, 10000, false, NULL,
      "partitions of every topic flowd creates (engine inputs must be equal)"),
  OPT(kafka.topics.replication_factor, "topics.replication_factor", OPT_INT, "1", 1, 16,
      false, NULL, "replication factor of the topics flowd creates"),
  FL_TOPIC_LIST(TOPIC)
  OPT(engine.group, "engine.group", OPT_STR, "flowd-engine", 0, 0, false, NULL,
      "Kafka consumer group of the engine"),
  OPT(engine.instance_id, "engine.instance_id", OPT_STR, "", 0, 0, false, NULL,
      "group.instance.id for static membership; empty = the host name"),
  OPT(engine.workflows_dir, "engine.workflows_dir", OPT_STR, "workflows", 0, 0, false, NULL,
      "directory of the shipped workflow definitions"),
  OPT(log.level, "log.level", OPT_STR, "info", 0, 0, false, log_levels,
      "least severe level written: debug, info, warn or error"),
  OPT(shutdown_timeout_ms, "shutdown_timeout", OPT_DURATION, "10s", 100, 600000, false, NULL,
      "bound on an orderly stop after SIGTERM/SIGINT"),
  OPT(health_interval_ms, "health.interval", OPT_DURATION, "1s", 100, 60000, false, NULL,
      "how often readiness re-checks PostgreSQL, Kafka and the schema"),
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))
#define MAX_FILE_BYTES (1 << 20)
#define MAX_KAFKA_PROPS 256

/* Where a value came from, for error messages: "flowd.yaml:3:9" or "FLOWD_HTTP_PORT". */
typedef struct origin {
  const char *file;
  size_t line, col;         /* 1-based; 0 when not from a file */
  const char *name;         /* env var or flag, when not from a file */
} origin;

static const opt *find_opt(const char *key)
{
  for (size_t i = 0; i < NOPTS; i++)
    if (strcmp(opts[i].key, key) == 0)
      return &opts[i];
  return NULL;
}

/* A section is a key prefix of some row ("http" of "http.port"). */
static bool is_section(const char *key)
{
  size_t n = strlen(key);
  for (size_t i = 0; i < NOPTS; i++)
    if (strncmp(opts[i].key, key, n) == 0 && opts[i].key[n] == '.')
      return true;
  return false;
}

static fl_rc origin_err(fl_err *err, const origin *o, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

static fl_rc origin_err(fl_err *err, const origin *o, const char *fmt, ...)
{
  char what[200];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(what, sizeof(what), fmt, ap);
  va_end(ap);
  if (o->file)
    return fl_err_set(err, FL_EINVAL, "%s:%zu:%zu: error: %s", o->file, o->line, o->col, what);
  return fl_err_set(err, FL_EINVAL, "%s: error: %s", o->name, what);
}

/* "10s", "250ms", "5m", "1h" -> milliseconds. A bare 0 is accepted, other bare numbers
 * are not: "timeout: 30" would be ambiguous. */
bool fl_config_parse_duration(const char *s, long long *ms)
{
  static const struct { const char *unit; long long ms; } units[] = {
    { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
  };
  char *end;
  long long v;

  errno = 0;
  v = strtoll(s, &end, 10);
  if (end == s || errno || v < 0)
    return false;
  if (*end == '\0')
    return v == 0 ? (*ms = 0, true) : false;
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
    if (strcmp(end, units[i].unit) == 0) {
      if (v > LLONG_MAX / units[i].ms)
        return false;
      *ms = v * units[i].ms;
      return true;
    }
  }
  return false;
}

/* "1048576", "512KiB", "1MiB", "2GiB" -> bytes. */
static bool parse_bytes(const char *s, long long *bytes)
{
  static const struct { const char *unit; long long mul; } units[] = {
    { "", 1 }, { "B", 1 }, { "KiB", 1LL << 10 }, { "MiB", 1LL << 20 }, { "GiB", 1LL << 30 },
  };
  char *end;
  long long v;

  errno = 0;
  v = strtoll(s, &end, 10);
  if (end == s || errno || v < 0)
    return false;
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
    if (strcmp(end, units[i].unit) == 0) {
      if (v > LLONG_MAX / units[i].mul)
        return false;
      *bytes = v * units[i].mul;
      return true;
    }
  }
  return false;
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
  for (; *choices; choices++)
    if (strcmp(*choices, s) == 0)
      return true;
  return false;
}

static fl_rc check_range(const opt *o, long long v, const origin *org, fl_err *err)
{
  char bounds[96];

  if (v >= o->min && v <= o->max)
    return FL_OK;
  if (o->type == OPT_INT)
    snprintf(bounds, sizeof(bounds), "an integer from %lld to %lld", o->min, o->max);
  else if (o->type == OPT_BYTES)
    snprintf(bounds, sizeof(bounds), "a size from %lld to %lld bytes", o->min, o->max);
  else
    snprintf(bounds, sizeof(bounds), "a duration from %lldms to %lldms", o->min, o->max);
  return origin_err(err, org, "invalid value for \"%s\": must be %s", o->key, bounds);
}

static fl_rc parse_number(const opt *o, const char *value, long long *v, const origin *org,
                          fl_err *err)
{
  bool ok = o->type == OPT_INT     ? parse_int(value, v)
            : o->type == OPT_BYTES ? parse_bytes(value, v)
                                   : fl_config_parse_duration(value, v);

  if (!ok)
    return origin_err(err, org, "invalid value for \"%s\": \"%s\" is not %s", o->key, value,
                      o->type == OPT_INT     ? "an integer"
                      : o->type == OPT_BYTES ? "a size such as 1048576, 512KiB or 1MiB"
                                             : "a duration such as 250ms, 10s or 5m");
  return check_range(o, *v, org, err);
}

/* Parses `value` for row `o` and stores it in cfg. */
static fl_rc set_opt(fl_config *cfg, const opt *o, const char *value, const origin *org,
                     fl_err *err)
{
  char *field = (char *)cfg + o->offset;
  long long v = 0;
  fl_rc rc;

  if (o->type == OPT_STR) {
    if (o->choices && !in_choices(o->choices, value))
      return origin_err(err, org, "invalid value for \"%s\": \"%s\" is not one of the allowed "
                        "values", o->key, value);
    free(*(char **)field);
    *(char **)field = fl_xstrdup(value);
    return FL_OK;
  }
  rc = parse_number(o, value, &v, org, err);
  if (rc != FL_OK)
    return rc;
  if (o->type == OPT_BYTES)
    *(long long *)field = v;
  else
    *(int *)field = (int)v;
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
  for (size_t i = 0; i < kafka->nprops; i++)
    if (strcmp(kafka->props[i].key, key) == 0)
      return kafka->props[i].value;
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

/* ---- YAML file ---------------------------------------------------------------------- */

typedef struct yaml_ctx {
  yaml_parser_t parser;
  const char *file;
  fl_config *cfg;
  char **seen;              /* full keys already set by this file: duplicates are errors */
  size_t nseen;
} yaml_ctx;

static origin mark_origin(const yaml_ctx *y, yaml_mark_t m)
{
  return (origin){ .file = y->file, .line = m.line + 1, .col = m.column + 1 };
}

/* On failure the event is left zeroed, so yaml_event_delete() on it stays safe. */
static fl_rc next_event(yaml_ctx *y, yaml_event_t *ev, fl_err *err)
{
  origin o;

  memset(ev, 0, sizeof(*ev));
  if (yaml_parser_parse(&y->parser, ev))
    return FL_OK;
  memset(ev, 0, sizeof(*ev));
  o = mark_origin(y, y->parser.problem_mark);
  return origin_err(err, &o, "%s", y->parser.problem ? y->parser.problem : "invalid YAML");
}

static bool is_null_scalar(const yaml_event_t *ev)
{
  const char *v = (const char *)ev->data.scalar.value;

  return ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
         (!*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
          !strcmp(v, "NULL"));
}

static fl_rc mark_seen(yaml_ctx *y, const char *key, const origin *o, fl_err *err)
{
  for (size_t i = 0; i < y->nseen; i++)
    if (strcmp(y->seen[i], key) == 0)
      return origin_err(err, o, "duplicate key \"%s\"", key);
  y->seen = fl_xrealloc(y->seen, (y->nseen + 1) * sizeof(*y->seen));
  y->seen[y->nseen++] = fl_xstrdup(key);
  return FL_OK;
}

/* rd_kafka_conf_set on a scratch conf: a misspelt property is reported with its line
 * and column here rather than by librdkafka at start-up with no location. */
static fl_rc check_kafka_prop(const char *key, const char *value, const origin *o, fl_err *err)
{
  char why[160];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_res_t res = rd_kafka_conf_set(conf, key, value, why, sizeof(why));

  rd_kafka_conf_destroy(conf);
  if (res == RD_KAFKA_CONF_OK)
    return FL_OK;
  if (res == RD_KAFKA_CONF_UNKNOWN)
    return origin_err(err, o, "unknown Kafka property \"%s\"", key);
  return origin_err(err, o, "invalid value for Kafka property \"%s\": %s", key, why);
}

static fl_rc set_kafka_prop(fl_config_kafka *k, const char *key, const char *value,
                            const origin *o, fl_err *err)
{
  fl_rc rc = check_kafka_prop(key, value, o, err);

  if (rc != FL_OK)
    return rc;
  if (k->nprops >= MAX_KAFKA_PROPS && !fl_config_kafka_prop(k, key))
    return origin_err(err, o, "too many Kafka properties (at most %d)", MAX_KAFKA_PROPS);
  set_prop(k, key, value);
  return FL_OK;
}

/* One `key: value` of the kafka: map. */
static fl_rc kafka_pair(yaml_ctx *y, const yaml_event_t *k, const yaml_event_t *v, fl_err *err)
{
  origin ko = mark_origin(y, k->start_mark), vo = mark_origin(y, v->start_mark);
  char full[300];
  fl_rc rc;

  if (k->type != YAML_SCALAR_EVENT)
    return origin_err(err, &ko, "keys of \"kafka\" must be strings");
  if (v->type != YAML_SCALAR_EVENT || is_null_scalar(v))
    return origin_err(err, &vo, "Kafka property \"%s\" needs a scalar value",
                      (const char *)k->data.scalar.value);
  snprintf(full, sizeof(full), "kafka.%s", (const char *)k->data.scalar.value);
  if ((rc = mark_seen(y, full, &ko, err)) != FL_OK)
    return rc;
  return set_kafka_prop(&y->cfg->kafka, (const char *)k->data.scalar.value,
                        (const char *)v->data.scalar.value, &vo, err);
}

/* Reads key/value event pairs until MAPPING_END, handing each pair to `pair`. */
typedef fl_rc (*pair_fn)(yaml_ctx *y, const char *prefix, const yaml_event_t *k,
                         const yaml_event_t *v, fl_err *err);

static fl_rc walk_mapping(yaml_ctx *y, const char *prefix, pair_fn pair, fl_err *err)
{
  fl_rc rc;
  yaml_event_t k, v;

  for (;;) {
    if ((rc = next_event(y, &k, err)) != FL_OK)
      return rc;
    if (k.type == YAML_MAPPING_END_EVENT) {
      yaml_event_delete(&k);
      return FL_OK;
    }
    rc = next_event(y, &v, err);
    if (rc == FL_OK)
      rc = pair(y, prefix, &k, &v, err);
    yaml_event_delete(&k);
    yaml_event_delete(&v);
    if (rc != FL_OK)
      return rc;
  }
}

static fl_rc kafka_pair_fn(yaml_ctx *y, const char *prefix, const yaml_event_t *k,
                           const yaml_event_t *v, fl_err *err)
{
  (void)prefix;
  return kafka_pair(y, k, v, err);
}

static fl_rc setting_pair(yaml_ctx *y, const char *prefix, const yaml_event_t *k,
                          const yaml_event_t *v, fl_err *err);

/* A value that opens a mapping: the kafka: map, or a section such as http:. */
static fl_rc mapping_value(yaml_ctx *y, const char *full, const origin *ko, fl_err *err)
{
  char prefix[320];

  if (strcmp(full, "kafka") == 0)
    return walk_mapping(y, "", kafka_pair_fn, err);
  if (!is_section(full))
    return origin_err(err, ko, find_opt(full) ? "\"%s\" takes a single value, not a mapping"
                                               : "unknown key \"%s\"", full);
  snprintf(prefix, sizeof(prefix), "%s.", full);
  return walk_mapping(y, prefix, setting_pair, err);
}

static fl_rc scalar_value(yaml_ctx *y, const char *full, const origin *ko,
                          const yaml_event_t *v, fl_err *err)
{
  origin vo = mark_origin(y, v->start_mark);
  const opt *o = find_opt(full);

  if (!o) {
    if ((is_section(full) || !strcmp(full, "kafka")) && is_null_scalar(v))
      return FL_OK; /* `http:` with nothing under it */
    return origin_err(err, ko, is_section(full) ? "\"%s\" must be a mapping"
                                                : "unknown key \"%s\"", full);
  }
  return set_opt(y->cfg, o, is_null_scalar(v) ? "" : (const char *)v->data.scalar.value, &vo,
                 err);
}

static fl_rc setting_pair(yaml_ctx *y, const char *prefix, const yaml_event_t *k,
                          const yaml_event_t *v, fl_err *err)
{
  origin ko = mark_origin(y, k->start_mark);
  char full[300];
  fl_rc rc;

  if (k->type != YAML_SCALAR_EVENT)
    return origin_err(err, &ko, "keys must be strings");
  snprintf(full, sizeof(full), "%s%s", prefix, (const char *)k->data.scalar.value);
  if ((rc = mark_seen(y, full, &ko, err)) != FL_OK)
    return rc;
  if (v->type == YAML_MAPPING_START_EVENT)
    return mapping_value(y, full, &ko, err);
  if (v->type == YAML_SCALAR_EVENT)
    return scalar_value(y, full, &ko, v, err);
  ko = mark_origin(y, v->start_mark);
  return origin_err(err, &ko, v->type == YAML_ALIAS_EVENT
                                  ? "\"%s\": aliases are not supported in the configuration"
                                  : "\"%s\" must be a value or a mapping, not a list",
                    full);
}

/* The whole stream: at most one document whose root is a mapping (or empty). */
static fl_rc load_stream(yaml_ctx *y, fl_err *err)
{
  yaml_event_t ev;
  fl_rc rc;
  int stage = 0; /* 0: before the root, 1: root done, 2: document ended */

  for (;;) {
    origin o;
    if ((rc = next_event(y, &ev, err)) != FL_OK)
      return rc;
    o = mark_origin(y, ev.start_mark);
    if (ev.type == YAML_STREAM_END_EVENT) {
      yaml_event_delete(&ev);
      return FL_OK;
    }
    if (ev.type == YAML_DOCUMENT_START_EVENT && stage == 2)
      rc = origin_err(err, &o, "only one YAML document is allowed");
    else if (ev.type == YAML_MAPPING_START_EVENT && stage == 0)
      rc = walk_mapping(y, "", setting_pair, err), stage = 1;
    else if (ev.type == YAML_SCALAR_EVENT && stage == 0 && is_null_scalar(&ev))
      stage = 1; /* a document with nothing in it */
    else if (ev.type == YAML_DOCUMENT_END_EVENT)
      stage = 2;
    else if (ev.type != YAML_STREAM_START_EVENT && ev.type != YAML_DOCUMENT_START_EVENT)
      rc = origin_err(err, &o, "the configuration must be a mapping of keys to values");
    yaml_event_delete(&ev);
    if (rc != FL_OK)
      return rc;
  }
}

static fl_rc load_yaml(fl_config *cfg, const char *path, const char *text, size_t len,
                       fl_err *err)
{
  yaml_ctx y = { .file = path, .cfg = cfg };
  fl_rc rc;

  if (!yaml_parser_initialize(&y.parser))
    return fl_err_set(err, FL_EINTERNAL, "cannot initialize the YAML parser");
  yaml_parser_set_input_string(&y.parser, (const unsigned char *)text, len);
  rc = load_stream(&y, err);
  yaml_parser_delete(&y.parser);
  for (size_t i = 0; i < y.nseen; i++)
    free(y.seen[i]);
  free(y.seen);
  return rc;
}

/* ---- environment and flags ---------------------------------------------------------- */

/* "http.max_body_bytes" -> "FLOWD_HTTP_MAX_BODY_BYTES" */
static void env_name(const char *key, const char *suffix, char *out, size_t size)
{
  size_t n = (size_t)snprintf(out, size, "FLOWD_");
  for (; *key && n + 1 < size; key++)
    out[n++] = *key == '.' ? '_' : (char)(*key >= 'a' && *key <= 'z' ? *key - 32 : *key);
  out[n] = '\0';
  snprintf(out + n, size - n, "%s", suffix);
}

static const char *env_get(char *const *envp, const char *name)
{
  size_t n = strlen(name);

  for (; envp && *envp; envp++)
    if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
      return *envp + n + 1;
  return NULL;
}

/* FLOWD_X_FILE names a file holding the value (Docker/Kubernetes secrets); one trailing
 * newline is dropped. */
static fl_rc read_value_file(const char *path, const origin *o, char **out, fl_err *err)
{
  fl_buf b;
  fl_err ferr = FL_ERR_INIT;
  fl_rc rc;

  fl_buf_init(&b, 64 * 1024);
  rc = fl_buf_read_file(&b, path, &ferr);
  if (rc != FL_OK) {
    fl_buf_deinit(&b);
    return origin_err(err, o, "%s", ferr.msg);
  }
  if (b.len && b.data[b.len - 1] == '\n')
    b.data[--b.len] = '\0';
  if (b.len && b.data[b.len - 1] == '\r')
    b.data[--b.len] = '\0';
  *out = fl_buf_steal(&b);
  return FL_OK;
}

static fl_rc load_env_opt(fl_config *cfg, const opt *o, char *const *envp, fl_err *err)
{
  char name[128], fname[140];
  const char *v, *path;
  char *content = NULL;
  fl_rc rc;

  env_name(o->key, "", name, sizeof(name));
  env_name(o->key, "_FILE", fname, sizeof(fname));
  v = env_get(envp, name);
  path = env_get(envp, fname);
  if (v && path)
    return origin_err(err, &(origin){ .name = name }, "both %s and %s_FILE are set", name, name);
  if (path) {
    rc = read_value_file(path, &(origin){ .name = fname }, &content, err);
    if (rc == FL_OK)
      rc = set_opt(cfg, o, content, &(origin){ .name = fname }, err);
    free(content);
    return rc;
  }
  return v ? set_opt(cfg, o, v, &(origin){ .name = name }, err) : FL_OK;
}

static fl_rc load_env(fl_config *cfg, char *const *envp, fl_err *err)
{
  const char *bootstrap = env_get(envp, "FLOWD_KAFKA_BOOTSTRAP_SERVERS");
  fl_rc rc;

  for (size_t i = 0; i < NOPTS; i++)
    if ((rc = load_env_opt(cfg, &opts[i], envp, err)) != FL_OK)
      return rc;
  /* the one kafka: map entry with an environment override: it differs per machine */
  if (bootstrap)
    return set_kafka_prop(&cfg->kafka, "bootstrap.servers", bootstrap,
                          &(origin){ .name = "FLOWD_KAFKA_BOOTSTRAP_SERVERS" }, err);
  return FL_OK;
}

static fl_rc load_flags(fl_config *cfg, const fl_config_flag *flags, size_t nflags, fl_err *err)
{
  fl_rc rc;

  for (size_t i = 0; i < nflags; i++) {
    char name[300];
    const opt *o = find_opt(flags[i].key);
    snprintf(name, sizeof(name), "--%s", flags[i].key);
    if (strncmp(flags[i].key, "kafka.", 6) == 0)
      rc = set_kafka_prop(&cfg->kafka, flags[i].key + 6, flags[i].value,
                          &(origin){ .name = name }, err);
    else if (o)
      rc = set_opt(cfg, o, flags[i].value, &(origin){ .name = name }, err);
    else
      rc = fl_err_set(err, FL_EINVAL, "%s: error: unknown option", name);
    if (rc != FL_OK)
      return rc;
  }
  return FL_OK;
}

/* ---- load and free ------------------------------------------------------------------ */

static fl_rc load_defaults(fl_config *cfg, fl_err *err)
{
  fl_rc rc;

  for (size_t i = 0; i < NOPTS; i++)
    if ((rc = set_opt(cfg, &opts[i], opts[i].def, &(origin){ .name = "default" }, err)) != FL_OK)
      return rc;
  return FL_OK;
}

static fl_rc load_file(fl_config *cfg, const char *path, fl_err *err)
{
  fl_buf text;
  fl_rc rc;

  fl_buf_init(&text, MAX_FILE_BYTES);
  rc = fl_buf_read_file(&text, path, err);
  if (rc == FL_OK)
    rc = load_yaml(cfg, path, text.data ? text.data : "", text.len, err);
  fl_buf_deinit(&text);
  return rc;
}

/* Rules that span rows or that bounds cannot say. */
static fl_rc check_config(const fl_config *cfg, fl_err *err)
{
  const char *names[FL_CONFIG_TOPIC_COUNT];
  size_t n = fl_config_topic_names(&cfg->kafka.topics, names);

  if (!*cfg->http.listen)
    return fl_err_set(err, FL_EINVAL, "\"http.listen\" must not be empty");
  if (!*cfg->engine.group)
    return fl_err_set(err, FL_EINVAL, "\"engine.group\" must not be empty");
  for (size_t i = 0; i < n; i++) {
    if (!*names[i])
      return fl_err_set(err, FL_EINVAL, "topic names must not be empty");
    for (size_t j = 0; j < i; j++)
      if (strcmp(names[i], names[j]) == 0)
        return fl_err_set(err, FL_EINVAL, "topic \"%s\" is configured twice", names[i]);
  }
  return FL_OK;
}

fl_rc fl_config_load(fl_config **out, const char *path, char *const *envp,
                     const fl_config_flag *flags, size_t nflags, fl_err *err)
{
  fl_config *cfg = fl_xcalloc(1, sizeof(*cfg));
  fl_rc rc;

  *out = NULL;
  if ((rc = load_defaults(cfg, err)) != FL_OK)
    goto out;
  if (path) {
    cfg->path = fl_xstrdup(path);
    if ((rc = load_file(cfg, path, err)) != FL_OK)
      goto out;
  }
  if ((rc = load_env(cfg, envp, err)) != FL_OK)
    goto out;
  if ((rc = load_flags(cfg, flags, nflags, err)) != FL_OK)
    goto out;
  if ((rc = check_config(cfg, err)) != FL_OK)
    goto out;
  *out = cfg;
  cfg = NULL;
out:
  fl_config_free(cfg);
  return rc;
}

void fl_config_free(fl_config *cfg)
{
  if (!cfg)
    return;
  for (size_t i = 0; i < NOPTS; i++)
    if (opts[i].type == OPT_STR)
      free(*(char **)((char *)cfg + opts[i].offset));
  for (size_t i = 0; i < cfg->kafka.nprops; i++) {
    free(cfg->kafka.props[i].key);
    free(cfg->kafka.props[i].value);
  }
  free(cfg->kafka.props);
  free(cfg->path);
  free(cfg);
}

const char *fl_config_default_path(const char *flag_path, char *const *envp,
                                   bool (*exists)(const char *path))
{
  static const char *const candidates[] = { "var/flowd.yaml", "flowd.yaml" };
  const char *env = env_get(envp, "FLOWD_CONFIG");

  if (flag_path)
    return flag_path;
  if (env && *env)
    return env;
  for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++)
    if (exists(candidates[i]))
      return candidates[i];
  return NULL;
}

/* ---- dump and reference ------------------------------------------------------------- */

#define REDACTED "<redacted>"

static bool is_secret_prop(const char *key)
{
  return strstr(key, "password") || strstr(key, "secret") || strstr(key, "sasl.oauthbearer") ||
         strstr(key, "ssl.key.pem") || strstr(key, "ssl_key");
}

static void format_value(const fl_config *cfg, const opt *o, char *out, size_t size)
{
  const char *field = (const char *)cfg + o->offset;
  int ms;

  switch (o->type) {
  case OPT_STR:
    snprintf(out, size, "%s", o->secret && **(char *const *)field ? REDACTED
                                                                  : *(char *const *)field);
    break;
  case OPT_INT:
    snprintf(out, size, "%d", *(const int *)field);
    break;
  case OPT_BYTES:
    snprintf(out, size, "%lld", *(const long long *)field);
    break;
  case OPT_DURATION:
    ms = *(const int *)field;
    if (ms % 1000 == 0 && ms)
      snprintf(out, size, "%ds", ms / 1000);
    else
      snprintf(out, size, "%dms", ms);
    break;
  }
}

static int emit_to_buf(void *data, unsigned char *bytes, size_t size)
{
  return fl_buf_append(data, bytes, size, NULL) == FL_OK;
}

static bool emit(yaml_emitter_t *em, yaml_event_t *ev)
{
  return yaml_emitter_emit(em, ev) != 0;
}

static bool emit_scalar(yaml_emitter_t *em, const char *s)
{
  yaml_event_t ev;

  yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1,
                               YAML_ANY_SCALAR_STYLE);
  return emit(em, &ev);
}

static bool emit_mapping_start(yaml_emitter_t *em)
{
  yaml_event_t ev;

  yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
  return emit(em, &ev);
}

static bool emit_mapping_end(yaml_emitter_t *em)
{
  yaml_event_t ev;

  yaml_mapping_end_event_initialize(&ev);
  return emit(em, &ev);
}

/* Emits the rows in table order, opening a nested mapping per section ("http"). */
static bool emit_rows(yaml_emitter_t *em, const fl_config *cfg)
{
  char section[64] = "", value[1024];
  bool ok = true;

  for (size_t i = 0; i < NOPTS && ok; i++) {
    const char *dot = strchr(opts[i].key, '.');
    size_t slen = dot ? (size_t)(dot - opts[i].key) : 0;
    if (*section && (slen != strlen(section) || strncmp(section, opts[i].key, slen) != 0)) {
      ok = emit_mapping_end(em);
      section[0] = '\0';
    }
    if (dot && !*section && ok) {
      snprintf(section, sizeof(section), "%.*s", (int)slen, opts[i].key);
      ok = emit_scalar(em, section) && emit_mapping_start(em);
    }
    format_value(cfg, &opts[i], value, sizeof(value));
    ok = ok && emit_scalar(em, dot ? dot + 1 : opts[i].key) && emit_scalar(em, value);
  }
  return ok && (!*section || emit_mapping_end(em));
}

static bool emit_kafka(yaml_emitter_t *em, const fl_config_kafka *k)
{
  bool ok = emit_scalar(em, "kafka") && emit_mapping_start(em);

  for (size_t i = 0; i < k->nprops && ok; i++)
    ok = emit_scalar(em, k->props[i].key) &&
         emit_scalar(em, is_secret_prop(k->props[i].key) ? REDACTED : k->props[i].value);
  return ok && emit_mapping_end(em);
}

static bool emit_document(yaml_emitter_t *em, const fl_config *cfg)
{
  yaml_event_t ev;

  yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
  if (!emit(em, &ev))
    return false;
  yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
  if (!emit(em, &ev) || !emit_mapping_start(em) || !emit_rows(em, cfg) ||
      !emit_kafka(em, &cfg->kafka) || !emit_mapping_end(em))
    return false;
  yaml_document_end_event_initialize(&ev, 1);
  if (!emit(em, &ev))
    return false;
  yaml_stream_end_event_initialize(&ev);
  return emit(em, &ev);
}

fl_rc fl_config_dump(const fl_config *cfg, fl_buf *out, fl_err *err)
{
  yaml_emitter_t em;
  bool ok;

  if (!yaml_emitter_initialize(&em))
    return fl_err_set(err, FL_EINTERNAL, "cannot initialize the YAML emitter");
  yaml_emitter_set_output(&em, emit_to_buf, out);
  yaml_emitter_set_unicode(&em, 1);
  ok = emit_document(&em, cfg);
  yaml_emitter_delete(&em);
  return ok ? FL_OK : fl_err_set(err, FL_EINTERNAL, "cannot write the configuration as YAML");
}

static const char *type_name(const opt *o)
{
  static const char *const names[] = { "string", "integer", "size", "duration" };
  return o->choices ? "enum" : names[o->type];
}

fl_rc fl_config_reference(fl_buf *out, fl_err *err)
{
  fl_rc rc = fl_buf_appendf(out, err, "| key | environment | type | default | description |\n"
                                      "|---|---|---|---|---|\n");

  for (size_t i = 0; i < NOPTS && rc == FL_OK; i++) {
    char env[128];
    env_name(opts[i].key, "", env, sizeof(env));
    rc = fl_buf_appendf(out, err, "| `%s` | `%s` | %s | %s%s%s | %s%s |\n", opts[i].key, env,
                        type_name(&opts[i]), *opts[i].def ? "`" : "",
                        *opts[i].def ? opts[i].def : "(empty)", *opts[i].def ? "`" : "",
                        opts[i].help, opts[i].secret ? " (secret: redacted in dumps)" : "");
  }
  if (rc == FL_OK)
    rc = fl_buf_appendf(out, err,
                        "| `kafka.<property>` | `FLOWD_KAFKA_BOOTSTRAP_SERVERS` for "
                        "`bootstrap.servers` | map | `bootstrap.servers: 127.0.0.1:9092` | "
                        "any librdkafka property, passed verbatim; flowd forces "
                        "`enable.idempotence`, `acks=all`, `partitioner=murmur2_random` |\n");
  return rc;
}
