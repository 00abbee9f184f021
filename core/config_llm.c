/* core/config_llm.c -- the `llm:` section of flowd.yaml: the providers and the fallback
 * chain (issue 6). Its shape is fixed and small:
 *
 *   llm:
 *     chain: [primary, backup, local]
 *     max_response_bytes: 4MiB
 *     providers:
 *       primary: {kind: openai, model: gpt-4o-mini, api_key_env: OPENAI_API_KEY, ...}
 *
 * Like the rest of the file it is read with libyaml's event parser, four levels at most,
 * and every unknown key or bad value is an error citing file:line:col. API keys are never
 * read from the file itself (a file is easily shared): only from a variable or a file
 * named here, resolved in fl_config__llm_resolve with the rest of the environment.
 *
 * Thread-safety: reentrant. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/config_int.h"

typedef enum pkind { P_STR, P_KIND, P_INT, P_DUR, P_LL, P_PRICE, P_BOOL } pkind;

/* One setting of a provider. */
typedef struct pset {
    const char *key;
    pkind kind;
    size_t off; /* into fl_config_llm_provider */
    size_t size;
    long long min, max;
} pset;

#define PS(field, kind, min, max)                  \
    {#field,                                       \
     kind,                                         \
     offsetof(fl_config_llm_provider, field),      \
     sizeof(((fl_config_llm_provider *)0)->field), \
     min,                                          \
     max}
#define PS_DUR(key, field, min, max)               \
    {key,                                          \
     P_DUR,                                        \
     offsetof(fl_config_llm_provider, field),      \
     sizeof(((fl_config_llm_provider *)0)->field), \
     min,                                          \
     max}

static const pset psets[] = {
    PS(kind, P_KIND, 0, 0),
    PS(base_url, P_STR, 0, 0),
    PS(model, P_STR, 0, 0),
    PS(api_key_env, P_STR, 0, 0),
    PS(api_key_file, P_STR, 0, 0),
    PS_DUR("timeout", timeout_ms, 100, 3600000),
    PS(rpm, P_INT, 0, 1000000),
    PS(daily_requests, P_LL, 0, 1000000000000LL),
    PS(daily_tokens, P_LL, 0, 1000000000000000LL),
    PS(price_in_per_1k, P_PRICE, 0, 0),
    PS(price_out_per_1k, P_PRICE, 0, 0),
    PS(max_retries, P_INT, 0, 10),
    PS_DUR("retry_delay", retry_delay_ms, 0, 600000),
    PS(breaker_failures, P_INT, 0, 1000),
    PS_DUR("breaker_cooldown", breaker_cooldown_ms, 0, 3600000),
    PS(stream, P_BOOL, 0, 0),
};

static const char *const kinds[] = {"local", "openai", "anthropic", "gemini", "ollama", NULL};

typedef struct lctx {
    yaml_parser_t *p;
    const char *file;
    fl_config *cfg;
    unsigned pseen; /* settings of the provider being read: duplicates are errors */
    unsigned sseen; /* chain, providers, max_response_bytes */
} lctx;

static fl_config_origin at(const lctx *c, yaml_mark_t m)
{
    return (fl_config_origin){.file = c->file, .line = m.line + 1, .col = m.column + 1};
}

/* On failure the event is left zeroed, so yaml_event_delete() on it stays safe. */
static fl_rc next(lctx *c, yaml_event_t *ev, fl_err *err)
{
    fl_config_origin o;

    memset(ev, 0, sizeof(*ev));
    if (yaml_parser_parse(c->p, ev)) {
        return FL_OK;
    }
    memset(ev, 0, sizeof(*ev));
    o = at(c, c->p->problem_mark);
    return fl_config__error(err, &o, "%s", c->p->problem ? c->p->problem : "invalid YAML");
}

static const char *sval(const yaml_event_t *ev)
{
    return (const char *)ev->data.scalar.value;
}

static fl_rc want(lctx *c, const yaml_event_t *ev, yaml_event_type_t type, const char *key,
                  const char *what, fl_err *err)
{
    fl_config_origin o = at(c, ev->start_mark);

    if (ev->type == type) {
        return FL_OK;
    }
    return fl_config__error(err, &o, "\"%s\" must be %s", key, what);
}

