/* engine/expr_json.c -- JSON seen from Lua (read-only proxies) and Lua values back to JSON.
 *
 * Proxies: a JSON object or array is shown to Lua as a light userdata pointing at the
 * json_t. Light userdata share one metatable per lua_State, and the VM creates no other
 * light userdata that Lua code can reach, so the metatable can treat every one as a
 * json_t. Indexing converts scalars on the fly and hands out nested containers as further
 * proxies, so no document is ever copied into Lua and a lookup allocates nothing. A proxy
 * must not outlive the json_t it points at: the scope is read-only and nothing an
 * expression builds survives the evaluation, so none can.
 *
 * Lua -> JSON: nil is null, integers stay integers, floats must be finite, strings must be
 * UTF-8, a proxy is a deep copy, a table whose keys are exactly 1..n is an array, any other
 * table an object with string keys, inserted in sorted order. An empty table is {}: Lua
 * cannot tell an empty array from an empty object, and workflow values are mostly
 * objects. Nesting deeper than FL_EXPR_MAX_DEPTH is an error (it also stops cycles).
 *
 * Thread-safety: as the lua_State given. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "engine/expr_int.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)

void fl_expr__push_json(lua_State *L, const json_t *v)
{
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        lua_pushlightuserdata(L, (void *)v);
        break;
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(v));
        break;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        lua_pushboolean(L, json_is_true(v));
        break;
    default:
        lua_pushnil(L);
        break;
    }
}

/* The member or element of proxy v at the key on L's stack index k, or NULL. */
static const json_t *proxy_get(lua_State *L, const json_t *v, int k)
{
    const json_t *item = NULL;
    size_t len;
    const char *key;
    lua_Integer i;

    if (json_is_object(v) && lua_type(L, k) == LUA_TSTRING) {
        key = lua_tolstring(L, k, &len);
        item = json_object_getn(v, key, len);
    } else if (json_is_array(v) && lua_isinteger(L, k)) {
        i = lua_tointeger(L, k);
        if (i >= 1 && (lua_Unsigned)i <= json_array_size(v)) {
            item = json_array_get(v, (size_t)(i - 1));
        }
    }
    return item;
}

static int proxy_index(lua_State *L)
{
    fl_expr__push_json(L, proxy_get(L, lua_touserdata(L, 1), 2));
    return 1;
}

/* `#` is the length of an array and the number of members of an object. */
static int proxy_len(lua_State *L)
{
    const json_t *v = lua_touserdata(L, 1);

    lua_pushinteger(L, (lua_Integer)(json_is_object(v) ? json_object_size(v) : json_array_size(v)));
    return 1;
}

static int proxy_tostring(lua_State *L)
{
    char *text = json_dumps(lua_touserdata(L, 1), DUMP_FLAGS);

    lua_pushstring(L, text ? text : "null");
    free(text);
    return 1;
}

/* The iterator of pairs(): arrays in index order, objects in member order. */
static int proxy_next(lua_State *L)
{
    json_t *v = lua_touserdata(L, 1);
    void *it = NULL;
    int n = 0;

    if (json_is_array(v)) {
        lua_Integer i = lua_isinteger(L, 2) ? lua_tointeger(L, 2) : 0;
        if (i >= 0 && (lua_Unsigned)i < json_array_size(v)) {
            lua_pushinteger(L, i + 1);
            fl_expr__push_json(L, json_array_get(v, (size_t)i));
            n = 2;
        }
    } else if (lua_isnil(L, 2)) {
        it = json_object_iter(v);
    } else if (lua_type(L, 2) == LUA_TSTRING) {
        it = json_object_iter_next(v, json_object_iter_at(v, lua_tostring(L, 2)));
    }
    if (it) {
        lua_pushlstring(L, json_object_iter_key(it), json_object_iter_key_len(it));
        fl_expr__push_json(L, json_object_iter_value(it));
        n = 2;
    }
    return n;
}

