/* engine/expr_vm.c -- the evaluation VM: one sandboxed lua_State with a compiled-chunk
 * cache, an instruction limit and a memory budget.
 *
 * Design, for speed (a guard must cost well under a microsecond):
 *   - the stack keeps three slots for the VM's life: the scope table G (safe functions,
 *     the read-only library tables and ctx/event/result/instance/now, which are simply
 *     re-set before each evaluation), ENV (an empty table whose metatable reads from G
 *     and refuses writes, so nothing an expression does survives it) and the chunk cache;
 *   - the cache maps the address of an fl_expr_code to its chunk text and that text to the
 *     loaded function, so a hit is two table reads and a memcmp, and an address reused by
 *     a later template can never run a stale chunk;
 *   - JSON is never converted up front: objects and arrays are light userdata with a
 *     shared metatable (expr_json.c), so `event.data.slot` allocates nothing.
 * Limits: the allocator counts the bytes L holds and refuses to grow past the budget
 * (base at the start of the evaluation + memory_bytes); a count hook raises an error
 * after `instructions` VM instructions and then on every instruction, so a pcall inside
 * the expression cannot swallow either limit. Outside lua_pcall the cap is lifted, so
 * the C side (cache, conversions) never meets a Lua error it did not ask for.
 *
 * Thread-safety: an fl_expr_vm belongs to one thread at a time. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "core/log.h"
#include "engine/expr_int.h"

/* Stack slots kept for the VM's life. */
#define SLOT_G     1
#define SLOT_ENV   2
#define SLOT_CACHE 3
#define SLOT_BASE  3

/* Templates come and go with definition reloads; a full cache is simply dropped. */
#define CACHE_MAX 4096

struct fl_expr_vm {
    lua_State *L;
    fl_expr_limits limits;
    size_t used;     /* bytes held by L */
    size_t cap;      /* the allocator refuses to grow past this */
    size_t eval_cap; /* cap inside lua_pcall during an evaluation */
    bool mem_hit;    /* the allocator refused during this evaluation */
    bool ins_hit;    /* the count hook fired during this evaluation */
    size_t ncached;
};

static const fl_expr_scope empty_scope;

static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    fl_expr_vm *vm = ud;
    void *p = NULL;

    if (!ptr) {
        osize = 0; /* Lua passes the type of the new object here */
    }
    if (nsize == 0) {
        free(ptr);
        vm->used -= osize;
        goto out;
    }
    if (nsize > osize && nsize - osize > vm->cap - vm->used) {
        vm->mem_hit = true;
        goto out; /* Lua raises "not enough memory" */
    }
    p = fl_xrealloc(ptr, nsize);
    vm->used = vm->used - osize + nsize;
out:
    return p;
}

static int on_panic(lua_State *L)
{
    fl_log(FL_ERROR, "expr.panic", FL_STR("error", lua_tostring(L, -1)));
    abort();
}

static void on_count(lua_State *L, lua_Debug *ar)
{
    void *ud = NULL;
    fl_expr_vm *vm;

    (void)ar;
    lua_getallocf(L, &ud);
    vm = ud;
    vm->ins_hit = true;
    lua_sethook(L, on_count, LUA_MASKCOUNT, 1);
    luaL_error(L, "instruction limit");
}

static int refuse_write(lua_State *L)
{
    return luaL_error(L, "attempt to modify a read-only value");
}

/* Lua patterns backtrack: `.-.-.-b` costs about n^4 steps on n bytes, inside C where the
 * count hook cannot stop it. The cost is at most n^(q+1) for q quantifiers, so a
 * pattern whose bound exceeds PATTERN_WORK is refused before it runs. */
#define PATTERN_WORK 100000000.0

