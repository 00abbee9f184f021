/* api/routes_dead_letters.c -- /api/v1/dead-letters: list, read, replay, delete.
 *
 * Rows are written by the engine (table dead_letters, engine/store.h) with the record as
 * it was consumed: topic, partition, offset, key, headers ({name: value}, UTF-8 values
 * only) and the value's bytes. Reads show the payload as text when it is UTF-8 without
 * NUL, else as base64 (`payload_encoding` says which).
 *
 * Replay re-produces the record -- same key, headers and value -- to its original topic
 * (synchronously, acks=all), then sets replayed_at, and answers 202: the engine takes it
 * from there, and may dead-letter it again. A second replay is allowed (after a fix, the
 * first one may have failed again): the answer's previously_replayed_at says it was
 * replayed before. The inbox makes a replay of an event that was applied meanwhile a
 * no-op.
 *
 * The list is newest first by (created_at, id); its cursor carries created_at to the
 * microsecond, so no two pages overlap or skip.
 *
 * Thread-safety: handlers run on civetweb workers, each with its own request. */
#include <stdlib.h>
#include <string.h>

#include "api/instances_int.h"
#include "api/routes.h"
#include "core/json.h"
#include "core/kafka.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/cloudevent.h"

#define DL_US(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

#define DL_OBJECT                                                                          \
    "json_build_object('id', d.id, 'topic', d.topic, 'partition', d.partition, 'offset', " \
    "d.kafka_offset, 'key', d.key, 'reason', d.reason, 'detail', d.detail, "               \
    "'created_at', " FL_INST_TS("d.created_at") ", 'replayed_at', " FL_INST_TS("d.replayed_at")

static const char sql_list[] =
    "SELECT COALESCE(json_agg(" DL_OBJECT
    ", '_at', " DL_US("d.created_at") ") "
                                      "ORDER BY d.created_at DESC, d.id DESC), '[]') FROM (SELECT "
                                      "* FROM dead_letters d "
                                      "WHERE d.tenant = $1 AND ($2::timestamptz IS NULL OR "
                                      "(d.created_at, d.id) < ($2, $3::uuid)) "
                                      "AND ($4::text IS NULL OR d.topic = $4) AND ($5::text IS "
                                      "NULL OR d.reason = $5) "
                                      "ORDER BY d.created_at DESC, d.id DESC LIMIT $6::int) d";

static const char sql_one[] =
    "SELECT " DL_OBJECT ", 'headers', d.headers), encode(d.payload, 'hex') "
    "FROM dead_letters d WHERE d.tenant = $1 AND d.id = $2::uuid";

static const char sql_replayed[] =
    "UPDATE dead_letters d SET replayed_at = now() FROM (SELECT id, replayed_at FROM "
    "dead_letters WHERE tenant = $1 AND id = $2::uuid FOR UPDATE) old WHERE d.id = old.id "
    "RETURNING " DL_OBJECT ", 'previously_replayed_at', " FL_INST_TS("old.replayed_at") ")";

static const char sql_delete[] = "DELETE FROM dead_letters WHERE tenant = $1 AND id = $2::uuid "
                                 "RETURNING json_build_object('id', id)";

/* ---- list ------------------------------------------------------------------------------ */

static char *dl_cursor(const json_t *item)
{
    return fl_page_cursor(json_string_value(json_object_get(item, "_at")),
                          json_string_value(json_object_get(item, "id")));
}

static int list_dead_letters(fl_req *r)
{
    fl_page pg;
    char topic[300], reason[300], limit[16];
    const char *p[6] = {r->who.tenant};
    json_t *rows = NULL, *page, *item;
    size_t i;

    if (!fl_req_page(r, &pg)) {
        return r->status;
    }
    if (pg.has_cursor && (!fl_inst__uuid_valid(pg.after[1]) || !fl_ce_time_valid(pg.after[0]))) {
        return fl_problem(r, 400, "the cursor is not valid");
    }
    p[1] = pg.has_cursor ? pg.after[0] : NULL;
    p[2] = pg.has_cursor ? pg.after[1] : NULL;
    if (!fl_inst__query(r, "topic", topic, sizeof(topic), &p[3]) ||
        !fl_inst__query(r, "reason", reason, sizeof(reason), &p[4])) {
        return r->status;
    }
    snprintf(limit, sizeof(limit), "%d", pg.limit + 1);
    p[5] = limit;
    if (!fl_req_db_json(r, sql_list, 6, p, &rows)) {
        return r->status;
    }
    page = fl_page_wrap(&pg, rows ? rows : json_array(), dl_cursor);
    json_array_foreach(json_object_get(page, "data"), i, item)
    {
        json_object_del(item, "_at"); /* the cursor's sort key, not part of the object */
    }
    return fl_reply(r, 200, page);
}

/* ---- one row --------------------------------------------------------------------------- */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Postgres' hex text of a bytea into bytes. Ownership: caller frees. */
static unsigned char *unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    unsigned char *out = fl_xmalloc(n + 1);

    for (size_t i = 0; i < n; i++) {
        out[i] = (unsigned char)(hexval(hex[2 * i]) * 16 + hexval(hex[2 * i + 1]));
    }
    out[n] = '\0';
    *len = n;
    return out;
}

/* payload (the value as text when it is UTF-8 without NUL, else null) and payload_base64
 * (the value in base64 when it is not text, else null); both null without a value. */
static void add_payload(json_t *dl, const unsigned char *v, size_t n, bool present)
{
    bool text = present && memchr(v, 0, n) == NULL && fl_ce_utf8_valid((const char *)v, n);
    char *b64 = present && !text ? fl_ce_base64_encode(v, n) : NULL;

    json_object_set_new(dl, "payload", text ? json_stringn((const char *)v, n) : json_null());
    json_object_set_new(dl, "payload_base64", b64 ? json_string(b64) : json_null());
    free(b64);
}

