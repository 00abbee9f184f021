/* engine/expr.c -- templates: finding `${ }` in strings, checking that each expression
 * compiles, and turning a JSON value into a tree of constants and Lua chunks.
 *
 * Design: the scanner understands just enough Lua (string literals, long brackets,
 * comments, nested braces and parentheses) to find the `}` that closes a `${`, so
 * `${ {a=1} }` and `${ "}" }` work. Each expression becomes the chunk
 * "return (<expr>\n)" -- the newline lets a trailing `--` comment end before the `)`,
 * and the scanner refuses a `)` that would close the wrapping parenthesis, so an
 * expression can never become more than one expression. Subtrees without expressions
 * are kept as borrowed constants and copied on evaluation.
 *
 * Thread-safety: a compiled fl_tmpl is immutable; fl_expr_check uses its own scratch
 * lua_State, so every function here may be called from any thread. */
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "core/log.h"
#include "engine/expr_int.h"

/* Appends to a buffer whose cap is SIZE_MAX: only OOM (which aborts) could fail it. */
static void lit_add(fl_buf *b, const char *p, size_t n)
{
    fl_rc rc = fl_buf_append(b, p, n, NULL);

    fl_assert(rc == FL_OK);
}

/* If s[i] opens a long bracket ([[, [==[), returns its level + 1, else 0. */
static size_t long_open(const char *s, size_t i)
{
    size_t n = 0;

    if (s[i] != '[') {
        return 0;
    }
    while (s[i + 1 + n] == '=') {
        n++;
    }
    return s[i + 1 + n] == '[' ? n + 1 : 0;
}

/* Returns the offset just past the long bracket of level lvl - 1 that the text from s[i]
 * opens (its `[==[` included), or 0 when it is not closed. */
static size_t long_skip(const char *s, size_t i, size_t lvl)
{
    for (i += lvl + 1; s[i] != '\0'; i++) {
        size_t n = 0;
        if (s[i] != ']') {
            continue;
        }
        while (s[i + 1 + n] == '=') {
            n++;
        }
        if (n == lvl - 1 && s[i + 1 + n] == ']') {
            return i + n + 2;
        }
    }
    return 0;
}

/* Returns the offset just past the quoted string at s[i], or 0 when it is not closed. */
static size_t quote_skip(const char *s, size_t i)
{
    char q = s[i];

    for (i++; s[i] != '\0' && s[i] != q; i++) {
        if (s[i] == '\\' && s[i + 1] != '\0') {
            i++;
        }
    }
    return s[i] == q ? i + 1 : 0;
}

/* Returns the offset just past the string literal or comment at s[i], i when none starts
 * there, or 0 when it is not closed. */
static size_t literal_skip(const char *s, size_t i)
{
    size_t lvl;

    if (s[i] == '"' || s[i] == '\'') {
        return quote_skip(s, i);
    }
    lvl = long_open(s, i);
    if (lvl) {
        return long_skip(s, i, lvl);
    }
    if (s[i] != '-' || s[i + 1] != '-') {
        return i;
    }
    lvl = long_open(s, i + 2);
    if (lvl) {
        return long_skip(s, i + 2, lvl);
    }
    i += 2;
    while (s[i] != '\0' && s[i] != '\n') {
        i++;
    }
    return i;
}

/* Finds the `}` closing the `${` at s[open]. On failure *offset says where. */
static fl_rc find_close(const char *s, size_t open, size_t *close, size_t *offset, fl_err *err)
{
    size_t i = open + 2, braces = 0, parens = 0, next;

    while (s[i] != '\0') {
        next = literal_skip(s, i);
        if (next == 0) {
            break; /* an unclosed string or comment leaves the `${` unclosed */
        }
        if (next != i) {
            i = next;
            continue;
        }
        if ((s[i] == '}' && braces == 0) || (s[i] == ')' && parens == 0)) {
            break;
        }
        braces += (s[i] == '{') - (s[i] == '}');
        parens += (s[i] == '(') - (s[i] == ')');
        i++;
    }
    if (s[i] == '}') {
        *close = i;
        return FL_OK;
    }
    *offset = s[i] == ')' ? i : open;
    return fl_err_set(err, FL_EINVAL, s[i] == ')' ? "unbalanced ')' in expression" : "unclosed ${");
}

