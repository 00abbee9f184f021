/* core/json_arena.h -- a bump allocator for the JSON trees request threads parse.
 *
 * Parsing S1's 1 KB request body makes about 140 small jansson allocations that are all
 * freed together a millisecond later; through glibc's malloc (per-thread arenas, fastbin
 * consolidation whenever the next request asks for a larger block) they cost more than
 * the parse itself (docs/benchmarks.md, S1). Between fl_json_arena_begin and _end, the
 * calling thread's jansson allocations are carved from a slot of its own in one region
 * reserved at start; freeing one only counts it, and the slot starts over once all it
 * handed out are freed.
 *
 * What stays true: a tree parsed in an arena is an ordinary jansson tree. It may outlive
 * the scope, be freed on any thread at any time (pointers are recognised by address),
 * and a slot whose trees are still alive makes later parses fall back to malloc rather
 * than overwrite them. Allocations outside a scope, too large for the slot or on a thread
 * past FL_JSON_ARENA_SLOTS are malloc's. Under AddressSanitizer freed arena blocks are
 * poisoned, so use-after-free is still caught.
 *
 * Only json_loadb-style parsing belongs in a scope: strings jansson hands to the caller
 * (json_dumps) are released with free(), which must never see an arena pointer.
 *
 * Thread-safety: fl_json_arena_install once, from main before threads start (and from
 * tests); begin/end are per thread; the free hook may run on any thread. */
#ifndef FL_CORE_JSON_ARENA_H
#define FL_CORE_JSON_ARENA_H

#include <stdbool.h>
#include <stddef.h>

#define FL_JSON_ARENA_SLOTS      256          /* threads that get a slot */
#define FL_JSON_ARENA_SLOT_BYTES (256 * 1024) /* per slot (virtual until touched) */

/* Reserves the region and makes jansson allocate through this module. Idempotent. */
void fl_json_arena_install(void);

/* Starts (and ends) the calling thread's arena scope. Scopes do not nest. */
void fl_json_arena_begin(void);
void fl_json_arena_end(void);

/* For tests: whether p lies in the arena region; blocks the caller's slot has live. */
bool fl_json_arena_owns(const void *p);
long fl_json_arena_live(void);

#endif