static int guarded_pattern(lua_State *L)
{
    size_t n = 0, plen = 0, q = 0;
    const char *p = luaL_optlstring(L, 2, "", &plen);
    double work;
    bool plain;

    (void)luaL_optlstring(L, 1, "", &n);
    for (size_t i = 0; i < plen; i++) {
        if (p[i] == '%') {
            i++;
        } else if (strchr("*+-?", p[i])) {
            q++;
        }
    }
    work = (double)n + 1;
    for (size_t i = 0; i < q && work <= PATTERN_WORK; i++) {
        work *= (double)n + 1;
    }
    /* only find's 4th argument means "plain"; gsub's is a count */
    plain = lua_toboolean(L, lua_upvalueindex(2)) && lua_toboolean(L, 4);
    if (q > 0 && work > PATTERN_WORK && !plain) {
        return luaL_error(L, "pattern too complex for a subject of %d bytes", (int)n);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* Wraps the pattern functions of the string library table on top of the stack. */
static void guard_patterns(lua_State *L)
{
    static const char *const names[] = {"find", "match", "gmatch", "gsub"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        lua_getfield(L, -1, names[i]);
        lua_pushboolean(L, i == 0);
        lua_pushcclosure(L, guarded_pattern, 2);
        lua_setfield(L, -2, names[i]);
    }
}

/* Pushes an empty table that reads through to the table at idx and refuses writes. */
static void push_readonly(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_newtable(L);
    lua_newtable(L);
    lua_pushvalue(L, idx);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, refuse_write);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
}

/* Sets G[name] to a read-only copy of a standard library without the `banned` entries
 * (a space-separated list with spaces around every name). */
static void add_lib(lua_State *L, const char *name, lua_CFunction open, const char *banned)
{
    char key[64];

    luaL_requiref(L, name, open, 0);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, -3) != 0) {
        snprintf(key, sizeof(key), " %s ", lua_tostring(L, -2));
        if (strstr(banned, key)) {
            lua_pop(L, 1);
        } else {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        }
    }
    if (strcmp(name, "string") == 0) {
        guard_patterns(L);
    }
    push_readonly(L, -1);
    lua_setfield(L, SLOT_G, name);
    lua_pop(L, 2);
}

static void sandbox(lua_State *L)
{
    static const char *const base[] = {"assert", "error",  "ipairs",   "next", "pairs",
                                       "pcall",  "select", "tonumber", "type", "rawequal",
                                       "rawlen", "rawget", "tostring"};

    lua_settop(L, 0);
    luaL_requiref(L, "_G", luaopen_base, 0);
    lua_newtable(L); /* SLOT_G */
    lua_replace(L, SLOT_G);
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
        lua_getglobal(L, base[i]);
        lua_setfield(L, SLOT_G, base[i]);
    }
    add_lib(L, "string", luaopen_string, " dump ");
    add_lib(L, "math", luaopen_math, " random randomseed ");
    add_lib(L, "table", luaopen_table, "");
    add_lib(L, "utf8", luaopen_utf8, "");
    /* methods on strings ("x"):rep() must reach only the sandbox's `string` */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_getfield(L, SLOT_G, "string");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 2);
    push_readonly(L, SLOT_G); /* SLOT_ENV */
    lua_newtable(L);          /* SLOT_CACHE */
    fl_expr__proxy_install(L);
    fl_assert(lua_gettop(L) == SLOT_BASE);
}

fl_rc fl_expr_vm_new(fl_expr_vm **out, const fl_expr_limits *limits, fl_err *err)
{
    static const fl_expr_limits defaults = FL_EXPR_LIMITS_DEFAULT;
    fl_rc rc = FL_OK;
    fl_expr_vm *vm = fl_xcalloc(1, sizeof(*vm));

    *out = NULL;
    vm->limits = limits ? *limits : defaults;
    vm->cap = SIZE_MAX;
    vm->L = lua_newstate(vm_alloc, vm);
    if (!vm->L) {
        rc = fl_err_set(err, FL_EINTERNAL, "could not create a Lua state");
        goto out;
    }
    lua_atpanic(vm->L, on_panic);
    sandbox(vm->L);
    *out = vm;
    vm = NULL;
out:
    fl_expr_vm_free(vm);
    return rc;
}

void fl_expr_vm_free(fl_expr_vm *vm)
{
    if (!vm) {
        return;
    }
    if (vm->L) {
        lua_close(vm->L);
    }
    free(vm);
}