static bool is_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!strchr(" \t\r\n", p[i])) {
            return false;
        }
    }
    return true;
}

static fl_expr_code *code_new(const char *body, size_t n)
{
    static const char head[] = "return (", tail[] = "\n)";
    fl_expr_code *c = fl_xmalloc(sizeof(*c));

    c->len = sizeof(head) - 1 + n + sizeof(tail) - 1;
    c->chunk = fl_xmalloc(c->len + 1);
    memcpy(c->chunk, head, sizeof(head) - 1);
    memcpy(c->chunk + sizeof(head) - 1, body, n);
    memcpy(c->chunk + sizeof(head) - 1 + n, tail, sizeof(tail));
    return c;
}

static void code_free(fl_expr_code *c)
{
    if (c) {
        free(c->chunk);
        free(c);
    }
}

static void segs_free(fl_expr_seg *segs, size_t n)
{
    for (size_t i = 0; segs && i < n; i++) {
        free(segs[i].text);
        code_free(segs[i].code);
    }
    free(segs);
}

/* Moves the pending literal text (if any) into a new segment. */
static void flush_literal(fl_buf *lit, fl_expr_seg *segs, size_t *n)
{
    if (lit->len == 0) {
        return;
    }
    segs[*n].len = lit->len;
    segs[*n].text = fl_buf_steal(lit);
    (*n)++;
}

/* Adds the expression s[open] .. s[close] (the `${` and `}` excluded) as a segment. */
static fl_rc add_expr(const char *s, size_t open, size_t close, fl_expr_seg *segs, size_t *n,
                      size_t *offset, fl_err *err)
{
    const char *body = s + open + 2;
    size_t len = close - open - 2;

    if (is_blank(body, len)) {
        *offset = open;
        return fl_err_set(err, FL_EINVAL, "empty expression ${}");
    }
    segs[*n].code = code_new(body, len);
    segs[*n].at = open;
    (*n)++;
    return FL_OK;
}

/* Splits s into literal and expression segments (nothing is compiled here). */
static fl_rc split(const char *s, fl_expr_seg **out, size_t *nout, size_t *offset, fl_err *err)
{
    fl_rc rc = FL_OK;
    size_t i = 0, n = 0, close = 0, max = 1;
    fl_expr_seg *segs;
    fl_buf lit;

    for (const char *p = strchr(s, '$'); p; p = strchr(p + 1, '$')) {
        max += 2;
    }
    segs = fl_xcalloc(max, sizeof(*segs));
    fl_buf_init(&lit, SIZE_MAX);
    while (s[i] != '\0') {
        if (s[i] == '$' && s[i + 1] == '$' && s[i + 2] == '{') {
            lit_add(&lit, "${", 2); /* `$${` is a literal `${` */
            i += 3;
        } else if (s[i] == '$' && s[i + 1] == '{') {
            rc = find_close(s, i, &close, offset, err);
            if (rc != FL_OK) {
                goto out;
            }
            flush_literal(&lit, segs, &n);
            rc = add_expr(s, i, close, segs, &n, offset, err);
            if (rc != FL_OK) {
                goto out;
            }
            i = close + 1;
        } else {
            lit_add(&lit, s + i, 1);
            i++;
        }
    }
    flush_literal(&lit, segs, &n);
    *out = segs;
    *nout = n;
    segs = NULL;
out:
    fl_buf_deinit(&lit);
    segs_free(segs, n);
    return rc;
}

/* Byte offset in s of line `line` of the chunk of the expression whose `${` is at open:
 * line 1 is the expression's start, the last line is its closing `}`. */
static size_t line_offset(const char *s, size_t open, int line)
{
    size_t i = open + 2, close = 0;

    if (find_close(s, open, &close, &i, NULL) != FL_OK) {
        return open;
    }
    i = open + 2;
    for (int l = 1; l < line && i < close; i++) {
        if (s[i] == '\n') {
            l++;
        }
    }
    return i;
}

