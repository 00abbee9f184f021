/* api/docs.h -- the OpenAPI document compiled into flowd, and its HTML reference page.
 *
 * api/openapi.yaml is embedded at build time (deploy/embed-openapi.sh ->
 * build/gen/openapi.c); api/routes_docs.c converts it once (core/yaml_json.h) and serves
 * it as /openapi.json and /docs.
 *
 * Thread-safety: the embedded text is constant; fl_docs_html is reentrant. */
#ifndef FL_API_DOCS_H
#define FL_API_DOCS_H

#include <jansson.h>
#include <stddef.h>

/* api/openapi.yaml's bytes, NUL-terminated; the length excludes the NUL. */
extern const char fl_openapi_yaml[];
extern const size_t fl_openapi_yaml_len;

/* A self-contained HTML page (inline CSS; no script, font or any other external resource)
 * listing the document's operations (method, path, summary, description, security,
 * parameters, request body, responses) and its component schemas. Every text from the
 * document is HTML-escaped. Local $refs are followed; anything unexpected in the
 * document is skipped rather than fatal.
 * Ownership: the result is the caller's (free()). */
char *fl_docs_html(const json_t *doc);

#endif
