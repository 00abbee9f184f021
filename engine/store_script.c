/* engine/store_script.c -- the engine's batch written out as a pgbench script: the
 * yardstick of the engine benchmark (issue 8, S2; tests/bench/).
 *
 * Design: the statements are the store's own SQL constants (fl_store__sql), with each
 * `$N` replaced by a pgbench variable, in the order the engine queues them for one
 * event (engine/store_step.c, consumers/engine_apply.c): the instance row, the lifecycle
 * outbox rows, history, NOTIFY, then the inbox row. A transaction is one pipeline
 * (\startpipeline .. \endpipeline, whose sync commits it, as the engine's does).
 *
 * pgbench makes only numbers, so the strings come from one `\gset` query per transaction
 * before the pipeline (a round trip the engine does not make; it makes two reads of its
 * own per batch): unique instance ids, keys, event ids and NOTIFY payloads (identical
 * payloads would be folded by PostgreSQL), and constant JSON values of the engine's
 * shapes and sizes (outbox rows are not unique, so placeholders of the right length do).
 * pgbench cannot send NULL: the first step's from_state is '' where the engine sends NULL.
 *
 * Thread-safety: reentrant. */
#include "engine/store_int.h"

#include "core/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PostgreSQL allows 1664 columns in a target list; a \gset query stays well below. */
#define MAX_COLUMNS   1400
#define MAX_STEPS     64
#define MAX_SCRIPT    (256u << 20)
#define NAME_LEN      40
#define PLACEHOLDER   "00000000-0000-4000-8000-000000000000" /* an instance id's length */
#define KEY_LEN       16                                     /* hex digits after "k" */
#define PLACEHOLDER_K "k0000000000000000"
#define ENTERED_AT_MS "1795323147526"
#define CE_TIME       "2026-11-22T04:52:27.526Z"

typedef struct script {
    fl_buf buf;
    const fl_store_script_opts *o;
    int per; /* instances per transaction */
    fl_rc rc;
    fl_err *err;
} script;

/* Appends formatted text; the first failure is kept and later appends do nothing. */
static void put(script *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(script *s, const char *fmt, ...)
{
    va_list ap;
    char *text;
    int n;

    if (s->rc != FL_OK) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        s->rc = fl_err_set(s->err, FL_EINTERNAL, "cannot format the pgbench script");
        return;
    }
    text = fl_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->rc = fl_buf_append(&s->buf, text, (size_t)n, s->err);
    free(text);
}

/* ---- the constants, set by the \gset query of every transaction ------------------------ */

static const char *state_name(const script *s, int step, char out[NAME_LEN])
{
    if (step >= s->o->steps) {
        return "done";
    }
    snprintf(out, NAME_LEN, "s%d", step);
    return out;
}

/* The JSON text of a state name or of null (the start has no "from"). */
static const char *state_json(const script *s, int step, char out[NAME_LEN])
{
    char name[NAME_LEN];

    if (step < 1) {
        return "null";
    }
    snprintf(out, NAME_LEN, "\"%s\"", state_name(s, step, name));
    return out;
}

static void put_step_consts(script *s, int step)
{
    const fl_store_script_opts *o = s->o;
    bool last = step == o->steps;
    char to_buf[NAME_LEN], from_buf[NAME_LEN], name[NAME_LEN];
    const char *to = state_json(s, step, to_buf);
    const char *from = state_json(s, step - 1, from_buf);

    put(s, ", '%s' AS st_%d, %d AS seq_%d, '%s' AS type_%d", state_name(s, step, name), step, step,
        step, step == 1 ? o->start_type : o->next_type, step);
    put(s,
        ", '{\"entered_at\":" ENTERED_AT_MS ",\"entry_seq\":%d,\"pc\":0,\"seq\":%d,"
        "\"waiting\":false}' AS mach_%d",
        step, step, step);
    put(s, ", '[{\"from\":%s,\"kind\":\"state_changed\",\"to\":%s}%s]' AS eff_%d", from, to,
        last ? ",{\"kind\":\"finished\",\"status\":\"completed\"}" : "", step);
}

