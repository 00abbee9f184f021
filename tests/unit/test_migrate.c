/* tests/unit/test_migrate.c -- the migration plan (pure: no PostgreSQL) and the list
 * that deploy/embed-migrations.sh compiled into the binary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/migrate.h"

#define SUM_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SUM_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define SUM_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

/* What this "binary" knows: versions 1, 2 and 3. */
static const fl_migration known_items[] = {
    {1, "001_init", "CREATE TABLE a (x int);", SUM_A},
    {2, "002_orders", "CREATE TABLE b (x int);", SUM_B},
    {3, "003_timers", "CREATE TABLE c (x int);", SUM_C},
};
static const fl_migration_list known = {known_items, 3};

static fl_rc plan(const fl_migration *rows, size_t n, fl_migrate_plan *out, fl_err *err)
{
    fl_migration_list applied = {rows, n};

    return fl_migrate_plan_make(&known, &applied, out, err);
}

static void test_migrate_plan_empty_database_has_everything_pending(void **state)
{
    fl_migrate_plan p;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(plan(NULL, 0, &p, &err), FL_OK);
    assert_int_equal(p.db_version, 0);
    assert_int_equal(p.target_version, 3);
    assert_int_equal(p.first, 0);
    assert_int_equal(p.npending, 3);
}

static void test_migrate_plan_lists_the_missing_tail_as_pending(void **state)
{
    const fl_migration rows[] = {{1, "001_init", NULL, SUM_A}};
    fl_migrate_plan p;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(plan(rows, 1, &p, &err), FL_OK);
    assert_int_equal(p.db_version, 1);
    assert_int_equal(p.first, 1);
    assert_int_equal(p.npending, 2);
    assert_string_equal(known.items[p.first].name, "002_orders");
}

static void test_migrate_plan_current_database_has_nothing_pending(void **state)
{
    const fl_migration rows[] = {{1, "001_init", NULL, SUM_A},
                                 {2, "002_orders", NULL, SUM_B},
                                 {3, "003_timers", NULL, SUM_C}};
    fl_migrate_plan p;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(plan(rows, 3, &p, &err), FL_OK);
    assert_int_equal(p.db_version, 3);
    assert_int_equal(p.npending, 0);
    assert_int_equal(fl_migrate_plan_check(&p, &err), FL_OK);
}

static void test_migrate_plan_rejects_changed_checksum(void **state)
{
    const fl_migration rows[] = {{1, "001_init", NULL, SUM_B}};
    fl_migrate_plan p;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(plan(rows, 1, &p, &err), FL_ECONFLICT);
    assert_string_equal(err.msg, "migration 001_init was changed after it was applied");
}

static void test_migrate_plan_rejects_renamed_migration(void **state)
{
    const fl_migration rows[] = {{1, "001_start", NULL, SUM_A}};
    fl_migrate_plan p;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(plan(rows, 1, &p, &err), FL_ECONFLICT);
    assert_string_equal(err.msg,
                        "migration 1 is \"001_start\" in the database but \"001_init\" in this "
                        "flowd");
}

static void test_migrate_plan_rejects_gap(void **state)
{
    const fl_migration rows[] = {{1, "001_init", NULL, SUM_A}, {3, "003_timers", NULL, SUM_C}};
    fl_migrate_plan p;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(plan(rows, 2, &p, &err), FL_ECONFLICT);
    assert_string_equal(err.msg, "database is missing migration 002_orders but has 003_timers: "
                                 "the schema history has a gap");
}

static void test_migrate_plan_rejects_newer_database(void **state)
{
    const fl_migration rows[] = {{1, "001_init", NULL, SUM_A},
                                 {2, "002_orders", NULL, SUM_B},
                                 {3, "003_timers", NULL, SUM_C},
                                 {4, "004_future", NULL, SUM_A}};
    fl_migrate_plan p;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(plan(rows, 4, &p, &err), FL_ECONFLICT);
    assert_string_equal(err.msg, "database schema version 4 is newer than this flowd knows (3): "
                                 "upgrade flowd");
}