static int proxy_pairs(lua_State *L)
{
    lua_pushcfunction(L, proxy_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int proxy_newindex(lua_State *L)
{
    return luaL_error(L, "attempt to modify a read-only value");
}

void fl_expr__proxy_install(lua_State *L)
{
    static const luaL_Reg meta[] = {
        {"__index", proxy_index},       {"__newindex", proxy_newindex}, {"__len", proxy_len},
        {"__tostring", proxy_tostring}, {"__pairs", proxy_pairs},       {NULL, NULL},
    };

    lua_pushlightuserdata(L, NULL);
    lua_newtable(L);
    luaL_setfuncs(L, meta, 0);
    lua_pushliteral(L, "json");
    lua_setfield(L, -2, "__name");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
}

static fl_rc value_to_json(lua_State *L, int idx, int depth, json_t **out, fl_err *err);

typedef struct key_ref {
    const char *s;
    size_t len;
} key_ref;

static int key_cmp(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);

    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Counts the table's keys; *seq says whether they are exactly the integers 1..n. */
static size_t count_keys(lua_State *L, int idx, bool *seq)
{
    size_t n = 0;
    lua_Integer max = 0;
    bool ints = true;

    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        n++;
        if (ints && lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1) {
            max = lua_tointeger(L, -2) > max ? lua_tointeger(L, -2) : max;
        } else {
            ints = false;
        }
        lua_pop(L, 1);
    }
    *seq = n > 0 && ints && (lua_Unsigned)max == n;
    return n;
}

static fl_rc array_to_json(lua_State *L, int idx, size_t n, int depth, json_t **out, fl_err *err)
{
    fl_rc rc = FL_OK;
    json_t *a = json_array();
    json_t *item = NULL;

    for (size_t i = 1; i <= n && rc == FL_OK; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i);
        rc = value_to_json(L, -1, depth, &item, err);
        lua_pop(L, 1);
        if (rc == FL_OK) {
            json_array_append_new(a, item);
        }
    }
    if (rc == FL_OK) {
        *out = a;
        a = NULL;
    }
    json_decref(a);
    return rc;
}

/* Collects the table's keys, which must all be strings, sorted bytewise. */
static fl_rc sorted_keys(lua_State *L, int idx, key_ref *keys, size_t n, fl_err *err)
{
    fl_rc rc = FL_OK;
    size_t i = 0;

    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING || i >= n) {
            rc = fl_err_set(err, FL_EINVAL, "cannot convert a table with a %s key to JSON",
                            luaL_typename(L, -2));
            lua_pop(L, 2);
            goto out;
        }
        keys[i].s = lua_tolstring(L, -2, &keys[i].len);
        i++;
        lua_pop(L, 1);
    }
    qsort(keys, n, sizeof(*keys), key_cmp);
out:
    return rc;
}

static fl_rc object_to_json(lua_State *L, int idx, size_t n, int depth, json_t **out, fl_err *err)
{
    json_t *o = json_object();
    json_t *item = NULL;
    key_ref *keys = fl_xcalloc(n + 1, sizeof(*keys));
    fl_rc rc = sorted_keys(L, idx, keys, n, err);

    for (size_t i = 0; i < n && rc == FL_OK; i++) {
        lua_pushlstring(L, keys[i].s, keys[i].len);
        lua_rawget(L, idx);
        rc = value_to_json(L, -1, depth, &item, err);
        lua_pop(L, 1);
        if (rc == FL_OK && json_object_setn_new(o, keys[i].s, keys[i].len, item) != 0) {
            rc = fl_err_set(err, FL_EINVAL, "object key is not valid UTF-8");
        }
    }
    if (rc == FL_OK) {
        *out = o;
        o = NULL;
    }
    json_decref(o);
    free(keys);
    return rc;
}

static fl_rc table_to_json(lua_State *L, int idx, int depth, json_t **out, fl_err *err)
{
    fl_rc rc;
    bool seq = false;
    size_t n;

    if (depth > FL_EXPR_MAX_DEPTH) {
        rc = fl_err_set(err, FL_EINVAL, "value nests deeper than %d levels", FL_EXPR_MAX_DEPTH);
        goto out;
    }
    /* each level holds a key, a value and a table on the C stack of L */
    luaL_checkstack(L, 8, "value nests too deep");
    n = count_keys(L, idx, &seq);
    if (seq) {
        rc = array_to_json(L, idx, n, depth, out, err);
    } else {
        rc = object_to_json(L, idx, n, depth, out, err);
    }
out:
    return rc;
}

