/* engine/expr_vm.c -- the evaluation VM: one sandboxed lua_State with a compiled-chunk
 * cache, an instruction limit and a memory budget.
 *
 * Design, for speed (a guard must cost well under a microsecond):
 *   - the stack keeps three slots for the VM's life: the scope table G (safe functions,
 *     the read-only library tables and ctx/event/result/instance/now, which are simply
 *     re-set before each evaluation), ENV (an empty table whose metatable reads from G
 *     and refuses writes, so nothing an expression does survives it) and the chunk cache;
 *   - a variable the scope leaves NULL is nil in G, so reading it reaches G's __index,
 *     which asks the scope's provider (if any) once and stores the answer in G until the
 *     evaluation ends: a view nobody reads is never built, however the name is spelt;
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
#define SLOT_VARS  4 /* the names of the scope's variables, as Lua strings 1..NVARS */
#define SLOT_BASE  4

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
    const fl_expr_scope *scope; /* during an evaluation; NULL outside one */
    unsigned lazy;              /* bit i: var_names[i] is still to ask scope->provide for */
};

/* The variables of a scope, in the order of lazy's bits. */
static const char *const var_names[] = {"ctx", "event", "result", "instance", "now"};
#define NVARS (sizeof(var_names) / sizeof(var_names[0]))

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

/* string.format without addresses: %p is refused, and %s writes a table or a function as
 * the sandbox's tostring does ("table", "function") rather than as "table: 0x55...". The
 * scan only has to find conversions; the real format still checks the whole string. */
static int guarded_format(lua_State *L)
{
    size_t len = 0;
    const char *f = luaL_checklstring(L, 1, &len);
    int arg = 1, type;

    for (size_t i = 0; i < len; i++) {
        if (f[i] != '%' || (i + 1 < len && f[i + 1] == '%')) {
            i += f[i] == '%'; /* `%%` is a literal % */
            continue;
        }
        for (i++; i < len && f[i] != '\0' && strchr("-+ #0123456789.", f[i]); i++) {
        }
        arg++;
        if (i < len && f[i] == 'p') {
            return luaL_error(L, "%%p is not allowed in string.format");
        }
        type = lua_type(L, arg);
        if (i < len && f[i] == 's' && (type == LUA_TTABLE || type == LUA_TFUNCTION)) {
            fl_expr__tolstring(L, arg, NULL);
            lua_replace(L, arg);
        }
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* Wraps the pattern functions and format of the string library table on top of the stack. */
static void guard_string(lua_State *L)
{
    static const char *const names[] = {"find", "match", "gmatch", "gsub"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        lua_getfield(L, -1, names[i]);
        lua_pushboolean(L, i == 0);
        lua_pushcclosure(L, guarded_pattern, 2);
        lua_setfield(L, -2, names[i]);
    }
    lua_getfield(L, -1, "format");
    lua_pushcclosure(L, guarded_format, 1);
    lua_setfield(L, -2, "format");
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
        guard_string(L);
    }
    if (strcmp(name, "table") == 0) {
        lua_pushcfunction(L, fl_expr__sort); /* stable and clock-free: expr_sort.c */
        lua_setfield(L, -2, "sort");
    }
    push_readonly(L, -1);
    lua_setfield(L, SLOT_G, name);
    lua_pop(L, 2);
}

/* G's __index: a variable the scope left NULL is asked of scope->provide on its first
 * read in an evaluation, and kept in G for the rest of it (so, at most one call per
 * evaluation and name). Every other missing global is nil. */
static int scope_index(lua_State *L)
{
    void *ud = NULL;
    fl_expr_vm *vm;
    const char *key;
    size_t i = NVARS;

    lua_getallocf(L, &ud);
    vm = ud;
    key = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    for (size_t k = 0; key && vm->lazy && k < NVARS && i == NVARS; k++) {
        i = strcmp(key, var_names[k]) == 0 ? k : NVARS;
    }
    if (i == NVARS || !(vm->lazy & (1u << i))) {
        lua_pushnil(L);
        return 1;
    }
    vm->lazy &= ~(1u << i);
    fl_expr__push_json(L, vm->scope->provide(vm->scope->provide_arg, var_names[i]));
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    return 1;
}

/* Sets the base functions of G: Lua's safe ones, and the sandbox's deterministic pairs
 * and tostring. `next` is left out: its order over a table depends on the state's hash
 * seed, and sorting per call would make a loop over it quadratic. */
static void add_base(lua_State *L)
{
    static const char *const base[] = {"assert",   "error", "ipairs",   "pcall",  "select",
                                       "tonumber", "type",  "rawequal", "rawlen", "rawget"};

    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
        lua_getglobal(L, base[i]);
        lua_setfield(L, SLOT_G, base[i]);
    }
    lua_pushcfunction(L, fl_expr__pairs);
    lua_setfield(L, SLOT_G, "pairs");
    lua_pushcfunction(L, fl_expr__tostring);
    lua_setfield(L, SLOT_G, "tostring");
    lua_newtable(L);
    lua_pushcfunction(L, scope_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, SLOT_G);
}

static void sandbox(lua_State *L)
{

    lua_settop(L, 0);
    luaL_requiref(L, "_G", luaopen_base, 0);
    lua_newtable(L); /* SLOT_G */
    lua_replace(L, SLOT_G);
    add_base(L);
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
    lua_createtable(L, (int)NVARS, 0);
    for (size_t i = 0; i < NVARS; i++) {
        lua_pushstring(L, var_names[i]);
        lua_rawseti(L, SLOT_VARS, (lua_Integer)i + 1);
    }
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

/* Sets G's variables from the scope; those it leaves NULL are nil, and lazy when the
 * scope has a provider. Raw sets with the names kept in SLOT_VARS: lua_setfield would
 * intern each name again, and this runs before every evaluation. */
static void begin(fl_expr_vm *vm, const fl_expr_scope *scope)
{
    lua_State *L = vm->L;
    long count = vm->limits.instructions;
    const json_t *vars[NVARS - 1];

    scope = scope ? scope : &empty_scope;
    vm->scope = scope;
    vm->lazy = 0;
    vars[0] = scope->ctx;
    vars[1] = scope->event;
    vars[2] = scope->result;
    vars[3] = scope->instance;
    for (size_t i = 0; i < NVARS; i++) {
        lua_rawgeti(L, SLOT_VARS, (lua_Integer)i + 1);
        if (i < NVARS - 1) {
            fl_expr__push_json(L, vars[i]);
        } else if (scope->now) {
            lua_pushstring(L, scope->now);
        } else {
            lua_pushnil(L);
        }
        lua_rawset(L, SLOT_G);
        if (scope->provide && (i < NVARS - 1 ? !vars[i] : !scope->now)) {
            vm->lazy |= 1u << i;
        }
    }
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
    vm->scope = NULL;
    vm->lazy = 0;
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
