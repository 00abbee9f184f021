/* engine/directory_check.c -- pure validation of directory documents: businesses, hours,
 * services, flowd.business.update arguments, memory facts (engine/directory.h).
 *
 * Every check reports every bad field, not only the first, so a client fixes its body in
 * one round trip. Unknown members are errors too: a typo ("hour") must not be silently
 * dropped from a full replacement.
 *
 * Thread-safety: reentrant. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "engine/directory.h"

#define NAME_MAX_LEN     200
#define DESC_MAX_LEN     4000
#define ADDRESS_MAX_LEN  300
#define CITY_MAX_LEN     100
#define PHONE_MAX_LEN    40
#define USER_ID_MAX_LEN  128
#define FACT_MAX_LEN     2000
#define SOURCE_MAX_LEN   200
#define SVC_CAT_MAX_LEN  100
#define MAX_DAY_MINUTES  (24 * 60)
#define MAX_DURATION_MIN 1440

static const char *const categories[] = {"restaurant",     "beauty_salon",
                                         "automotive",     "health_medical",
                                         "local_services", "retail",
                                         "fitness",        "education",
                                         "hospitality",    "professional_services",
                                         "other",          NULL};

static const char *const weekdays[] = {"monday", "tuesday",  "wednesday", "thursday",
                                       "friday", "saturday", "sunday",    NULL};

static const char *const business_members[] = {"name",        "category", "description", "address",
                                               "city",        "phone",    "hours",       "rating",
                                               "price_level", "metadata", NULL};

static const char *const service_members[] = {
    "name", "description", "price", "currency", "duration_minutes", "category", "available", NULL};

static const char *const update_members[] = {
    "business_id", "description", "phone",    "address",         "city", "hours",
    "price_level", "rating",      "services", "remove_services", NULL};

void fl_dir_error(json_t **errors, const char *pointer, const char *fmt, ...)
{
    char detail[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (*errors == NULL) {
        *errors = json_array();
    }
    json_array_append_new(*errors, json_pack("{s:s, s:s}", "pointer", pointer, "detail", detail));
}

void fl_dir_unknown_members(const json_t *obj, const char *const *allowed, const char *pointer,
                            json_t **errors)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)obj, key, v)
    {
        if (!fl_json_name_in(allowed, key)) {
            fl_dir_error(errors, pointer, "unknown member \"%.64s\"", key);
        }
    }
}

bool fl_dir_uuid_valid(const char *s)
{
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

    if (s == NULL || strlen(s) != sizeof(shape) - 1) {
        return false;
    }
    for (size_t i = 0; shape[i]; i++) {
        bool ok = shape[i] == '-' ? s[i] == '-' : isxdigit((unsigned char)s[i]) != 0;
        if (!ok) {
            return false;
        }
    }
    return true;
}

bool fl_dir_category_valid(const char *s)
{
    return fl_json_name_in(categories, s);
}

bool fl_dir_time_parse(const char *s, int *minutes)
{
    int h, m;

    if (s == NULL || strlen(s) != 5 || s[2] != ':' || !isdigit((unsigned char)s[0]) ||
        !isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[3]) ||
        !isdigit((unsigned char)s[4])) {
        return false;
    }
    h = (s[0] - '0') * 10 + (s[1] - '0');
    m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && m != 0)) {
        return false;
    }
    *minutes = h * 60 + m;
    return true;
}

/* One day's {open, close}. */
static void day_check(const json_t *day, const char *ptr, json_t **errors)
{
    static const char *const members[] = {"open", "close", NULL};
    char p[96];
    int open = -1, close = -1;

    if (!json_is_object(day)) {
        fl_dir_error(errors, ptr, "must be an object {open, close} (omit a closed day)");
        return;
    }
    fl_dir_unknown_members(day, members, ptr, errors);
    snprintf(p, sizeof(p), "%s/open", ptr);
    if (!fl_dir_time_parse(json_string_value(json_object_get(day, "open")), &open) ||
        open == MAX_DAY_MINUTES) {
        fl_dir_error(errors, p, "is required: a time HH:MM from 00:00 to 23:59");
        open = -1;
    }
    snprintf(p, sizeof(p), "%s/close", ptr);
    if (!fl_dir_time_parse(json_string_value(json_object_get(day, "close")), &close)) {
        fl_dir_error(errors, p, "is required: a time HH:MM from 00:00 to 24:00");
    } else if (open >= 0 && close <= open) {
        fl_dir_error(errors, p, "must be later than open");
    }
}

