/* tests/unit/test_llm_config.c -- the `llm:` section of flowd.yaml: providers with their
 * defaults, the chain (explicit, default, FLOWD_LLM_CHAIN), API keys from a variable or a
 * file and never from the file itself, errors with file:line:col, and `config dump`
 * redacting the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"

static char path[64];

static fl_rc load(const char *yaml, char *const *envp, fl_config **cfg, fl_err *err)
{
    FILE *f;
    int fd;

    snprintf(path, sizeof(path), "/tmp/flowd-llm-cfg-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fputs(yaml, f);
    fclose(f);
    fl_err_clear(err);
    return fl_config_load(cfg, path, envp, NULL, 0, err);
}

static void test_llm_config_providers_and_defaults(void **state)
{
    char *envp[] = {"OPENAI_KEY=sk-secret-1", NULL};
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;
    const fl_config_llm_provider *p;

    (void)state;
    assert_int_equal(
        load("llm:\n"
             "  chain: [primary, local]\n"
             "  providers:\n"
             "    primary: {kind: openai, model: gpt-4o-mini, api_key_env: OPENAI_KEY,\n"
             "              timeout: 5s, rpm: 600, price_in_per_1k: 0.15,\n"
             "              price_out_per_1k: 0.6, stream: true}\n"
             "    claude:\n"
             "      kind: anthropic\n"
             "      model: claude-x\n",
             envp, &cfg, &err),
        FL_OK);
    unlink(path);
    assert_int_equal(cfg->llm.nproviders, 2);
    assert_int_equal(cfg->llm.nchain, 2);
    assert_string_equal(cfg->llm.chain[1], "local");
    p = fl_config_llm_provider_get(&cfg->llm, "primary");
    assert_string_equal(p->api_key, "sk-secret-1");
    assert_string_equal(p->base_url, "https://api.openai.com/v1");
    assert_int_equal(p->timeout_ms, 5000);
    assert_int_equal(p->rpm, 600);
    assert_true(p->price_out_per_1k == 0.6);
    assert_int_equal(p->stream, 1);
    p = fl_config_llm_provider_get(&cfg->llm, "claude");
    assert_int_equal(p->max_retries, 2); /* defaults */
    assert_int_equal(p->breaker_failures, 5);
    assert_int_equal(p->breaker_cooldown_ms, 30000);
    assert_string_equal(p->base_url, "https://api.anthropic.com");
    assert_int_equal(cfg->llm.max_response_bytes, 4 << 20);
    fl_config_free(cfg);
}

static void test_llm_config_default_chain_and_env(void **state)
{
    char *envp[] = {"FLOWD_LLM_CHAIN=b,local", NULL};
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;
    const char *yaml = "llm:\n  providers:\n    a: {kind: ollama, model: llama3}\n"
                       "    b: {kind: gemini, model: g}\n";

    (void)state;
    assert_int_equal(load("", NULL, &cfg, &err), FL_OK);
    unlink(path);
    assert_int_equal(cfg->llm.nchain, 1); /* nothing configured: local */
    assert_string_equal(cfg->llm.chain[0], "local");
    fl_config_free(cfg);
    assert_int_equal(load(yaml, NULL, &cfg, &err), FL_OK);
    unlink(path);
    assert_int_equal(cfg->llm.nchain, 3);
    assert_string_equal(cfg->llm.chain[0], "a");
    assert_string_equal(cfg->llm.chain[2], "local");
    fl_config_free(cfg);
    assert_int_equal(load(yaml, envp, &cfg, &err), FL_OK);
    unlink(path);
    assert_int_equal(cfg->llm.nchain, 2);
    assert_string_equal(cfg->llm.chain[0], "b");
    fl_config_free(cfg);
}

static void expect_error(const char *yaml, char *const *envp, const char *want)
{
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;

    assert_int_equal(load(yaml, envp, &cfg, &err), FL_EINVAL);
    unlink(path);
    if (!strstr(err.msg, want)) {
        fail_msg("\"%s\" does not contain \"%s\"", err.msg, want);
    }
}

static void test_llm_config_errors(void **state)
{
    (void)state;
    expect_error("llm:\n  providers:\n    a: {kind: openai, model: m, colour: red}\n", NULL,
                 ":3:33: error: unknown key \"llm.providers.a.colour\"");
    expect_error("llm:\n  providers:\n    a: {kind: openai, model: m, timeout: 30}\n", NULL,
                 ":3:42: error: invalid value for \"llm.providers.a.timeout\"");
    expect_error("llm:\n  providers:\n    a: {kind: openai, model: m, api_key: sk-1}\n", NULL,
                 "an API key is never written in the file");
    expect_error("llm:\n  providers:\n    a: {kind: openai}\n", NULL, "needs a model");
    expect_error("llm:\n  providers:\n    a: {kind: cohere, model: m}\n", NULL,
                 "is not one of local, openai");
    expect_error("llm:\n  chain: [nope]\n", NULL, "unknown provider \"nope\"");
    expect_error("llm:\n  chain: [local, local]\n", NULL, "names \"local\" twice");
    expect_error("llm:\n  providers:\n    a: {kind: openai, model: m, api_key_env: NOPE}\n", NULL,
                 "the variable \"NOPE\" is not set");
    expect_error("llm:\n  providers:\n    a: {kind: openai, model: m, rpm: -1}\n", NULL,
                 "llm.providers.a.rpm");
    expect_error("llm:\n  providers:\n    a: {kind: openai, model: m, price_in_per_1k: x}\n", NULL,
                 "is not a price");
    expect_error("llm:\n  temperature: 1\n", NULL, ":2:3: error: unknown key \"llm.temperature\"");
    expect_error("llm:\n  chain: [a]\n  chain: [b]\n", NULL, "duplicate key \"llm.chain\"");
    expect_error("llm: [a]\n", NULL, "must be a value or a mapping");
}

static void test_llm_config_dump_redacts_the_key(void **state)
{
    char *envp[] = {"K=sk-very-secret", NULL};
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;
    fl_buf out;

    (void)state;
    assert_int_equal(load("llm:\n  providers:\n    a: {kind: openai, model: m, api_key_env: K}\n",
                          envp, &cfg, &err),
                     FL_OK);
    unlink(path);
    fl_buf_init(&out, 1 << 20);
    assert_int_equal(fl_config_dump(cfg, &out, &err), FL_OK);
    assert_null(strstr(out.data, "sk-very-secret"));
    assert_non_null(strstr(out.data, "api_key: <redacted>"));
    assert_non_null(strstr(out.data, "chain: [a, local]"));
    fl_buf_reset(&out);
    assert_int_equal(fl_config_reference(&out, &err), FL_OK);
    assert_non_null(strstr(out.data, "| `llm.providers.<name>.rpm` |"));
    fl_buf_deinit(&out);
    fl_config_free(cfg);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llm_config_providers_and_defaults),
        cmocka_unit_test(test_llm_config_default_chain_and_env),
        cmocka_unit_test(test_llm_config_errors),
        cmocka_unit_test(test_llm_config_dump_redacts_the_key),
    };

    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
