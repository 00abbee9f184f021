/* engine/llm/chain_agent.c -- what an agent profile and a classification change in a
 * call (see agent_request.h): the effective arguments, the order of the members, the
 * judging of a classification answer and its one retry before `local`. */
#include "engine/llm/chain_int.h"

#include "core/log.h"
#include "engine/llm_local.h"

#include <stdio.h>
#include <string.h>

void fl_llm_chain_set_agents(fl_llm_chain *chain, fl_agents *agents)
{
    fl_agents_free(chain->agents);
    chain->agents = agents;
}

fl_rc fl_llm_chain_load_agents(fl_llm_chain *chain, const fl_config_engine *engine, fl_err *err)
{
    fl_agents *reg = NULL;
    fl_rc rc = fl_agents_load_config(&reg, engine, err);

    if (rc == FL_OK) {
        fl_llm_chain_set_agents(chain, reg);
    }
    return rc;
}

const fl_agents *fl_llm_chain_agents(const fl_llm_chain *chain)
{
    return chain->agents;
}

/* The chain's own order, with the member named preferred moved to the front. `local`
 * (the profiles' default) means no preference: it is the floor of every chain. */
static void order_members(fl_llm_call *c, const char *preferred)
{
    const fl_llm_chain *ch = c->chain;
    size_t first = ch->n;
    size_t k = 0;

    for (size_t i = 0; preferred && strcmp(preferred, FL_LLM_LOCAL_PROVIDER) != 0 && i < ch->n;
         i++) {
        if (strcmp(ch->members[i].p->name, preferred) == 0) {
            first = i;
            break;
        }
    }
    if (first < ch->n) {
        c->order[k++] = first;
    }
    for (size_t i = 0; i < ch->n; i++) {
        if (i != first) {
            c->order[k++] = i;
        }
    }
}

void fl_llm__call_agent(fl_llm_call *c, const json_t *args)
{
    c->args = fl_llm_agent_args(c->chain->agents, args, &c->agent);
    order_members(c, c->agent.agent ? c->agent.agent->preferred_provider : NULL);
    if (c->agent.requested[0]) {
        fl_log(FL_WARN, "llm.agent_unknown", FL_STR("agent", c->agent.requested),
               FL_STR("used", c->agent.agent->id));
    }
}

void fl_llm__classify_judge(fl_llm_call *c, fl_llm_error *e)
{
    json_t *obj = NULL;
    char why[160];

    if (fl_llm_response_json(&c->at.resp, &obj, NULL) != FL_OK) {
        snprintf(why, sizeof(why), "the answer is not a JSON object");
    } else {
        (void)fl_llm_classify_check(c->chain->agents, obj, why, sizeof(why));
    }
    if (why[0]) {
        e->kind = FL_LLM_ERR_INVALID_OUTPUT;
        e->retryable = false;
        snprintf(e->msg, sizeof(e->msg), "not a classification: %s", why);
    }
    json_decref(obj);
}

/* The position of `local` after the member being tried, or c->idx + 1 without one. */
static size_t local_after(const fl_llm_call *c)
{
    for (size_t j = c->idx + 1; j < c->chain->n; j++) {
        if (!c->chain->members[c->order[j]].ad) {
            return j;
        }
    }
    return c->idx + 1;
}

void fl_llm__classify_failed(fl_llm_call *c, fl_llm_member *m, const fl_llm_error *e)
{
    /* the provider answered: it is up, whatever it said */
    fl_llm_guard_success(&m->guard, 0, fl_clock_now_ms(c->chain->clock));
    c->worst = e->kind;
    c->phase = PH_READY;
    if (c->invalid == 0) {
        c->invalid++;
        fl_log(FL_INFO, "llm.classify_retry", FL_STR("provider", m->p->name),
               FL_STR("reason", e->msg));
        return;
    }
    fl_llm__leave_to(c, local_after(c), fl_llm_err_kind_name(e->kind), e->msg);
}

void fl_llm__agent_usage(const fl_llm_call *c, json_t *usage)
{
    if (c->agent.agent) {
        json_object_set_new(usage, "agent", json_string(c->agent.agent->id));
    }
    if (c->agent.requested[0]) {
        json_object_set_new(usage, "agent_requested", json_string(c->agent.requested));
    }
}
