/* engine/directory_search.c -- directory search (full text + filters) and memory facts
 * (engine/directory.h).
 *
 * Text search is PostgreSQL's: websearch_to_tsquery over the generated tsvector columns of
 * schemas/sql/005_directory.sql (GIN-indexed), so users type what they would type into a
 * search box ("cheap pizza", "haircut -beard", "\"oil change\""). Ranked results order by
 * ts_rank, then rating, then newest; unranked ones by newest, which a keyset cursor can
 * page exactly. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/directory_int.h"

#define CITY_MAX_LEN       100
#define ACTIVITY_LIMIT_MAX 20
#define ACTIVITY_LIMIT_DEF 3

/* The rank and rating only count when there is a text query ($2); without one the order
 * is newest first, the same as the keyset cursor's. */
static const char sql_search[] =
    "SELECT coalesce(json_agg(CASE WHEN $11::bool THEN json_build_object(" FL_DIR_BIZ_FIELDS
    ", 'services', " FL_DIR_BIZ_SERVICES ") ELSE json_build_object(" FL_DIR_BIZ_FIELDS ") END "
    "ORDER BY b.o_rank DESC, b.o_rating DESC NULLS LAST, b.created_at DESC, b.id DESC), '[]') "
    "FROM (SELECT b.*, CASE WHEN $2::text IS NULL THEN 0 ELSE ts_rank(b.search, q) END AS o_rank, "
    "CASE WHEN $2::text IS NULL THEN NULL ELSE b.rating END AS o_rating "
    "FROM businesses b, websearch_to_tsquery('english', $2::text) q "
    "WHERE b.tenant = $1 AND ($2::text IS NULL OR b.search @@ q) "
    "AND ($3::text IS NULL OR b.category = $3) AND ($4::text IS NULL OR lower(b.city) = lower($4)) "
    "AND ($5::numeric IS NULL OR b.rating >= $5::numeric) "
    "AND ($6::int IS NULL OR b.price_level <= $6::int) "
    "AND ($9::timestamptz IS NULL OR (b.created_at, b.id) < ($9::timestamptz, $10::uuid)) "
    "ORDER BY o_rank DESC, o_rating DESC NULLS LAST, b.created_at DESC, b.id DESC "
    "LIMIT $7::int OFFSET $8::bigint) b";

static bool filter_text(const char *text, size_t max, const char *pointer, json_t **errors)
{
    size_t n = strlen(text);

    if (n == 0 || n > max) {
        fl_dir_error(errors, pointer, "must be 1 to %zu characters", max);
        return false;
    }
    return true;
}

bool fl_dir_search_set(fl_dir_search *s, const char *name, const char *text, const char *pointer,
                       json_t **errors)
{
    char *end = NULL;
    double d;

    if (strcmp(name, "q") == 0) {
        s->q = filter_text(text, FL_DIR_QUERY_TEXT_MAX, pointer, errors) ? text : NULL;
        return s->q != NULL;
    }
    if (strcmp(name, "category") == 0) {
        s->category = fl_dir_category_valid(text) ? text : NULL;
        if (!s->category) {
            fl_dir_error(errors, pointer, "is not a known category");
        }
        return s->category != NULL;
    }
    if (strcmp(name, "city") == 0) {
        s->city = filter_text(text, CITY_MAX_LEN, pointer, errors) ? text : NULL;
        return s->city != NULL;
    }
    errno = 0;
    d = strtod(text, &end);
    if (strcmp(name, "min_rating") == 0 && *text && !*end && !errno && d >= 0 && d <= 5) {
        s->min_rating = d;
        return true;
    }
    if (strcmp(name, "max_price_level") == 0 && *text && !*end && d >= 1 && d <= 4 &&
        d == floor(d)) {
        s->max_price_level = (int)d;
        return true;
    }
    fl_dir_error(errors, pointer, "%s",
                 strcmp(name, "min_rating") == 0        ? "must be a number from 0 to 5"
                 : strcmp(name, "max_price_level") == 0 ? "must be an integer from 1 to 4"
                                                        : "is not a search filter");
    return false;
}

/* One `with` member as text for fl_dir_search_set (numbers rendered into buf). */
static const char *member_text(const json_t *v, char *buf, size_t size)
{
    if (json_is_string(v)) {
        return json_string_value(v);
    }
    if (json_is_number(v)) {
        snprintf(buf, size, "%.17g", json_number_value(v));
        return buf;
    }
    return NULL;
}

static const char *const with_names[] = {
    "q", "category", "city", "min_rating", "max_price_level", "limit", NULL};

