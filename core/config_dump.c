/* core/config_dump.c -- the effective configuration as YAML (secrets redacted) and the
 * Markdown reference of every setting, both generated from the one table.
 *
 * Thread-safety: reentrant; reads an immutable fl_config. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "core/config_int.h"

#define REDACTED "<redacted>"

static bool is_secret_prop(const char *key)
{
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, "sasl.oauthbearer") ||
           strstr(key, "ssl.key.pem") || strstr(key, "ssl_key");
}

static void format_value(const fl_config *cfg, const fl_config_opt *o, char *out, size_t size)
{
    const char *field = (const char *)cfg + o->offset;
    int ms;

    switch (o->type) {
    case FL_CONFIG_STR:
        snprintf(out, size, "%s",
                 o->secret && **(char *const *)field ? REDACTED : *(char *const *)field);
        break;
    case FL_CONFIG_INT:
        snprintf(out, size, "%d", *(const int *)field);
        break;
    case FL_CONFIG_BYTES:
        snprintf(out, size, "%lld", *(const long long *)field);
        break;
    case FL_CONFIG_DURATION:
        ms = *(const int *)field;
        if (ms % 1000 == 0 && ms) {
            snprintf(out, size, "%ds", ms / 1000);
        } else {
            snprintf(out, size, "%dms", ms);
        }
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

    for (size_t i = 0; i < fl_config__nopts && ok; i++) {
        const char *dot = strchr(fl_config__opts[i].key, '.');
        size_t slen = dot ? (size_t)(dot - fl_config__opts[i].key) : 0;
        if (*section &&
            (slen != strlen(section) || strncmp(section, fl_config__opts[i].key, slen) != 0)) {
            ok = emit_mapping_end(em);
            section[0] = '\0';
        }
        if (dot && !*section && ok) {
            snprintf(section, sizeof(section), "%.*s", (int)slen, fl_config__opts[i].key);
            ok = emit_scalar(em, section) && emit_mapping_start(em);
        }
        format_value(cfg, &fl_config__opts[i], value, sizeof(value));
        ok =
            ok && emit_scalar(em, dot ? dot + 1 : fl_config__opts[i].key) && emit_scalar(em, value);
    }
    return ok && (!*section || emit_mapping_end(em));
}

static bool emit_kafka(yaml_emitter_t *em, const fl_config_kafka *k)
{
    bool ok = emit_scalar(em, "kafka") && emit_mapping_start(em);

    for (size_t i = 0; i < k->nprops && ok; i++) {
        ok = emit_scalar(em, k->props[i].key) &&
             emit_scalar(em, is_secret_prop(k->props[i].key) ? REDACTED : k->props[i].value);
    }
    return ok && emit_mapping_end(em);
}

static bool emit_document(yaml_emitter_t *em, const fl_config *cfg)
{
    yaml_event_t ev;

    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    if (!emit(em, &ev)) {
        return false;
    }
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    if (!emit(em, &ev) || !emit_mapping_start(em) || !emit_rows(em, cfg) ||
        !emit_kafka(em, &cfg->kafka) || !fl_config__llm_dump(em, &cfg->llm) ||
        !emit_mapping_end(em)) {
        return false;
    }
    yaml_document_end_event_initialize(&ev, 1);
    if (!emit(em, &ev)) {
        return false;
    }
    yaml_stream_end_event_initialize(&ev);
    return emit(em, &ev);
}

fl_rc fl_config_dump(const fl_config *cfg, fl_buf *out, fl_err *err)
{
    yaml_emitter_t em;
    bool ok;

    if (!yaml_emitter_initialize(&em)) {
        return fl_err_set(err, FL_EINTERNAL, "cannot initialize the YAML emitter");
    }
    yaml_emitter_set_output(&em, emit_to_buf, out);
    yaml_emitter_set_unicode(&em, 1);
    ok = emit_document(&em, cfg);
    yaml_emitter_delete(&em);
    return ok ? FL_OK : fl_err_set(err, FL_EINTERNAL, "cannot write the configuration as YAML");
}

static const char *type_name(const fl_config_opt *o)
{
    static const char *const names[] = {"string", "integer", "size", "duration"};
    return o->choices ? "enum" : names[o->type];
}

fl_rc fl_config_reference(fl_buf *out, fl_err *err)
{
    fl_rc rc = fl_buf_appendf(out, err,
                              "| key | environment | type | default | description |\n"
                              "|---|---|---|---|---|\n");

    for (size_t i = 0; i < fl_config__nopts && rc == FL_OK; i++) {
        char env[128];
        fl_config__env_name(fl_config__opts[i].key, "", env, sizeof(env));
        rc = fl_buf_appendf(out, err, "| `%s` | `%s` | %s | %s%s%s | %s%s |\n",
                            fl_config__opts[i].key, env, type_name(&fl_config__opts[i]),
                            *fl_config__opts[i].def ? "`" : "",
                            *fl_config__opts[i].def ? fl_config__opts[i].def : "(empty)",
                            *fl_config__opts[i].def ? "`" : "", fl_config__opts[i].help,
                            fl_config__opts[i].secret ? " (secret: redacted in dumps)" : "");
    }
    if (rc == FL_OK) {
        rc = fl_buf_appendf(out, err,
                            "| `kafka.<property>` | `FLOWD_KAFKA_BOOTSTRAP_SERVERS` for "
                            "`bootstrap.servers` | map | `bootstrap.servers: 127.0.0.1:9092` | "
                            "any librdkafka property, passed verbatim; flowd forces "
                            "`enable.idempotence`, `acks=all`, `partitioner=murmur2_random` |\n");
    }
    if (rc == FL_OK) {
        rc = fl_config__llm_reference(out, err);
    }
    return rc;
}
