/* tests/unit/test_json_arena.c -- core/json_arena.c: jansson trees parsed in a scope come
 * from the thread's slot, may outlive the scope and be freed anywhere, and the slot is
 * reused only once everything it handed out is free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include <jansson.h>

#include "core/json_arena.h"

static const char doc[] =
    "{\"order\":\"o-1\",\"items\":[{\"sku\":\"a\",\"qty\":1},{\"sku\":\"b\"}]}";

static json_t *parse_in_scope(const char *text)
{
    json_error_t jerr;
    json_t *v;

    fl_json_arena_begin();
    v = json_loadb(text, strlen(text), JSON_REJECT_DUPLICATES, &jerr);
    fl_json_arena_end();
    assert_non_null(v);
    return v;
}

static int setup(void **state)
{
    (void)state;
    fl_json_arena_install();
    fl_json_arena_install(); /* idempotent */
    return 0;
}

/* In a scope: arena blocks, 16-byte aligned, counted; outside: malloc's. */
static void test_arena_scope_decides_where_blocks_come_from(void **state)
{
    json_t *in, *out;

    (void)state;
    in = parse_in_scope(doc);
    out = json_string("outside");
    assert_true(fl_json_arena_owns(in));
    assert_int_equal((uintptr_t)in % 16, 0);
    assert_false(fl_json_arena_owns(out));
    assert_true(fl_json_arena_live() > 5);
    assert_string_equal(json_string_value(json_object_get(in, "order")), "o-1");
    json_decref(in);
    json_decref(out);
    assert_int_equal(fl_json_arena_live(), 0);
}

/* A slot starts over only when nothing it handed out is alive. */
static void test_arena_reuses_a_slot_only_when_all_is_free(void **state)
{
    json_t *a, *b, *c, *copy;

    (void)state;
    a = parse_in_scope(doc);
    copy = json_deep_copy(a); /* outside a scope: malloc'd */
    b = parse_in_scope(doc);
    assert_true((uintptr_t)b > (uintptr_t)a); /* a is alive: b comes after it */
    assert_true(json_equal(a, copy));
    json_decref(b);
    assert_true(json_equal(a, copy)); /* still intact */
    json_decref(a);
    c = parse_in_scope(doc);
    assert_ptr_equal(c, a); /* everything was free: from the start again */
    json_decref(c);
    json_decref(copy);
}

/* A block larger than a slot is malloc's, and its tree works as any other. */
static void test_arena_falls_back_to_malloc_for_large_blocks(void **state)
{
    size_t n = FL_JSON_ARENA_SLOT_BYTES + 100;
    char *text = malloc(n + 5);
    json_t *v;

    (void)state;
    assert_non_null(text);
    memcpy(text, "[\"", 2);
    memset(text + 2, 'x', n);
    memcpy(text + 2 + n, "\"]", 3);
    v = parse_in_scope(text);
    assert_true(fl_json_arena_owns(v));
    assert_false(fl_json_arena_owns(json_string_value(json_array_get(v, 0))));
    assert_int_equal(json_string_length(json_array_get(v, 0)), n);
    json_decref(v);
    assert_int_equal(fl_json_arena_live(), 0);
    free(text);
}

typedef struct handoff {
    pthread_barrier_t parsed, freed;
    json_t *tree;
    json_t *again;
} handoff;

static void *parse_then_reuse(void *arg)
{
    handoff *h = arg;

    h->tree = parse_in_scope(doc);
    pthread_barrier_wait(&h->parsed);
    pthread_barrier_wait(&h->freed); /* the main thread freed the tree */
    h->again = parse_in_scope(doc);
    return NULL;
}

/* A tree freed on another thread releases its slot to the thread that owns it. */
static void test_arena_trees_may_be_freed_on_another_thread(void **state)
{
    handoff h = {.tree = NULL};
    pthread_t t;
    json_t *first;

    (void)state;
    pthread_barrier_init(&h.parsed, NULL, 2);
    pthread_barrier_init(&h.freed, NULL, 2);
    assert_int_equal(pthread_create(&t, NULL, parse_then_reuse, &h), 0);
    pthread_barrier_wait(&h.parsed);
    first = h.tree;
    assert_true(fl_json_arena_owns(first));
    json_decref(first);
    pthread_barrier_wait(&h.freed);
    pthread_join(t, NULL);
    assert_ptr_equal(h.again, first);
    json_decref(h.again);
    pthread_barrier_destroy(&h.parsed);
    pthread_barrier_destroy(&h.freed);
}

/* Freed arena blocks are poisoned, so a use after free is still reported. */
static void test_arena_poisons_freed_blocks(void **state)
{
    json_t *v = parse_in_scope(doc);
    void *p = v;

    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    assert_false(__asan_address_is_poisoned(p));
    json_decref(v);
    assert_true(__asan_address_is_poisoned(p));
#else
    json_decref(v);
    assert_true(fl_json_arena_owns(p));
#endif
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_scope_decides_where_blocks_come_from),
        cmocka_unit_test(test_arena_reuses_a_slot_only_when_all_is_free),
        cmocka_unit_test(test_arena_falls_back_to_malloc_for_large_blocks),
        cmocka_unit_test(test_arena_trees_may_be_freed_on_another_thread),
        cmocka_unit_test(test_arena_poisons_freed_blocks),
    };

    (void)argc;
    (void)argv;
    return cmocka_run_group_tests(tests, setup, NULL);
}