static fl_rc copy_str(char *dst, size_t size, const char *v, const char *key,
                      const fl_config_origin *o, fl_err *err)
{
    if (strlen(v) >= size) {
        return fl_config__error(err, o, "invalid value for \"%s\": longer than %zu bytes", key,
                                size - 1);
    }
    memcpy(dst, v, strlen(v) + 1);
    return FL_OK;
}

static fl_rc set_ll(long long *dst, const pset *s, const char *v, const char *key,
                    const fl_config_origin *o, fl_err *err)
{
    char *end;
    long long n;

    errno = 0;
    n = strtoll(v, &end, 10);
    if (end == v || *end != '\0' || errno != 0 || n < s->min || n > s->max) {
        return fl_config__error(err, o,
                                "invalid value for \"%s\": must be an integer from %lld "
                                "to %lld",
                                key, s->min, s->max);
    }
    *dst = n;
    return FL_OK;
}

static fl_rc set_price(double *dst, const char *v, const char *key, const fl_config_origin *o,
                       fl_err *err)
{
    char *end;
    double d;

    errno = 0;
    d = strtod(v, &end);
    if (end == v || *end != '\0' || errno != 0 || !isfinite(d) || d < 0 || d > 1e6) {
        return fl_config__error(err, o,
                                "invalid value for \"%s\": \"%s\" is not a price "
                                "from 0 to 1000000",
                                key, v);
    }
    *dst = d;
    return FL_OK;
}

static fl_rc set_bool(int *dst, const char *v, const char *key, const fl_config_origin *o,
                      fl_err *err)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) {
        *dst = strcmp(v, "true") == 0;
        return FL_OK;
    }
    return fl_config__error(err, o, "invalid value for \"%s\": use true or false", key);
}

/* Integers and durations go through the table parser, for the same messages. */
static fl_rc set_num(lctx *c, size_t index, const pset *s, const char *v, const char *key,
                     const fl_config_origin *o, fl_err *err)
{
    fl_config_opt opt = {.key = key,
                         .type = s->kind == P_INT ? FL_CONFIG_INT : FL_CONFIG_DURATION,
                         .offset = offsetof(fl_config, llm.providers) +
                                   index * sizeof(fl_config_llm_provider) + s->off,
                         .def = "",
                         .min = s->min,
                         .max = s->max};

    return fl_config__set(c->cfg, &opt, v, o, err);
}

static fl_rc set_one(lctx *c, size_t index, const pset *s, const char *v, const char *key,
                     const fl_config_origin *o, fl_err *err)
{
    char *field = (char *)&c->cfg->llm.providers[index] + s->off;

    switch (s->kind) {
    case P_KIND:
        for (const char *const *k = kinds; *k; k++) {
            if (strcmp(*k, v) == 0) {
                return copy_str(field, s->size, v, key, o, err);
            }
        }
        return fl_config__error(err, o,
                                "invalid value for \"%s\": \"%s\" is not one of local, "
                                "openai, anthropic, gemini, ollama",
                                key, v);
    case P_STR:
        return copy_str(field, s->size, v, key, o, err);
    case P_LL:
        return set_ll((long long *)field, s, v, key, o, err);
    case P_PRICE:
        return set_price((double *)(void *)field, v, key, o, err);
    case P_BOOL:
        return set_bool((int *)field, v, key, o, err);
    default:
        return set_num(c, index, s, v, key, o, err);
    }
}

/* One `setting: value` of provider `index`. */
static fl_rc provider_setting(lctx *c, size_t index, const yaml_event_t *k, const yaml_event_t *v,
                              fl_err *err)
{
    fl_config_origin ko = at(c, k->start_mark), vo = at(c, v->start_mark);
    char key[200];

    if (k->type != YAML_SCALAR_EVENT) {
        return fl_config__error(err, &ko, "keys must be strings");
    }
    snprintf(key, sizeof(key), "llm.providers.%s.%s", c->cfg->llm.providers[index].name, sval(k));
    if (strcmp(sval(k), "api_key") == 0) {
        return fl_config__error(err, &ko,
                                "\"%s\": an API key is never written in the file; use "
                                "api_key_env or api_key_file",
                                key);
    }
    for (size_t i = 0; i < sizeof(psets) / sizeof(psets[0]); i++) {
        if (strcmp(psets[i].key, sval(k)) == 0) {
            if (c->pseen & (1u << i)) {
                return fl_config__error(err, &ko, "duplicate key \"%s\"", key);
            }
            c->pseen |= 1u << i;
            if (v->type != YAML_SCALAR_EVENT) {
                return fl_config__error(err, &vo, "\"%s\" takes a single value", key);
            }
            return set_one(c, index, &psets[i], sval(v), key, &vo, err);
        }
    }
    return fl_config__error(err, &ko, "unknown key \"%s\"", key);
}

