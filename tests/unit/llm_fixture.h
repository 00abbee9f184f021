/* tests/unit/llm_fixture.h -- the LLM configuration the chain's unit tests share: two
 * OpenAI-shaped providers on an unused port (each base URL names its provider, so a test
 * can tell which one a request went to) and the chain primary -> backup -> local. */
#ifndef FL_TESTS_LLM_FIXTURE_H
#define FL_TESTS_LLM_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "core/config.h"

static fl_config_llm_provider fixture_provider(const char *name, const char *kind)
{
    fl_config_llm_provider p;

    memset(&p, 0, sizeof(p));
    snprintf(p.name, sizeof(p.name), "%s", name);
    snprintf(p.kind, sizeof(p.kind), "%s", kind);
    snprintf(p.base_url, sizeof(p.base_url), "http://127.0.0.1:9/%s/v1", name);
    snprintf(p.model, sizeof(p.model), "m");
    p.timeout_ms = 5000;
    p.max_retries = 1;
    p.retry_delay_ms = 100;
    p.breaker_failures = 3;
    p.breaker_cooldown_ms = 10000;
    return p;
}

/* primary (openai) -> backup (openai, priced 1.0 / 2.0 per 1K tokens) -> local. */
static void fixture_two_and_local(fl_config_llm *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->providers[0] = fixture_provider("primary", "openai");
    cfg->providers[1] = fixture_provider("backup", "openai");
    cfg->providers[1].price_in_per_1k = 1.0;
    cfg->providers[1].price_out_per_1k = 2.0;
    cfg->nproviders = 2;
    snprintf(cfg->chain[0], FL_CONFIG_LLM_NAME_MAX, "primary");
    snprintf(cfg->chain[1], FL_CONFIG_LLM_NAME_MAX, "backup");
    snprintf(cfg->chain[2], FL_CONFIG_LLM_NAME_MAX, "local");
    cfg->nchain = 3;
    cfg->max_response_bytes = 1 << 20;
}

#endif
