/* engine/yaml_tree.h -- YAML text -> a small tree of located nodes, for the loaders of
 * hand-written files (workflow definitions, agent profiles).
 *
 * libyaml's event parser feeds a recursive builder that enforces caps libyaml 0.2.5 does
 * not have: nesting depth, and a node count in which every alias counts the whole subtree
 * it stands for (or aliases refused outright). Each node keeps its line:col, and a
 * scalar the column its text starts at when the source holds it verbatim, so later
 * problems can point inside it. Duplicate keys are reported. The stream must hold at most
 * one document; its root may be any node (the caller says what it must be).
 *
 * Errors: every problem goes to the caller's sink, already formatted and located. A YAML
 * syntax error ends the parse (libyaml cannot resume after one); a bad tag or a duplicate
 * key is reported and the parse goes on.
 *
 * Ownership: every node lives in the fl_yaml_tree's arena, so an alias simply points at
 * its anchored node again (nothing is copied) and fl_yaml_tree_deinit frees everything.
 * Nodes are borrowed from the tree and valid until then.
 *
 * Thread-safety: reentrant; a tree belongs to one thread. */
#ifndef FL_ENGINE_YAML_TREE_H
#define FL_ENGINE_YAML_TREE_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/workflow.h" /* fl_pos */

/* The node type keeps the name the workflow loader has always used (fl_yn), so its passes
 * read the tree unchanged. */
typedef enum fl_yn_kind { FL_YN_SCALAR, FL_YN_MAP, FL_YN_SEQ } fl_yn_kind;

typedef struct fl_yn {
    fl_yn_kind kind;
    fl_pos pos;
    char *value;          /* scalar text (NUL-terminated; may hold NULs, see len) */
    size_t len;           /* scalar length in bytes */
    bool plain;           /* a plain scalar: resolves to null/bool/number; else a string */
    unsigned val_col;     /* column of value[0] in the source when the text maps 1:1, else 0 */
    struct fl_yn **items; /* MAP: key, value, key, value...; SEQ: the items */
    size_t n;             /* MAP: number of pairs; SEQ: number of items */
    size_t cap;
    size_t weight; /* nodes in this subtree, aliases expanded */
    int height;    /* nesting levels in this subtree */
} fl_yn;

/* Where problems go: fn gets each message formatted (at most 511 bytes) and located. */
typedef struct fl_yaml_sink {
    void (*fn)(void *ud, fl_pos pos, const char *msg);
    void *ud;
} fl_yaml_sink;

typedef struct fl_yaml_tree_opts {
    size_t max_nodes; /* aliases expanded */
    int max_depth;
    /* NULL: aliases allowed; else they are refused with this message */
    const char *alias_refusal;
    fl_yaml_sink sink;
} fl_yaml_tree_opts;

/* Caller-provided storage (zero it, or fl_yaml_tree_init). */
typedef struct fl_yaml_tree {
    fl_yn **arena;
    size_t narena, carena;
} fl_yaml_tree;

void fl_yaml_tree_init(fl_yaml_tree *t);
/* Frees every node; the tree can be used again. */
void fl_yaml_tree_deinit(fl_yaml_tree *t);

/* Parses text into t. Returns the root node (any kind; borrowed from t), or NULL when the
 * stream holds no document or after reporting a problem to opts->sink. The caller tells
 * the two apart by counting what its sink received. */
fl_yn *fl_yaml_tree_parse(fl_yaml_tree *t, const char *text, size_t len,
                          const fl_yaml_tree_opts *opts);

/* A mapping's key node / value node for key, or NULL (also when map is no mapping). */
fl_yn *fl_yaml_tree_key(const fl_yn *map, const char *key);
fl_yn *fl_yaml_tree_get(const fl_yn *map, const char *key);
/* A plain scalar that YAML 1.2 resolves to null (empty, ~, null, Null, NULL). */
bool fl_yaml_tree_is_null(const fl_yn *n);
/* Reports to sink every key of map that is not in allowed (NULL-terminated), with a "did
 * you mean" when one is close; `what` names the mapping ("a transition"). Does nothing
 * when map is NULL or no mapping. */
void fl_yaml_tree_check_keys(const fl_yn *map, const char *const *allowed, const char *what,
                             const fl_yaml_sink *sink);

#endif