/* Key/value pairs until MAPPING-END; fn handles each. */
typedef fl_rc (*pair_fn)(lctx *c, size_t index, const yaml_event_t *k, const yaml_event_t *v,
                         fl_err *err);

static fl_rc walk(lctx *c, size_t index, pair_fn fn, fl_err *err)
{
    yaml_event_t k, v;
    fl_rc rc = FL_OK;

    while (rc == FL_OK) {
        rc = next(c, &k, err);
        if (rc != FL_OK) {
            break;
        }
        if (k.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&k);
            break;
        }
        rc = next(c, &v, err);
        if (rc == FL_OK) {
            rc = fn(c, index, &k, &v, err);
        }
        yaml_event_delete(&k);
        yaml_event_delete(&v);
    }
    return rc;
}

static void provider_defaults(fl_config_llm_provider *p, const char *name)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->timeout_ms = 30000;
    p->max_retries = 2;
    p->retry_delay_ms = 500;
    p->breaker_failures = 5;
    p->breaker_cooldown_ms = 30000;
}

/* The default endpoint of each kind (the vendors' documented base URLs). */
static const char *default_base_url(const char *kind)
{
    if (strcmp(kind, "openai") == 0) {
        return "https://api.openai.com/v1";
    }
    if (strcmp(kind, "anthropic") == 0) {
        return "https://api.anthropic.com";
    }
    if (strcmp(kind, "gemini") == 0) {
        return "https://generativelanguage.googleapis.com/v1beta";
    }
    return strcmp(kind, "ollama") == 0 ? "http://127.0.0.1:11434" : "";
}

/* What a whole provider mapping must say. */
static fl_rc provider_check(fl_config_llm_provider *p, const fl_config_origin *o, fl_err *err)
{
    if (!*p->kind) {
        return fl_config__error(err, o, "\"llm.providers.%s\" needs a kind", p->name);
    }
    if (strcmp(p->kind, "local") != 0 && !*p->model) {
        return fl_config__error(err, o, "\"llm.providers.%s\" needs a model", p->name);
    }
    if (*p->api_key_env && *p->api_key_file) {
        return fl_config__error(err, o,
                                "\"llm.providers.%s\": give api_key_env or "
                                "api_key_file, not both",
                                p->name);
    }
    if (!*p->base_url) {
        snprintf(p->base_url, sizeof(p->base_url), "%s", default_base_url(p->kind));
    }
    return FL_OK;
}

static fl_rc provider_pair(lctx *c, size_t unused, const yaml_event_t *k, const yaml_event_t *v,
                           fl_err *err)
{
    fl_config_llm *llm = &c->cfg->llm;
    fl_config_origin ko = at(c, k->start_mark);
    fl_rc rc;

    (void)unused;
    if (k->type != YAML_SCALAR_EVENT || !*sval(k) || strlen(sval(k)) >= FL_CONFIG_LLM_NAME_MAX ||
        strpbrk(sval(k), ", \t")) {
        return fl_config__error(err, &ko,
                                "provider names must be strings of 1 to %d "
                                "characters without commas or spaces",
                                FL_CONFIG_LLM_NAME_MAX - 1);
    }
    for (size_t i = 0; i < llm->nproviders; i++) {
        if (strcmp(llm->providers[i].name, sval(k)) == 0) {
            return fl_config__error(err, &ko, "duplicate provider \"%s\"", sval(k));
        }
    }
    if (llm->nproviders >= FL_CONFIG_LLM_MAX_PROVIDERS) {
        return fl_config__error(err, &ko, "too many providers (at most %d)",
                                FL_CONFIG_LLM_MAX_PROVIDERS);
    }
    rc = want(c, v, YAML_MAPPING_START_EVENT, sval(k), "a mapping of settings", err);
    if (rc != FL_OK) {
        return rc;
    }
    provider_defaults(&llm->providers[llm->nproviders], sval(k));
    c->pseen = 0;
    rc = walk(c, llm->nproviders, provider_setting, err);
    if (rc == FL_OK) {
        rc = provider_check(&llm->providers[llm->nproviders], &ko, err);
    }
    llm->nproviders++;
    return rc;
}

