/* core/json_arena.c -- the bump allocator behind jansson (core/json_arena.h).
 *
 * Layout: one anonymous mapping of FL_JSON_ARENA_SLOTS slots; a thread takes the next
 * slot the first time it begins a scope. Each block carries a 16-byte header with its
 * length (for poisoning) and is 16-byte aligned, as malloc's are. Only the owning thread
 * moves its slot's offset; `live` counts the slot's blocks not yet freed and is the one
 * thing other threads touch. A scope that begins while its slot has nothing live starts
 * at offset 0: the release of the last free (any thread) is paired with the acquire here,
 * so every access to the old blocks happened before they are handed out again. */
#include "core/json_arena.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/log.h"
#include "core/mem.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

enum { HDR = 16, ALIGN = 16, NO_SLOT = -2, UNASSIGNED = -1 };

#define REGION_BYTES ((size_t)FL_JSON_ARENA_SLOTS * FL_JSON_ARENA_SLOT_BYTES)

static char *region; /* NULL when the mapping failed: everything is malloc's */
static atomic_long live[FL_JSON_ARENA_SLOTS];
static atomic_int next_slot;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static _Thread_local int t_slot = UNASSIGNED;
static _Thread_local size_t t_used; /* bytes of the slot handed out since it started over */
static _Thread_local bool t_active;

static bool in_region(const void *p)
{
    return region != NULL && (uintptr_t)p - (uintptr_t)region < REGION_BYTES;
}

static void *arena_malloc(size_t size)
{
    size_t need = HDR + ((size + ALIGN - 1) & ~(size_t)(ALIGN - 1));
    char *block;

    if (!t_active || size > FL_JSON_ARENA_SLOT_BYTES || need > FL_JSON_ARENA_SLOT_BYTES - t_used) {
        return fl_xmalloc(size); /* flowd aborts on OOM, jansson or not (R5.1) */
    }
    block = region + (size_t)t_slot * FL_JSON_ARENA_SLOT_BYTES + t_used;
    t_used += need;
    atomic_fetch_add_explicit(&live[t_slot], 1, memory_order_relaxed);
    UNPOISON(block, HDR + size);
    memcpy(block, &need, sizeof(need));
    return block + HDR;
}

static void arena_free(void *p)
{
    char *block = (char *)p - HDR;
    size_t slot, need;

    if (!in_region(p)) {
        free(p);
        return;
    }
    slot = (size_t)(block - region) / FL_JSON_ARENA_SLOT_BYTES;
    memcpy(&need, block, sizeof(need));
    POISON(block, need);
    atomic_fetch_sub_explicit(&live[slot], 1, memory_order_release);
}

static void install_once(void)
{
    void *m = mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    if (m == MAP_FAILED) {
        fl_log(FL_WARN, "json.arena_unavailable", FL_INT("bytes", (long long)REGION_BYTES));
        return;
    }
    region = m;
    POISON(region, REGION_BYTES);
    json_set_alloc_funcs(arena_malloc, arena_free);
}

void fl_json_arena_install(void)
{
    pthread_once(&once, install_once);
}

void fl_json_arena_begin(void)
{
    if (region == NULL) {
        return;
    }
    if (t_slot == UNASSIGNED) {
        int s = atomic_fetch_add(&next_slot, 1);
        t_slot = s < FL_JSON_ARENA_SLOTS ? s : NO_SLOT;
    }
    if (t_slot == NO_SLOT) {
        return;
    }
    if (atomic_load_explicit(&live[t_slot], memory_order_acquire) == 0) {
        t_used = 0;
    }
    t_active = true;
}

void fl_json_arena_end(void)
{
    t_active = false;
}

bool fl_json_arena_owns(const void *p)
{
    return in_region(p);
}

long fl_json_arena_live(void)
{
    return t_slot >= 0 ? atomic_load(&live[t_slot]) : 0;
}
