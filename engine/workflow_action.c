/* engine/workflow_action.c -- actions of the workflow loader: set, emit, start, log,
 * reply (immediate) and call (an activity), with the one table of known calls.
 *
 * The call table is the single place that says which activities exist and which `with`
 * fields each takes; `flowd.<operation>` built-ins of later issues are added as rows.
 * `with.agent` names an agent profile and `with.classify: true` marks a classification
 * (engine/llm/agent_request.h). Agent ids are not checked here: the value is usually an
 * expression, and the activity worker uses the fallback profile for an unknown one.
 *
 * Thread-safety: reentrant. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "engine/workflow_int.h"

static const char *const kinds[] = {"set", "emit", "start", "log", "reply", "call", NULL};
static const char *const call_keys[] = {"call", "with", "into", "retry", "timeout", NULL};
static const char *const emit_keys[] = {"type", "topic", "subject", "data", NULL};
static const char *const start_keys[] = {"workflow", "input", "key", NULL};
static const char *const log_keys[] = {"message", "level", NULL};
static const char *const reply_keys[] = {"content", "agent", "usage", NULL};
static const char *const retry_keys[] = {"attempts", "backoff", "delay", "max_delay", NULL};

static const char *const llm_with[] = {"agent",       "prompt", "messages", "model", "max_tokens",
                                       "temperature", "json",   "classify", NULL};
static const char *const http_with[] = {"method", "url", "headers", "body", NULL};
static const char *const http_required[] = {"method", "url", NULL};
static const char *const purge_with[] = {"conversations_idle_for",  "instances_finished_for",
                                         "inbox_older_than",        "outbox_published_older_than",
                                         "dead_letters_older_than", NULL};
static const char *const dir_search_with[] = {
    "q", "category", "city", "min_rating", "max_price_level", "limit", NULL};
static const char *const biz_update_with[] = {
    "business_id", "description", "phone",    "address",         "city", "hours",
    "price_level", "rating",      "services", "remove_services", NULL};
static const char *const biz_update_required[] = {"business_id", NULL};
static const char *const mem_search_with[] = {"user_id", "q", "limit", NULL};
static const char *const mem_search_required[] = {"user_id", NULL};
static const char *const history_with[] = {"conversation", "turns", "max_tokens", "before_seq",
                                           NULL};
static const char *const none[] = {NULL};

/* The known calls: name -> the `with` fields it takes. */
static const struct call_spec {
    const char *name;
    const char *const *with;
    const char *const *required;
    bool durations; /* every field is a duration */
} calls[] = {
    {"llm", llm_with, none, false},
    {"http", http_with, http_required, false},
    {"flowd.purge", purge_with, none, true},
    /* engine/activities_directory.c */
    {"flowd.directory.search", dir_search_with, none, false},
    {"flowd.business.update", biz_update_with, biz_update_required, false},
    {"flowd.memory.search", mem_search_with, mem_search_required, false},
    /* takes exactly business_id, the update's one required field */
    {"flowd.business.get", biz_update_required, biz_update_required, false},
    /* engine/activities_history.c */
    {"flowd.conversation.history", history_with, none, false},
};

static bool in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++) {
        if (!strcmp(list[i], s)) {
            return true;
        }
    }
    return false;
}

fl_tmpl *fl_wf__set_map(fl_wf_ctx *c, const fl_yn *n)
{
    bool ok = true;

    if (n->kind != FL_YN_MAP) {
        fl_wf__error(c, n->pos, "set must be a mapping of context fields to values");
        return NULL;
    }
    for (size_t i = 0; i < n->n; i++) {
        const fl_yn *k = n->items[2 * i];
        if (k->kind != FL_YN_SCALAR || !fl_wf__is_identifier(k->value)) {
            fl_wf__error(c, k->pos, "set: \"%s\" is not a context field name (letters, digits, _)",
                         k->kind == FL_YN_SCALAR ? k->value : "?");
            ok = false;
        }
    }
    fl_tmpl *t = fl_wf__tmpl(c, n);
    if (!ok) {
        fl_tmpl_free(t);
        t = NULL;
    }
    return t;
}

/* emit/start/log/reply: a mapping with known fields and one required field. */
static void object_action(fl_wf_ctx *c, const fl_yn *v, const char *kind, const char *const *keys,
                          fl_action *a)
{
    char what[32];

    snprintf(what, sizeof(what), "%s", kind);
    if (v->kind != FL_YN_MAP) {
        fl_wf__error(c, v->pos, "%s must be a mapping", kind);
        return;
    }
    fl_wf__check_keys(c, v, keys, what);
    if (!fl_wf__get(v, keys[0])) {
        fl_wf__error(c, v->pos, "%s needs \"%s\"", kind, keys[0]);
    }
    a->args = fl_wf__tmpl(c, v);
}

static void check_log_level(fl_wf_ctx *c, const fl_yn *v)
{
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    const fl_yn *level = fl_wf__get(v, "level");

    if (level && (level->kind != FL_YN_SCALAR || !in_list(levels, level->value))) {
        fl_wf__error(c, level->pos, "log level must be debug, info, warn or error");
    }
}

