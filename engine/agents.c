/* engine/agents.c -- pass 2 of the agent profile loader: node tree -> fl_agent.
 *
 * Every problem is added to the diags with the line:col of the node at fault and the
 * walk goes on (a broken part is left out), so one run reports everything. Slots are
 * read before intents and allowed actions before intents, so an intent's
 * required_slots and action are checked against what the profile declares.
 *
 * Thread-safety: reentrant. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "engine/agents_int.h"

static const char *const top_keys[] = {
    "id",      "name",  "description",     "system_prompt", "preferred_provider",
    "intents", "slots", "allowed_actions", "templates",     NULL};
static const char *const slot_keys[] = {"name", "type", "description", NULL};
static const char *const intent_keys[] = {"name",           "description", "keywords",
                                          "required_slots", "action",      NULL};
static const char *const template_keys[] = {"greeting", "ask_slot", "confirm", "done", NULL};

/* Indexed by fl_agent_slot_type. */
static const char *const slot_types[] = {"string",   "int",  "number", "bool",  "date", "time",
                                         "datetime", "list", "phone",  "email", NULL};

const char *const fl_agent_actions[] = {
    "answer_question",    "check_availability", "book_appointment",  "reschedule_appointment",
    "cancel_appointment", "place_order",        "cancel_order",      "request_quote",
    "update_hours",       "update_menu",        "update_services",   "search_businesses",
    "compare_businesses", "report_metrics",     "escalate_to_human", NULL};

#define ERR(c, n, ...) fl_agents__error((c), (n)->pos.line, (n)->pos.col, __VA_ARGS__)

static size_t index_of(const char *const *list, const char *s)
{
    size_t i = 0;

    while (list[i] && strcmp(list[i], s) != 0) {
        i++;
    }
    return i;
}

/* snake_case: a lower-case letter, then letters, digits and underscores. */
static bool is_snake(const char *s)
{
    size_t n = strlen(s);

    if (!n || n >= FL_AGENT_ID_MAX || !islower((unsigned char)s[0])) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '_') {
            return false;
        }
    }
    return true;
}

/* The rule of llm.providers keys (core/config_llm.c), minus control characters. */
static bool is_provider_name(const char *s, size_t len)
{
    if (!len || len >= FL_AGENT_ID_MAX || strlen(s) != len) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= ' ' || ch == 0x7f || ch == ',') {
            return false;
        }
    }
    return true;
}

/* A string value: NULL (after reporting when required) when absent, null or no string. */
static const fl_yn *str_node(fl_ag_ctx *c, const fl_yn *map, const char *key, bool required,
                             const char *what)
{
    const fl_yn *v = fl_yaml_tree_get(map, key);

    if (!v || fl_yaml_tree_is_null(v)) {
        if (required) {
            ERR(c, map, "%s needs \"%s\"", what, key);
        }
        return NULL;
    }
    if (v->kind != FL_YN_SCALAR) {
        ERR(c, v, "\"%s\" of %s must be a string", key, what);
        return NULL;
    }
    if (!v->len || strlen(v->value) != v->len) {
        ERR(c, v, "\"%s\" of %s must be a non-empty string", key, what);
        return NULL;
    }
    return v;
}

static char *str_dup(fl_ag_ctx *c, const fl_yn *map, const char *key, bool required,
                     const char *what)
{
    const fl_yn *v = str_node(c, map, key, required, what);
    return v ? fl_xstrdup(v->value) : NULL;
}

/* A snake_case name (ids, slots, intents). */
static const fl_yn *name_node(fl_ag_ctx *c, const fl_yn *map, const char *key, const char *what)
{
    const fl_yn *v = str_node(c, map, key, true, what);

    if (v && !is_snake(v->value)) {
        ERR(c, v,
            "\"%s\" of %s must be snake_case (a lower-case letter, then a-z, 0-9 or _; at "
            "most %d characters), not \"%s\"",
            key, what, FL_AGENT_ID_MAX - 1, v->value);
        return NULL;
    }
    return v;
}

