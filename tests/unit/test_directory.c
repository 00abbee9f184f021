/* tests/unit/test_directory.c -- the directory's pure validation (engine/directory_check.c)
 * and search filters (engine/directory_search.c): times, hours, businesses, services,
 * flowd.business.update arguments, memory facts; every bad field named by its pointer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "engine/directory.h"

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);

    if (v == NULL) {
        fail_msg("bad test JSON: %s: %s", text, e.text);
    }
    return v;
}

/* The errors' pointers, comma-joined, in order. */
static void pointers(const json_t *errors, char *buf, size_t size)
{
    size_t i, n = 0;
    json_t *e;

    buf[0] = '\0';
    json_array_foreach(errors, i, e)
    {
        n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? "," : "",
                              json_string_value(json_object_get(e, "pointer")));
        assert_true(json_string_length(json_object_get(e, "detail")) > 0);
    }
}

typedef bool (*check_fn)(const json_t *, json_t **);

/* Runs check on text; asserts the outcome and the pointers of the errors. */
static void expect(check_fn check, const char *text, const char *want)
{
    json_t *v = load(text), *errors = NULL;
    bool ok = check(v, &errors);
    char got[512];

    pointers(errors, got, sizeof(got));
    assert_int_equal(ok, want[0] == '\0');
    assert_string_equal(got, want);
    json_decref(errors);
    json_decref(v);
}

static bool hours_check(const json_t *v, json_t **errors)
{
    return fl_dir_hours_check(v, "/hours", errors);
}

static bool service_check(const json_t *v, json_t **errors)
{
    return fl_dir_service_check(v, "", errors);
}

static void test_directory_time_parse(void **state)
{
    int m = -1;

    (void)state;
    assert_true(fl_dir_time_parse("00:00", &m) && m == 0);
    assert_true(fl_dir_time_parse("09:30", &m) && m == 570);
    assert_true(fl_dir_time_parse("23:59", &m) && m == 1439);
    assert_true(fl_dir_time_parse("24:00", &m) && m == 1440);
    assert_false(fl_dir_time_parse("24:01", &m));
    assert_false(fl_dir_time_parse("9:30", &m));
    assert_false(fl_dir_time_parse("09:60", &m));
    assert_false(fl_dir_time_parse("25:00", &m));
    assert_false(fl_dir_time_parse("09-30", &m));
    assert_false(fl_dir_time_parse("09:30 ", &m));
    assert_false(fl_dir_time_parse("", &m));
    assert_false(fl_dir_time_parse(NULL, &m));
}

static void test_directory_hours(void **state)
{
    (void)state;
    expect(hours_check, "{}", "");
    expect(hours_check,
           "{\"monday\": {\"open\": \"09:00\", \"close\": \"17:00\"},"
           " \"sunday\": {\"open\": \"00:00\", \"close\": \"24:00\"}}",
           "");
    expect(hours_check, "[]", "/hours");
    expect(hours_check, "{\"Monday\": {\"open\": \"09:00\", \"close\": \"17:00\"}}",
           "/hours/Monday");
    expect(hours_check, "{\"monday\": null}", "/hours/monday");
    expect(hours_check, "{\"monday\": {\"open\": \"17:00\", \"close\": \"09:00\"}}",
           "/hours/monday/close");
    expect(hours_check, "{\"monday\": {\"open\": \"09:00\", \"close\": \"09:00\"}}",
           "/hours/monday/close");
    expect(hours_check, "{\"monday\": {\"open\": \"24:00\", \"close\": \"24:00\"}}",
           "/hours/monday/open");
    expect(hours_check, "{\"friday\": {\"open\": 9, \"lunch\": 1}}",
           "/hours/friday,/hours/friday/open,/hours/friday/close");
}

static void test_directory_business(void **state)
{
    (void)state;
    expect(fl_dir_business_check, "{\"name\": \"Luigi\", \"category\": \"restaurant\"}", "");
    expect(fl_dir_business_check,
           "{\"name\": \"Luigi\", \"category\": \"restaurant\", \"description\": \"\","
           " \"address\": \"1 Main St\", \"city\": \"Springfield\", \"phone\": \"+1 (555) 0100\","
           " \"rating\": 4.5, \"price_level\": 4, \"metadata\": {}, \"hours\": {},"
           " \"rating\": 0}",
           "");
    expect(fl_dir_business_check, "{}", "/name,/category");
    expect(fl_dir_business_check,
           "{\"name\": \"\", \"category\": \"spaceport\", \"rating\": 5.1, \"price_level\": 5,"
           " \"phone\": \"call me\", \"metadata\": 1, \"city\": 3, \"x\": 1}",
           ",/name,/category,/city,/phone,/rating,/price_level,/metadata");
    expect(fl_dir_business_check,
           "{\"name\": \"a\", \"category\": \"automotive\", \"price_level\": 2.0,"
           " \"rating\": \"4\"}",
           "/rating,/price_level");
    {
        json_t *v = load("[]"), *errors = NULL;
        assert_false(fl_dir_business_check(v, &errors));
        assert_int_equal(json_array_size(errors), 1);
        json_decref(errors);
        json_decref(v);
    }
}

