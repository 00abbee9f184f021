/* engine/directory.h -- the business directory (businesses, their services / menu items,
 * hours, ratings) and per-user memory facts in PostgreSQL (issue 6 items 6-8).
 *
 * One module for both callers: the REST API (api/routes_businesses.c,
 * api/routes_memory.c) and the `call: flowd.directory.search`, `flowd.business.update`,
 * `flowd.memory.search` and `flowd.business.get` activities (engine/activities_directory.c)
 * run the same validation and the same SQL, so a workflow sees exactly what an API client
 * sees (flowd.business.get is GET /businesses/{id}'s fl_dir_business_get, services added).
 * Every function acts within one tenant (fl_dir_ctx.tenant): a row of another tenant is
 * simply not found. Results are jansson values built in SQL (json_build_object).
 *
 * Validation (engine/directory_check.c) is pure: it appends {pointer, detail} objects,
 * RFC 6901 pointers into the checked document, to an `errors` array -- the problem+json
 * `errors` member of the API.
 *
 * Thread-safety: reentrant; each call borrows one pooled connection for its duration. */
#ifndef FL_ENGINE_DIRECTORY_H
#define FL_ENGINE_DIRECTORY_H

#include <jansson.h>
#include <stdbool.h>

#include "core/err.h"
#include "core/pg.h"

#define FL_DIR_SEARCH_MAX     200 /* rows of one page or one search */
#define FL_DIR_MEMORY_MAX     50  /* facts of one memory search */
#define FL_DIR_SERVICES_MAX   500 /* services / menu items of one business */
#define FL_DIR_QUERY_TEXT_MAX 500 /* bytes of a search text */

/* Where and as whom the directory is reached. All borrowed. */
typedef struct fl_dir_ctx {
    fl_pg_pool *pool;
    const char *tenant;
    int acquire_timeout_ms; /* waiting for a pooled connection */
    int timeout_ms;         /* one statement */
} fl_dir_ctx;

/* ---- validation (pure) ------------------------------------------------------------------ */

