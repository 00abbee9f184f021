/* core/yaml_json.h -- one YAML document -> one jansson value.
 *
 * For documents that are data, not workflow definitions (the OpenAPI document served at
 * /openapi.json, say): mappings become objects (a key given twice is an error: the YAML
 * spec forbids it and a silent last-wins hides mistakes), sequences arrays, and plain
 * scalars are resolved by the YAML 1.2 core schema: null (~, null, empty), booleans
 * (true/false in three casings), integers (decimal, 0o octal, 0x hex), floats; anything
 * else, and every quoted or block scalar, is a string. Mapping keys are always strings.
 *
 * libyaml 0.2.5 has no limits of its own, so this reader caps the input size, the nesting
 * depth and the node count, and refuses aliases outright (no "billion laughs", no
 * cycles). Values JSON cannot hold (.inf, .nan, integers beyond 64 bits) and tags other
 * than !!str are refused rather than approximated.
 *
 * engine/workflow_yaml.c reads definitions with its own tree (source positions inside
 * scalars, aliases counted by weight), which this module does not try to replace.
 *
 * Thread-safety: reentrant. */
#ifndef FL_CORE_YAML_JSON_H
#define FL_CORE_YAML_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "core/err.h"

typedef struct fl_yaml_json_limits {
    size_t max_bytes; /* input size; 0 = FL_YAML_JSON_MAX_BYTES */
    int max_depth;    /* collections nested in collections; 0 = FL_YAML_JSON_MAX_DEPTH */
    size_t max_nodes; /* scalars + collections; 0 = FL_YAML_JSON_MAX_NODES */
} fl_yaml_json_limits;

#define FL_YAML_JSON_MAX_BYTES (4u * 1024u * 1024u)
#define FL_YAML_JSON_MAX_DEPTH 64
#define FL_YAML_JSON_MAX_NODES 1000000u

/* Converts text[0..len) (UTF-8; one YAML document, or none: an empty stream is JSON null).
 * lim may be NULL (all defaults).
 * Ownership: on FL_OK *out is a new reference; on failure *out is NULL.
 * Errors: FL_EINVAL with err->msg "LINE:COL: message" (1-based, where libyaml saw it),
 * FL_ETOOBIG when len exceeds max_bytes ("1:1: ..."). */
fl_rc fl_yaml_json_parse(const char *text, size_t len, const fl_yaml_json_limits *lim, json_t **out,
                         fl_err *err);

#endif
