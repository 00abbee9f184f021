/* core/config.h -- the one immutable configuration of a flowd process (R7).
 *
 * Built once from a static table (core/config.c): table defaults < YAML file
 * (flowd.yaml) < FLOWD_* environment < command-line flags (--key=value). Unknown keys
 * and bad values are errors citing file:line:col. Secrets may come from FLOWD_<X>_FILE.
 * The `kafka:` map is handed to librdkafka verbatim.
 *
 * Thread-safety: an fl_config is immutable after fl_config_load() and may be read by
 * any thread. Modules receive only their sub-struct, by const pointer. */
#ifndef FL_CORE_CONFIG_H
#define FL_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "core/mem.h"

typedef struct fl_config_http {
    char *listen;             /* "127.0.0.1" */
    int port;                 /* 8080 */
    int threads;              /* civetweb worker threads */
    long long max_body_bytes; /* request bodies are capped before parsing */
    int request_timeout_ms;
} fl_config_http;

/* The REST API's rules (issue 5): waits, streams, limits, idempotency, event routing. */
typedef struct fl_config_api {
    int create_wait_ms;         /* a 201 waits this long for the engine, else 202 + Location */
    int max_wait_ms;            /* cap on ?wait= (long-poll) */
    int max_streams;            /* concurrent SSE streams and long-polls (503 beyond) */
    int sse_heartbeat_ms;       /* comment line on an idle SSE stream */
    int rate_limit;             /* requests per second per API key; 0 = unlimited */
    int rate_burst;             /* token-bucket depth */
    int max_json_depth;         /* nesting allowed in a JSON request body */
    long long max_header_bytes; /* request line + headers (civetweb max_request_size) */
    int idempotency_ttl_ms;     /* how long an Idempotency-Key is remembered */
    int key_cache_ttl_ms;       /* how long a checked API key is trusted without Postgres */
    char *metrics_auth;         /* "none" | "read": the scope /metrics needs */
    char *event_routes;         /* "type-prefix=topic,..." for POST /events (first match) */
} fl_config_api;

typedef struct fl_config_db {
    char *url; /* libpq URI or key=value string (secret); "" = PG* variables */
    int pool_size;
    int connect_timeout_ms;
    int statement_timeout_ms;
} fl_config_db;

typedef struct fl_config_prop {
    char *key;
    char *value;
} fl_config_prop;

/* The topic names, in the order of ARCHITECTURE.md section 2. */
#define FL_TOPIC_LIST(X)                                                  \
    X(conversation_events, "conversation.events", "engine input")         \
    X(flowd_events, "flowd.events", "engine input")                       \
    X(appointment_events, "appointment.events", "engine input")           \
    X(order_events, "order.events", "engine input")                       \
    X(internal, "flowd.internal", "outbox only -> engine")                \
    X(ai_responses, "ai.responses", "assistant replies")                  \
    X(workflow_events, "workflow.events", "instance lifecycle, external") \
    X(business_analytics, "business.analytics", "periodic aggregates")    \
    X(system_monitoring, "system.monitoring", "health and error events")  \
    X(dead_letter, "dead.letter.queue", "poison events")

typedef struct fl_config_topics {
#define X(field, name, help) char *field;
    FL_TOPIC_LIST(X)
#undef X
    int partitions; /* every topic gets this count (engine co-partitioning) */
    int replication_factor;
} fl_config_topics;

typedef struct fl_config_kafka {
    fl_config_prop *props; /* the verbatim `kafka:` map (bootstrap.servers, ...) */
    size_t nprops;
    int metadata_timeout_ms; /* one metadata request (readiness, topic checks) */
    int produce_timeout_ms;  /* bound on waiting for a delivery report */
    fl_config_topics topics;
} fl_config_kafka;

typedef struct fl_config_engine {
    char *group;               /* consumer group of the engine */
    char *instance_id;         /* group.instance.id (static membership); "" = host name */
    char *workflows_dir;       /* shipped definitions */
    char *agents_dir;          /* agent profiles; "" = <workflows_dir>/agents */
    char *default_tenant;      /* for events from other producers without ce_tenant */
    int batch_size;            /* events per transaction */
    int batch_wait_ms;         /* bound of filling a batch with buffered events */
    int max_step_attempts;     /* a step that keeps failing is dead-lettered after this */
    long long max_event_bytes; /* larger events are dead-lettered */
} fl_config_engine;

typedef struct fl_config_workers {
    int relay_batch_size;       /* outbox rows per relay pass */
    int relay_interval_ms;      /* relay poll interval when idle (NOTIFY wakes it sooner) */
    int timers_interval_ms;     /* timer and schedule poll interval */
    int timers_batch_size;      /* due timers claimed per transaction */
    int activities_concurrency; /* activity calls in flight per process */
    int activities_interval_ms; /* activity poll interval when idle */
    int activities_timeout_ms;  /* default per-call timeout (an action's timeout: wins) */
    long long activities_max_response_bytes;
    int analytics_interval_ms; /* business.analytics aggregate period; 0 = off */
} fl_config_workers;