/* A list value: NULL when absent or null (reported when required) or not a list. */
static const fl_yn *seq_node(fl_ag_ctx *c, const fl_yn *map, const char *key, bool required,
                             const char *what)
{
    const fl_yn *v = fl_yaml_tree_get(map, key);

    if (!v || fl_yaml_tree_is_null(v)) {
        if (required) {
            ERR(c, map, "%s needs \"%s\" (a list)", what, key);
        }
        return NULL;
    }
    if (v->kind != FL_YN_SEQ) {
        ERR(c, v, "\"%s\" of %s must be a list", key, what);
        return NULL;
    }
    if (required && !v->n) {
        ERR(c, v, "\"%s\" of %s must not be empty", key, what);
    }
    return v;
}

/* ---- slots --------------------------------------------------------------------------- */

static void build_slot(fl_ag_ctx *c, fl_agent *a, const fl_yn *item)
{
    const fl_yn *name, *type;
    fl_agent_slot *s;
    size_t t = 0;

    if (item->kind != FL_YN_MAP) {
        ERR(c, item, "a slot must be a mapping {name, type, description}");
        return;
    }
    fl_agents__check_keys(c, item, slot_keys, "a slot");
    name = name_node(c, item, "name", "a slot");
    type = str_node(c, item, "type", true, "a slot");
    if (type) {
        t = index_of(slot_types, type->value);
        if (!slot_types[t]) {
            ERR(c, type,
                "unknown slot type \"%s\" (one of string, int, number, bool, date, time, "
                "datetime, list, phone, email)",
                type->value);
        }
    }
    if (name && fl_agent_slot_get(a, name->value)) {
        ERR(c, name, "duplicate slot \"%s\"", name->value);
        name = NULL;
    }
    s = &a->slots[a->nslots];
    s->description = str_dup(c, item, "description", true, "a slot");
    if (!name || !type || !slot_types[t]) {
        free(s->description);
        memset(s, 0, sizeof(*s));
        return;
    }
    s->name = fl_xstrdup(name->value);
    s->type = (fl_agent_slot_type)t;
    a->nslots++;
}

static void build_slots(fl_ag_ctx *c, fl_agent *a, const fl_yn *root)
{
    const fl_yn *seq = seq_node(c, root, "slots", false, "an agent profile");

    if (!seq) {
        return;
    }
    a->slots = fl_xcalloc(seq->n + 1, sizeof(*a->slots));
    for (size_t i = 0; i < seq->n; i++) {
        build_slot(c, a, seq->items[i]);
    }
}

/* ---- allowed actions ----------------------------------------------------------------- */

static void build_actions(fl_ag_ctx *c, fl_agent *a, const fl_yn *root)
{
    const fl_yn *seq = seq_node(c, root, "allowed_actions", true, "an agent profile");

    if (!seq) {
        return;
    }
    a->actions = fl_xcalloc(seq->n + 1, sizeof(*a->actions));
    for (size_t i = 0; i < seq->n; i++) {
        const fl_yn *v = seq->items[i];
        if (v->kind != FL_YN_SCALAR || fl_yaml_tree_is_null(v)) {
            ERR(c, v, "an allowed action must be a string");
        } else if (!fl_agent_actions[index_of(fl_agent_actions, v->value)]) {
            ERR(c, v, "unknown action \"%s\" (see docs/agents.md for the list)", v->value);
        } else if (fl_agent_allows(a, v->value)) {
            ERR(c, v, "duplicate action \"%s\"", v->value);
        } else {
            a->actions[a->nactions++] = fl_xstrdup(v->value);
        }
    }
}

/* ---- intents ------------------------------------------------------------------------- */

static void build_keywords(fl_ag_ctx *c, fl_agent_intent *in, const fl_yn *item)
{
    const fl_yn *seq = seq_node(c, item, "keywords", false, "an intent");

    if (!seq) {
        return;
    }
    in->keywords = fl_xcalloc(seq->n + 1, sizeof(*in->keywords));
    for (size_t i = 0; i < seq->n; i++) {
        const fl_yn *v = seq->items[i];
        char *k;
        if (v->kind != FL_YN_SCALAR || !v->len || strlen(v->value) != v->len) {
            ERR(c, v, "a keyword must be a non-empty string");
            continue;
        }
        /* the local classifier matches lower-cased text */
        k = fl_xstrdup(v->value);
        for (char *p = k; *p; p++) {
            *p = (char)tolower((unsigned char)*p);
        }
        in->keywords[in->nkeywords++] = k;
    }
}