/* The lifecycle outbox row of a step (`tag` "f": the final "completed" one). */
static void put_outbox_consts(script *s, int step, const char *tag, const char *what,
                              const char *from, const char *to)
{
    const fl_store_script_opts *o = s->o;
    int index = strcmp(what, "completed") == 0;

    put(s, ", 'lifecycle:" PLACEHOLDER "/%d/%d' AS ob_id_%s, 'flowd.instance.%s' AS ob_type_%s",
        step, index, tag, what, tag);
    put(s,
        ", '{\"from\":%s,\"instance_id\":\"" PLACEHOLDER "\",\"key\":\"" PLACEHOLDER_K "\","
        "\"seq\":%d,\"status\":\"%s\",\"to\":%s,\"version\":1,\"workflow\":\"%s\"}' AS ob_pl_%s",
        from, step, step == o->steps ? "completed" : "running", to, o->workflow, tag);
    put(s,
        ", '{\"ce_id\":\"lifecycle:" PLACEHOLDER "/%d/%d\",\"ce_source\":\"flowd\","
        "\"ce_specversion\":\"1.0\",\"ce_subject\":\"" PLACEHOLDER_K "\",\"ce_tenant\":\"%s\","
        "\"ce_time\":\"" CE_TIME "\",\"ce_type\":\"flowd.instance.%s\","
        "\"content-type\":\"application/json\"}' AS ob_hd_%s",
        step, index, o->tenant, what, tag);
}

static void put_consts(script *s)
{
    const fl_store_script_opts *o = s->o;
    char tag[NAME_LEN], to[NAME_LEN], from[NAME_LEN];

    put(s, "'%s' AS tenant, '%s' AS workflow, 1 AS wf_version, '%s' AS source, '%s' AS topic",
        o->tenant, o->workflow, o->source, o->topic);
    put(s, ", '{}' AS ctx, '{\"cost\":0.0,\"tokens_in\":0,\"tokens_out\":0}' AS usage");
    put(s, ", 'running' AS running, 'completed' AS completed, '' AS empty");
    for (int step = 1; step <= o->steps; step++) {
        put_step_consts(s, step);
        snprintf(tag, sizeof(tag), "%d", step);
        put_outbox_consts(s, step, tag, step == 1 ? "started" : "transitioned",
                          state_json(s, step - 1, from), state_json(s, step, to));
    }
    put_outbox_consts(s, o->steps, "f", "completed", "null", "null");
}

/* ---- the per-instance values ---------------------------------------------------------- */

static int consts_columns(const script *s)
{
    return 10 + 9 * s->o->steps + 4; /* see put_consts */
}

static int instance_columns(const script *s)
{
    return 2 + 2 * s->o->steps;
}

/* Instance j's id, key, event ids and NOTIFY payloads from the uuids a[base ..]. */
static void put_instance_values(script *s, int j, int base)
{
    const fl_store_script_opts *o = s->o;
    int id = base + 1;

    put(s, ", a[%d] AS id_%d, 'k' || left(replace(a[%d], '-', ''), %d) AS key_%d", id, j, id,
        KEY_LEN, j);
    for (int step = 1; step <= o->steps; step++) {
        put(s, ", replace(a[%d], '-', '') AS ev_%d_%d", id + step, j, step);
        put(s,
            ", '{\"instance_id\":\"' || a[%d] || '\",\"key\":\"k' || "
            "left(replace(a[%d], '-', ''), %d) || '\",\"seq\":%d,\"tenant\":\"%s\","
            "\"workflow\":\"%s\"}' AS nt_%d_%d",
            id, id, KEY_LEN, step, o->tenant, o->workflow, j, step);
    }
}

static void put_raw(script *s, const char *data, size_t len)
{
    if (s->rc == FL_OK) {
        s->rc = fl_buf_append(&s->buf, data, len, s->err);
    }
}

/* pgbench reads `:name` as a variable even inside a string literal (and JSON is full of
 * `":1`), so the literals of a \gset query go out as E'' strings with ':' as \072. The
 * names are checked (no quote, no backslash), so a quote always opens or closes one. */
static void put_query(script *s, const char *sql)
{
    bool in = false;

    for (const char *p = sql; *p && s->rc == FL_OK; p++) {
        size_t plain = strcspn(p, in ? "':" : "'");
        put_raw(s, p, plain);
        p += plain;
        if (*p == '\'') {
            put_raw(s, in ? "'" : "E'", in ? 1 : 2);
            in = !in;
        } else if (*p == ':') {
            put_raw(s, "\\072", 4);
        } else {
            break;
        }
    }
}

