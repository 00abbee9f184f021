/* engine/llm/guard.c -- circuit breaker, rate limit and daily quotas of one provider
 * (see guard.h). */
#include "engine/llm/guard.h"

#include <string.h>

#define DAY_MS 86400000LL

void fl_llm_guard_init(fl_llm_guard *g, const fl_config_llm_provider *p)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->mu, NULL);
    g->rpm = p->rpm;
    g->failures_to_open = p->breaker_failures;
    g->cooldown_ms = p->breaker_cooldown_ms;
    g->daily_requests = p->daily_requests;
    g->daily_tokens = p->daily_tokens;
    g->tokens = p->rpm;
    g->refilled_at = -1;
    g->day = -1;
}

void fl_llm_guard_deinit(fl_llm_guard *g)
{
    pthread_mutex_destroy(&g->mu);
}

const char *fl_llm_admit_name(fl_llm_admit a)
{
    static const char *const names[] = {"ok", "breaker_open", "rate_limited", "quota_requests",
                                        "quota_tokens"};

    return names[a];
}

/* Open -> half-open once the cool-down has passed (locked). */
static void advance(fl_llm_guard *g, int64_t mono_ms)
{
    if (g->state == FL_LLM_BREAKER_OPEN && mono_ms >= g->open_until) {
        g->state = FL_LLM_BREAKER_HALF_OPEN;
        g->probing = false;
    }
}

static bool rate_ok(fl_llm_guard *g, int64_t mono_ms)
{
    if (g->rpm <= 0) {
        return true;
    }
    if (g->refilled_at >= 0 && mono_ms > g->refilled_at) {
        g->tokens += (double)(mono_ms - g->refilled_at) * g->rpm / 60000.0;
        if (g->tokens > g->rpm) {
            g->tokens = g->rpm;
        }
    }
    g->refilled_at = mono_ms;
    return g->tokens >= 1.0;
}

static void new_day(fl_llm_guard *g, int64_t wall_ms)
{
    int64_t day = wall_ms / DAY_MS;

    if (day != g->day) {
        g->day = day;
        g->day_requests = 0;
        g->day_tokens = 0;
    }
}

static fl_llm_admit check(fl_llm_guard *g, int64_t mono_ms, int64_t wall_ms)
{
    advance(g, mono_ms);
    new_day(g, wall_ms);
    if (g->state == FL_LLM_BREAKER_OPEN || (g->state == FL_LLM_BREAKER_HALF_OPEN && g->probing)) {
        return FL_LLM_ADMIT_BREAKER_OPEN;
    }
    if (g->daily_requests > 0 && g->day_requests >= g->daily_requests) {
        return FL_LLM_ADMIT_QUOTA_REQUESTS;
    }
    if (g->daily_tokens > 0 && g->day_tokens >= g->daily_tokens) {
        return FL_LLM_ADMIT_QUOTA_TOKENS;
    }
    return rate_ok(g, mono_ms) ? FL_LLM_ADMIT_OK : FL_LLM_ADMIT_RATE_LIMITED;
}

fl_llm_admit fl_llm_guard_admit(fl_llm_guard *g, int64_t mono_ms, int64_t wall_ms, bool *probe)
{
    fl_llm_admit a;

    pthread_mutex_lock(&g->mu);
    a = check(g, mono_ms, wall_ms);
    *probe = false;
    if (a == FL_LLM_ADMIT_OK) {
        if (g->rpm > 0) {
            g->tokens -= 1.0;
        }
        g->day_requests++;
        *probe = g->state == FL_LLM_BREAKER_HALF_OPEN;
        g->probing = *probe;
    }
    pthread_mutex_unlock(&g->mu);
    return a;
}

void fl_llm_guard_success(fl_llm_guard *g, long long tokens, int64_t wall_ms)
{
    pthread_mutex_lock(&g->mu);
    new_day(g, wall_ms);
    g->day_tokens += tokens > 0 ? tokens : 0;
    g->state = FL_LLM_BREAKER_CLOSED;
    g->failures = 0;
    g->probing = false;
    pthread_mutex_unlock(&g->mu);
}

void fl_llm_guard_failure(fl_llm_guard *g, int64_t mono_ms)
{
    pthread_mutex_lock(&g->mu);
    g->failures++;
    if (g->state == FL_LLM_BREAKER_HALF_OPEN ||
        (g->failures_to_open > 0 && g->failures >= g->failures_to_open &&
         g->state == FL_LLM_BREAKER_CLOSED)) {
        g->state = FL_LLM_BREAKER_OPEN;
        g->open_until = mono_ms + g->cooldown_ms;
    }
    g->probing = false;
    pthread_mutex_unlock(&g->mu);
}

fl_llm_breaker_state fl_llm_guard_state(fl_llm_guard *g, int64_t mono_ms)
{
    fl_llm_breaker_state s;

    pthread_mutex_lock(&g->mu);
    advance(g, mono_ms);
    s = g->state;
    pthread_mutex_unlock(&g->mu);
    return s;
}