/* Appends {pointer, detail} to *errors (created when NULL). */
void fl_dir_error(json_t **errors, const char *pointer, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends an "unknown member" error at pointer (the object's own) for each member of
 * obj not in allowed (NULL-terminated): a typo ("hour") must not pass silently. */
void fl_dir_unknown_members(const json_t *obj, const char *const *allowed, const char *pointer,
                            json_t **errors);

bool fl_dir_uuid_valid(const char *s); /* canonical lower/upper-case 8-4-4-4-12 hex */
bool fl_dir_category_valid(const char *s);
bool fl_dir_time_parse(const char *s, int *minutes); /* "HH:MM", 00:00..24:00 */

/* hours: {weekday: {open: "HH:MM", close: "HH:MM"}} with open < close; weekdays are
 * monday..sunday; an absent day is closed. Errors point below `pointer`. */
bool fl_dir_hours_check(const json_t *hours, const char *pointer, json_t **errors);

/* A whole business (POST, PUT): name and category required; description, address, city,
 * phone, hours, rating (0..5), price_level (1..4), metadata optional; unknown members are
 * errors. */
bool fl_dir_business_check(const json_t *body, json_t **errors);

/* A whole service (POST, PUT; pointer "" for a body, "/services/3" in an update): name
 * required; description, price (>= 0), currency (ISO 4217), duration_minutes (1..1440),
 * category, available optional. */
bool fl_dir_service_check(const json_t *body, const char *pointer, json_t **errors);

/* flowd.business.update's `with`: business_id required; any of description, phone,
 * address, city, hours, price_level, rating, services (upserted by name, each a whole
 * service) and remove_services (names). */
bool fl_dir_update_check(const json_t *args, json_t **errors);

/* POST /memory: {user_id, fact, source?}. */
bool fl_dir_memory_check(const json_t *body, json_t **errors);

/* ---- search ----------------------------------------------------------------------------- */

/* The filters of a directory search. Text members are borrowed. */
typedef struct fl_dir_search {
    const char *q;        /* websearch_to_tsquery text; NULL: no text search */
    const char *category; /* exact */
    const char *city;     /* case-insensitive */
    double min_rating;    /* < 0: none */
    int max_price_level;  /* 0: none */
    int limit;            /* rows wanted (the API asks one more to know has_more) */
    long offset;          /* ranked searches page by offset */
    const char *after_created_at, *after_id; /* unranked: the keyset cursor, or NULL */
} fl_dir_search;

#define FL_DIR_SEARCH_INIT {NULL, NULL, NULL, -1.0, 0, 3, 0, NULL, NULL}

/* Sets one filter from its text form (name: q, category, city, min_rating,
 * max_price_level); a bad value appends an error at pointer. The text stays borrowed. */
bool fl_dir_search_set(fl_dir_search *s, const char *name, const char *text, const char *pointer,
                       json_t **errors);

/* Reads flowd.directory.search's `with` {q?, category?, city?, min_rating?,
 * max_price_level?, limit? (1..20, default 3)} into s (borrowing args). */
bool fl_dir_search_from_json(fl_dir_search *s, const json_t *args, json_t **errors);

/* Runs a search: ranked by text rank then rating when s->q is set, else newest first.
 * with_services adds each business's `services` array. Ownership: *out is a new array.
 * Errors: FL_EUNAVAIL, FL_ETIMEDOUT, FL_EIO. */
fl_rc fl_dir_search_run(const fl_dir_ctx *c, const fl_dir_search *s, bool with_services,
                        json_t **out, fl_err *err);

/* ---- businesses and services -------------------------------------------------------- */

/* Ownership: every *out is a new reference. Errors (besides FL_EUNAVAIL, FL_ETIMEDOUT,
 * FL_EIO): FL_ENOTFOUND for an unknown id or another tenant's; FL_ECONFLICT for a
 * service name the business already has. Bodies must have passed their check. */
fl_rc fl_dir_business_get(const fl_dir_ctx *c, const char *id, bool with_services, json_t **out,
                          fl_err *err);
fl_rc fl_dir_business_create(const fl_dir_ctx *c, const json_t *body, json_t **out, fl_err *err);
fl_rc fl_dir_business_replace(const fl_dir_ctx *c, const char *id, const json_t *body, json_t **out,
                              fl_err *err);
fl_rc fl_dir_business_delete(const fl_dir_ctx *c, const char *id, fl_err *err);

fl_rc fl_dir_services_list(const fl_dir_ctx *c, const char *business_id, json_t **out, fl_err *err);
fl_rc fl_dir_service_create(const fl_dir_ctx *c, const char *business_id, const json_t *body,
                            json_t **out, fl_err *err);
fl_rc fl_dir_service_replace(const fl_dir_ctx *c, const char *business_id, const char *id,
                             const json_t *body, json_t **out, fl_err *err);
fl_rc fl_dir_service_delete(const fl_dir_ctx *c, const char *business_id, const char *id,
                            fl_err *err);

/* flowd.business.update: the fields given replace the stored ones, services are upserted
 * by name, remove_services deleted by name -- one statement, so it applies whole or not
 * at all, and applying it twice leaves the state it left once. *out: the business with
 * its services. */
fl_rc fl_dir_business_update(const fl_dir_ctx *c, const json_t *args, json_t **out, fl_err *err);

/* ---- memory facts ---------------------------------------------------------------------- */

/* Stores a fact (body checked by fl_dir_memory_check); the same fact for the same user is
 * one row: *created says whether this call made it. *out: {id, user_id, fact, source,
 * created_at}. */
fl_rc fl_dir_memory_add(const fl_dir_ctx *c, const json_t *body, json_t **out, bool *created,
                        fl_err *err);

/* The user's facts best matching q (websearch syntax; NULL or "": newest first), at most
 * limit. *out: an array of facts with `rank`. */
fl_rc fl_dir_memory_search(const fl_dir_ctx *c, const char *user_id, const char *q, int limit,
                           json_t **out, fl_err *err);

#endif
