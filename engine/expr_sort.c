/* engine/expr_sort.c -- the sandbox's table.sort: a stable merge sort.
 *
 * Lua's own table.sort is an unstable quicksort that, on large unbalanced arrays, picks
 * pivots from clock() and time(): elements the comparison calls equal may then end in a
 * different order from run to run, and the step function must be deterministic byte for
 * byte. A bottom-up merge sort is stable and needs no randomness; it costs O(n log n)
 * comparisons like the original and one scratch table of n slots, which the evaluation's
 * memory budget bounds like any other allocation.
 *
 * Thread-safety: runs inside one VM's evaluation. */
#include <limits.h>
#include <lauxlib.h>
#include <lua.h>

#include "engine/expr_int.h"

/* Stack layout while sorting: 1 = the array, 2 = the comparison or nil, 3 = scratch. */
enum { ARRAY = 1, COMP = 2, SCRATCH = 3 };

/* True when the value at a sorts before the value at b, by the comparison or by Lua's `<`. */
static int less(lua_State *L, int a, int b)
{
    int r;

    a = lua_absindex(L, a); /* the pushes below would shift relative indexes */
    b = lua_absindex(L, b);
    if (lua_isnil(L, COMP)) {
        return lua_compare(L, a, b, LUA_OPLT);
    }
    lua_pushvalue(L, COMP);
    lua_pushvalue(L, a);
    lua_pushvalue(L, b);
    lua_call(L, 2, 1);
    r = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return r;
}

/* Merges the sorted runs [lo, mid) and [mid, hi) of `from` into `to`. Equal elements keep
 * their order: the left run wins unless the right element is strictly smaller. */
static void merge(lua_State *L, int from, int to, lua_Integer lo, lua_Integer mid, lua_Integer hi)
{
    lua_Integer i = lo, j = mid;

    for (lua_Integer k = lo; k < hi; k++) {
        int take_right = 0;
        if (i < mid && j < hi) {
            lua_geti(L, from, i);
            lua_geti(L, from, j);
            take_right = less(L, -1, -2); /* right (top) strictly before left */
            lua_pop(L, 2);
        } else {
            take_right = i >= mid;
        }
        lua_geti(L, from, take_right ? j++ : i++);
        lua_seti(L, to, k);
    }
}

int fl_expr__sort(lua_State *L)
{
    lua_Integer n;
    int from = ARRAY, to = SCRATCH;

    luaL_checktype(L, ARRAY, LUA_TTABLE);
    if (!lua_isnoneornil(L, COMP)) {
        luaL_checktype(L, COMP, LUA_TFUNCTION);
    }
    lua_settop(L, COMP);
    n = luaL_len(L, ARRAY);
    luaL_argcheck(L, n < INT_MAX, ARRAY, "array too big");
    lua_createtable(L, (int)n, 0);
    for (lua_Integer width = 1; width < n; width *= 2) {
        for (lua_Integer lo = 1; lo <= n; lo += 2 * width) {
            lua_Integer mid = lo + width > n + 1 ? n + 1 : lo + width;
            lua_Integer hi = lo + 2 * width > n + 1 ? n + 1 : lo + 2 * width;
            merge(L, from, to, lo, mid, hi);
        }
        from = from == ARRAY ? SCRATCH : ARRAY;
        to = to == ARRAY ? SCRATCH : ARRAY;
    }
    for (lua_Integer k = 1; from == SCRATCH && k <= n; k++) {
        lua_geti(L, SCRATCH, k);
        lua_seti(L, ARRAY, k);
    }
    return 0;
}