/* Lua prefixes messages with "expr:LINE: "; returns the rest and the line (0: none). */
const char *fl_expr__lua_message(const char *msg, int *line)
{
    static const char name[] = "expr:";
    const char *p = msg + sizeof(name) - 1;
    int l = 0;

    *line = 0;
    if (strncmp(msg, name, sizeof(name) - 1) != 0 || *p < '0' || *p > '9') {
        return msg;
    }
    for (; *p >= '0' && *p <= '9' && l < 100000; p++) {
        l = l * 10 + (*p - '0');
    }
    if (p[0] != ':' || p[1] != ' ') {
        return msg;
    }
    *line = l;
    return p + 2;
}

/* Compiles every expression segment of s in L; on failure says where and why. */
static fl_rc compile_all(lua_State *L, const char *s, const fl_expr_seg *segs, size_t n,
                         size_t *offset, fl_err *err)
{
    int line;
    const char *msg;

    for (size_t i = 0; i < n; i++) {
        if (!segs[i].code) {
            continue;
        }
        if (luaL_loadbufferx(L, segs[i].code->chunk, segs[i].code->len, "=expr", "t") != 0) {
            msg = fl_expr__lua_message(lua_tostring(L, -1), &line);
            *offset = line_offset(s, segs[i].at, line);
            return fl_err_set(err, FL_EINVAL, "lua: %s", msg);
        }
        lua_pop(L, 1);
    }
    return FL_OK;
}

static bool has_code(const fl_expr_seg *segs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (segs[i].code) {
            return true;
        }
    }
    return false;
}

fl_rc fl_expr_check(const char *s, size_t *offset, fl_err *err)
{
    fl_rc rc;
    fl_expr_seg *segs = NULL;
    size_t n = 0, off = 0;
    lua_State *L = NULL;

    rc = split(s, &segs, &n, &off, err);
    if (rc != FL_OK || !has_code(segs, n)) {
        goto out;
    }
    /* a scratch state: checking must not depend on, or disturb, any evaluation VM */
    L = luaL_newstate();
    fl_assert(L != NULL);
    rc = compile_all(L, s, segs, n, &off, err);
out:
    if (offset) {
        *offset = off;
    }
    if (L) {
        lua_close(L);
    }
    segs_free(segs, n);
    return rc;
}

bool fl_expr_has_template(const char *s)
{
    fl_expr_seg *segs = NULL;
    size_t n = 0, off = 0;
    bool has = false;

    if (strstr(s, "${") && split(s, &segs, &n, &off, NULL) == FL_OK) {
        has = has_code(segs, n);
    }
    segs_free(segs, n);
    return has;
}

/* Returns the index of the only expression when the segments are one expression with at
 * most blanks around it, else n. */
static size_t sole_index(const fl_expr_seg *segs, size_t n)
{
    size_t first = 0, last = n;

    if (first < last && !segs[first].code && is_blank(segs[first].text, segs[first].len)) {
        first++;
    }
    if (last > first && !segs[last - 1].code && is_blank(segs[last - 1].text, segs[last - 1].len)) {
        last--;
    }
    return last - first == 1 && segs[first].code ? first : n;
}

static fl_rc build_string(const json_t *v, fl_expr_node *node, size_t *offset, fl_err *err)
{
    const char *s = json_string_value(v);
    fl_expr_seg *segs = NULL;
    size_t n = 0, sole;
    fl_rc rc = FL_OK;

    node->kind = FL_EXPR_CONST;
    node->value = v;
    /* strings with NUL bytes are never templates: expressions are C strings */
    if (!strstr(s, "${") || strlen(s) != json_string_length(v)) {
        goto out;
    }
    rc = fl_expr_check(s, offset, err);
    if (rc != FL_OK) {
        goto out;
    }
    rc = split(s, &segs, &n, offset, err);
    if (rc != FL_OK) {
        goto out;
    }
    if (!has_code(segs, n)) {
        node->own = json_stringn(n ? segs[0].text : "", n ? segs[0].len : 0);
        node->value = node->own;
        goto out;
    }
    sole = sole_index(segs, n);
    if (sole < n) {
        node->kind = FL_EXPR_SOLE;
        node->code = segs[sole].code;
        segs[sole].code = NULL;
        goto out;
    }
    node->kind = FL_EXPR_INTERP;
    node->segs = segs;
    node->nsegs = n;
    segs = NULL;
out:
    segs_free(segs, n);
    return rc;
}

