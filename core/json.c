/* core/json.c -- see core/json.h. */
#include "core/json.h"

json_t *fl_json_from_pg(const char *text, size_t flags, json_error_t *jerr)
{
    json_error_t e;
    json_t *j;

    if (!text) {
        return NULL;
    }
    j = json_loads(text, flags, &e);
    if (!j && json_error_code(&e) == json_error_numeric_overflow) {
        j = json_loads(text, flags | JSON_DECODE_INT_AS_REAL, &e);
    }
    if (!j && jerr) {
        *jerr = e;
    }
    return j;
}
