/* engine/instance.c -- the value types of the step function: instances, events as JSON,
 * effect lists, and their JSON forms.
 *
 * An instance's ctx and usage are shared, immutable values: fl_instance_dup takes a
 * reference instead of copying them, which is what makes a step cheap when it writes no
 * context (machine_int.h explains the copy-on-write); its identity strings are shared the
 * same way, in one reference-counted block. The JSON forms are the rows the
 * engine stores and the effect lists tests compare, so they are built in one fixed way
 * and dumped with sorted keys.
 *
 * Thread-safety: values belong to one thread at a time; jansson's reference counts are
 * atomic, so copies that share ctx may live on different threads. */
#include <stdatomic.h>
#include <string.h>

#include "core/mem.h"
#include "engine/machine_int.h"

/* The identity strings of an instance and all its successors, NUL-terminated one after
 * another in one allocation. The count is atomic because an instance and its successor
 * may be freed on different threads. */
struct fl_instance_ids {
    atomic_size_t refs;
    char text[];
};

static const char *const status_names[] = {"running", "completed", "failed", "cancelled"};

static const char *const effect_names[] = {
    "state_changed", "context",        "history",     "emit", "reply",    "timer_arm",
    "timer_cancel",  "activity_start", "child_start", "log",  "finished", "unhandled"};

const char *fl_status_name(fl_status s)
{
    return (unsigned)s < sizeof(status_names) / sizeof(status_names[0]) ? status_names[s] : "?";
}

const char *fl_effect_kind_name(fl_effect_kind k)
{
    return (unsigned)k < sizeof(effect_names) / sizeof(effect_names[0]) ? effect_names[k] : "?";
}

static bool status_parse(const char *name, fl_status *out)
{
    bool found = false;

    for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]) && !found; i++) {
        if (strcmp(status_names[i], name) == 0) {
            *out = (fl_status)i;
            found = true;
        }
    }
    return found;
}

void fl_instance__set_ids(fl_instance *in, const char *id, const char *key, const char *tenant,
                          const char *workflow)
{
    const char *src[4] = {id, key, tenant, workflow};
    const char **dst[4] = {&in->id, &in->key, &in->tenant, &in->workflow};
    size_t len[4], total = 0;
    char *p;

    for (int i = 0; i < 4; i++) {
        len[i] = src[i] != NULL ? strlen(src[i]) + 1 : 0;
        total += len[i];
    }
    in->ids = fl_xmalloc(sizeof(*in->ids) + total);
    atomic_init(&in->ids->refs, 1);
    p = in->ids->text;
    for (int i = 0; i < 4; i++) {
        *dst[i] = src[i] != NULL ? memcpy(p, src[i], len[i]) : NULL;
        p += len[i];
    }
}

void fl_instance_free(fl_instance *in)
{
    if (in == NULL) {
        return;
    }
    if (in->ids != NULL &&
        atomic_fetch_sub_explicit(&in->ids->refs, 1, memory_order_acq_rel) == 1) {
        free(in->ids);
    }
    json_decref(in->ctx);
    json_decref(in->usage);
    free(in);
}

fl_instance *fl_instance_dup(const fl_instance *in)
{
    fl_instance *c = fl_xmalloc(sizeof(*c));

    *c = *in; /* the identity strings and their block are shared */
    if (c->ids != NULL) {
        atomic_fetch_add_explicit(&c->ids->refs, 1, memory_order_relaxed);
    }
    c->ctx = json_incref(in->ctx); /* shared: never changed in place (copy-on-write) */
    c->usage = json_incref(in->usage);
    return c;
}

json_t *fl_instance_to_json(const fl_instance *in, const fl_workflow *wf)
{
    const char *state = in->state >= 0 ? wf->states[in->state].name : NULL;

    return json_pack("{s:s?, s:s?, s:s?, s:s?, s:i, s:s?, s:s, s:O?, s:O?, s:I, s:I, s:I, s:b, "
                     "s:I}",
                     "id", in->id, "key", in->key, "tenant", in->tenant, "workflow", in->workflow,
                     "version", in->version, "state", state, "status", fl_status_name(in->status),
                     "context", in->ctx, "usage", in->usage, "entered_at",
                     (json_int_t)in->entered_at_ms, "entry_seq", (json_int_t)in->entry_seq, "pc",
                     (json_int_t)in->pc, "waiting", (int)in->waiting, "seq", (json_int_t)in->seq);
}

/* Checks what json_unpack cannot: the row belongs to this definition and its indexes
 * point into it. */
static fl_rc check_row(const fl_instance *in, const char *wf_name, const char *state, json_int_t pc,
                       const fl_workflow *wf, fl_err *err)
{
    fl_rc rc = FL_OK;

    if (strcmp(wf_name, wf->name) != 0 || in->version != wf->version) {
        rc = fl_err_set(err, FL_EINVAL, "instance runs on \"%s\" version %d, not \"%s\" version %d",
                        wf_name, in->version, wf->name, wf->version);
    } else if (in->state < 0) {
        rc = fl_err_set(err, FL_EINVAL, "instance state \"%s\" is not a state of \"%s\"", state,
                        wf->name);
    } else if (pc < 0 || (size_t)pc > wf->states[in->state].entry.count) {
        rc = fl_err_set(err, FL_EINVAL, "instance pc %lld is outside the entry list of \"%s\"",
                        (long long)pc, state);
    } else if (!json_is_object(in->usage)) {
        rc = fl_err_set(err, FL_EINVAL, "instance usage is not an object");
    }
    return rc;
}

