/* core/config_int.h -- private to the config module, which is three files: config.c (the
 * table, value parsing, environment, flags, load), config_yaml.c (the file reader) and
 * config_dump.c (dump and reference). Nothing outside core/config*.c includes this.
 *
 * Thread-safety: as core/config.h. */
#ifndef FL_CORE_CONFIG_INT_H
#define FL_CORE_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"

#define FL_CONFIG_MAX_KAFKA_PROPS 256

typedef enum fl_config_type {
    FL_CONFIG_STR,
    FL_CONFIG_INT,
    FL_CONFIG_BYTES,
    FL_CONFIG_DURATION
} fl_config_type;

typedef struct fl_config_opt {
    const char *key; /* dotted YAML path; the env name is derived from it */
    fl_config_type type;
    size_t offset;              /* into fl_config */
    const char *def;            /* parsed like any other input, so defaults are checked too */
    long long min, max;         /* for numbers (durations in ms, sizes in bytes) */
    bool secret;                /* redacted in dumps and logs */
    const char *const *choices; /* for strings with a closed set of values */
    const char *help;
} fl_config_opt;

/* Where a value came from, for error messages: "flowd.yaml:3:9" or "FLOWD_HTTP_PORT". */
typedef struct fl_config_origin {
    const char *file;
    size_t line, col; /* 1-based; 0 when not from a file */
    const char *name; /* env var or flag, when not from a file */
} fl_config_origin;

/* The table, in the order dumps and the reference list it. */
extern const fl_config_opt fl_config__opts[];
extern const size_t fl_config__nopts;

/* The row for a dotted key, or NULL. */
const fl_config_opt *fl_config__find(const char *key);

/* True when key is a prefix of some row ("http" of "http.port"). */
bool fl_config__is_section(const char *key);

/* Sets err to "<where>: error: <what>" and returns FL_EINVAL. */
fl_rc fl_config__error(fl_err *err, const fl_config_origin *o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses value for row o and stores it in cfg. Errors: FL_EINVAL. */
fl_rc fl_config__set(fl_config *cfg, const fl_config_opt *o, const char *value,
                     const fl_config_origin *org, fl_err *err);

/* Checks a librdkafka property with librdkafka itself, then stores it in the map.
 * Errors: FL_EINVAL (unknown property, bad value, too many). */
fl_rc fl_config__set_kafka(fl_config_kafka *k, const char *key, const char *value,
                           const fl_config_origin *o, fl_err *err);

/* "http.max_body_bytes" + suffix -> "FLOWD_HTTP_MAX_BODY_BYTES<suffix>". */
void fl_config__env_name(const char *key, const char *suffix, char *out, size_t size);

/* The value of `name` in the environment envp (may be NULL), or NULL. Borrowed. */
const char *fl_config__env_get(char *const *envp, const char *name);

/* The cross-setting rules, run after every source is applied. Errors: FL_EINVAL. */
fl_rc fl_config__check(fl_config *cfg, char *const *envp, fl_err *err);

/* ---- the llm: section (core/config_llm.c, core/config_llm_dump.c) ------------------ */

struct yaml_parser_s;
struct yaml_emitter_s;

/* Reads the mapping value of `llm:` (its MAPPING-START already consumed) from parser
 * into cfg->llm. Errors: FL_EINVAL with file:line:col. */
fl_rc fl_config__llm_yaml(struct yaml_parser_s *parser, const char *file, fl_config *cfg,
                          fl_err *err);

/* After every source: FLOWD_LLM_CHAIN, the API keys from their variables or files, the
 * chain's names, defaults. Errors: FL_EINVAL. */
fl_rc fl_config__llm_resolve(fl_config_llm *llm, char *const *envp, fl_err *err);

/* Emits `llm:` and its mapping, keys redacted. False on an emitter error. */
bool fl_config__llm_dump(struct yaml_emitter_s *em, const fl_config_llm *llm);

/* Appends the llm.* rows of the configuration reference. */
fl_rc fl_config__llm_reference(fl_buf *out, fl_err *err);

/* Applies a YAML document to cfg. Errors: FL_EINVAL with file:line:col. */
fl_rc fl_config__load_yaml(fl_config *cfg, const char *path, const char *text, size_t len,
                           fl_err *err);

#endif