static void immediate_action(fl_wf_ctx *c, const fl_yn *key, const fl_yn *v, fl_action *a)
{
    static const struct {
        const char *name;
        fl_action_kind kind;
        const char *const *keys;
    } table[] = {{"emit", FL_ACTION_EMIT, emit_keys},
                 {"start", FL_ACTION_START, start_keys},
                 {"log", FL_ACTION_LOG, log_keys},
                 {"reply", FL_ACTION_REPLY, reply_keys}};

    if (!strcmp(key->value, "set")) {
        a->kind = FL_ACTION_SET;
        a->args = fl_wf__set_map(c, v);
        return;
    }
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (!strcmp(key->value, table[i].name)) {
            a->kind = table[i].kind;
            object_action(c, v, table[i].name, table[i].keys, a);
        }
    }
    if (a->kind == FL_ACTION_LOG && v->kind == FL_YN_MAP) {
        check_log_level(c, v);
    }
}

static const struct call_spec *find_call(const char *name)
{
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        if (!strcmp(calls[i].name, name)) {
            return &calls[i];
        }
    }
    return NULL;
}

static void check_with(fl_wf_ctx *c, const struct call_spec *spec, const fl_yn *with, fl_pos at)
{
    char what[64];

    snprintf(what, sizeof(what), "the with of call %s", spec->name);
    if (with && with->kind != FL_YN_MAP) {
        fl_wf__error(c, with->pos, "with must be a mapping");
        return;
    }
    fl_wf__check_keys(c, with, spec->with, what);
    for (size_t i = 0; spec->required[i]; i++) {
        if (!fl_wf__get(with, spec->required[i])) {
            fl_wf__error(c, with ? with->pos : at, "call %s needs with.%s", spec->name,
                         spec->required[i]);
        }
    }
    for (size_t i = 0; spec->durations && with && i < with->n; i++) {
        const fl_yn *k = with->items[2 * i], *v = with->items[2 * i + 1];
        int64_t ms;
        if (k->kind == FL_YN_SCALAR && in_list(spec->with, k->value) &&
            !(v->kind == FL_YN_SCALAR && fl_expr_has_template(v->value))) {
            fl_wf__duration(c, v, false, k->value, &ms);
        }
    }
}

static void retry_attempts(fl_wf_ctx *c, const fl_yn *att, fl_retry *r)
{
    long v = 0;

    if (att->kind == FL_YN_SCALAR && att->plain && att->len && att->len <= 6 &&
        strspn(att->value, "0123456789") == att->len) {
        v = strtol(att->value, NULL, 10);
    }
    if (v < 1) {
        fl_wf__error(c, att->pos, "retry attempts must be an integer of at least 1");
        return;
    }
    r->attempts = (int)v;
}

static void retry_backoff(fl_wf_ctx *c, const fl_yn *bo, fl_retry *r)
{
    if (bo->kind == FL_YN_SCALAR && !strcmp(bo->value, "fixed")) {
        r->backoff = FL_BACKOFF_FIXED;
    } else if (bo->kind == FL_YN_SCALAR && !strcmp(bo->value, "exponential")) {
        r->backoff = FL_BACKOFF_EXPONENTIAL;
    } else {
        fl_wf__error(c, bo->pos, "retry backoff must be fixed or exponential");
    }
}

static void build_retry(fl_wf_ctx *c, const fl_yn *n, fl_retry *r)
{
    const fl_yn *att = fl_wf__get(n, "attempts"), *bo = fl_wf__get(n, "backoff");
    const fl_yn *delay = fl_wf__get(n, "delay"), *max = fl_wf__get(n, "max_delay");

    if (n->kind != FL_YN_MAP) {
        fl_wf__error(c, n->pos, "retry must be a mapping {attempts, backoff, delay, max_delay}");
        return;
    }
    fl_wf__check_keys(c, n, retry_keys, "retry");
    r->delay_ms = 1000; /* when retry: is given without a delay */
    if (att) {
        retry_attempts(c, att, r);
    }
    if (bo) {
        retry_backoff(c, bo, r);
    }
    if (delay) {
        fl_wf__duration(c, delay, false, "retry delay", &r->delay_ms);
    }
    if (max && fl_wf__duration(c, max, false, "retry max_delay", &r->max_delay_ms) &&
        r->max_delay_ms < r->delay_ms) {
        fl_wf__error(c, max->pos, "retry max_delay must not be shorter than delay");
    }
}