/* The row's fields as json_unpack gives them (borrowed from the row). */
typedef struct row {
    const char *id, *key, *tenant, *workflow, *state, *status;
    json_t *ctx, *usage, *tenant_j; /* tenant: a string or null (unpack has no "s?") */
    json_int_t entered, entry_seq, pc, seq;
    int version, waiting;
} row;

static fl_rc unpack_row(const json_t *j, row *r, fl_err *err)
{
    json_error_t jerr;
    fl_rc rc = FL_OK;

    if (json_unpack_ex((json_t *)j, &jerr, JSON_STRICT,
                       "{s:s, s:s, s:o, s:s, s:i, s:s, s:s, s:o, s:o, s:I, s:I, s:I, s:b, s:I}",
                       "id", &r->id, "key", &r->key, "tenant", &r->tenant_j, "workflow",
                       &r->workflow, "version", &r->version, "state", &r->state, "status",
                       &r->status, "context", &r->ctx, "usage", &r->usage, "entered_at",
                       &r->entered, "entry_seq", &r->entry_seq, "pc", &r->pc, "waiting",
                       &r->waiting, "seq", &r->seq) != 0) {
        rc = fl_err_set(err, FL_EINVAL, "invalid instance: %s", jerr.text);
    } else if (!json_is_string(r->tenant_j) && !json_is_null(r->tenant_j)) {
        rc = fl_err_set(err, FL_EINVAL, "invalid instance: tenant must be a string or null");
    }
    r->tenant = json_string_value(r->tenant_j);
    return rc;
}

fl_rc fl_instance_from_json(const json_t *j, const fl_workflow *wf, fl_instance **out, fl_err *err)
{
    fl_instance *in = fl_xcalloc(1, sizeof(*in));
    row r;
    fl_rc rc;

    *out = NULL;
    rc = unpack_row(j, &r, err);
    if (rc != FL_OK) {
        goto out;
    }
    if (!status_parse(r.status, &in->status)) {
        rc = fl_err_set(err, FL_EINVAL, "invalid instance: unknown status \"%s\"", r.status);
        goto out;
    }
    fl_instance__set_ids(in, r.id, r.key, r.tenant, r.workflow);
    in->version = r.version;
    in->state = fl_workflow_state_index(wf, r.state);
    in->ctx = json_deep_copy(r.ctx); /* the row's JSON stays the caller's */
    in->usage = json_deep_copy(r.usage);
    in->entered_at_ms = r.entered;
    in->entry_seq = r.entry_seq;
    in->pc = (size_t)r.pc;
    in->waiting = r.waiting != 0;
    in->seq = r.seq;
    rc = check_row(in, r.workflow, r.state, r.pc, wf, err);
    if (rc != FL_OK) {
        goto out;
    }
    *out = in;
    in = NULL;
out:
    fl_instance_free(in);
    return rc;
}

static void set_str(json_t *o, const char *key, const char *s)
{
    if (s != NULL) {
        json_object_set_new_nocheck(o, key, json_string(s));
    }
}

/* The `instance` variable of expressions (missing members are nil, as in events). */
json_t *fl_instance__view(const fl_instance *in, const fl_workflow *wf)
{
    json_t *o = json_object();

    set_str(o, "id", in->id);
    set_str(o, "key", in->key);
    set_str(o, "workflow", in->workflow);
    json_object_set_new_nocheck(o, "version", json_integer(in->version));
    set_str(o, "state", in->state >= 0 ? wf->states[in->state].name : NULL);
    set_str(o, "tenant", in->tenant);
    json_object_set_nocheck(o, "usage", in->usage);
    return o;
}

/* Absent members are left out, so they are nil in Lua like any missing field. */
json_t *fl_event_to_json(const fl_event *ev)
{
    json_t *o = json_object();

    set_str(o, "id", ev->id);
    set_str(o, "type", ev->type);
    set_str(o, "source", ev->source);
    set_str(o, "subject", ev->subject);
    set_str(o, "tenant", ev->tenant);
    set_str(o, "time", ev->time);
    if (ev->data != NULL) {
        json_object_set_nocheck(o, "data", (json_t *)ev->data);
    }
    return o;
}

void fl_effects_init(fl_effects *fx)
{
    fx->items = NULL;
    fx->count = 0;
    fx->cap = 0;
}

void fl_effects_truncate(fl_effects *fx, size_t count)
{
    while (fx->count > count) {
        fx->count--;
        json_decref(fx->items[fx->count].data);
    }
}

void fl_effects_clear(fl_effects *fx)
{
    fl_effects_truncate(fx, 0);
}

void fl_effects_deinit(fl_effects *fx)
{
    fl_effects_clear(fx);
    free(fx->items);
    fl_effects_init(fx);
}

void fl_effects_add_take(fl_effects *fx, fl_effect_kind kind, json_t *data)
{
    if (fx->count == fx->cap) {
        fx->cap = fx->cap != 0 ? fx->cap * 2 : 8;
        fx->items = fl_xrealloc(fx->items, fx->cap * sizeof(*fx->items));
    }
    fx->items[fx->count].kind = kind;
    fx->items[fx->count].data = data;
    fx->count++;
}

json_t *fl_effects_to_json(const fl_effects *fx)
{
    json_t *a = json_array();

    for (size_t i = 0; i < fx->count; i++) {
        json_t *o =
            json_is_object(fx->items[i].data) ? json_copy(fx->items[i].data) : json_object();

        json_object_set_new_nocheck(o, "kind",
                                    json_string_nocheck(fl_effect_kind_name(fx->items[i].kind)));
        json_array_append_new(a, o);
    }
    return a;
}