static void begin(fl_expr_vm *vm, const fl_expr_scope *scope)
{
    lua_State *L = vm->L;
    long count = vm->limits.instructions;

    scope = scope ? scope : &empty_scope;
    fl_expr__push_json(L, scope->ctx);
    lua_setfield(L, SLOT_G, "ctx");
    fl_expr__push_json(L, scope->event);
    lua_setfield(L, SLOT_G, "event");
    fl_expr__push_json(L, scope->result);
    lua_setfield(L, SLOT_G, "result");
    fl_expr__push_json(L, scope->instance);
    lua_setfield(L, SLOT_G, "instance");
    if (scope->now) {
        lua_pushstring(L, scope->now);
    } else {
        lua_pushnil(L);
    }
    lua_setfield(L, SLOT_G, "now");
    vm->mem_hit = false;
    vm->ins_hit = false;
    vm->eval_cap = vm->limits.memory_bytes > SIZE_MAX - vm->used
                       ? SIZE_MAX
                       : vm->used + vm->limits.memory_bytes;
    count = count < 1 ? 1 : count > INT_MAX ? INT_MAX : count;
    lua_sethook(L, on_count, LUA_MASKCOUNT, (int)count);
}

static void end(fl_expr_vm *vm)
{
    lua_sethook(vm->L, NULL, 0, 0);
    lua_settop(vm->L, SLOT_BASE);
    vm->cap = SIZE_MAX;
}

/* Error text of a failed chunk: Lua's message without the "expr:1: " position. */
static fl_rc lua_failure(lua_State *L, fl_err *err)
{
    int line;

    if (lua_type(L, -1) != LUA_TSTRING) {
        return fl_err_set(err, FL_EINVAL, "lua: (error object is a %s value)",
                          luaL_typename(L, -1));
    }
    return fl_err_set(err, FL_EINVAL, "lua: %s", fl_expr__lua_message(lua_tostring(L, -1), &line));
}

/* Pushes the function of code, loading it into the cache on first use. */
static fl_rc push_fn(fl_expr_vm *vm, const fl_expr_code *code, fl_err *err)
{
    lua_State *L = vm->L;
    fl_rc rc = FL_OK;
    size_t len = 0;
    const char *text;

    if (lua_rawgetp(L, SLOT_CACHE, code) == LUA_TSTRING) {
        text = lua_tolstring(L, -1, &len);
        if (len == code->len && memcmp(text, code->chunk, len) == 0) {
            lua_rawget(L, SLOT_CACHE); /* text -> function */
            goto out;
        }
    }
    lua_pop(L, 1);
    if (vm->ncached >= CACHE_MAX) {
        lua_newtable(L);
        lua_replace(L, SLOT_CACHE);
        vm->ncached = 0;
    }
    if (luaL_loadbufferx(L, code->chunk, code->len, "=expr", "t") != LUA_OK) {
        rc = lua_failure(L, err);
        goto out;
    }
    lua_pushvalue(L, SLOT_ENV);
    lua_setupvalue(L, -2, 1); /* _ENV, the chunk's only upvalue */
    lua_pushlstring(L, code->chunk, code->len);
    lua_pushvalue(L, -2);
    lua_rawset(L, SLOT_CACHE);
    lua_pushlstring(L, code->chunk, code->len);
    lua_rawsetp(L, SLOT_CACHE, code);
    vm->ncached++;
out:
    return rc;
}

/* Runs one expression; on success its value is on top of the stack. */
static fl_rc run(fl_expr_vm *vm, const fl_expr_code *code, fl_err *err)
{
    int status;
    fl_rc rc = push_fn(vm, code, err);

    if (rc != FL_OK) {
        goto out;
    }
    vm->cap = vm->eval_cap;
    status = lua_pcall(vm->L, 0, 1, 0);
    vm->cap = SIZE_MAX;
    if (vm->ins_hit) {
        rc = fl_err_set(err, FL_EINVAL, "expression exceeded the instruction limit (%ld)",
                        vm->limits.instructions);
    } else if (vm->mem_hit) {
        rc = fl_err_set(err, FL_EINVAL, "expression exceeded the memory limit (%zu bytes)",
                        vm->limits.memory_bytes);
    } else if (status != LUA_OK) {
        rc = lua_failure(vm->L, err);
    }
out:
    return rc;
}

