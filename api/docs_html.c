/* api/docs_html.c -- the /docs page: the OpenAPI document rendered as one static HTML page.
 *
 * The machines flowd runs on may have no internet, so the page is self-contained: inline
 * CSS, no script, no font, no image. It is built once from the converted document (see
 * api/routes_docs.c), so this code favours plainness over speed.
 *
 * Thread-safety: reentrant. */
#include "api/docs.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

#define HTML_MAX   (16u * 1024u * 1024u)
#define REF_HOPS   8
#define TYPE_DEPTH 6

typedef struct page {
    fl_buf b;
    const json_t *doc;
} page;

static const char *const methods[] = {"get", "put", "post", "delete", "patch", NULL};

static const char style[] =
    "body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:0 1em;"
    "color:#222;line-height:1.45}code,pre{font-family:ui-monospace,monospace}"
    "pre.desc,div.desc{white-space:pre-wrap}h3{margin-bottom:.3em}"
    "section.op{border-top:1px solid #ccc;padding:.5em 0}"
    "table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #ddd;padding:.2em .5em;"
    "text-align:left;vertical-align:top}th{background:#f4f4f4}"
    ".m{display:inline-block;min-width:4.5em;font-weight:bold;font-family:monospace}"
    ".get{color:#0a6}.post{color:#06c}.put{color:#a60}.delete{color:#c22}.patch{color:#808}"
    "nav li{list-style:none}nav ul{padding-left:0}";

/* A page over HTML_MAX is cut; the document is ours and nowhere near it. */
static void raw(page *p, const char *s)
{
    (void)fl_buf_append(&p->b, s, strlen(s), NULL);
}

static void esc(page *p, const char *s)
{
    for (; s && *s; s++) {
        const char *e = NULL;
        switch (*s) {
        case '&':
            e = "&amp;";
            break;
        case '<':
            e = "&lt;";
            break;
        case '>':
            e = "&gt;";
            break;
        case '"':
            e = "&quot;";
            break;
        case '\'':
            e = "&#39;";
            break;
        default:
            break;
        }
        (void)fl_buf_append(&p->b, e ? e : s, e ? strlen(e) : 1, NULL);
    }
}