/* The row (object, raw value); answers 404 itself. Ownership: *out, *value (free()). */
static bool load(fl_req *r, json_t **out, unsigned char **value, size_t *len, bool *present)
{
    const char *id = fl_req_param(r, 0);
    const char *p[2] = {r->who.tenant, id};
    fl_pg_rows *rows = NULL;
    const char *hex;

    *out = NULL;
    *value = NULL;
    *len = 0;
    if (fl_inst__uuid_valid(id) && !fl_req_db(r, sql_one, 2, p, &rows)) {
        return false;
    }
    if (rows && fl_pg_rows_count(rows) == 1) {
        *out = fl_json_from_pg(fl_pg_rows_get(rows, 0, 0), 0, NULL);
        hex = fl_pg_rows_get(rows, 0, 1);
        *present = hex != NULL;
        *value = unhex(hex ? hex : "", len);
    }
    fl_pg_rows_free(rows);
    if (!*out) {
        free(*value);
        *value = NULL;
        fl_problem(r, 404, "no dead letter \"%s\"", id);
        return false;
    }
    return true;
}

static int get_dead_letter(fl_req *r)
{
    json_t *dl;
    unsigned char *v;
    size_t n;
    bool present = false;

    if (!load(r, &dl, &v, &n, &present)) {
        return r->status;
    }
    add_payload(dl, v, n, present);
    free(v);
    return fl_reply(r, 200, dl);
}

/* ---- replay ---------------------------------------------------------------------------- */

/* Produces the stored record again. Errors: as fl_kafka_produce_sync. */
static fl_rc reproduce(fl_req *r, const json_t *dl, const unsigned char *v, size_t n, bool present,
                       fl_err *err)
{
    const json_t *headers = json_object_get(dl, "headers");
    size_t nh = json_object_size(headers), i = 0;
    fl_kafka_header *h = fl_xcalloc(nh + 1, sizeof(*h));
    const char *name, *key = json_string_value(json_object_get(dl, "key"));
    const json_t *val;
    fl_rc rc;

    json_object_foreach((json_t *)headers, name, val)
    {
        const char *s = json_string_value(val);
        h[i++] = (fl_kafka_header){name, s, s ? json_string_length(val) : 0};
    }
    fl_kafka_record rec = {json_string_value(json_object_get(dl, "topic")),
                           key,
                           key ? strlen(key) : 0,
                           present ? v : NULL,
                           n,
                           h,
                           i};
    rc = fl_kafka_produce_sync(r->api->producer, &rec, r->api->cfg->kafka.produce_timeout_ms, NULL,
                               err);
    free(h);
    return rc;
}

static int replay_answer(fl_req *r, fl_rc rc, const fl_err *err)
{
    const char *p[2] = {r->who.tenant, fl_req_param(r, 0)};
    json_t *out = NULL;

    if (rc == FL_EUNAVAIL || rc == FL_ETIMEDOUT) {
        fl_req_header_add(r, "Retry-After", "1");
        return fl_problem(r, 503, "the record could not be confirmed by Kafka; retry");
    }
    if (rc != FL_OK) {
        return fl_problem(r, 409, "the record cannot be produced again: %s", err->msg);
    }
    if (!fl_req_db_json(r, sql_replayed, 2, p, &out)) {
        return r->status;
    }
    if (!out) {
        return fl_problem(r, 404, "no dead letter \"%s\"", p[1]); /* deleted meanwhile */
    }
    json_object_set_new(
        out, "replayed_again",
        json_boolean(!json_is_null(json_object_get(out, "previously_replayed_at"))));
    return fl_reply(r, 202, out);
}

static int replay_dead_letter(fl_req *r)
{
    json_t *dl;
    unsigned char *v;
    size_t n;
    bool present = false;
    fl_err err = FL_ERR_INIT;
    fl_rc rc;

    if (!load(r, &dl, &v, &n, &present)) {
        return r->status;
    }
    rc = reproduce(r, dl, v, n, present, &err);
    fl_log(rc == FL_OK ? FL_INFO : FL_WARN, "api.dead_letter_replay",
           FL_STR("request_id", r->request_id), FL_STR("tenant", r->who.tenant),
           FL_STR("topic", json_string_value(json_object_get(dl, "topic"))),
           FL_STR("code", fl_rc_name(rc)));
    free(v);
    json_decref(dl);
    return replay_answer(r, rc, &err);
}

static int delete_dead_letter(fl_req *r)
{
    const char *id = fl_req_param(r, 0);
    const char *p[2] = {r->who.tenant, id};
    json_t *out = NULL;

    if (fl_inst__uuid_valid(id) && !fl_req_db_json(r, sql_delete, 2, p, &out)) {
        return r->status;
    }
    if (!out) {
        return fl_problem(r, 404, "no dead letter \"%s\"", id);
    }
    json_decref(out);
    return fl_req_send(r, 204, NULL, NULL, 0);
}

static const fl_route routes[] = {
    {"GET", "/api/v1/dead-letters", list_dead_letters, FL_SCOPE_READ, 0},
    {"GET", "/api/v1/dead-letters/{id}", get_dead_letter, FL_SCOPE_READ, 0},
    {"DELETE", "/api/v1/dead-letters/{id}", delete_dead_letter, FL_SCOPE_WRITE, 0},
    {"POST", "/api/v1/dead-letters/{id}/replay", replay_dead_letter, FL_SCOPE_WRITE,
     FL_ROUTE_IDEMPOTENT},
};

void fl_routes_dead_letters(fl_router *rt)
{
    fl_router_add(rt, routes, sizeof(routes) / sizeof(routes[0]));
}
