/* tests/unit/test_agents.c -- agent profiles: the shipped set loads with the fallback,
 * every kind of problem is reported with its file:line:col, sets catch duplicate ids and
 * a missing fallback, the registry answers lookups and the API's JSON. Pure: files only
 * (the shipped ones, run from the repository root as `make unit` does, and a scratch
 * directory). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"
#include "engine/agents.h"
#include "tests/unit/scratch_files.h"

#define HEAD  "id: x_agent\nname: X\ndescription: d\nsystem_prompt: p\n"
#define SLOTS "slots:\n  - {name: date, type: date, description: day}\n"
#define INTENTS                                                                             \
    "intents:\n  - {name: book, description: b, keywords: [Book], required_slots: [date], " \
    "action: book_appointment}\n"
#define ACTIONS "allowed_actions: [book_appointment]\n"
#define VALID   HEAD SLOTS INTENTS ACTIONS

/* Parses text as "t.yaml"; returns the first problem formatted (sorted), or "" when valid. */
static const char *first_problem(const char *text, char *out, size_t size)
{
    fl_agent *a = NULL;
    fl_diags d;
    fl_rc rc;

    fl_diags_init(&d, 50);
    rc = fl_agent_parse(text, strlen(text), "t.yaml", &a, &d);
    out[0] = '\0';
    if (rc == FL_OK) {
        assert_non_null(a);
        assert_int_equal(d.count, 0);
    } else {
        assert_null(a);
        assert_true(d.count > 0);
        fl_diags_sort(&d);
        fl_diags_format(&d, 0, out, size);
    }
    fl_agent_free(a);
    fl_diags_deinit(&d);
    return out;
}

static void expect_problem(const char *text, const char *want)
{
    char got[512];

    first_problem(text, got, sizeof(got));
    if (strncmp(got, want, strlen(want)) != 0) {
        fail_msg("want \"%s...\", got \"%s\"", want, got);
    }
}

static void test_agents_shipped_set_loads(void **state)
{
    fl_agents *r = NULL;
    fl_err err = FL_ERR_INIT;
    fl_diags d;
    const char *ids[] = {"automotive",      "beauty_salon",     "business_analytics",
                         "general_purpose", "health_medical",   "local_services",
                         "restaurant_food", "voice_enhancement"};

    (void)state;
    fl_diags_init(&d, 50);
    assert_int_equal(fl_agents_load_dir(&r, "workflows/agents", &d, &err), FL_OK);
    assert_int_equal(d.count, 0);
    assert_int_equal(fl_agents_count(r), 8);
    for (size_t i = 0; i < 8; i++) {
        const fl_agent *a = fl_agents_at(r, i);
        assert_string_equal(a->id, ids[i]); /* sorted by id */
        assert_ptr_equal(fl_agents_get(r, ids[i]), a);
        assert_true(strlen(a->system_prompt) > 100);
        assert_true(a->nintents > 0 && a->nactions > 0 && a->greeting && a->confirm);
    }
    assert_string_equal(fl_agents_fallback(r)->id, FL_AGENTS_FALLBACK);
    assert_null(fl_agents_get(r, "pirate"));
    fl_agents_free(r);
    fl_diags_deinit(&d);
}

static void test_agents_model_and_json(void **state)
{
    fl_agents *r = NULL;
    fl_err err = FL_ERR_INIT;
    fl_diags d;
    const fl_agent *a;
    const fl_agent_intent *in;
    json_t *j, *all;

    (void)state;
    fl_diags_init(&d, 50);
    assert_int_equal(fl_agents_load_dir(&r, "workflows/agents", &d, &err), FL_OK);
    a = fl_agents_get(r, "restaurant_food");
    assert_string_equal(a->name, "RestaurantFood");
    assert_string_equal(a->preferred_provider, "local");
    in = fl_agent_intent_get(a, "book_table");
    assert_non_null(in);
    assert_int_equal(in->nrequired, 3);
    assert_string_equal(a->slots[in->required[0]].name, "party_size");
    assert_int_equal(a->slots[in->required[0]].type, FL_AGENT_SLOT_INT);
    assert_string_equal(a->slots[in->required[0]].ask, "How many guests will there be?");
    assert_string_equal(in->action, "book_appointment");
    assert_true(fl_agent_allows(a, "place_order") && !fl_agent_allows(a, "update_hours"));
    j = fl_agent_to_json(a, false);
    assert_null(json_object_get(j, "system_prompt"));
    assert_string_equal(json_string_value(json_object_get(j, "id")), "restaurant_food");
    assert_string_equal(
        json_string_value(json_array_get(
            json_object_get(json_array_get(json_object_get(j, "intents"), 0), "required_slots"),
            0)),
        "party_size");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(j, "slots"), 0), "type")),
        "int");
    json_decref(j);
    j = fl_agent_to_json(a, true);
    assert_string_equal(json_string_value(json_object_get(j, "system_prompt")), a->system_prompt);
    json_decref(j);
    all = fl_agents_to_json(r, false);
    assert_int_equal(json_array_size(all), 8);
    json_decref(all);
    fl_agents_free(r);
    fl_diags_deinit(&d);
}