static fl_rc chain_add(fl_config_llm *llm, const char *name, const fl_config_origin *o, fl_err *err)
{
    if (!*name || strlen(name) >= FL_CONFIG_LLM_NAME_MAX) {
        return fl_config__error(err, o, "\"llm.chain\": provider names are 1 to %d characters",
                                FL_CONFIG_LLM_NAME_MAX - 1);
    }
    if (llm->nchain >= FL_CONFIG_LLM_MAX_PROVIDERS + 1) {
        return fl_config__error(err, o, "\"llm.chain\" is too long");
    }
    for (size_t i = 0; i < llm->nchain; i++) {
        if (strcmp(llm->chain[i], name) == 0) {
            return fl_config__error(err, o, "\"llm.chain\" names \"%s\" twice", name);
        }
    }
    snprintf(llm->chain[llm->nchain++], FL_CONFIG_LLM_NAME_MAX, "%s", name);
    return FL_OK;
}

/* chain: [a, b, local] -- its SEQUENCE-START already read. */
static fl_rc chain_list(lctx *c, fl_err *err)
{
    yaml_event_t ev;
    fl_rc rc = FL_OK;

    c->cfg->llm.nchain = 0;
    while (rc == FL_OK) {
        fl_config_origin o;

        rc = next(c, &ev, err);
        if (rc != FL_OK || ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        o = at(c, ev.start_mark);
        rc = want(c, &ev, YAML_SCALAR_EVENT, "llm.chain", "a list of provider names", err);
        if (rc == FL_OK) {
            rc = chain_add(&c->cfg->llm, sval(&ev), &o, err);
        }
        yaml_event_delete(&ev);
    }
    return rc;
}

static fl_rc section_seen(lctx *c, const char *key, const fl_config_origin *o, fl_err *err)
{
    static const char *const keys[] = {"chain", "providers", "max_response_bytes"};

    for (unsigned i = 0; i < 3; i++) {
        if (strcmp(keys[i], key) == 0 && (c->sseen & (1u << i))) {
            return fl_config__error(err, o, "duplicate key \"llm.%s\"", key);
        }
        if (strcmp(keys[i], key) == 0) {
            c->sseen |= 1u << i;
        }
    }
    return FL_OK;
}

static fl_rc section_pair(lctx *c, size_t unused, const yaml_event_t *k, const yaml_event_t *v,
                          fl_err *err)
{
    fl_config_origin ko = at(c, k->start_mark), vo = at(c, v->start_mark);
    fl_config_opt cap = {.key = "llm.max_response_bytes",
                         .type = FL_CONFIG_BYTES,
                         .offset = offsetof(fl_config, llm.max_response_bytes),
                         .def = "",
                         .min = 1024,
                         .max = 256LL << 20};
    fl_rc rc;

    (void)unused;
    if (k->type != YAML_SCALAR_EVENT) {
        return fl_config__error(err, &ko, "keys must be strings");
    }
    rc = section_seen(c, sval(k), &ko, err);
    if (rc != FL_OK) {
        return rc;
    }
    if (strcmp(sval(k), "chain") == 0) {
        rc = want(c, v, YAML_SEQUENCE_START_EVENT, "llm.chain", "a list of provider names", err);
        return rc == FL_OK ? chain_list(c, err) : rc;
    }
    if (strcmp(sval(k), "providers") == 0) {
        rc = want(c, v, YAML_MAPPING_START_EVENT, "llm.providers", "a mapping of names", err);
        return rc == FL_OK ? walk(c, 0, provider_pair, err) : rc;
    }
    if (strcmp(sval(k), "max_response_bytes") == 0) {
        rc = want(c, v, YAML_SCALAR_EVENT, "llm.max_response_bytes", "a size", err);
        return rc == FL_OK ? fl_config__set(c->cfg, &cap, sval(v), &vo, err) : rc;
    }
    return fl_config__error(err, &ko, "unknown key \"llm.%s\"", sval(k));
}

fl_rc fl_config__llm_yaml(struct yaml_parser_s *parser, const char *file, fl_config *cfg,
                          fl_err *err)
{
    lctx c = {.p = parser, .file = file, .cfg = cfg};

    return walk(&c, 0, section_pair, err);
}
