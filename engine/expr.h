/* engine/expr.h -- workflow expressions: Lua 5.4 inside `${ }`, sandboxed and bounded.
 *
 * A template is any JSON value from a definition whose strings may hold `${ lua }`:
 *   - a string that is exactly one `${ expr }` (surrounding blanks allowed) evaluates to
 *     the expression's value with its type kept (number, boolean, table -> JSON, nil ->
 *     null);
 *   - `${ }` inside a longer string interpolates as text (tostring of each value; nil is
 *     the empty string);
 *   - everything else (numbers, booleans, strings without `${`, objects and arrays of
 *     templates) evaluates to itself, recursively. `$${` is a literal `${`.
 * Expressions see `ctx`, `event`, `result`, `instance` (read-only views of JSON values)
 * and `now` (an RFC 3339 string). The sandbox offers only safe base functions, `string`,
 * `math` (without `random`), `table` and `utf8`; there is no `io`, `os`, `require`,
 * `load`, `dofile`, `debug`, `collectgarbage` or `setmetatable` on the scope. Each
 * evaluation is bounded by an instruction count and a memory budget: exceeding either is
 * an evaluation error (FL_EINVAL), never a hang or a crash.
 *
 * Conversions: a Lua table whose keys are exactly 1..n becomes an array, any other an object
 * (string keys only); an empty table is {}. A proxy (ctx.list, event.data) converts to a
 * copy of its JSON; in interpolation, tables and proxies appear as compact JSON text.
 * Proxies support indexing, `#` (array length, or number of members), pairs (members in
 * document order), ipairs and tostring (JSON); writing to one is an error.
 *
 * Determinism: the same template and scope give the same JSON, byte for byte (tables
 * converted to objects have their keys sorted; nothing reads a clock or random source).
 * The sandbox closes Lua's own holes: tostring of a table is "table" and of a function
 * "function" (never an address), string.format refuses %p and formats tables and
 * functions with %s the same way, pairs visits a table's keys in sorted order (numbers
 * ascending, then strings bytewise, then false, true; other keys last, in an order that
 * is not defined), and `next` is absent.
 *
 * Thread-safety: an fl_tmpl is immutable after fl_tmpl_new and may be shared by all
 * threads. An fl_expr_vm (one lua_State) belongs to one thread at a time. */
#ifndef FL_ENGINE_EXPR_H
#define FL_ENGINE_EXPR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

typedef struct fl_tmpl fl_tmpl;
typedef struct fl_expr_vm fl_expr_vm;

typedef struct fl_expr_limits {
    long instructions;   /* Lua VM instructions per evaluation */
    size_t memory_bytes; /* bytes a single evaluation may allocate beyond the VM's base */
} fl_expr_limits;

#define FL_EXPR_LIMITS_DEFAULT {100000, 1 << 20}

/* Supplies a variable on demand: name is "ctx", "event", "result", "instance" or "now"
 * (a JSON string). Called at most once per evaluation and name, and only when the
 * expression reads that variable (by name or as _ENV[...]) while the scope's member is
 * NULL; the value returned (NULL is nil) is kept for the rest of that evaluation.
 * Ownership: the result is borrowed and must stay valid until the evaluation returns.
 * It must not fail: an expensive view is built here, once, instead of up front. */
typedef const json_t *(*fl_expr_provide_fn)(void *arg, const char *name);

/* What an expression can see. Every pointer is borrowed for the evaluation; NULL members
 * are nil in Lua, or what provide returns for them when provide is set. */
typedef struct fl_expr_scope {
    const json_t *ctx;
    const json_t *event;
    const json_t *result;
    const json_t *instance;
    const char *now;
    fl_expr_provide_fn provide; /* optional */
    void *provide_arg;
} fl_expr_scope;

/* Checks one string of a definition: that every `${` is closed and every expression
 * compiles as a Lua expression. On failure *offset is the byte offset of the problem
 * inside s (so the loader can report file:line:col) and err says what is wrong
 * ("unclosed ${", "lua: unexpected symbol near ')'").
 * Errors: FL_EINVAL. */
fl_rc fl_expr_check(const char *s, size_t *offset, fl_err *err);

/* True when s contains at least one `${ }` (after fl_expr_check passed). */
bool fl_expr_has_template(const char *s);

/* Compiles a JSON value whose strings passed fl_expr_check.
 * Ownership: borrows value (copied); the result is owned by the caller (fl_tmpl_free).
 * Errors: FL_EINVAL (a string does not pass fl_expr_check). */
fl_rc fl_tmpl_new(const json_t *value, fl_tmpl **out, fl_err *err);
void fl_tmpl_free(fl_tmpl *t); /* NULL-safe */

/* The template's JSON as written in the definition. Borrowed. */
const json_t *fl_tmpl_source(const fl_tmpl *t);

/* True when the template has no expression at all (evaluation = a copy of the source, with
 * any `$${` turned into `${`). */
bool fl_tmpl_is_constant(const fl_tmpl *t);

/* Ownership: *out is owned by the caller (fl_expr_vm_free). Errors: FL_EINTERNAL. */
fl_rc fl_expr_vm_new(fl_expr_vm **out, const fl_expr_limits *limits, fl_err *err);
void fl_expr_vm_free(fl_expr_vm *vm); /* NULL-safe */

/* Evaluates t in scope. Compiled chunks are cached in the VM per template, so the second
 * evaluation of a template costs no compilation.
 * Ownership: *out is a new reference owned by the caller.
 * Errors: FL_EINVAL (runtime error, instruction or memory limit, a value that has no JSON
 * form such as a function or a table nested deeper than 64) -- err says which. */
fl_rc fl_expr_eval(fl_expr_vm *vm, const fl_tmpl *t, const fl_expr_scope *scope, json_t **out,
                   fl_err *err);

/* Evaluates a guard: Lua truthiness of the value (nil and false are false; everything
 * else, 0 and "" included, is true). Errors: as fl_expr_eval. */
fl_rc fl_expr_eval_bool(fl_expr_vm *vm, const fl_tmpl *t, const fl_expr_scope *scope, bool *out,
                        fl_err *err);

#endif