/* The `llm:` section (issue 6): providers and the fallback chain, parsed by
 * core/config_llm.c. Fixed-size fields, so the immutable config owns no extra heap and
 * fl_config_free needs no hook; longer values are configuration errors. */
#define FL_CONFIG_LLM_MAX_PROVIDERS 16
#define FL_CONFIG_LLM_NAME_MAX      64

typedef struct fl_config_llm_provider {
    char name[FL_CONFIG_LLM_NAME_MAX]; /* the key under llm.providers */
    char kind[16];                     /* local | openai | anthropic | gemini | ollama */
    char base_url[512];                /* default per kind */
    char model[128];                   /* required except for local */
    char api_key_env[128];             /* variable holding the key, read at load */
    char api_key_file[512];            /* or a file holding it */
    char api_key[1024];       /* secret: resolved at load; never logged, dumped as <redacted> */
    int timeout_ms;           /* one attempt */
    int rpm;                  /* requests per minute; 0 = unlimited */
    long long daily_requests; /* per process and UTC day; 0 = unlimited */
    long long daily_tokens;   /* in + out, per process and UTC day; 0 = unlimited */
    double price_in_per_1k;   /* cost per 1K input tokens */
    double price_out_per_1k;
    int max_retries;         /* retries on 429/5xx/timeouts before the next provider */
    int retry_delay_ms;      /* first backoff delay (exponential, jittered) */
    int breaker_failures;    /* consecutive failures that open the breaker; 0 = never */
    int breaker_cooldown_ms; /* open this long, then one half-open probe */
    int stream;              /* 1: request a streamed answer (SSE / NDJSON) */
} fl_config_llm_provider;

typedef struct fl_config_llm {
    fl_config_llm_provider providers[FL_CONFIG_LLM_MAX_PROVIDERS];
    size_t nproviders;
    char chain[FL_CONFIG_LLM_MAX_PROVIDERS + 1][FL_CONFIG_LLM_NAME_MAX]; /* provider names */
    size_t nchain;                /* 0 = every provider in file order, then local */
    long long max_response_bytes; /* cap of one answer, streamed or not */
} fl_config_llm;

/* The provider named `name` ("local" is always known), or NULL. Borrowed. */
const fl_config_llm_provider *fl_config_llm_provider_get(const fl_config_llm *llm,
                                                         const char *name);

typedef struct fl_config_log {
    char *level; /* debug | info | warn | error */
} fl_config_log;

typedef struct fl_config {
    char *path; /* the YAML file loaded, or NULL when none */
    fl_config_http http;
    fl_config_api api;
    fl_config_db db;
    fl_config_kafka kafka;
    fl_config_engine engine;
    fl_config_workers workers;
    char *roles; /* comma-separated: api, engine, timers, relay, activities */
    fl_config_log log;
    fl_config_llm llm;
    int shutdown_timeout_ms;
    int health_interval_ms;
} fl_config;

/* One `--key=value` flag. */
typedef struct fl_config_flag {
    const char *key;
    const char *value;
} fl_config_flag;

/* Loads the configuration. `path` may be NULL (no file); envp is the process
 * environment (main's environ), the only place flowd reads it.
 * Ownership: *out is owned by the caller (fl_config_free).
 * Errors: FL_EINVAL ("file:line:col: message" for file problems), FL_ENOTFOUND, FL_EIO. */
fl_rc fl_config_load(fl_config **out, const char *path, char *const *envp,
                     const fl_config_flag *flags, size_t nflags, fl_err *err);
void fl_config_free(fl_config *cfg);

/* The file to load: the --config flag, else $FLOWD_CONFIG, else var/flowd.yaml (what
 * `make run` writes), else ./flowd.yaml, else NULL (defaults and environment only).
 * `exists` is injected so tests need no files. Ownership: borrowed from the arguments. */
const char *fl_config_default_path(const char *flag_path, char *const *envp,
                                   bool (*exists)(const char *path));

/* True when the comma-separated `roles` setting names `role` ("engine"). */
bool fl_config_has_role(const fl_config *cfg, const char *role);

/* The value librdkafka will get for `key` from the kafka map, or NULL. Borrowed. */
const char *fl_config_kafka_prop(const fl_config_kafka *kafka, const char *key);

/* The topic names as an array of borrowed strings, in FL_TOPIC_LIST order.
 * Returns the count (always FL_CONFIG_TOPIC_COUNT). */
#define FL_CONFIG_TOPIC_COUNT 10
size_t fl_config_topic_names(const fl_config_topics *t, const char *names[FL_CONFIG_TOPIC_COUNT]);

/* The engine's input topics (the first four rows of the table). */
#define FL_CONFIG_ENGINE_TOPIC_COUNT 4

/* "10s", "250ms", "5m", "1h" (or a bare 0) -> milliseconds; false when malformed. */
bool fl_config_parse_duration(const char *s, long long *ms);

/* Appends the effective configuration as YAML, secrets replaced by "<redacted>". */
fl_rc fl_config_dump(const fl_config *cfg, fl_buf *out, fl_err *err);

/* Appends the reference of every setting (key, env, type, default, help) as a
 * Markdown table; README.md embeds it. */
fl_rc fl_config_reference(fl_buf *out, fl_err *err);

#endif