static void call_extras(fl_wf_ctx *c, const fl_yn *n, fl_action *a)
{
    const fl_yn *into = fl_wf__get(n, "into"), *retry = fl_wf__get(n, "retry");
    const fl_yn *timeout = fl_wf__get(n, "timeout");
    const char *s;

    if (into) {
        s = fl_wf__string(c, into, "into");
        if (s && !fl_wf__is_identifier(s)) {
            fl_wf__error(c, into->pos, "into must be a context field name (letters, digits, _)");
        } else if (s) {
            a->into = fl_xstrdup(s);
        }
    }
    if (retry) {
        build_retry(c, retry, &a->retry);
    }
    if (timeout && fl_wf__duration(c, timeout, false, "timeout", &a->timeout_ms) &&
        a->timeout_ms <= 0) {
        fl_wf__error(c, timeout->pos, "timeout must be longer than zero");
    }
}

static void call_action(fl_wf_ctx *c, const fl_yn *n, const fl_yn *v, fl_action *a, int where)
{
    const struct call_spec *spec;
    const fl_yn *with = fl_wf__get(n, "with");
    const char *name = fl_wf__string(c, v, "call (llm, http or flowd.<operation>)");

    a->kind = FL_ACTION_CALL;
    fl_wf__check_keys(c, n, call_keys, "a call action");
    if (where == FL_WF_IN_EXIT || where == FL_WF_IN_DO) {
        fl_wf__error(c, n->pos, "an activity (call) is allowed only in entry actions");
    } else if (where == FL_WF_IN_FINAL_ENTRY) {
        fl_wf__error(c, n->pos,
                     "a final state cannot run an activity (call): the instance ends "
                     "on entry");
    }
    spec = name ? find_call(name) : NULL;
    if (name && !spec) {
        fl_wf__error(c, v->pos,
                     "unknown call \"%s\" (known: llm, http, flowd.purge, "
                     "flowd.directory.search, flowd.business.update, flowd.memory.search, "
                     "flowd.business.get, flowd.conversation.history)",
                     name);
    }
    if (spec) {
        a->call = fl_xstrdup(name);
        check_with(c, spec, with, n->pos);
    }
    if (with) {
        a->args = fl_wf__tmpl(c, with);
    }
    call_extras(c, n, a);
}

/* The kind key of an action; reports a second one. NULL when there is none. */
static const fl_yn *find_kind(fl_wf_ctx *c, const fl_yn *n)
{
    const fl_yn *first = NULL;

    for (size_t i = 0; i < n->n; i++) {
        const fl_yn *k = n->items[2 * i];
        if (k->kind != FL_YN_SCALAR || !in_list(kinds, k->value)) {
            continue;
        }
        if (first) {
            fl_wf__error(c, k->pos,
                         "an action has exactly one kind, but \"%s\" and \"%s\" are "
                         "both given",
                         first->value, k->value);
            continue;
        }
        first = k;
    }
    return first;
}

/* Keys of an immediate action other than its kind. */
static void check_other_keys(fl_wf_ctx *c, const fl_yn *n)
{
    for (size_t i = 0; i < n->n; i++) {
        const fl_yn *k = n->items[2 * i];
        if (k->kind != FL_YN_SCALAR || in_list(kinds, k->value)) {
            continue;
        }
        if (in_list(call_keys, k->value)) {
            fl_wf__error(c, k->pos, "\"%s\" is only allowed on a call action", k->value);
        } else {
            fl_wf__error(c, k->pos, "unknown key \"%s\" in an action", k->value);
        }
    }
}

static void build_action(fl_wf_ctx *c, const fl_yn *n, fl_action *a, int where)
{
    const fl_yn *kind;

    a->pos = n->pos;
    a->retry.attempts = 1;
    a->retry.backoff = FL_BACKOFF_FIXED;
    if (n->kind != FL_YN_MAP) {
        fl_wf__error(c, n->pos,
                     "an action must be a mapping with one of set, emit, start, log, "
                     "reply or call");
        return;
    }
    kind = find_kind(c, n);
    if (!kind) {
        fl_wf__error(c, n->pos,
                     "an action needs a kind: one of set, emit, start, log, reply or "
                     "call");
        check_other_keys(c, n);
        return;
    }
    if (!strcmp(kind->value, "call")) {
        call_action(c, n, fl_wf__get(n, "call"), a, where);
        return;
    }
    check_other_keys(c, n);
    immediate_action(c, kind, fl_wf__get(n, kind->value), a);
}

void fl_wf__action_list(fl_wf_ctx *c, const fl_yn *n, fl_action_list *out, int where)
{
    if (!n || fl_wf__is_null(n)) {
        return;
    }
    if (n->kind != FL_YN_SEQ) {
        fl_wf__error(c, n->pos, "actions must be a list, e.g. [{log: {message: hi}}]");
        return;
    }
    out->items = fl_xcalloc(n->n + 1, sizeof(*out->items));
    out->count = n->n;
    for (size_t i = 0; i < n->n; i++) {
        build_action(c, n->items[i], &out->items[i], where);
    }
}

void fl_wf__action_list_free(fl_action_list *l)
{
    for (size_t i = 0; i < l->count; i++) {
        fl_tmpl_free(l->items[i].args);
        free(l->items[i].call);
        free(l->items[i].into);
    }
    free(l->items);
    l->items = NULL;
    l->count = 0;
}