static void build_required(fl_ag_ctx *c, const fl_agent *a, fl_agent_intent *in, const fl_yn *item,
                           const char *intent)
{
    const fl_yn *seq = seq_node(c, item, "required_slots", false, "an intent");

    if (!seq) {
        return;
    }
    in->required = fl_xcalloc(seq->n + 1, sizeof(*in->required));
    for (size_t i = 0; i < seq->n; i++) {
        const fl_yn *v = seq->items[i];
        const fl_agent_slot *s = v->kind == FL_YN_SCALAR ? fl_agent_slot_get(a, v->value) : NULL;
        if (v->kind != FL_YN_SCALAR || fl_yaml_tree_is_null(v)) {
            ERR(c, v, "a required slot must be a slot name");
        } else if (!s) {
            ERR(c, v, "intent \"%s\" requires slot \"%s\", which the profile does not declare",
                intent ? intent : "?", v->value);
        } else {
            in->required[in->nrequired++] = (size_t)(s - a->slots);
        }
    }
}

static void build_intent_action(fl_ag_ctx *c, const fl_agent *a, fl_agent_intent *in,
                                const fl_yn *item)
{
    const fl_yn *v = str_node(c, item, "action", false, "an intent");

    if (!v) {
        return;
    }
    if (!fl_agent_actions[index_of(fl_agent_actions, v->value)]) {
        ERR(c, v, "unknown action \"%s\" (see docs/agents.md for the list)", v->value);
    } else if (!fl_agent_allows(a, v->value)) {
        ERR(c, v, "action \"%s\" is not in the profile's allowed_actions", v->value);
    } else {
        in->action = fl_xstrdup(v->value);
    }
}

static void build_intent(fl_ag_ctx *c, fl_agent *a, const fl_yn *item)
{
    const fl_yn *name;
    fl_agent_intent *in = &a->intents[a->nintents];

    if (item->kind != FL_YN_MAP) {
        ERR(c, item, "an intent must be a mapping {name, description, keywords, ...}");
        return;
    }
    fl_agents__check_keys(c, item, intent_keys, "an intent");
    name = name_node(c, item, "name", "an intent");
    if (name && fl_agent_intent_get(a, name->value)) {
        ERR(c, name, "duplicate intent \"%s\"", name->value);
        name = NULL;
    }
    in->description = str_dup(c, item, "description", true, "an intent");
    build_keywords(c, in, item);
    build_required(c, a, in, item, name ? name->value : NULL);
    build_intent_action(c, a, in, item);
    /* kept even when broken, so its parts are freed with the profile */
    in->name = fl_xstrdup(name ? name->value : "");
    a->nintents++;
}

static void build_intents(fl_ag_ctx *c, fl_agent *a, const fl_yn *root)
{
    const fl_yn *seq = seq_node(c, root, "intents", true, "an agent profile");

    if (!seq) {
        return;
    }
    a->intents = fl_xcalloc(seq->n + 1, sizeof(*a->intents));
    for (size_t i = 0; i < seq->n; i++) {
        build_intent(c, a, seq->items[i]);
    }
}

/* ---- templates ----------------------------------------------------------------------- */

/* {name} in a template stands for a slot's value: it must name a declared slot. */
static void check_placeholders(fl_ag_ctx *c, const fl_agent *a, const fl_yn *v)
{
    for (const char *p = strchr(v->value, '{'); p; p = strchr(p + 1, '{')) {
        size_t n = strspn(p + 1, "abcdefghijklmnopqrstuvwxyz0123456789_");
        char name[FL_AGENT_ID_MAX];
        if (!n || p[1 + n] != '}' || n >= sizeof(name)) {
            continue; /* not a placeholder: literal braces are allowed */
        }
        memcpy(name, p + 1, n);
        name[n] = '\0';
        if (!fl_agent_slot_get(a, name)) {
            ERR(c, v, "template placeholder \"{%s}\" names no declared slot", name);
        }
    }
}

static char *template_dup(fl_ag_ctx *c, const fl_agent *a, const fl_yn *map, const char *key)
{
    const fl_yn *v = str_node(c, map, key, false, "templates");

    if (!v) {
        return NULL;
    }
    check_placeholders(c, a, v);
    return fl_xstrdup(v->value);
}