bool fl_dir_hours_check(const json_t *hours, const char *pointer, json_t **errors)
{
    size_t before = json_array_size(*errors);
    const char *key;
    json_t *v;
    char p[96];

    if (!json_is_object(hours)) {
        fl_dir_error(errors, pointer, "must be an object of weekday -> {open, close}");
        return false;
    }
    json_object_foreach((json_t *)hours, key, v)
    {
        snprintf(p, sizeof(p), "%s/%.32s", pointer, key);
        if (!fl_json_name_in(weekdays, key)) {
            fl_dir_error(errors, p, "is not a weekday (monday ... sunday, lower case)");
        } else {
            day_check(v, p, errors);
        }
    }
    return json_array_size(*errors) == before;
}

/* An optional (absent or null) or required string of 1..max characters. */
static void text_check(const json_t *obj, const char *name, const char *pointer, size_t max,
                       bool required, json_t **errors)
{
    const json_t *v = json_object_get(obj, name);
    char p[96];

    snprintf(p, sizeof(p), "%s/%s", pointer, name);
    if (v == NULL || json_is_null(v)) {
        if (required) {
            fl_dir_error(errors, p, "is required: a string of 1 to %zu characters", max);
        }
        return;
    }
    /* a description is "" when there is none, and a client PUTting back what it read
     * must pass: it alone may be empty */
    if (!json_is_string(v) || (json_string_length(v) == 0 && strcmp(name, "description")) ||
        json_string_length(v) > max || strlen(json_string_value(v)) != json_string_length(v)) {
        fl_dir_error(errors, p, "must be a string of 1 to %zu characters", max);
    }
}

/* An optional number within [lo, hi]; integer_only for whole numbers. */
static void number_check(const json_t *obj, const char *name, const char *pointer, double lo,
                         double hi, bool integer_only, json_t **errors)
{
    const json_t *v = json_object_get(obj, name);
    char p[96];

    if (v == NULL || json_is_null(v)) {
        return;
    }
    snprintf(p, sizeof(p), "%s/%s", pointer, name);
    if (integer_only ? !json_is_integer(v) : !json_is_number(v)) {
        fl_dir_error(errors, p, "must be %s from %g to %g",
                     integer_only ? "an integer" : "a number", lo, hi);
    } else if (json_number_value(v) < lo || json_number_value(v) > hi) {
        fl_dir_error(errors, p, "must be from %g to %g", lo, hi);
    }
}

static void phone_check(const json_t *obj, const char *pointer, json_t **errors)
{
    const char *s = json_string_value(json_object_get(obj, "phone"));
    char p[96];

    text_check(obj, "phone", pointer, PHONE_MAX_LEN, false, errors);
    if (s && strspn(s, "0123456789+-(). ") != strlen(s)) {
        snprintf(p, sizeof(p), "%s/phone", pointer);
        fl_dir_error(errors, p, "may hold only digits, spaces and + - ( ) .");
    }
}

/* The members a whole business and an update share. */
static void business_fields(const json_t *b, const char *pointer, json_t **errors)
{
    const json_t *hours = json_object_get(b, "hours");
    char p[96];

    text_check(b, "description", pointer, DESC_MAX_LEN, false, errors);
    text_check(b, "address", pointer, ADDRESS_MAX_LEN, false, errors);
    text_check(b, "city", pointer, CITY_MAX_LEN, false, errors);
    phone_check(b, pointer, errors);
    number_check(b, "rating", pointer, 0, 5, false, errors);
    number_check(b, "price_level", pointer, 1, 4, true, errors);
    if (hours && !json_is_null(hours)) {
        snprintf(p, sizeof(p), "%s/hours", pointer);
        fl_dir_hours_check(hours, p, errors);
    }
}

/* True when a string anywhere in v holds a NUL, which PostgreSQL's jsonb refuses (the API
 * rejects them when decoding; a workflow's `with` may still carry one).
 * Recursion is bounded by the body's nesting cap (api.max_json_depth). */
static bool has_nul(const json_t *v)
{
    const char *key;
    json_t *item;
    size_t i;

    if (json_is_string(v)) {
        return strlen(json_string_value(v)) != json_string_length(v);
    }
    json_object_foreach((json_t *)v, key, item)
    {
        if (has_nul(item)) {
            return true;
        }
        (void)key; /* jansson refuses a NUL in a key when decoding */
    }
    json_array_foreach(v, i, item)
    {
        if (has_nul(item)) {
            return true;
        }
    }
    return false;
}