static void test_agents_minimal_profile_defaults(void **state)
{
    char got[512];
    fl_agent *a = NULL;
    fl_diags d;

    (void)state;
    assert_string_equal(first_problem(VALID, got, sizeof(got)), "");
    fl_diags_init(&d, 10);
    assert_int_equal(fl_agent_parse(VALID, strlen(VALID), "t.yaml", &a, &d), FL_OK);
    assert_string_equal(a->preferred_provider, "local");
    assert_string_equal(a->intents[0].keywords[0], "book"); /* lower-cased */
    assert_null(a->greeting);
    assert_int_equal(a->line, 1);
    assert_int_equal(a->col, 5);
    fl_agent_free(a);
    fl_diags_deinit(&d);
}

static void test_agents_yaml_problems_are_located(void **state)
{
    (void)state;
    expect_problem("", "t.yaml:1:1: error: the file is empty");
    expect_problem("- a\n", "t.yaml:1:1: error: an agent profile must be a mapping");
    expect_problem("id: [a\n", "t.yaml:2:1: error: invalid YAML");
    expect_problem(VALID "id: y\n", "t.yaml:10:1: error: duplicate key \"id\"");
    expect_problem("a: &x b\nc: *x\n", "t.yaml:2:4: error: YAML aliases are not allowed");
    expect_problem("id: x\nname: !!int 1\ndescription: d\nsystem_prompt: p\n" SLOTS INTENTS ACTIONS,
                   "t.yaml:2:7: error: unsupported YAML tag");
    expect_problem(VALID "---\nb: 1\n", "t.yaml:10:1: error: only one YAML document");
}

static void test_agents_field_problems_are_located(void **state)
{
    (void)state;
    expect_problem(VALID "colour: red\n", "t.yaml:10:1: error: unknown key \"colour\"");
    expect_problem(VALID "intent: []\n",
                   "t.yaml:10:1: error: unknown key \"intent\" in an agent profile (did you "
                   "mean \"intents\"?)");
    expect_problem("name: X\ndescription: d\nsystem_prompt: p\n" SLOTS INTENTS ACTIONS,
                   "t.yaml:1:1: error: an agent profile needs \"id\"");
    expect_problem("id: x\nname: X\ndescription: d\n" SLOTS INTENTS ACTIONS,
                   "t.yaml:1:1: error: an agent profile needs \"system_prompt\"");
    expect_problem(HEAD SLOTS ACTIONS, "t.yaml:1:1: error: an agent profile needs \"intents\"");
    expect_problem(HEAD SLOTS INTENTS, "t.yaml:1:1: error: an agent profile needs \"allowed");
    expect_problem(
        "id: RestaurantFood\nname: X\ndescription: d\nsystem_prompt: p\n" SLOTS INTENTS ACTIONS,
        "t.yaml:1:5: error: \"id\" of an agent profile must be snake_case");
    expect_problem("id: 9lives\nname: X\ndescription: d\nsystem_prompt: p\n" SLOTS INTENTS ACTIONS,
                   "t.yaml:1:5: error: \"id\" of an agent profile must be snake_case");
    expect_problem("id: x\nname: [X]\ndescription: d\nsystem_prompt: p\n" SLOTS INTENTS ACTIONS,
                   "t.yaml:2:7: error: \"name\" of an agent profile must be a string");
    expect_problem(HEAD SLOTS "intents: book\n" ACTIONS,
                   "t.yaml:7:10: error: \"intents\" of an agent profile must be a list");
    expect_problem(HEAD SLOTS "intents: []\n" ACTIONS,
                   "t.yaml:7:10: error: \"intents\" of an agent profile must not be empty");
    expect_problem(VALID "preferred_provider: my provider\n",
                   "t.yaml:10:21: error: \"preferred_provider\" must be a provider name");
    expect_problem(VALID "preferred_provider: a,b\n",
                   "t.yaml:10:21: error: \"preferred_provider\" must be a provider name");
}

