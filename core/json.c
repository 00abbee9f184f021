/* core/json.c -- see core/json.h. */
#include "core/json.h"

#include <string.h>

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

bool fl_json_name_in(const char *const *names, const char *name)
{
    for (size_t i = 0; name && names[i]; i++) {
        if (strcmp(names[i], name) == 0) {
            return true;
        }
    }
    return false;
}

const char *fl_json_unknown_member(const json_t *obj, const char *const *names)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)obj, key, v)
    {
        if (!fl_json_name_in(names, key)) {
            return key;
        }
    }
    return NULL;
}
