/* core/config_llm_dump.c -- the rest of the `llm:` section: resolving it once every
 * source is applied (FLOWD_LLM_CHAIN, API keys from their variables or files, the
 * default chain), `flowd config dump` (keys redacted) and the reference rows.
 *
 * Thread-safety: reentrant; resolve runs once inside fl_config_load. */
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "core/config_int.h"

#define REDACTED             "<redacted>"
#define DEFAULT_MAX_RESPONSE (4LL << 20)
#define KEY_FILE_MAX         (64 * 1024)

/* The built-in provider: always there, so the default chain works with no configuration. */
static const fl_config_llm_provider builtin_local = {.name = "local", .kind = "local"};

const fl_config_llm_provider *fl_config_llm_provider_get(const fl_config_llm *llm, const char *name)
{
    for (size_t i = 0; i < llm->nproviders; i++) {
        if (strcmp(llm->providers[i].name, name) == 0) {
            return &llm->providers[i];
        }
    }
    return strcmp(name, "local") == 0 ? &builtin_local : NULL;
}

/* ---- resolve --------------------------------------------------------------------------- */

static fl_rc key_from_file(fl_config_llm_provider *p, fl_err *err)
{
    fl_buf b;
    fl_err ferr = FL_ERR_INIT;
    fl_rc rc;

    fl_buf_init(&b, KEY_FILE_MAX);
    rc = fl_buf_read_file(&b, p->api_key_file, &ferr);
    if (rc != FL_OK) {
        rc = fl_err_set(err, FL_EINVAL, "llm.providers.%s.api_key_file: error: %s", p->name,
                        ferr.msg);
        goto out;
    }
    while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r')) {
        b.data[--b.len] = '\0';
    }
    if (b.len >= sizeof(p->api_key) || memchr(b.data, '\n', b.len)) {
        rc = fl_err_set(err, FL_EINVAL,
                        "llm.providers.%s.api_key_file: error: the file must "
                        "hold one key of at most %zu bytes",
                        p->name, sizeof(p->api_key) - 1);
        goto out;
    }
    memcpy(p->api_key, b.data ? b.data : "", b.len + 1);
out:
    fl_buf_deinit(&b);
    return rc;
}

static fl_rc resolve_key(fl_config_llm_provider *p, char *const *envp, fl_err *err)
{
    const char *v;

    if (*p->api_key_file) {
        return key_from_file(p, err);
    }
    if (!*p->api_key_env) {
        return FL_OK;
    }
    v = fl_config__env_get(envp, p->api_key_env);
    if (!v || !*v) {
        return fl_err_set(err, FL_EINVAL,
                          "llm.providers.%s.api_key_env: error: the variable "
                          "\"%s\" is not set",
                          p->name, p->api_key_env);
    }
    if (strlen(v) >= sizeof(p->api_key) || strpbrk(v, "\r\n")) {
        return fl_err_set(err, FL_EINVAL,
                          "llm.providers.%s.api_key_env: error: the key in "
                          "\"%s\" is not one line of at most %zu bytes",
                          p->name, p->api_key_env, sizeof(p->api_key) - 1);
    }
    memcpy(p->api_key, v, strlen(v) + 1);
    return FL_OK;
}

/* FLOWD_LLM_CHAIN=primary,local replaces the file's chain (one deployment, two setups). */
static fl_rc chain_from_env(fl_config_llm *llm, const char *v, fl_err *err)
{
    llm->nchain = 0;
    for (const char *p = v; *p;) {
        size_t len = strcspn(p, ",");

        if (len == 0 || len >= FL_CONFIG_LLM_NAME_MAX ||
            llm->nchain > FL_CONFIG_LLM_MAX_PROVIDERS) {
            return fl_err_set(err, FL_EINVAL,
                              "FLOWD_LLM_CHAIN: error: a comma-separated list "
                              "of at most %d provider names",
                              FL_CONFIG_LLM_MAX_PROVIDERS + 1);
        }
        snprintf(llm->chain[llm->nchain++], FL_CONFIG_LLM_NAME_MAX, "%.*s", (int)len, p);
        p += len + (p[len] == ',');
    }
    return FL_OK;
}

static bool has_local(const fl_config_llm *llm)
{
    for (size_t i = 0; i < llm->nchain; i++) {
        if (strcmp(llm->chain[i], "local") == 0) {
            return true;
        }
    }
    return false;
}

