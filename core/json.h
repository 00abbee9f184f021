/* core/json.h -- reading JSON that PostgreSQL produced (jsonb columns, json_build_object),
 * and the member-name check every strict `with`/body reader shares.
 *
 * jsonb keeps numbers as exact `numeric`s and prints them without an exponent, so a
 * client's 1.5e25 comes back as 15000000000000000000000000: valid JSON that jansson
 * refuses ("too big integer"), since its integers are 64 bits. Refusing it would wedge
 * whatever reads the row (the engine loading an instance, the relay an outbox row, the
 * API a listing) on a value any producer may send. So a document that fails only for
 * that reason is read again with every integer as a double, which is how the value
 * arrived in the first place.
 *
 * Thread-safety: reentrant. */
#ifndef FL_CORE_JSON_H
#define FL_CORE_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Parses text (NUL-terminated) with jansson flags (JSON_DECODE_ANY, ...); on an integer
 * out of range retries with JSON_DECODE_INT_AS_REAL. Returns NULL when text is NULL or
 * not JSON, with *jerr (may be NULL) describing why. Ownership: new reference. */
json_t *fl_json_from_pg(const char *text, size_t flags, json_error_t *jerr);

/* The first member of obj whose name is not in names (NULL-terminated), or NULL (also
 * when obj is not an object). Borrowed from obj. */
const char *fl_json_unknown_member(const json_t *obj, const char *const *names);

/* Whether name is one of names (NULL-terminated); false for a NULL name. */
bool fl_json_name_in(const char *const *names, const char *name);

#endif