bool fl_dir_business_check(const json_t *body, json_t **errors)
{
    size_t before = json_array_size(*errors);
    const json_t *meta = json_object_get(body, "metadata");

    if (!json_is_object(body)) {
        fl_dir_error(errors, "", "must be an object");
        return false;
    }
    fl_dir_unknown_members(body, business_members, "", errors);
    text_check(body, "name", "", NAME_MAX_LEN, true, errors);
    if (!fl_dir_category_valid(json_string_value(json_object_get(body, "category")))) {
        fl_dir_error(errors, "/category",
                     "is required: one of restaurant, beauty_salon, automotive, health_medical, "
                     "local_services, retail, fitness, education, hospitality, "
                     "professional_services, other");
    }
    business_fields(body, "", errors);
    if (meta && !json_is_null(meta) && !json_is_object(meta)) {
        fl_dir_error(errors, "/metadata", "must be an object");
    } else if (has_nul(meta)) {
        fl_dir_error(errors, "/metadata", "must not hold NUL characters");
    }
    return json_array_size(*errors) == before;
}

bool fl_dir_service_check(const json_t *body, const char *pointer, json_t **errors)
{
    size_t before = json_array_size(*errors);
    const char *cur = json_string_value(json_object_get(body, "currency"));
    const json_t *avail = json_object_get(body, "available");
    char p[96];

    if (!json_is_object(body)) {
        fl_dir_error(errors, pointer, "must be an object");
        return false;
    }
    fl_dir_unknown_members(body, service_members, pointer, errors);
    text_check(body, "name", pointer, NAME_MAX_LEN, true, errors);
    text_check(body, "description", pointer, DESC_MAX_LEN, false, errors);
    text_check(body, "category", pointer, SVC_CAT_MAX_LEN, false, errors);
    number_check(body, "price", pointer, 0, 1e9, false, errors);
    number_check(body, "duration_minutes", pointer, 1, MAX_DURATION_MIN, true, errors);
    if (json_object_get(body, "currency") && !json_is_null(json_object_get(body, "currency")) &&
        (cur == NULL || strlen(cur) != 3 || strspn(cur, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3)) {
        snprintf(p, sizeof(p), "%s/currency", pointer);
        fl_dir_error(errors, p, "must be an ISO 4217 code such as USD or EUR");
    }
    if (avail && !json_is_null(avail) && !json_is_boolean(avail)) {
        snprintf(p, sizeof(p), "%s/available", pointer);
        fl_dir_error(errors, p, "must be true or false");
    }
    return json_array_size(*errors) == before;
}

/* services: [whole service, ...]; remove_services: [name, ...]. */
static void update_lists(const json_t *args, json_t **errors)
{
    const json_t *svcs = json_object_get(args, "services");
    const json_t *rm = json_object_get(args, "remove_services");
    const json_t *v;
    size_t i;
    char p[64];

    if (svcs && !(json_is_array(svcs) && json_array_size(svcs) <= FL_DIR_SERVICES_MAX)) {
        fl_dir_error(errors, "/services", "must be an array of at most %d services",
                     FL_DIR_SERVICES_MAX);
    } else if (svcs) {
        json_array_foreach(svcs, i, v)
        {
            snprintf(p, sizeof(p), "/services/%zu", i);
            fl_dir_service_check(v, p, errors);
        }
    }
    if (rm && !(json_is_array(rm) && json_array_size(rm) <= FL_DIR_SERVICES_MAX)) {
        fl_dir_error(errors, "/remove_services", "must be an array of service names");
        return;
    }
    json_array_foreach(rm, i, v)
    {
        if (!json_is_string(v) || json_string_length(v) == 0) {
            snprintf(p, sizeof(p), "/remove_services/%zu", i);
            fl_dir_error(errors, p, "must be a service name");
        }
    }
}

bool fl_dir_update_check(const json_t *args, json_t **errors)
{
    size_t before = json_array_size(*errors);

    if (!json_is_object(args)) {
        fl_dir_error(errors, "", "must be an object");
        return false;
    }
    fl_dir_unknown_members(args, update_members, "", errors);
    if (!fl_dir_uuid_valid(json_string_value(json_object_get(args, "business_id")))) {
        fl_dir_error(errors, "/business_id", "is required: a business id (UUID)");
    }
    business_fields(args, "", errors);
    update_lists(args, errors);
    return json_array_size(*errors) == before;
}

bool fl_dir_memory_check(const json_t *body, json_t **errors)
{
    static const char *const members[] = {"user_id", "fact", "source", NULL};
    size_t before = json_array_size(*errors);

    if (!json_is_object(body)) {
        fl_dir_error(errors, "", "must be an object");
        return false;
    }
    fl_dir_unknown_members(body, members, "", errors);
    text_check(body, "user_id", "", USER_ID_MAX_LEN, true, errors);
    text_check(body, "fact", "", FACT_MAX_LEN, true, errors);
    text_check(body, "source", "", SOURCE_MAX_LEN, false, errors);
    return json_array_size(*errors) == before;
}