/* raw(open) esc(text) raw(close), skipped when text is absent. */
static void tag(page *p, const char *open, const char *text, const char *close)
{
    if (text && *text) {
        raw(p, open);
        esc(p, text);
        raw(p, close);
    }
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* An RFC 6901 pointer ("/components/schemas/X") into the document, or NULL. */
static const json_t *pointer_get(const json_t *doc, const char *ptr)
{
    char seg[256];

    while (doc && *ptr == '/') {
        size_t n = 0;
        for (ptr++; *ptr && *ptr != '/' && n + 1 < sizeof(seg); ptr++) {
            if (ptr[0] == '~' && (ptr[1] == '0' || ptr[1] == '1')) {
                seg[n++] = ptr[1] == '0' ? '~' : '/';
                ptr++;
            } else {
                seg[n++] = *ptr;
            }
        }
        seg[n] = '\0';
        doc = json_object_get(doc, seg);
    }
    return *ptr ? NULL : doc;
}

/* Follows local $refs (a few hops: the document has no cycles, but never trust that). */
static const json_t *deref(const page *p, const json_t *node)
{
    for (int i = 0; i < REF_HOPS && json_is_object(node); i++) {
        const char *ref = str(node, "$ref");
        if (!ref || strncmp(ref, "#/", 2) != 0) {
            return node;
        }
        node = pointer_get(p->doc, ref + 1);
    }
    return node;
}

static void type_of(page *p, const json_t *s, int depth);

static void type_list(page *p, const json_t *list, const char *sep, int depth)
{
    size_t i;
    json_t *v;

    json_array_foreach(list, i, v)
    {
        raw(p, i ? sep : "");
        if (json_is_string(v)) {
            esc(p, json_string_value(v));
        } else {
            type_of(p, v, depth + 1);
        }
    }
}

static void enum_of(page *p, const json_t *values)
{
    size_t i;
    json_t *v;

    raw(p, " (one of: ");
    json_array_foreach(values, i, v)
    {
        char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        raw(p, i ? ", " : "");
        raw(p, "<code>");
        esc(p, text);
        raw(p, "</code>");
        free(text);
    }
    raw(p, ")");
}

/* A short human description of a schema: "string (date-time)", "array of Message", ... */
static void type_of(page *p, const json_t *s, int depth)
{
    const char *ref = str(s, "$ref");
    const json_t *t = json_object_get(s, "type");

    if (depth > TYPE_DEPTH || !json_is_object(s)) {
        raw(p, "any");
    } else if (ref) {
        const char *name = strrchr(ref, '/');
        tag(p, "<a href=\"#schema-", name ? name + 1 : ref, "\">");
        esc(p, name ? name + 1 : ref);
        raw(p, "</a>");
    } else if (json_object_get(s, "oneOf") || json_object_get(s, "anyOf")) {
        const json_t *alts = json_object_get(s, "oneOf");
        type_list(p, alts ? alts : json_object_get(s, "anyOf"), " | ", depth);
    } else if (json_object_get(s, "allOf")) {
        type_list(p, json_object_get(s, "allOf"), " &amp; ", depth);
    } else {
        if (json_is_array(t)) {
            type_list(p, t, " | ", depth);
        } else if (t) {
            esc(p, json_string_value(t));
        } else {
            raw(p, json_object_get(s, "properties") ? "object" : "any");
        }
        if (json_object_get(s, "items")) {
            raw(p, " of ");
            type_of(p, json_object_get(s, "items"), depth + 1);
        }
        tag(p, " (", str(s, "format"), ")");
        tag(p, " <code>", str(s, "pattern"), "</code>");
    }
    if (json_is_array(json_object_get(s, "enum"))) {
        enum_of(p, json_object_get(s, "enum"));
    }
}

static void parameter_rows(page *p, const json_t *params)
{
    size_t i;
    json_t *v;

    json_array_foreach(params, i, v)
    {
        const json_t *prm = deref(p, v);
        tag(p, "<tr><td><code>", str(prm, "name"), "</code></td>");
        tag(p, "<td>", str(prm, "in"), "</td>");
        raw(p,
            json_is_true(json_object_get(prm, "required")) ? "<td>yes</td><td>" : "<td></td><td>");
        type_of(p, json_object_get(prm, "schema"), 0);
        raw(p, "</td><td>");
        esc(p, str(prm, "description"));
        raw(p, "</td></tr>\n");
    }
}

static void parameters(page *p, const json_t *item, const json_t *op)
{
    const json_t *a = json_object_get(item, "parameters"), *b = json_object_get(op, "parameters");

    if (json_array_size(a) + json_array_size(b) == 0) {
        return;
    }
    raw(p, "<table><tr><th>parameter</th><th>in</th><th>required</th><th>type</th>"
           "<th>description</th></tr>\n");
    parameter_rows(p, a);
    parameter_rows(p, b);
    raw(p, "</table>\n");
}

/* content: {media type: {schema}} as "media type: type" lines. */
static void content(page *p, const json_t *c)
{
    const char *media;
    json_t *v;

    json_object_foreach((json_t *)c, media, v)
    {
        tag(p, "<code>", media, "</code>: ");
        type_of(p, json_object_get(v, "schema"), 0);
        raw(p, "<br>");
    }
}

static void request_body(page *p, const json_t *op)
{
    const json_t *body = deref(p, json_object_get(op, "requestBody"));

    if (!body) {
        return;
    }
    raw(p, json_is_true(json_object_get(body, "required")) ? "<p>Request body (required):<br>"
                                                           : "<p>Request body (optional):<br>");
    content(p, json_object_get(body, "content"));
    raw(p, "</p>\n");
}

static void responses(page *p, const json_t *op)
{
    const char *status;
    json_t *v;

    raw(p, "<table><tr><th>status</th><th>description</th><th>body</th><th>headers</th></tr>\n");
    json_object_foreach(json_object_get(op, "responses"), status, v)
    {
        const json_t *resp = deref(p, v);
        const char *h;
        json_t *hv;
        tag(p, "<tr><td>", status, "</td><td>");
        esc(p, str(resp, "description"));
        raw(p, "</td><td>");
        content(p, json_object_get(resp, "content"));
        raw(p, "</td><td>");
        json_object_foreach(json_object_get(resp, "headers"), h, hv)
        {
            tag(p, "<code>", h, "</code><br>");
        }
        raw(p, "</td></tr>\n");
    }
    raw(p, "</table>\n");
}

static void security(page *p, const json_t *op)
{
    const json_t *sec = json_object_get(op, "security");

    if (!sec) {
        sec = json_object_get(p->doc, "security");
    }
    raw(p, json_array_size(sec)
               ? "<p>Auth: <code>Authorization: Bearer &lt;API key&gt;</code></p>\n"
               : "<p>Auth: none</p>\n");
}

static void operation(page *p, const char *path, const json_t *item, const char *method)
{
    const json_t *op = json_object_get(item, method);

    raw(p, "<section class=\"op\" id=\"op-");
    esc(p, str(op, "operationId") ? str(op, "operationId") : path);
    raw(p, "\">\n<h3><span class=\"m ");
    esc(p, method);
    raw(p, "\">");
    for (const char *m = method; *m; m++) {
        char up[2] = {(char)(*m >= 'a' && *m <= 'z' ? *m - 32 : *m), 0};
        raw(p, up);
    }
    tag(p, "</span> <code>", path, "</code></h3>\n");
    tag(p, "<p><b>", str(op, "summary"), "</b></p>\n");
    tag(p, "<div class=\"desc\">", str(op, "description"), "</div>\n");
    security(p, op);
    parameters(p, item, op);
    request_body(p, op);
    responses(p, op);
    raw(p, "</section>\n");
}

/* The index, then one section per operation, in the document's order. */
static void operations(page *p, bool index)
{
    const char *path;
    json_t *item;

    raw(p, index ? "<nav><h2>Operations</h2><ul>\n" : "<h2>Reference</h2>\n");
    json_object_foreach(json_object_get(p->doc, "paths"), path, item)
    {
        for (int i = 0; methods[i]; i++) {
            const json_t *op = json_object_get(item, methods[i]);
            if (!json_is_object(op)) {
                continue;
            }
            if (!index) {
                operation(p, path, item, methods[i]);
                continue;
            }
            tag(p, "<li><a href=\"#op-", str(op, "operationId") ? str(op, "operationId") : path,
                "\">");
            tag(p, "<span class=\"m ", methods[i], "\">");
            esc(p, methods[i]);
            tag(p, "</span> <code>", path, "</code></a> ");
            esc(p, str(op, "summary"));
            raw(p, "</li>\n");
        }
    }
    raw(p, index ? "</ul></nav>\n" : "");
}

static void schema(page *p, const char *name, const json_t *s)
{
    const json_t *req = json_object_get(s, "required");
    const char *prop;
    json_t *v;

    tag(p, "<h3 id=\"schema-", name, "\">");
    esc(p, name);
    raw(p, "</h3>\n<p>");
    type_of(p, s, 1);
    raw(p, "</p>\n");
    tag(p, "<div class=\"desc\">", str(s, "description"), "</div>\n");
    if (!json_object_size(json_object_get(s, "properties"))) {
        return;
    }
    raw(p, "<table><tr><th>property</th><th>type</th><th>required</th><th>description</th></tr>\n");
    json_object_foreach(json_object_get(s, "properties"), prop, v)
    {
        bool required = false;
        size_t i;
        json_t *r;
        json_array_foreach(req, i, r)
        {
            required = required || (json_is_string(r) && !strcmp(json_string_value(r), prop));
        }
        tag(p, "<tr><td><code>", prop, "</code></td><td>");
        type_of(p, v, 0);
        raw(p, required ? "</td><td>yes</td><td>" : "</td><td></td><td>");
        esc(p, str(v, "description"));
        raw(p, "</td></tr>\n");
    }
    raw(p, "</table>\n");
}

static void schemas(page *p)
{
    const char *name;
    json_t *s;

    raw(p, "<h2>Schemas</h2>\n");
    json_object_foreach(json_object_get(json_object_get(p->doc, "components"), "schemas"), name, s)
    {
        schema(p, name, s);
    }
}

char *fl_docs_html(const json_t *doc)
{
    const json_t *info = json_object_get(doc, "info");
    page p = {.doc = doc};

    fl_buf_init(&p.b, HTML_MAX);
    raw(&p, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    tag(&p, "<title>", str(info, "title"), "</title>\n");
    raw(&p, "<style>");
    raw(&p, style); /* ours, not the document's: no escaping */
    raw(&p, "</style>\n");
    raw(&p, "</head><body>\n");
    tag(&p, "<h1>", str(info, "title"), "</h1>\n");
    tag(&p, "<p>Version ", str(info, "version"), " &middot; OpenAPI ");
    esc(&p, str(doc, "openapi"));
    raw(&p, " &middot; <a href=\"/openapi.json\">/openapi.json</a></p>\n");
    tag(&p, "<div class=\"desc\">", str(info, "description"), "</div>\n");
    operations(&p, true);
    operations(&p, false);
    schemas(&p);
    raw(&p, "</body></html>\n");
    return fl_buf_steal(&p.b);
}
