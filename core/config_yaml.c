/* core/config_yaml.c -- reads flowd.yaml with libyaml's event parser.
 *
 * The event parser (not the document loader) lets the reader stop at the first thing
 * out of place, so a hostile file cannot make it build deep trees or expand aliases:
 * the accepted shape is at most two levels deep (a section, then its settings), plus
 * the flat kafka: map, and the llm: section (core/config_llm.c, a fixed shape of its own).
 * Every error cites file:line:col from libyaml's marks (R7.2).
 *
 * Thread-safety: reentrant. */
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/config_int.h"
#include "core/mem.h"

typedef struct yaml_ctx {
    yaml_parser_t parser;
    const char *file;
    fl_config *cfg;
    char **seen; /* full keys already set by this file: duplicates are errors */
    size_t nseen;
} yaml_ctx;

static fl_config_origin mark_origin(const yaml_ctx *y, yaml_mark_t m)
{
    return (fl_config_origin){.file = y->file, .line = m.line + 1, .col = m.column + 1};
}

/* On failure the event is left zeroed, so yaml_event_delete() on it stays safe. */
static fl_rc next_event(yaml_ctx *y, yaml_event_t *ev, fl_err *err)
{
    fl_config_origin o;

    memset(ev, 0, sizeof(*ev));
    if (yaml_parser_parse(&y->parser, ev)) {
        return FL_OK;
    }
    memset(ev, 0, sizeof(*ev));
    o = mark_origin(y, y->parser.problem_mark);
    return fl_config__error(err, &o, "%s", y->parser.problem ? y->parser.problem : "invalid YAML");
}

static bool is_null_scalar(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;

    return ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (!*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
            !strcmp(v, "NULL"));
}

static fl_rc mark_seen(yaml_ctx *y, const char *key, const fl_config_origin *o, fl_err *err)
{
    for (size_t i = 0; i < y->nseen; i++) {
        if (strcmp(y->seen[i], key) == 0) {
            return fl_config__error(err, o, "duplicate key \"%s\"", key);
        }
    }
    y->seen = fl_xrealloc(y->seen, (y->nseen + 1) * sizeof(*y->seen));
    y->seen[y->nseen++] = fl_xstrdup(key);
    return FL_OK;
}

/* rd_kafka_conf_set on a scratch conf: a misspelt property is reported with its line
 * and column here rather than by librdkafka at start-up with no location. */