static fl_rc eval_node(fl_expr_vm *vm, const fl_expr_node *node, json_t **out, fl_err *err);

static fl_rc eval_interp(fl_expr_vm *vm, const fl_expr_node *node, json_t **out, fl_err *err)
{
    fl_rc rc = FL_OK;
    fl_buf b;

    fl_buf_init(&b, FL_EXPR_MAX_TEXT);
    for (size_t i = 0; i < node->nsegs && rc == FL_OK; i++) {
        const fl_expr_seg *seg = &node->segs[i];
        if (!seg->code) {
            rc = fl_buf_append(&b, seg->text, seg->len, NULL) == FL_OK
                     ? FL_OK
                     : fl_err_set(err, FL_EINVAL, "interpolated string exceeds %u bytes",
                                  FL_EXPR_MAX_TEXT);
            continue;
        }
        rc = run(vm, seg->code, err);
        if (rc == FL_OK) {
            rc = fl_expr__append_text(vm->L, -1, &b, err);
            lua_pop(vm->L, 1);
        }
    }
    if (rc == FL_OK) {
        *out = json_stringn(b.data ? b.data : "", b.len);
        rc = *out ? FL_OK : fl_err_set(err, FL_EINVAL, "interpolated string is not valid UTF-8");
    }
    fl_buf_deinit(&b);
    return rc;
}

static fl_rc eval_container(fl_expr_vm *vm, const fl_expr_node *node, json_t **out, fl_err *err)
{
    fl_rc rc = FL_OK;
    bool obj = node->kind == FL_EXPR_OBJECT;
    json_t *c = obj ? json_object() : json_array();
    json_t *kid = NULL;

    for (size_t i = 0; i < node->nkids; i++) {
        rc = eval_node(vm, &node->kids[i], &kid, err);
        if (rc != FL_OK) {
            goto out;
        }
        if (obj) {
            json_object_setn_new(c, node->keys[i], node->klens[i], kid);
        } else {
            json_array_append_new(c, kid);
        }
        kid = NULL;
    }
    *out = c;
    c = NULL;
out:
    json_decref(c);
    return rc;
}

static fl_rc eval_node(fl_expr_vm *vm, const fl_expr_node *node, json_t **out, fl_err *err)
{
    fl_rc rc = FL_OK;

    switch (node->kind) {
    case FL_EXPR_CONST:
        *out = json_deep_copy(node->value);
        break;
    case FL_EXPR_SOLE:
        rc = run(vm, node->code, err);
        if (rc == FL_OK) {
            rc = fl_expr__to_json(vm->L, -1, out, err);
            lua_pop(vm->L, 1);
        }
        break;
    case FL_EXPR_INTERP:
        rc = eval_interp(vm, node, out, err);
        break;
    default:
        rc = eval_container(vm, node, out, err);
        break;
    }
    return rc;
}

fl_rc fl_expr_eval(fl_expr_vm *vm, const fl_tmpl *t, const fl_expr_scope *scope, json_t **out,
                   fl_err *err)
{
    fl_rc rc;

    *out = NULL;
    if (t->constant) {
        /* constants never touch Lua: no scope to set, no limits to arm */
        rc = eval_node(vm, &t->root, out, err);
    } else {
        begin(vm, scope);
        rc = eval_node(vm, &t->root, out, err);
        end(vm);
    }
    return rc;
}

fl_rc fl_expr_eval_bool(fl_expr_vm *vm, const fl_tmpl *t, const fl_expr_scope *scope, bool *out,
                        fl_err *err)
{
    fl_rc rc;
    json_t *v = NULL;

    *out = false;
    if (t->root.kind != FL_EXPR_SOLE) {
        rc = fl_expr_eval(vm, t, scope, &v, err);
        *out = rc == FL_OK && !json_is_null(v) && !json_is_false(v);
        json_decref(v);
        goto out;
    }
    begin(vm, scope);
    rc = run(vm, t->root.code, err);
    *out = rc == FL_OK && lua_toboolean(vm->L, -1);
    end(vm);
out:
    return rc;
}
