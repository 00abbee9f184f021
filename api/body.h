/* api/body.h -- decoding JSON request bodies strictly (issue 5 "Rules").
 *
 * jansson parses (JSON_REJECT_DUPLICATES, so a key given twice is an error rather than a
 * silent last-wins); the nesting depth is then checked on the tree, because jansson's
 * own cap is a build constant (2048) and callers want a configured one. The body must
 * already be capped in size (http.max_body_bytes) before it gets here.
 *
 * Errors come as the problem+json `errors` member: [{pointer, detail}], pointer being an
 * RFC 6901 JSON Pointer ("" for the whole document, "/items/3" for a nested value).
 *
 * Thread-safety: reentrant. */
#ifndef FL_API_BODY_H
#define FL_API_BODY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Decodes data[0..len) as one JSON value nested at most max_depth deep (a scalar is depth
 * 0, {"a":1} depth 1). On success *out is a new reference and *errors NULL; on failure
 * *out is NULL and *errors a new array describing why (syntax errors name line and
 * column in the detail). */
bool fl_body_decode(const char *data, size_t len, int max_depth, json_t **out, json_t **errors);

/* Appends {pointer, detail} to errors (created when *errors is NULL). Helpers for handlers
 * that validate fields: fl_body_error(&errs, "/flow_type", "must be one of ..."). */
void fl_body_error(json_t **errors, const char *pointer, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