static void build_ask_slot(fl_ag_ctx *c, fl_agent *a, const fl_yn *map)
{
    if (map->kind != FL_YN_MAP) {
        ERR(c, map, "\"ask_slot\" of templates must be a mapping of slot names to questions");
        return;
    }
    for (size_t i = 0; i < map->n; i++) {
        const fl_yn *k = map->items[2 * i], *v = map->items[2 * i + 1];
        const fl_agent_slot *found =
            k->kind == FL_YN_SCALAR ? fl_agent_slot_get(a, k->value) : NULL;
        fl_agent_slot *s = found ? &a->slots[found - a->slots] : NULL; /* a is ours to fill */
        if (k->kind != FL_YN_SCALAR || !s) {
            ERR(c, k, "\"ask_slot\" names \"%s\", which the profile does not declare in slots",
                k->kind == FL_YN_SCALAR ? k->value : "?");
        } else if (v->kind != FL_YN_SCALAR || !v->len || strlen(v->value) != v->len) {
            ERR(c, v, "the question for slot \"%s\" must be a non-empty string", k->value);
        } else {
            check_placeholders(c, a, v);
            free(s->ask);
            s->ask = fl_xstrdup(v->value);
        }
    }
}

static void build_templates(fl_ag_ctx *c, fl_agent *a, const fl_yn *root)
{
    const fl_yn *t = fl_yaml_tree_get(root, "templates"), *ask;

    if (!t || fl_yaml_tree_is_null(t)) {
        return;
    }
    if (t->kind != FL_YN_MAP) {
        ERR(c, t, "\"templates\" must be a mapping {greeting, ask_slot, confirm, done}");
        return;
    }
    fl_agents__check_keys(c, t, template_keys, "templates");
    a->greeting = template_dup(c, a, t, "greeting");
    a->confirm = template_dup(c, a, t, "confirm");
    a->done = template_dup(c, a, t, "done");
    ask = fl_yaml_tree_get(t, "ask_slot");
    if (ask && !fl_yaml_tree_is_null(ask)) {
        build_ask_slot(c, a, ask);
    }
}

/* ---- the profile --------------------------------------------------------------------- */

static void build_head(fl_ag_ctx *c, fl_agent *a, const fl_yn *root)
{
    static const char what[] = "an agent profile";
    const fl_yn *id = name_node(c, root, "id", what);
    const fl_yn *prov = str_node(c, root, "preferred_provider", false, what);

    if (id) {
        a->id = fl_xstrdup(id->value);
        a->line = id->pos.line;
        a->col = id->pos.col;
    }
    a->name = str_dup(c, root, "name", true, what);
    a->description = str_dup(c, root, "description", true, what);
    a->system_prompt = str_dup(c, root, "system_prompt", true, what);
    if (prov && !is_provider_name(prov->value, prov->len)) {
        ERR(c, prov,
            "\"preferred_provider\" must be a provider name (1 to %d characters, no spaces, "
            "commas or control characters), not \"%s\"",
            FL_AGENT_ID_MAX - 1, prov->value);
    }
    a->preferred_provider = fl_xstrdup(prov ? prov->value : "local");
}

static void build(fl_ag_ctx *c, fl_agent *a, const fl_yn *root)
{
    fl_agents__check_keys(c, root, top_keys, "an agent profile");
    build_head(c, a, root);
    build_slots(c, a, root);
    build_actions(c, a, root);
    build_intents(c, a, root);
    build_templates(c, a, root);
}

fl_rc fl_agent_parse(const char *text, size_t len, const char *path, fl_agent **out,
                     fl_diags *diags)
{
    fl_ag_ctx c = {.path = path ? path : "<input>", .text = text, .len = len, .diags = diags};
    fl_agent *a = NULL;
    fl_yn *root;

    *out = NULL;
    if (len > FL_AGENT_MAX_BYTES) {
        fl_agents__error(&c, 1, 1, "the profile is larger than %d bytes", FL_AGENT_MAX_BYTES);
        return FL_ETOOBIG;
    }
    root = fl_agents__yaml(&c);
    if (root) {
        a = fl_xcalloc(1, sizeof(*a));
        a->path = fl_xstrdup(c.path);
        build(&c, a, root);
    }
    fl_agents__arena_free(&c);
    if (c.errors) {
        fl_agent_free(a);
        return FL_EINVAL;
    }
    *out = a;
    return FL_OK;
}