static fl_rc build_node(const json_t *v, fl_expr_node *node, size_t *offset, fl_err *err);

static void node_deinit(fl_expr_node *node)
{
    for (size_t i = 0; i < node->nkids; i++) {
        node_deinit(&node->kids[i]);
    }
    free(node->kids);
    free(node->keys);
    free(node->klens);
    segs_free(node->segs, node->nsegs);
    code_free(node->code);
    json_decref(node->own);
    memset(node, 0, sizeof(*node));
}

/* Objects and arrays whose members are all plain constants become one constant. */
static void collapse(const json_t *v, fl_expr_node *node)
{
    for (size_t i = 0; i < node->nkids; i++) {
        if (node->kids[i].kind != FL_EXPR_CONST || node->kids[i].own) {
            return;
        }
    }
    node_deinit(node);
    node->kind = FL_EXPR_CONST;
    node->value = v;
}

static fl_rc build_container(const json_t *v, fl_expr_node *node, size_t *offset, fl_err *err)
{
    fl_rc rc = FL_OK;
    const char *key;
    size_t klen, i = 0;
    json_t *kid;

    node->kind = json_is_object(v) ? FL_EXPR_OBJECT : FL_EXPR_ARRAY;
    node->nkids = json_is_object(v) ? json_object_size(v) : json_array_size(v);
    node->kids = fl_xcalloc(node->nkids + 1, sizeof(*node->kids));
    if (node->kind == FL_EXPR_OBJECT) {
        node->keys = fl_xcalloc(node->nkids + 1, sizeof(*node->keys));
        node->klens = fl_xcalloc(node->nkids + 1, sizeof(*node->klens));
        json_object_keylen_foreach((json_t *)v, key, klen, kid)
        {
            node->keys[i] = key;
            node->klens[i] = klen;
            rc = rc == FL_OK ? build_node(kid, &node->kids[i], offset, err) : rc;
            i++;
        }
    } else {
        json_array_foreach(v, i, kid)
        {
            rc = rc == FL_OK ? build_node(kid, &node->kids[i], offset, err) : rc;
        }
    }
    if (rc == FL_OK) {
        collapse(v, node);
    }
    return rc;
}

static fl_rc build_node(const json_t *v, fl_expr_node *node, size_t *offset, fl_err *err)
{
    fl_rc rc = FL_OK;

    if (json_is_string(v)) {
        rc = build_string(v, node, offset, err);
    } else if (json_is_object(v) || json_is_array(v)) {
        rc = build_container(v, node, offset, err);
    } else {
        node->kind = FL_EXPR_CONST;
        node->value = v;
    }
    return rc;
}

static bool node_has_code(const fl_expr_node *node)
{
    bool has = node->kind == FL_EXPR_SOLE || node->kind == FL_EXPR_INTERP;

    for (size_t i = 0; i < node->nkids && !has; i++) {
        has = node_has_code(&node->kids[i]);
    }
    return has;
}

fl_rc fl_tmpl_new(const json_t *value, fl_tmpl **out, fl_err *err)
{
    fl_rc rc;
    size_t offset = 0;
    fl_tmpl *t = fl_xcalloc(1, sizeof(*t));

    *out = NULL;
    t->source = json_deep_copy(value);
    fl_assert(t->source != NULL);
    rc = build_node(t->source, &t->root, &offset, err);
    if (rc != FL_OK) {
        goto out;
    }
    t->constant = !node_has_code(&t->root);
    *out = t;
    t = NULL;
out:
    fl_tmpl_free(t);
    return rc;
}

void fl_tmpl_free(fl_tmpl *t)
{
    if (!t) {
        return;
    }
    node_deinit(&t->root);
    json_decref(t->source);
    free(t);
}

const json_t *fl_tmpl_source(const fl_tmpl *t)
{
    return t->source;
}

bool fl_tmpl_is_constant(const fl_tmpl *t)
{
    return t->constant;
}