bool fl_dir_search_from_json(fl_dir_search *s, const json_t *args, json_t **errors)
{
    size_t before = json_array_size(*errors);
    const json_t *limit = json_object_get(args, "limit");

    if (args && !json_is_object(args)) {
        fl_dir_error(errors, "", "must be an object");
        return false;
    }
    fl_dir_unknown_members(args, with_names, "", errors);
    for (size_t i = 0; i < 5; i++) {
        const json_t *m = json_object_get(args, with_names[i]);
        /* buf need not outlive the call: numbers are stored in s as numbers, and the
         * strings s keeps are borrowed from args */
        char buf[32], ptr[32];
        const char *text = i < 3 ? json_string_value(m) : member_text(m, buf, sizeof(buf));

        snprintf(ptr, sizeof(ptr), "/%s", with_names[i]);
        if (m == NULL || json_is_null(m) || (i == 0 && text && !*text)) {
            continue;
        }
        if (text == NULL) {
            fl_dir_error(errors, ptr, "must be a %s", i < 3 ? "string" : "number");
        } else {
            fl_dir_search_set(s, with_names[i], text, ptr, errors);
        }
    }
    if (limit && !json_is_null(limit) &&
        !(json_is_integer(limit) && json_integer_value(limit) >= 1 &&
          json_integer_value(limit) <= ACTIVITY_LIMIT_MAX)) {
        fl_dir_error(errors, "/limit", "must be an integer from 1 to %d", ACTIVITY_LIMIT_MAX);
    }
    s->limit = json_is_integer(limit) ? (int)json_integer_value(limit) : ACTIVITY_LIMIT_DEF;
    return json_array_size(*errors) == before;
}

fl_rc fl_dir_search_run(const fl_dir_ctx *c, const fl_dir_search *s, bool with_services,
                        json_t **out, fl_err *err)
{
    char rating[32], price[16], limit[16], offset[32];
    const char *p[11] = {c->tenant,
                         s->q,
                         s->category,
                         s->city,
                         s->min_rating >= 0 ? rating : NULL,
                         s->max_price_level > 0 ? price : NULL,
                         limit,
                         offset,
                         s->after_created_at,
                         s->after_created_at ? s->after_id : NULL,
                         with_services ? "true" : "false"};
    fl_rc rc;

    snprintf(rating, sizeof(rating), "%.3f", s->min_rating);
    snprintf(price, sizeof(price), "%d", s->max_price_level);
    snprintf(limit, sizeof(limit), "%d", s->limit);
    snprintf(offset, sizeof(offset), "%ld", s->offset);
    rc = fl_dir__json(c, sql_search, 11, p, out, err);
    if (rc == FL_OK && !json_is_array(*out)) {
        json_decref(*out);
        *out = json_array();
    }
    return rc;
}

/* ---- memory facts ---------------------------------------------------------------------- */

#define MEM_FIELDS                                                           \
    "'id', m.id, 'user_id', m.user_id, 'fact', m.fact, 'source', m.source, " \
    "'created_at', " FL_DIR_TS("m.created_at")

/* A fact already stored for the user is answered as it is (created false). */
static const char sql_mem_add[] =
    "WITH x AS (SELECT $2::jsonb AS j), "
    "ins AS (INSERT INTO memory_facts (id, tenant, user_id, fact, source) "
    "SELECT gen_random_uuid(), $1, j->>'user_id', j->>'fact', j->>'source' FROM x "
    "ON CONFLICT DO NOTHING RETURNING *) "
    "SELECT json_build_object('created', true, 'fact', json_build_object(" MEM_FIELDS ")) "
    "FROM ins m UNION ALL "
    "SELECT json_build_object('created', false, 'fact', json_build_object(" MEM_FIELDS ")) "
    "FROM memory_facts m, x WHERE NOT EXISTS (SELECT 1 FROM ins) AND m.tenant = $1 "
    "AND m.user_id = x.j->>'user_id' AND md5(m.fact) = md5(x.j->>'fact')";

static const char sql_mem_search[] =
    "SELECT coalesce(json_agg(json_build_object(" MEM_FIELDS ", 'rank', m.rank) "
    "ORDER BY m.rank DESC NULLS LAST, m.created_at DESC, m.id), '[]') "
    "FROM (SELECT m.*, ts_rank(m.search, q) AS rank FROM memory_facts m, "
    "websearch_to_tsquery('english', $3::text) q "
    "WHERE m.tenant = $1 AND m.user_id = $2 AND ($3::text IS NULL OR m.search @@ q) "
    "ORDER BY rank DESC NULLS LAST, m.created_at DESC, m.id LIMIT $4::int) m";

fl_rc fl_dir_memory_add(const fl_dir_ctx *c, const json_t *body, json_t **out, bool *created,
                        fl_err *err)
{
    char *text = json_dumps(body, JSON_COMPACT);
    const char *p[2] = {c->tenant, text};
    json_t *row = NULL;
    fl_rc rc = fl_dir__json(c, sql_mem_add, 2, p, &row, err);

    free(text);
    *out = NULL;
    if (rc == FL_OK && row == NULL) {
        /* a concurrent insert of the same fact won after our snapshot: the caller retries */
        rc = fl_err_set(err, FL_ECONFLICT, "the same fact is being stored concurrently");
    }
    if (rc == FL_OK) {
        *created = json_is_true(json_object_get(row, "created"));
        *out = json_incref(json_object_get(row, "fact"));
    }
    json_decref(row);
    return rc;
}

fl_rc fl_dir_memory_search(const fl_dir_ctx *c, const char *user_id, const char *q, int limit,
                           json_t **out, fl_err *err)
{
    char lim[16];
    const char *p[4] = {c->tenant, user_id, q && *q ? q : NULL, lim};
    fl_rc rc;

    snprintf(lim, sizeof(lim), "%d", limit);
    rc = fl_dir__json(c, sql_mem_search, 4, p, out, err);
    if (rc == FL_OK && !json_is_array(*out)) {
        json_decref(*out);
        *out = json_array();
    }
    return rc;
}