/* Every name must be known and appear once; no chain means every provider, then local. */
static fl_rc check_chain(fl_config_llm *llm, fl_err *err)
{
    if (llm->nchain == 0) {
        for (size_t i = 0; i < llm->nproviders; i++) {
            snprintf(llm->chain[llm->nchain++], FL_CONFIG_LLM_NAME_MAX, "%s",
                     llm->providers[i].name);
        }
        if (!has_local(llm)) {
            snprintf(llm->chain[llm->nchain++], FL_CONFIG_LLM_NAME_MAX, "local");
        }
    }
    for (size_t i = 0; i < llm->nchain; i++) {
        if (!fl_config_llm_provider_get(llm, llm->chain[i])) {
            return fl_err_set(err, FL_EINVAL, "llm.chain: error: unknown provider \"%s\"",
                              llm->chain[i]);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(llm->chain[i], llm->chain[j]) == 0) {
                return fl_err_set(err, FL_EINVAL, "llm.chain: error: \"%s\" appears twice",
                                  llm->chain[i]);
            }
        }
    }
    return FL_OK;
}

fl_rc fl_config__llm_resolve(fl_config_llm *llm, char *const *envp, fl_err *err)
{
    const char *chain = fl_config__env_get(envp, "FLOWD_LLM_CHAIN");
    fl_rc rc = FL_OK;

    if (llm->max_response_bytes == 0) {
        llm->max_response_bytes = DEFAULT_MAX_RESPONSE;
    }
    if (chain && *chain) {
        rc = chain_from_env(llm, chain, err);
    }
    for (size_t i = 0; i < llm->nproviders && rc == FL_OK; i++) {
        rc = resolve_key(&llm->providers[i], envp, err);
    }
    return rc == FL_OK ? check_chain(llm, err) : rc;
}

/* ---- dump ------------------------------------------------------------------------------ */

static bool emit(yaml_emitter_t *em, yaml_event_t *ev)
{
    return yaml_emitter_emit(em, ev) != 0;
}

static bool scalar(yaml_emitter_t *em, const char *s)
{
    yaml_event_t ev;

    yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1,
                                 YAML_ANY_SCALAR_STYLE);
    return emit(em, &ev);
}

static bool open_map(yaml_emitter_t *em, const char *key, yaml_mapping_style_t style)
{
    yaml_event_t ev;

    yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, style);
    return scalar(em, key) && emit(em, &ev);
}

static bool close_map(yaml_emitter_t *em)
{
    yaml_event_t ev;

    yaml_mapping_end_event_initialize(&ev);
    return emit(em, &ev);
}

static bool pair(yaml_emitter_t *em, const char *key, const char *value)
{
    return scalar(em, key) && scalar(em, value);
}

static void fmt_ms(int ms, char *out, size_t size)
{
    if (ms % 1000 == 0 && ms) {
        snprintf(out, size, "%ds", ms / 1000);
    } else {
        snprintf(out, size, "%dms", ms);
    }
}

static bool emit_numbers(yaml_emitter_t *em, const fl_config_llm_provider *p)
{
    char t[4][32], n[6][32];

    fmt_ms(p->timeout_ms, t[0], sizeof(t[0]));
    fmt_ms(p->retry_delay_ms, t[1], sizeof(t[1]));
    fmt_ms(p->breaker_cooldown_ms, t[2], sizeof(t[2]));
    snprintf(n[0], sizeof(n[0]), "%d", p->rpm);
    snprintf(n[1], sizeof(n[1]), "%lld", p->daily_requests);
    snprintf(n[2], sizeof(n[2]), "%lld", p->daily_tokens);
    snprintf(n[3], sizeof(n[3]), "%g", p->price_in_per_1k);
    snprintf(n[4], sizeof(n[4]), "%g", p->price_out_per_1k);
    snprintf(n[5], sizeof(n[5]), "%d", p->max_retries);
    snprintf(t[3], sizeof(t[3]), "%d", p->breaker_failures);
    return pair(em, "timeout", t[0]) && pair(em, "rpm", n[0]) && pair(em, "daily_requests", n[1]) &&
           pair(em, "daily_tokens", n[2]) && pair(em, "price_in_per_1k", n[3]) &&
           pair(em, "price_out_per_1k", n[4]) && pair(em, "max_retries", n[5]) &&
           pair(em, "retry_delay", t[1]) && pair(em, "breaker_failures", t[3]) &&
           pair(em, "breaker_cooldown", t[2]) && pair(em, "stream", p->stream ? "true" : "false");
}