static fl_rc kafka_pair(yaml_ctx *y, const yaml_event_t *k, const yaml_event_t *v, fl_err *err)
{
    fl_config_origin ko = mark_origin(y, k->start_mark), vo = mark_origin(y, v->start_mark);
    char full[300];
    fl_rc rc;

    if (k->type != YAML_SCALAR_EVENT) {
        return fl_config__error(err, &ko, "keys of \"kafka\" must be strings");
    }
    if (v->type != YAML_SCALAR_EVENT || is_null_scalar(v)) {
        return fl_config__error(err, &vo, "Kafka property \"%s\" needs a scalar value",
                                (const char *)k->data.scalar.value);
    }
    snprintf(full, sizeof(full), "kafka.%s", (const char *)k->data.scalar.value);
    rc = mark_seen(y, full, &ko, err);
    if (rc != FL_OK) {
        return rc;
    }
    return fl_config__set_kafka(&y->cfg->kafka, (const char *)k->data.scalar.value,
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
        rc = next_event(y, &k, err);
        if (rc != FL_OK) {
            return rc;
        }
        if (k.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&k);
            return FL_OK;
        }
        rc = next_event(y, &v, err);
        if (rc == FL_OK) {
            rc = pair(y, prefix, &k, &v, err);
        }
        yaml_event_delete(&k);
        yaml_event_delete(&v);
        if (rc != FL_OK) {
            return rc;
        }
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
static fl_rc mapping_value(yaml_ctx *y, const char *full, const fl_config_origin *ko, fl_err *err)
{
    char prefix[320];

    if (strcmp(full, "kafka") == 0) {
        return walk_mapping(y, "", kafka_pair_fn, err);
    }
    if (strcmp(full, "llm") == 0) {
        return fl_config__llm_yaml(&y->parser, y->file, y->cfg, err);
    }
    if (!fl_config__is_section(full)) {
        return fl_config__error(err, ko,
                                fl_config__find(full) ? "\"%s\" takes a single value, not a mapping"
                                                      : "unknown key \"%s\"",
                                full);
    }
    snprintf(prefix, sizeof(prefix), "%s.", full);
    return walk_mapping(y, prefix, setting_pair, err);
}

static fl_rc scalar_value(yaml_ctx *y, const char *full, const fl_config_origin *ko,
                          const yaml_event_t *v, fl_err *err)
{
    fl_config_origin vo = mark_origin(y, v->start_mark);
    const fl_config_opt *o = fl_config__find(full);

    if (!o) {
        if ((fl_config__is_section(full) || !strcmp(full, "kafka") || !strcmp(full, "llm")) &&
            is_null_scalar(v)) {
            return FL_OK; /* `http:` with nothing under it */
        }
        return fl_config__error(
            err, ko,
            fl_config__is_section(full) ? "\"%s\" must be a mapping" : "unknown key \"%s\"", full);
    }
    return fl_config__set(y->cfg, o, is_null_scalar(v) ? "" : (const char *)v->data.scalar.value,
                          &vo, err);
}

static fl_rc setting_pair(yaml_ctx *y, const char *prefix, const yaml_event_t *k,
                          const yaml_event_t *v, fl_err *err)
{
    fl_config_origin ko = mark_origin(y, k->start_mark);
    char full[300];
    fl_rc rc;

    if (k->type != YAML_SCALAR_EVENT) {
        return fl_config__error(err, &ko, "keys must be strings");
    }
    snprintf(full, sizeof(full), "%s%s", prefix, (const char *)k->data.scalar.value);
    rc = mark_seen(y, full, &ko, err);
    if (rc != FL_OK) {
        return rc;
    }
    if (v->type == YAML_MAPPING_START_EVENT) {
        return mapping_value(y, full, &ko, err);
    }
    if (v->type == YAML_SCALAR_EVENT) {
        return scalar_value(y, full, &ko, v, err);
    }
    ko = mark_origin(y, v->start_mark);
    return fl_config__error(err, &ko,
                            v->type == YAML_ALIAS_EVENT
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
        fl_config_origin o;
        rc = next_event(y, &ev, err);
        if (rc != FL_OK) {
            return rc;
        }
        o = mark_origin(y, ev.start_mark);
        if (ev.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            return FL_OK;
        }
        if (ev.type == YAML_DOCUMENT_START_EVENT && stage == 2) {
            rc = fl_config__error(err, &o, "only one YAML document is allowed");
        } else if (ev.type == YAML_MAPPING_START_EVENT && stage == 0) {
            rc = walk_mapping(y, "", setting_pair, err);
            stage = 1;
        } else if (ev.type == YAML_SCALAR_EVENT && stage == 0 && is_null_scalar(&ev)) {
            stage = 1; /* a document with nothing in it */
        } else if (ev.type == YAML_DOCUMENT_END_EVENT) {
            stage = 2;
        } else if (ev.type != YAML_STREAM_START_EVENT && ev.type != YAML_DOCUMENT_START_EVENT) {
            rc = fl_config__error(err, &o, "the configuration must be a mapping of keys to values");
        }
        yaml_event_delete(&ev);
        if (rc != FL_OK) {
            return rc;
        }
    }
}

fl_rc fl_config__load_yaml(fl_config *cfg, const char *path, const char *text, size_t len,
                           fl_err *err)
{
    yaml_ctx y = {.file = path, .cfg = cfg};
    fl_rc rc;

    if (!yaml_parser_initialize(&y.parser)) {
        return fl_err_set(err, FL_EINTERNAL, "cannot initialize the YAML parser");
    }
    yaml_parser_set_input_string(&y.parser, (const unsigned char *)text, len);
    rc = load_stream(&y, err);
    yaml_parser_delete(&y.parser);
    for (size_t i = 0; i < y.nseen; i++) {
        free(y.seen[i]);
    }
    free(y.seen);
    return rc;
}