static fl_rc number_to_json(lua_State *L, int idx, json_t **out, fl_err *err)
{
    fl_rc rc = FL_OK;
    lua_Number d;

    if (lua_isinteger(L, idx)) {
        *out = json_integer((json_int_t)lua_tointeger(L, idx));
        goto out;
    }
    d = lua_tonumber(L, idx);
    if (!isfinite(d)) {
        rc = fl_err_set(err, FL_EINVAL, "cannot convert %s to JSON",
                        isnan(d) ? "NaN" : "an infinite number");
        goto out;
    }
    *out = json_real(d);
out:
    return rc;
}

static fl_rc value_to_json(lua_State *L, int idx, int depth, json_t **out, fl_err *err)
{
    fl_rc rc = FL_OK;
    size_t len;
    const char *s;

    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        *out = json_null();
        break;
    case LUA_TBOOLEAN:
        *out = json_boolean(lua_toboolean(L, idx));
        break;
    case LUA_TNUMBER:
        rc = number_to_json(L, idx, out, err);
        break;
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        *out = json_stringn(s, len);
        rc = *out ? FL_OK : fl_err_set(err, FL_EINVAL, "string is not valid UTF-8");
        break;
    case LUA_TLIGHTUSERDATA:
        *out = json_deep_copy(lua_touserdata(L, idx));
        break;
    case LUA_TTABLE:
        rc = table_to_json(L, idx, depth + 1, out, err);
        break;
    default:
        rc = fl_err_set(err, FL_EINVAL, "cannot convert a %s value to JSON", luaL_typename(L, idx));
        break;
    }
    return rc;
}

const char *fl_expr__tolstring(lua_State *L, int idx, size_t *len)
{
    int type = lua_type(L, idx);

    if (type == LUA_TTABLE || type == LUA_TFUNCTION || type == LUA_TTHREAD ||
        type == LUA_TUSERDATA) {
        lua_pushstring(L, lua_typename(L, type));
        return lua_tolstring(L, -1, len);
    }
    return luaL_tolstring(L, idx, len); /* a proxy's __tostring gives its JSON */
}

int fl_expr__tostring(lua_State *L)
{
    luaL_checkany(L, 1);
    fl_expr__tolstring(L, 1, NULL);
    return 1;
}

/* One key of a table being sorted for pairs; pos is its index in the raw-order list. */
typedef struct pair_key {
    int rank; /* 0 number, 1 string, 2 boolean, 3 + the type of anything else */
    bool isint;
    lua_Integer i;
    lua_Number d;
    key_ref s;
    size_t pos;
} pair_key;

static int pair_cmp(const void *a, const void *b)
{
    const pair_key *x = a, *y = b;
    lua_Number dx, dy;

    if (x->rank != y->rank) {
        return (x->rank > y->rank) - (x->rank < y->rank);
    }
    if (x->rank == 1) {
        return key_cmp(&x->s, &y->s);
    }
    if (x->rank == 0 && x->isint && y->isint) {
        return (x->i > y->i) - (x->i < y->i);
    }
    dx = x->isint ? (lua_Number)x->i : x->d;
    dy = y->isint ? (lua_Number)y->i : y->d;
    if (x->rank == 0 && dx != dy) {
        return (dx > dy) - (dx < dy);
    }
    if (x->rank == 0 && x->isint != y->isint) {
        return x->isint ? -1 : 1; /* beyond 2^53: the integer first, a fixed choice */
    }
    /* booleans: false first; other keys (tables, functions) keep Lua's order */
    if (x->rank == 2) {
        return (x->i > y->i) - (x->i < y->i);
    }
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Describes the key on top of the stack as entry pos of the sort. */
static void pair_key_get(lua_State *L, pair_key *k, size_t pos)
{
    int type = lua_type(L, -1);

    memset(k, 0, sizeof(*k));
    k->pos = pos;
    k->rank = type == LUA_TNUMBER    ? 0
              : type == LUA_TSTRING  ? 1
              : type == LUA_TBOOLEAN ? 2
                                     : 3 + type;
    if (type == LUA_TNUMBER) {
        k->isint = lua_isinteger(L, -1);
        k->i = k->isint ? lua_tointeger(L, -1) : 0;
        k->d = k->isint ? 0 : lua_tonumber(L, -1);
    } else if (type == LUA_TSTRING) {
        k->s.s = lua_tolstring(L, -1, &k->s.len);
    } else if (type == LUA_TBOOLEAN) {
        k->i = lua_toboolean(L, -1);
    }
}

/* The iterator of pairs over a table: upvalues are the table, its sorted keys and the
 * position of the next one. A key whose value was cleared meanwhile is skipped. */
static int sorted_next(lua_State *L)
{
    lua_Integer pos = lua_tointeger(L, lua_upvalueindex(3));

    for (;; pos++) {
        if (lua_rawgeti(L, lua_upvalueindex(2), pos) == LUA_TNIL) {
            return 1;
        }
        lua_pushvalue(L, -1);
        if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) {
            break;
        }
        lua_pop(L, 2);
    }
    lua_pushinteger(L, pos + 1);
    lua_replace(L, lua_upvalueindex(3));
    return 2;
}

