/* engine/llm/agent_request.c -- a profile applied to a `call: llm`, and the rules of a
 * classification answer (see agent_request.h). */
#include "engine/llm/agent_request.h"

#include "core/log.h"
#include "core/mem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a classification must answer, and with which agents; a model that is not told
 * the ids would invent its own. */
static char *catalogue_text(const fl_agents *reg)
{
    fl_buf b;

    fl_buf_init(&b, SIZE_MAX);
    (void)fl_buf_appendf(&b, NULL,
                         "Answer with one JSON object {\"intent\": string, \"confidence\": "
                         "number from 0 to 1, \"agent\": string, \"slots\": object}. "
                         "\"agent\" is the id of the assistant best suited, one of:");
    for (size_t i = 0; i < fl_agents_count(reg); i++) {
        const fl_agent *a = fl_agents_at(reg, i);

        (void)fl_buf_appendf(&b, NULL, "\n- %s: %s Intents:", a->id, a->description);
        for (size_t j = 0; j < a->nintents; j++) {
            (void)fl_buf_appendf(&b, NULL, "%s %s", j ? "," : "", a->intents[j].name);
        }
        (void)fl_buf_appendf(&b, NULL, ".");
    }
    return fl_buf_steal(&b);
}

static json_t *system_message(const char *content)
{
    return json_pack("{s:s, s:s}", "role", "system", "content", content);
}

/* The profile with.agent asks for: that id, else the fallback (recording the id). */
static const fl_agent *profile_of(const fl_agents *reg, const json_t *args, fl_llm_agent_use *use)
{
    const char *id = json_string_value(json_object_get(args, "agent"));
    const fl_agent *a;

    if (!id || fl_agents_count(reg) == 0) {
        return NULL;
    }
    a = fl_agents_get(reg, id);
    if (!a) {
        snprintf(use->requested, sizeof(use->requested), "%s", id);
        a = fl_agents_fallback(reg);
    }
    return a;
}

json_t *fl_llm_agent_args(const fl_agents *reg, const json_t *args, fl_llm_agent_use *use)
{
    json_t *out = json_copy((json_t *)args);
    json_t *messages;
    const json_t *old = json_object_get(args, "messages");
    size_t i;
    const json_t *m;

    memset(use, 0, sizeof(*use));
    fl_assert(out != NULL); /* args is an object; jansson fails only on OOM */
    use->classify = json_is_true(json_object_get(args, "classify"));
    use->agent = profile_of(reg, args, use);
    if (!use->agent && !(use->classify && fl_agents_count(reg) > 0)) {
        if (use->classify) {
            json_object_set_new(out, "json", json_true());
        }
        return out;
    }
    messages = json_array();
    if (use->agent) {
        json_array_append_new(messages, system_message(use->agent->system_prompt));
        json_object_set_new(out, "agent", json_string(use->agent->id));
    }
    if (use->classify) {
        char *cat = catalogue_text(reg);

        json_array_append_new(messages, system_message(cat));
        free(cat);
        json_object_set_new(out, "json", json_true());
    }
    if (json_is_array(old)) {
        json_array_foreach(old, i, m)
        {
            json_array_append(messages, (json_t *)m);
        }
    } else if (old) { /* not a list: left for fl_llm_request_init to refuse */
        json_decref(messages);
        return out;
    }
    json_object_set_new(out, "messages", messages);
    return out;
}

static bool known_agent(const fl_agents *reg, const char *id)
{
    return id && *id && (fl_agents_count(reg) == 0 || fl_agents_get(reg, id) != NULL);
}

bool fl_llm_classify_check(const fl_agents *reg, const json_t *answer, char *why, size_t why_size)
{
    const json_t *intent = json_object_get(answer, "intent");
    const json_t *conf = json_object_get(answer, "confidence");
    const json_t *agent = json_object_get(answer, "agent");
    const char *problem = NULL;

    if (!json_is_object(answer)) {
        problem = "the answer is not a JSON object";
    } else if (!json_is_string(intent) || json_string_length(intent) == 0) {
        problem = "\"intent\" is not a non-empty string";
    } else if (!json_is_number(conf) || json_number_value(conf) < 0.0 ||
               json_number_value(conf) > 1.0) {
        problem = "\"confidence\" is not a number from 0 to 1";
    } else if (!json_is_string(agent)) {
        problem = "\"agent\" is not a string";
    } else if (!known_agent(reg, json_string_value(agent))) {
        problem = "\"agent\" names no loaded agent profile";
    } else if (!json_is_object(json_object_get(answer, "slots"))) {
        problem = "\"slots\" is not an object";
    }
    snprintf(why, why_size, "%s", problem ? problem : "");
    return problem == NULL;
}

void fl_llm_classify_route(const fl_agents *reg, json_t *answer)
{
    const json_t *conf = json_object_get(answer, "confidence");
    const char *agent = json_string_value(json_object_get(answer, "agent"));
    bool low = !json_is_number(conf) || json_number_value(conf) < FL_LLM_CLASSIFY_MIN_CONFIDENCE;

    if (!json_is_object(answer) || (agent && strcmp(agent, FL_AGENTS_FALLBACK) == 0)) {
        return;
    }
    if (!low && known_agent(reg, agent)) {
        return;
    }
    if (agent) {
        json_object_set_new(answer, "agent_proposed", json_string(agent));
    }
    json_object_set_new(answer, "agent", json_string(FL_AGENTS_FALLBACK));
}