static void test_agents_slot_and_intent_problems_are_located(void **state)
{
    (void)state;
    expect_problem(HEAD "slots:\n  - {name: date, type: day, description: d}\n" INTENTS ACTIONS,
                   "t.yaml:6:24: error: unknown slot type \"day\"");
    expect_problem(HEAD "slots:\n  - {name: date, type: date}\n" INTENTS ACTIONS,
                   "t.yaml:6:5: error: a slot needs \"description\"");
    expect_problem(HEAD "slots:\n  - date\n" INTENTS ACTIONS,
                   "t.yaml:6:5: error: a slot must be a mapping");
    expect_problem(HEAD SLOTS "  - {name: date, type: time, description: t}\n" INTENTS ACTIONS,
                   "t.yaml:7:12: error: duplicate slot \"date\"");
    expect_problem(
        HEAD SLOTS
        "intents:\n  - {name: book, description: b, required_slots: [date, size]}\n" ACTIONS,
        "t.yaml:8:57: error: intent \"book\" requires slot \"size\", which the "
        "profile does not declare");
    expect_problem(HEAD SLOTS
                   "intents:\n  - {name: book, description: b, keywords: book}\n" ACTIONS,
                   "t.yaml:8:44: error: \"keywords\" of an intent must be a list");
    expect_problem(HEAD SLOTS "intents:\n  - {name: book, description: b, size: 2}\n" ACTIONS,
                   "t.yaml:8:34: error: unknown key \"size\" in an intent");
    expect_problem(HEAD SLOTS "intents:\n  - {name: book, description: b, action: fly}\n" ACTIONS,
                   "t.yaml:8:42: error: unknown action \"fly\"");
    expect_problem(HEAD SLOTS
                   "intents:\n  - {name: book, description: b, action: place_order}\n" ACTIONS,
                   "t.yaml:8:42: error: action \"place_order\" is not in the profile's "
                   "allowed_actions");
    expect_problem(HEAD SLOTS INTENTS "allowed_actions: [book_appointment, teleport]\n",
                   "t.yaml:9:37: error: unknown action \"teleport\"");
    expect_problem(VALID "templates: {greeting: hi, ask_slot: {size: how many?}}\n",
                   "t.yaml:10:38: error: \"ask_slot\" names \"size\", which the profile does "
                   "not declare in slots");
    expect_problem(VALID "templates: {confirm: \"on {date} for {size}?\"}\n",
                   "t.yaml:10:22: error: template placeholder \"{size}\" names no declared slot");
    expect_problem(VALID "templates: {bye: x}\n", "t.yaml:10:13: error: unknown key \"bye\"");
}

static void test_agents_too_big_is_refused(void **state)
{
    size_t n = FL_AGENT_MAX_BYTES + 10;
    char *text = malloc(n + 1);
    fl_agent *a = NULL;
    fl_diags d;

    (void)state;
    memset(text, '#', n);
    text[n] = '\0';
    fl_diags_init(&d, 10);
    assert_int_equal(fl_agent_parse(text, n, "big.yaml", &a, &d), FL_ETOOBIG);
    assert_null(a);
    assert_int_equal(d.count, 1);
    free(text);
    fl_diags_deinit(&d);
}

static void remove_dir(const char *dir, const char *const *names)
{
    char path[512];

    for (size_t i = 0; names[i]; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void test_agents_dir_needs_fallback_and_unique_ids(void **state)
{
    static const char *const names[] = {"a.yaml", "b.yaml", NULL};
    char dir[] = "/tmp/flowd-agents-XXXXXX", line[512];
    fl_agents *r = NULL;
    fl_err err = FL_ERR_INIT;
    fl_diags d;

    (void)state;
    assert_non_null(mkdtemp(dir));
    write_file(dir, "a.yaml", VALID);
    write_file(dir, "b.yaml", VALID);
    fl_diags_init(&d, 10);
    assert_int_equal(fl_agents_load_dir(&r, dir, &d, &err), FL_EINVAL);
    assert_null(r);
    assert_int_equal(d.count, 2);
    fl_diags_format(&d, 0, line, sizeof(line));
    assert_non_null(strstr(line, ": error: no \"general_purpose\" profile"));
    fl_diags_format(&d, 1, line, sizeof(line));
    assert_non_null(strstr(line, "/b.yaml:1:5: error: duplicate agent id \"x_agent\" (also in "));
    assert_non_null(strstr(err.msg, "2 problems"));
    fl_diags_deinit(&d);
    remove_dir(dir, names);
}

static void test_agents_config_dir_and_missing(void **state)
{
    fl_config_engine e = {.workflows_dir = "/nonexistent/wf", .agents_dir = ""};
    fl_agents *r = NULL;
    fl_err err = FL_ERR_INIT;
    char *dir = fl_agents_dir_dup(&e);

    (void)state;
    assert_string_equal(dir, "/nonexistent/wf/agents");
    free(dir);
    /* derived and missing: an empty registry, so a scratch workflows dir still serves */
    assert_int_equal(fl_agents_load_config(&r, &e, &err), FL_OK);
    assert_int_equal(fl_agents_count(r), 0);
    assert_null(fl_agents_fallback(r));
    fl_agents_free(r);
    /* named explicitly and missing: an error */
    e.agents_dir = "/nonexistent/agents";
    assert_int_equal(fl_agents_load_config(&r, &e, &err), FL_ENOTFOUND);
    assert_null(r);
    e.agents_dir = "workflows/agents";
    assert_int_equal(fl_agents_load_config(&r, &e, &err), FL_OK);
    assert_int_equal(fl_agents_count(r), 8);
    fl_agents_free(r);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agents_shipped_set_loads),
        cmocka_unit_test(test_agents_model_and_json),
        cmocka_unit_test(test_agents_minimal_profile_defaults),
        cmocka_unit_test(test_agents_yaml_problems_are_located),
        cmocka_unit_test(test_agents_field_problems_are_located),
        cmocka_unit_test(test_agents_slot_and_intent_problems_are_located),
        cmocka_unit_test(test_agents_too_big_is_refused),
        cmocka_unit_test(test_agents_dir_needs_fallback_and_unique_ids),
        cmocka_unit_test(test_agents_config_dir_and_missing),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