/* The \gset query of instances [j, j + n) into q (the first also sets the constants). */
static void build_gset(script *q, int j, int n)
{
    put(q, "SELECT ");
    if (j == 0) {
        put_consts(q);
    } else {
        put(q, "1 AS chunk");
    }
    for (int i = 0; i < n; i++) {
        put_instance_values(q, j + i, i * (1 + q->o->steps));
    }
    put(q,
        " FROM (SELECT array_agg(gen_random_uuid()::text) AS a "
        "FROM generate_series(1, %d)) r \\gset\n",
        n * (1 + q->o->steps));
}

/* How many instances from j on fit in one query's MAX_COLUMNS. */
static int chunk_size(const script *s, int j)
{
    int room = MAX_COLUMNS - (j == 0 ? consts_columns(s) : 0);
    int n = room / instance_columns(s);

    n = n < 1 ? 1 : n;
    return n > s->per - j ? s->per - j : n;
}

/* As many \gset queries as the columns need, each written with its literals escaped. */
static void put_gsets(script *s)
{
    script q = {.o = s->o, .per = s->per, .rc = FL_OK, .err = s->err};

    fl_buf_init(&q.buf, MAX_SCRIPT);
    for (int j = 0, n = 0; j < s->per && s->rc == FL_OK; j += n) {
        n = chunk_size(s, j);
        fl_buf_reset(&q.buf);
        build_gset(&q, j, n);
        if (q.rc != FL_OK) {
            s->rc = q.rc;
            break;
        }
        put_query(s, q.buf.data);
    }
    fl_buf_deinit(&q.buf);
}

/* ---- the statements ------------------------------------------------------------------- */

/* One statement: its SQL text with $N replaced by :vars[N - 1]. */
static void put_stmt(script *s, fl_store_stmt stmt, char (*vars)[NAME_LEN], int nvars)
{
    const char *p = fl_store__sql(stmt);

    while (*p && s->rc == FL_OK) {
        size_t plain = strcspn(p, "$");
        char *end;
        long n;
        put(s, "%.*s", (int)plain, p);
        p += plain;
        if (!*p) {
            break;
        }
        n = strtol(p + 1, &end, 10);
        if (end == p + 1 || n < 1 || n > nvars) {
            s->rc = fl_err_set(s->err, FL_EINTERNAL,
                               "statement %d has a parameter the script "
                               "does not fill",
                               (int)stmt);
            return;
        }
        put(s, ":%s", vars[n - 1]);
        p = end;
    }
    put(s, ";\n");
}

/* Fills vars[] with printf-style names; returns the count. */
static int names(char (*vars)[NAME_LEN], int n, ...)
{
    va_list ap;

    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        snprintf(vars[i], NAME_LEN, "%s", va_arg(ap, const char *));
    }
    va_end(ap);
    return n;
}

static void put_instance_write(script *s, int j, int step)
{
    char v[FL_STORE_MAX_PARAMS][NAME_LEN], id[NAME_LEN], key[NAME_LEN], st[NAME_LEN],
        mach[NAME_LEN], prev[NAME_LEN];
    const char *status = step == s->o->steps ? "completed" : "running";

    snprintf(id, sizeof(id), "id_%d", j);
    snprintf(key, sizeof(key), "key_%d", j);
    snprintf(st, sizeof(st), "st_%d", step);
    snprintf(mach, sizeof(mach), "mach_%d", step);
    snprintf(prev, sizeof(prev), "seq_%d", step - 1);
    if (step == 1) {
        put_stmt(s, FL_STORE_INSTANCE_INSERT, v,
                 names(v, 10, id, "tenant", "workflow", "wf_version", key, st, status, "ctx",
                       "usage", mach));
    } else {
        put_stmt(s, FL_STORE_INSTANCE_UPDATE, v,
                 names(v, 7, id, prev, st, status, "ctx", "usage", mach));
    }
}

static void put_outbox(script *s, int j, const char *tag)
{
    char v[FL_STORE_MAX_PARAMS][NAME_LEN], key[NAME_LEN], oid[NAME_LEN], type[NAME_LEN],
        pl[NAME_LEN], hd[NAME_LEN];

    snprintf(key, sizeof(key), "key_%d", j);
    snprintf(oid, sizeof(oid), "ob_id_%s", tag);
    snprintf(type, sizeof(type), "ob_type_%s", tag);
    snprintf(pl, sizeof(pl), "ob_pl_%s", tag);
    snprintf(hd, sizeof(hd), "ob_hd_%s", tag);
    put_stmt(s, FL_STORE_OUTBOX, v, names(v, 7, oid, "tenant", "topic", key, type, pl, hd));
}