static void test_directory_service(void **state)
{
    (void)state;
    expect(service_check, "{\"name\": \"Cut\"}", "");
    expect(service_check,
           "{\"name\": \"Cut\", \"price\": 0, \"currency\": \"EUR\", \"duration_minutes\": 1440,"
           " \"available\": false, \"category\": \"hair\", \"description\": \"\"}",
           "");
    expect(service_check,
           "{\"price\": -1, \"currency\": \"eur\", \"duration_minutes\": 0, \"available\": 1,"
           " \"y\": 2}",
           ",/name,/price,/duration_minutes,/currency,/available");
}

static void test_directory_update(void **state)
{
    (void)state;
    expect(fl_dir_update_check,
           "{\"business_id\": \"0190b3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b\","
           " \"hours\": {\"monday\": {\"open\": \"10:00\", \"close\": \"11:00\"}},"
           " \"services\": [{\"name\": \"A\", \"price\": 1}], \"remove_services\": [\"B\"]}",
           "");
    expect(fl_dir_update_check, "{\"name\": \"x\"}", ",/business_id");
    expect(fl_dir_update_check,
           "{\"business_id\": \"nope\", \"hours\": {\"moonday\": {}},"
           " \"services\": [{\"price\": 1}, 3], \"remove_services\": [\"\"]}",
           "/business_id,/hours/moonday,/services/0/name,/services/1,/remove_services/0");
    expect(fl_dir_update_check,
           "{\"business_id\": \"0190b3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b\", \"services\": {}}",
           "/services");
}

static void test_directory_memory(void **state)
{
    (void)state;
    expect(fl_dir_memory_check, "{\"user_id\": \"u1\", \"fact\": \"likes tea\"}", "");
    expect(fl_dir_memory_check, "{\"user_id\": \"u1\", \"fact\": \"x\", \"source\": \"chat\"}", "");
    expect(fl_dir_memory_check, "{\"source\": 1, \"z\": 0}", ",/user_id,/fact,/source");
}

static void test_directory_uuid(void **state)
{
    (void)state;
    assert_true(fl_dir_uuid_valid("0190b3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b"));
    assert_true(fl_dir_uuid_valid("0190B3C4-5D6E-7F80-9A1B-2C3D4E5F6A7B"));
    assert_false(fl_dir_uuid_valid("0190b3c4-5d6e-7f80-9a1b-2c3d4e5f6a7"));
    assert_false(fl_dir_uuid_valid("0190b3c4x5d6e-7f80-9a1b-2c3d4e5f6a7b"));
    assert_false(fl_dir_uuid_valid("g190b3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b"));
    assert_false(fl_dir_uuid_valid(NULL));
}

static void test_directory_search_filters(void **state)
{
    fl_dir_search s = FL_DIR_SEARCH_INIT;
    json_t *errors = NULL, *args;
    char got[256];

    (void)state;
    assert_true(fl_dir_search_set(&s, "q", "cheap pizza", "q", &errors));
    assert_true(fl_dir_search_set(&s, "min_rating", "4.5", "min_rating", &errors));
    assert_true(fl_dir_search_set(&s, "max_price_level", "2", "max_price_level", &errors));
    assert_true(fl_dir_search_set(&s, "category", "beauty_salon", "category", &errors));
    assert_string_equal(s.q, "cheap pizza");
    assert_true(s.min_rating == 4.5 && s.max_price_level == 2);
    assert_null(errors);
    assert_false(fl_dir_search_set(&s, "min_rating", "5.5", "a", &errors));
    assert_false(fl_dir_search_set(&s, "min_rating", "4x", "b", &errors));
    assert_false(fl_dir_search_set(&s, "max_price_level", "1.5", "c", &errors));
    assert_false(fl_dir_search_set(&s, "category", "spaceport", "d", &errors));
    assert_false(fl_dir_search_set(&s, "color", "red", "e", &errors));
    pointers(errors, got, sizeof(got));
    assert_string_equal(got, "a,b,c,d,e");
    json_decref(errors);
    errors = NULL;

    s = (fl_dir_search)FL_DIR_SEARCH_INIT;
    args = load("{\"q\": \"pizza\", \"city\": \"Springfield\", \"min_rating\": 4,"
                " \"limit\": 5, \"category\": null}");
    assert_true(fl_dir_search_from_json(&s, args, &errors));
    assert_true(s.limit == 5 && s.min_rating == 4.0 && s.category == NULL);
    assert_string_equal(s.city, "Springfield");
    json_decref(args);
    s = (fl_dir_search)FL_DIR_SEARCH_INIT;
    args = load("{\"q\": 3, \"limit\": 21, \"max_price_level\": \"9\", \"zip\": 1}");
    assert_false(fl_dir_search_from_json(&s, args, &errors));
    pointers(errors, got, sizeof(got));
    assert_string_equal(got, ",/q,/max_price_level,/limit");
    json_decref(errors);
    json_decref(args);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_directory_time_parse),
        cmocka_unit_test(test_directory_hours),
        cmocka_unit_test(test_directory_business),
        cmocka_unit_test(test_directory_service),
        cmocka_unit_test(test_directory_update),
        cmocka_unit_test(test_directory_memory),
        cmocka_unit_test(test_directory_uuid),
        cmocka_unit_test(test_directory_search_filters),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