static void test_migrate_plan_rejects_unknown_applied_migration(void **state)
{
    static const fl_migration sparse_items[] = {{1, "001_init", "", SUM_A},
                                                {3, "003_timers", "", SUM_C}};
    const fl_migration_list sparse = {sparse_items, 2};
    const fl_migration rows[] = {{1, "001_init", NULL, SUM_A}, {2, "002_orders", NULL, SUM_B}};
    const fl_migration_list applied = {rows, 2};
    fl_migrate_plan p;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_migrate_plan_make(&sparse, &applied, &p, &err), FL_ECONFLICT);
    assert_string_equal(err.msg,
                        "database has migration 2 (\"002_orders\") that this flowd does not know");
}

static void test_migrate_plan_rejects_unordered_known_list(void **state)
{
    static const fl_migration bad_items[] = {{2, "002_orders", "", SUM_B},
                                             {1, "001_init", "", SUM_A}};
    const fl_migration_list bad = {bad_items, 2};
    const fl_migration_list none = {NULL, 0};
    fl_migrate_plan p;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(fl_migrate_plan_make(&bad, &none, &p, &err), FL_EINTERNAL);
    assert_string_equal(err.msg, "embedded migration \"001_init\" is out of version order");
}

static void test_migrate_check_reports_unmigrated_database(void **state)
{
    fl_migrate_plan p;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(plan(NULL, 0, &p, &err), FL_OK);
    assert_int_equal(fl_migrate_plan_check(&p, &err), FL_EUNAVAIL);
    assert_string_equal(err.msg, "database has no flowd schema: run `flowd migrate`");
}

static void test_migrate_check_reports_database_behind(void **state)
{
    const fl_migration rows[] = {{1, "001_init", NULL, SUM_A}};
    fl_migrate_plan p;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_int_equal(plan(rows, 1, &p, &err), FL_OK);
    assert_int_equal(fl_migrate_plan_check(&p, &err), FL_EUNAVAIL);
    assert_string_equal(err.msg,
                        "database schema is at version 1, this flowd needs 3: run `flowd migrate`");
}

/* The generated list: what deploy/embed-migrations.sh promises to core/migrate. */
static void test_migrate_embedded_list_is_well_formed(void **state)
{
    fl_migration_list list = fl_migrate_embedded();
    fl_migrate_plan p;
    fl_err err = FL_ERR_INIT;

    (void)state;
    assert_true(list.count >= 1);
    assert_string_equal(list.items[0].name, "001_init");
    for (size_t i = 0; i < list.count; i++) {
        const fl_migration *m = &list.items[i];
        char prefix[8];
        snprintf(prefix, sizeof(prefix), "%03d_", m->version);
        assert_int_equal(strncmp(m->name, prefix, 4), 0);
        assert_int_equal(strlen(m->checksum), 64);
        assert_int_equal(strspn(m->checksum, "0123456789abcdef"), 64);
        assert_true(strlen(m->sql) > 0);
    }
    assert_int_equal(fl_migrate_plan_make(&list, &(fl_migration_list){NULL, 0}, &p, &err), FL_OK);
    assert_int_equal(p.npending, list.count);
}

static void test_migrate_embedded_init_creates_tenants(void **state)
{
    fl_migration_list list = fl_migrate_embedded();

    (void)state;
    assert_non_null(strstr(list.items[0].sql, "CREATE TABLE tenants"));
    assert_non_null(strstr(list.items[0].sql, "'default'"));
    assert_non_null(strstr(list.items[0].sql, "'system'"));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_plan_empty_database_has_everything_pending),
        cmocka_unit_test(test_migrate_plan_lists_the_missing_tail_as_pending),
        cmocka_unit_test(test_migrate_plan_current_database_has_nothing_pending),
        cmocka_unit_test(test_migrate_plan_rejects_changed_checksum),
        cmocka_unit_test(test_migrate_plan_rejects_renamed_migration),
        cmocka_unit_test(test_migrate_plan_rejects_gap),
        cmocka_unit_test(test_migrate_plan_rejects_newer_database),
        cmocka_unit_test(test_migrate_plan_rejects_unknown_applied_migration),
        cmocka_unit_test(test_migrate_plan_rejects_unordered_known_list),
        cmocka_unit_test(test_migrate_check_reports_unmigrated_database),
        cmocka_unit_test(test_migrate_check_reports_database_behind),
        cmocka_unit_test(test_migrate_embedded_list_is_well_formed),
        cmocka_unit_test(test_migrate_embedded_init_creates_tenants),
    };

    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