/* Everything one event that moves instance j to `step` writes, in the engine's order. */
static void put_event(script *s, int j, int step)
{
    char v[FL_STORE_MAX_PARAMS][NAME_LEN], id[NAME_LEN], seq[NAME_LEN], ev[NAME_LEN],
        type[NAME_LEN], from[NAME_LEN], st[NAME_LEN], eff[NAME_LEN], nt[NAME_LEN], tag[NAME_LEN];

    snprintf(id, sizeof(id), "id_%d", j);
    snprintf(seq, sizeof(seq), "seq_%d", step);
    snprintf(ev, sizeof(ev), "ev_%d_%d", j, step);
    snprintf(type, sizeof(type), "type_%d", step);
    if (step == 1) {
        snprintf(from, sizeof(from), "empty"); /* pgbench sends no NULL: see above */
    } else {
        snprintf(from, sizeof(from), "st_%d", step - 1);
    }
    snprintf(st, sizeof(st), "st_%d", step);
    snprintf(eff, sizeof(eff), "eff_%d", step);
    snprintf(nt, sizeof(nt), "nt_%d_%d", j, step);
    snprintf(tag, sizeof(tag), "%d", step);
    put_instance_write(s, j, step);
    put_outbox(s, j, tag);
    if (step == s->o->steps) {
        put_outbox(s, j, "f");
    }
    put_stmt(s, FL_STORE_HISTORY, v, names(v, 8, id, seq, "tenant", ev, type, from, st, eff));
    put_stmt(s, FL_STORE_NOTIFY, v, names(v, 1, nt));
    put_stmt(s, FL_STORE_INBOX, v, names(v, 3, "tenant", "source", ev));
}

/* ---- the script ----------------------------------------------------------------------- */

static bool name_ok(const char *name)
{
    return name && *name && strlen(name) < 200 &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
               strlen(name);
}

static fl_rc check_opts(const fl_store_script_opts *o, fl_err *err)
{
    const char *const strs[] = {o->tenant, o->workflow,   o->source,
                                o->topic,  o->start_type, o->next_type};

    if (o->steps < 2 || o->steps > MAX_STEPS || o->batch_size < 1) {
        return fl_err_set(err, FL_EINVAL,
                          "cannot write the pgbench script: steps must be 2 to "
                          "%d and the batch size positive",
                          MAX_STEPS);
    }
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        if (!name_ok(strs[i])) {
            return fl_err_set(err, FL_EINVAL,
                              "cannot write the pgbench script: a name is "
                              "empty or not made of [A-Za-z0-9_.-]");
        }
    }
    return FL_OK;
}

static void put_header(script *s)
{
    put(s,
        "-- The engine's batch as a pgbench script, written by fl_store_script_format\n"
        "-- (engine/store_script.c) from the store's own statements (engine/store_pipe.c).\n"
        "-- One transaction = one pipeline of %d instance(s) x %d step(s) = %d transitions\n"
        "-- of workflow \"%s\" (batch size %d).\n"
        "-- Run: pgbench -n -M prepared -c 1 -j 1 -t TRANSACTIONS -f THIS_FILE DATABASE\n",
        s->per, s->o->steps, s->per * s->o->steps, s->o->workflow, s->o->batch_size);
}

fl_rc fl_store_script_format(const fl_store_script_opts *opts, char **out, fl_err *err)
{
    script s = {.o = opts, .rc = FL_OK, .err = err};

    *out = NULL;
    s.rc = check_opts(opts, err);
    if (s.rc != FL_OK) {
        return s.rc;
    }
    fl_buf_init(&s.buf, MAX_SCRIPT);
    s.per = opts->batch_size / opts->steps > 0 ? opts->batch_size / opts->steps : 1;
    put_header(&s);
    put_gsets(&s);
    put(&s, "\\startpipeline\n");
    for (int j = 0; j < s.per && s.rc == FL_OK; j++) {
        for (int step = 1; step <= opts->steps; step++) {
            put_event(&s, j, step);
        }
    }
    put(&s, "\\endpipeline\n");
    if (s.rc == FL_OK) {
        *out = fl_buf_steal(&s.buf);
    }
    fl_buf_deinit(&s.buf);
    return s.rc;
}
