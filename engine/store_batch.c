/* engine/store_batch.c -- turns what the engine processed (events, instance steps and
 * their effects, transcript rows, dead letters) into the queued statements of a batch.
 *
 * Design: every value is converted to its text parameter when added, so a batch owns
 * everything it will send and does not depend on instances or effects that the engine
 * frees or reuses after the step. Ids of produced events derive from the instance id,
 * the step's seq and the effect's index, so a replayed step produces the same ids.
 *
 * Thread-safety: a batch belongs to one thread; the store is only read. */
#include "engine/store_int.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parameters ----------------------------------------------------------------------- */

char *fl_store__str(const char *s)
{
    return s ? fl_xstrdup(s) : NULL;
}

char *fl_store__int(long long v)
{
    return fl_xasprintf("%lld", v);
}

char *fl_store__json(const json_t *j)
{
    char *s;

    if (!j) {
        return NULL;
    }
    s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    fl_assert(s != NULL); /* jansson fails only on OOM or invalid UTF-8 it never holds */
    return s;
}

char *fl_store__headers(const fl_store *st, const char *id, const char *type, const char *subject,
                        const char *tenant, int64_t time_ms)
{
    char when[40];
    json_t *h;
    char *s;

    fl_clock_format_rfc3339(time_ms, when, sizeof(when));
    h = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "ce_id", id, "ce_source", st->source,
                  "ce_type", type, "ce_specversion", "1.0", "ce_time", when, "ce_subject",
                  subject ? subject : "", "ce_tenant", tenant ? tenant : "", "content-type",
                  "application/json");
    s = fl_store__json(h);
    json_decref(h);
    return s;
}

/* ---- the batch ------------------------------------------------------------------------ */

fl_store_batch *fl_store_batch_new(void)
{
    return fl_xcalloc(1, sizeof(fl_store_batch));
}

void fl_store__truncate(fl_store_batch *b, size_t count)
{
    for (size_t i = count; i < b->count; i++) {
        for (int p = 0; p < b->ops[i].nparams; p++) {
            free(b->ops[i].params[p]);
        }
    }
    b->count = count < b->count ? count : b->count;
}

void fl_store_batch_clear(fl_store_batch *b)
{
    fl_store__truncate(b, 0);
    b->nsteps = 0;
}

void fl_store_batch_free(fl_store_batch *b)
{
    if (!b) {
        return;
    }
    fl_store_batch_clear(b);
    free(b->ops);
    free(b);
}

size_t fl_store_batch_steps(const fl_store_batch *b)
{
    return b->nsteps;
}

void fl_store__op_add_take(fl_store_batch *b, fl_store_stmt stmt, int n, char **params)
{
    fl_store_op *op;

    fl_assert(n <= FL_STORE_MAX_PARAMS);
    if (b->count == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->ops = fl_xrealloc(b->ops, b->cap * sizeof(*b->ops));
    }
    op = &b->ops[b->count++];
    op->stmt = stmt;
    op->nparams = n;
    for (int i = 0; i < n; i++) {
        op->params[i] = params[i];
    }
}

void fl_store_batch_add_event(fl_store_batch *b, const fl_event *ev)
{
    char *p[3] = {fl_store__str(ev->tenant), fl_store__str(ev->source), fl_store__str(ev->id)};

    fl_store__op_add_take(b, FL_STORE_INBOX, 3, p);
}

/* The row of one outbox event whose payload is `data`. */
static void outbox_add(const fl_store *st, fl_store_batch *b, const fl_store_outbox *o)
{
    char *p[7] = {fl_store__str(o->id),
                  fl_store__str(o->tenant),
                  fl_store__str(o->topic),
                  fl_store__str(o->subject),
                  fl_store__str(o->type),
                  fl_store__json(o->data),
                  NULL};

    p[6] = fl_store__headers(st, o->id, o->type, o->subject, o->tenant,
                             fl_clock_now_ms(fl_clock_system()));
    fl_store__op_add_take(b, FL_STORE_OUTBOX, 7, p);
}

void fl_store_batch_add_outbox(fl_store *st, fl_store_batch *b, const fl_store_outbox *o)
{
    outbox_add(st, b, o);
}

static char *usage_int(const json_t *usage, const char *field)
{
    const json_t *v = usage ? json_object_get(usage, field) : NULL;

    return json_is_integer(v) ? fl_store__int((long long)json_integer_value(v)) : NULL;
}

static char *usage_cost(const json_t *usage)
{
    const json_t *v = usage ? json_object_get(usage, "cost") : NULL;

    return json_is_number(v) ? fl_xasprintf("%.8f", json_number_value(v)) : NULL;
}

void fl_store_batch_add_message(fl_store_batch *b, const fl_store_message *m)
{
    char *p[13] = {fl_store__str(m->tenant),
                   fl_store__str(m->conversation),
                   fl_store__str(m->role),
                   fl_store__str(m->content),
                   fl_store__str(m->agent),
                   fl_store__str(m->provider),
                   fl_store__str(m->model),
                   usage_int(m->usage, "tokens_in"),
                   usage_int(m->usage, "tokens_out"),
                   usage_cost(m->usage),
                   usage_int(m->usage, "latency_ms"),
                   json_is_object(m->usage) ? json_dumps(m->usage, JSON_COMPACT) : NULL,
                   fl_store__str(m->message_id)};

    fl_store__op_add_take(b, FL_STORE_MESSAGE, 13, p);
}

static char *hex_bytea(const void *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *d = data;
    char *s = fl_xmalloc(2 * len + 3);

    s[0] = '\\';
    s[1] = 'x';
    for (size_t i = 0; i < len; i++) {
        s[2 + 2 * i] = digits[d[i] >> 4];
        s[3 + 2 * i] = digits[d[i] & 15];
    }
    s[2 + 2 * len] = '\0';
    return s;
}

void fl_store_batch_add_dead_letter(fl_store *st, fl_store_batch *b, const fl_store_dead_letter *dl)
{
    json_t *empty = json_object();
    char *p[11] = {
        fl_store__str(dl->tenant),
        fl_store__str(dl->topic),
        dl->partition >= 0 ? fl_store__int(dl->partition) : NULL,
        dl->offset >= 0 ? fl_store__int(dl->offset) : NULL,
        fl_store__str(dl->key),
        fl_store__json(dl->headers ? dl->headers : empty),
        dl->payload ? hex_bytea(dl->payload, dl->payload_len) : NULL,
        fl_store__str(dl->reason),
        fl_store__str(dl->detail),
        fl_store__str(st->dlq_topic),
        fl_store__str(st->source),
    };

    json_decref(empty);
    fl_store__op_add_take(b, FL_STORE_DEAD_LETTER, 11, p);
}

fl_rc fl_store_batch_commit(fl_store *st, fl_store_batch *b, fl_err *err)
{
    fl_rc rc = FL_OK;

    if (b->count > 0) {
        rc = fl_store__run(st, b, err);
    }
    if (rc == FL_OK) {
        fl_store_batch_clear(b);
    }
    return rc;
}

fl_rc fl_store_dead_letter_add(fl_store *st, const fl_store_dead_letter *dl, fl_err *err)
{
    fl_store_batch *b = fl_store_batch_new();
    fl_rc rc;

    fl_store_batch_add_dead_letter(st, b, dl);
    rc = fl_store_batch_commit(st, b, err);
    fl_store_batch_free(b);
    return rc;
}