static bool emit_provider(yaml_emitter_t *em, const fl_config_llm_provider *p)
{
    bool ok = open_map(em, p->name, YAML_BLOCK_MAPPING_STYLE) && pair(em, "kind", p->kind) &&
              pair(em, "base_url", p->base_url) && pair(em, "model", p->model);

    if (ok && *p->api_key_env) {
        ok = pair(em, "api_key_env", p->api_key_env);
    }
    if (ok && *p->api_key_file) {
        ok = pair(em, "api_key_file", p->api_key_file);
    }
    if (ok && *p->api_key) {
        ok = pair(em, "api_key", REDACTED); /* says a key was found, never which */
    }
    return ok && emit_numbers(em, p) && close_map(em);
}

bool fl_config__llm_dump(struct yaml_emitter_s *em, const fl_config_llm *llm)
{
    yaml_event_t ev;
    char cap[32];
    bool ok;

    snprintf(cap, sizeof(cap), "%lld", llm->max_response_bytes);
    yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_FLOW_SEQUENCE_STYLE);
    ok = open_map(em, "llm", YAML_BLOCK_MAPPING_STYLE) && scalar(em, "chain") && emit(em, &ev);
    for (size_t i = 0; i < llm->nchain && ok; i++) {
        ok = scalar(em, llm->chain[i]);
    }
    yaml_sequence_end_event_initialize(&ev);
    ok = ok && emit(em, &ev) && pair(em, "max_response_bytes", cap) &&
         open_map(em, "providers", YAML_BLOCK_MAPPING_STYLE);
    for (size_t i = 0; i < llm->nproviders && ok; i++) {
        ok = emit_provider(em, &llm->providers[i]);
    }
    return ok && close_map(em) && close_map(em);
}

/* ---- reference ------------------------------------------------------------------------- */

typedef struct ref_row {
    const char *key, *env, *type, *def, *help;
} ref_row;

static const ref_row rows[] = {
    {"llm.chain", "`FLOWD_LLM_CHAIN` (comma-separated)", "list",
     "every provider in file order, then `local`",
     "fallback order of `call: llm`; `local` (built in, no network) is always available"},
    {"llm.max_response_bytes", "", "size", "`4MiB`", "largest answer of one LLM call"},
    {"llm.providers.<name>.kind", "", "enum", "(required)",
     "local, openai (also DeepSeek, Groq, vLLM, llama.cpp, Ollama /v1), anthropic, gemini, "
     "ollama"},
    {"llm.providers.<name>.base_url", "", "string", "the vendor's", "endpoint root"},
    {"llm.providers.<name>.model", "", "string", "(required but for local)", "model name"},
    {"llm.providers.<name>.api_key_env", "", "string", "(empty)",
     "variable holding the API key (read at start; never logged or dumped)"},
    {"llm.providers.<name>.api_key_file", "", "string", "(empty)", "file holding the API key"},
    {"llm.providers.<name>.timeout", "", "duration", "`30s`", "time allowed for one attempt"},
    {"llm.providers.<name>.rpm", "", "integer", "`0`",
     "requests per minute, per process (0 = unlimited; beyond: next provider)"},
    {"llm.providers.<name>.daily_requests", "", "integer", "`0`",
     "requests per UTC day, per process, in memory (0 = unlimited)"},
    {"llm.providers.<name>.daily_tokens", "", "integer", "`0`",
     "tokens in + out per UTC day, per process, in memory (0 = unlimited)"},
    {"llm.providers.<name>.price_in_per_1k", "", "number", "`0`", "cost of 1K input tokens"},
    {"llm.providers.<name>.price_out_per_1k", "", "number", "`0`", "cost of 1K output tokens"},
    {"llm.providers.<name>.max_retries", "", "integer", "`2`",
     "retries on 429/5xx/timeouts (honouring Retry-After) before the next provider"},
    {"llm.providers.<name>.retry_delay", "", "duration", "`500ms`",
     "first retry delay (exponential, jittered)"},
    {"llm.providers.<name>.breaker_failures", "", "integer", "`5`",
     "consecutive failures that open the circuit breaker (0 = never)"},
    {"llm.providers.<name>.breaker_cooldown", "", "duration", "`30s`",
     "how long an open breaker skips the provider before one half-open probe"},
    {"llm.providers.<name>.stream", "", "boolean", "`false`",
     "ask for a streamed answer (SSE or NDJSON), parsed as it arrives"},
};

fl_rc fl_config__llm_reference(fl_buf *out, fl_err *err)
{
    fl_rc rc = FL_OK;

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]) && rc == FL_OK; i++) {
        rc = fl_buf_appendf(out, err, "| `%s` | %s | %s | %s | %s |\n", rows[i].key,
                            *rows[i].env ? rows[i].env : "(file only)", rows[i].type, rows[i].def,
                            rows[i].help);
    }
    return rc;
}
