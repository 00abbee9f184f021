/* engine/expr_int.h -- private to engine/expr*.c: the compiled template tree and the
 * JSON <-> Lua bridge shared by the template compiler (expr.c), the VM (expr_vm.c) and the
 * conversions (expr_json.c).
 *
 * Thread-safety: as engine/expr.h. */
#ifndef FL_ENGINE_EXPR_INT_H
#define FL_ENGINE_EXPR_INT_H

#include <lua.h>

#include "engine/expr.h"
#include "core/mem.h"

/* Tables converted to JSON and JSON shown to Lua nest at most this deep. */
#define FL_EXPR_MAX_DEPTH 64

/* An interpolated string is at most this long (its pieces are bounded by the memory
 * budget one by one, but a template may hold many of them). */
#define FL_EXPR_MAX_TEXT (16u << 20)

/* One compiled expression: the Lua chunk "return (<expr>\n)". The VM caches the loaded
 * function keyed by this struct's address and checks the text on every hit, so a
 * freed-and-reused address can never run a stale chunk. */
typedef struct fl_expr_code {
    char *chunk;
    size_t len;
} fl_expr_code;

/* A piece of an interpolated string: literal text (code == NULL) or an expression. */
typedef struct fl_expr_seg {
    char *text; /* literal pieces only; `$${` already turned into `${` */
    size_t len;
    fl_expr_code *code;
    size_t at; /* expressions: offset of the `${` in the source string */
} fl_expr_seg;

typedef enum fl_expr_kind {
    FL_EXPR_CONST,  /* a subtree without expressions: evaluation is a copy */
    FL_EXPR_SOLE,   /* a string that is exactly one ${ }: keeps the value's type */
    FL_EXPR_INTERP, /* a string with text around or between ${ } */
    FL_EXPR_OBJECT,
    FL_EXPR_ARRAY
} fl_expr_kind;

typedef struct fl_expr_node fl_expr_node;
struct fl_expr_node {
    fl_expr_kind kind;
    const json_t *value; /* CONST: borrowed from the template's source, or own */
    json_t *own;         /* CONST: a string whose `$${` were unescaped */
    fl_expr_code *code;  /* SOLE */
    fl_expr_seg *segs;   /* INTERP */
    size_t nsegs;
    const char **keys; /* OBJECT: borrowed from the source */
    size_t *klens;
    fl_expr_node *kids; /* OBJECT, ARRAY */
    size_t nkids;
};

struct fl_tmpl {
    json_t *source;
    bool constant;
    fl_expr_node root;
};

/* Lua prefixes messages with "expr:LINE: "; returns the rest of msg and the line (0 when
 * there is no such prefix). */
const char *fl_expr__lua_message(const char *msg, int *line);

/* Pushes the Lua view of v: nil for NULL or null, scalars converted, objects and arrays
 * as read-only proxies (light userdata pointing at v, so v must outlive their use). */
void fl_expr__push_json(lua_State *L, const json_t *v);

/* Installs the metatable that every light userdata of L shares (only proxies exist). */
void fl_expr__proxy_install(lua_State *L);

/* Converts the value at idx to JSON. Ownership: *out is owned by the caller.
 * Errors: FL_EINVAL (functions, NaN/inf, invalid UTF-8, bad keys, nesting > 64). */
fl_rc fl_expr__to_json(lua_State *L, int idx, json_t **out, fl_err *err);

/* Pushes the sandbox's tostring of the value at idx and returns it: "table" and
 * "function" for those (never an address), compact JSON for proxies, Lua's text for the
 * rest. len may be NULL. */
const char *fl_expr__tolstring(lua_State *L, int idx, size_t *len);

/* The sandbox's tostring and pairs (pairs: a proxy's __pairs, else the table's keys in
 * sorted order -- numbers, strings, false, true, then the rest). */
int fl_expr__tostring(lua_State *L);
int fl_expr__pairs(lua_State *L);

/* The sandbox's table.sort: stable, with no randomness (expr_sort.c). */
int fl_expr__sort(lua_State *L);

/* Appends the text form of the value at idx (tostring; nil is ""; tables and proxies
 * as compact JSON). Errors: FL_EINVAL. */
fl_rc fl_expr__append_text(lua_State *L, int idx, fl_buf *b, fl_err *err);

#endif