/* pairs: a proxy iterates in document order (its __pairs); a table in sorted key order,
 * since Lua's own order follows the state's hash seed. The keys are gathered once, in a
 * raw-order list (which anchors them) and a userdata array that is sorted -- both belong
 * to Lua, so an error or a limit inside cannot leak them. */
int fl_expr__pairs(lua_State *L)
{
    size_t n = 0;
    pair_key *keys;

    if (luaL_getmetafield(L, 1, "__pairs") != LUA_TNIL) {
        lua_pushvalue(L, 1);
        lua_call(L, 1, 3);
        return 3;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    for (lua_pushnil(L); lua_next(L, 1) != 0; lua_pop(L, 1)) {
        n++;
    }
    luaL_argcheck(L, n < INT_MAX, 1, "table too large");
    keys = lua_newuserdatauv(L, (n + 1) * sizeof(*keys), 0); /* 2 */
    lua_createtable(L, (int)n, 0);                           /* 3: keys in raw order */
    n = 0;
    for (lua_pushnil(L); lua_next(L, 1) != 0; n++) {
        lua_pop(L, 1);
        pair_key_get(L, &keys[n], n + 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, 3, (lua_Integer)n + 1);
    }
    qsort(keys, n, sizeof(*keys), pair_cmp);
    lua_pushvalue(L, 1);
    lua_createtable(L, (int)n, 0); /* 5: keys in sorted order */
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 3, (lua_Integer)keys[i].pos);
        lua_rawseti(L, 5, (lua_Integer)i + 1);
    }
    lua_pushinteger(L, 1);
    lua_pushcclosure(L, sorted_next, 3);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

fl_rc fl_expr__to_json(lua_State *L, int idx, json_t **out, fl_err *err)
{
    *out = NULL;
    return value_to_json(L, idx, 0, out, err);
}

fl_rc fl_expr__append_text(lua_State *L, int idx, fl_buf *b, fl_err *err)
{
    fl_rc rc = FL_OK;
    json_t *v = NULL;
    char *text = NULL;
    size_t len = 0;
    const char *s = NULL;

    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        break;
    case LUA_TSTRING:
    case LUA_TNUMBER:
    case LUA_TBOOLEAN:
        s = luaL_tolstring(L, idx, &len); /* tostring: 1 -> "1", 1.5 -> "1.5" */
        break;
    case LUA_TTABLE:
    case LUA_TLIGHTUSERDATA:
        rc = fl_expr__to_json(L, idx, &v, err);
        text = rc == FL_OK ? json_dumps(v, DUMP_FLAGS) : NULL;
        s = text;
        len = text ? strlen(text) : 0;
        break;
    default:
        rc = fl_err_set(err, FL_EINVAL, "cannot interpolate a %s value", luaL_typename(L, idx));
        break;
    }
    if (s && fl_buf_append(b, s, len, NULL) != FL_OK) {
        rc = fl_err_set(err, FL_EINVAL, "interpolated string exceeds %zu bytes", b->max);
    }
    lua_settop(L, idx);
    json_decref(v);
    free(text);
    return rc;
}
