/* engine/directory_int.h -- private to engine/directory*.c: the SQL fragments that build
 * the directory's JSON objects, and the one statement runner they share.
 *
 * Thread-safety: reentrant. */
#ifndef FL_ENGINE_DIRECTORY_INT_H
#define FL_ENGINE_DIRECTORY_INT_H

#include <jansson.h>

#include "core/err.h"
#include "engine/directory.h"

/* RFC 3339 UTC with milliseconds, the form every flowd timestamp takes. */
#define FL_DIR_TS(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* The members of a business object, for a row aliased `b`. */
#define FL_DIR_BIZ_FIELDS                                                                \
    "'id', b.id, 'name', b.name, 'category', b.category, 'description', b.description, " \
    "'address', b.address, 'city', b.city, 'phone', b.phone, 'hours', b.hours, "         \
    "'rating', b.rating, 'price_level', b.price_level, 'metadata', b.metadata, "         \
    "'created_at', " FL_DIR_TS("b.created_at") ", 'updated_at', " FL_DIR_TS("b.updated_at")

/* A service object for a row aliased `s`. */
#define FL_DIR_SVC_OBJECT                                                                 \
    "json_build_object('id', s.id, 'business_id', s.business_id, 'name', s.name, "        \
    "'description', s.description, 'price', s.price, 'currency', s.currency, "            \
    "'duration_minutes', s.duration_minutes, 'category', s.category, 'available', "       \
    "s.available, 'created_at', " FL_DIR_TS("s.created_at") ", 'updated_at', " FL_DIR_TS( \
        "s.updated_at") ")"

/* The services of business `b` (services table), by name. */
#define FL_DIR_BIZ_SERVICES                                                                 \
    "(SELECT coalesce(json_agg(" FL_DIR_SVC_OBJECT " ORDER BY lower(s.name), s.id), '[]') " \
    "FROM services s WHERE s.business_id = b.id)"

/* Runs one statement whose first row's first column is a JSON value. *out is NULL when
 * there is no row or the value is SQL NULL. Errors: FL_EUNAVAIL, FL_ETIMEDOUT,
 * FL_ECONFLICT (a unique violation), FL_EIO, FL_EINTERNAL (not JSON). */
fl_rc fl_dir__json(const fl_dir_ctx *c, const char *sql, int nparams, const char *const *params,
                   json_t **out, fl_err *err);

#endif
