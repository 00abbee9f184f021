/* tests/unit/test_docs.c -- the embedded OpenAPI document converts, and the /docs page
 * lists every operation, escapes the document's text and loads nothing from outside. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/docs.h"
#include "core/log.h"
#include "core/yaml_json.h"

static json_t *embedded(void)
{
    fl_err err = FL_ERR_INIT;
    json_t *doc = NULL;

    if (fl_yaml_json_parse(fl_openapi_yaml, fl_openapi_yaml_len, NULL, &doc, &err) != FL_OK) {
        fail_msg("api/openapi.yaml:%s", err.msg);
    }
    return doc;
}

static void test_docs_embedded_document_converts(void **state)
{
    json_t *doc = embedded();

    (void)state;
    assert_int_equal(strlen(fl_openapi_yaml), fl_openapi_yaml_len);
    assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
    assert_non_null(json_object_get(json_object_get(doc, "paths"), "/api/v1/conversations"));
    assert_non_null(json_object_get(json_object_get(doc, "paths"), "/openapi.json"));
    json_decref(doc);
}

static void test_docs_page_lists_every_operation(void **state)
{
    json_t *doc = embedded();
    char *html = fl_docs_html(doc);
    const char *path;
    json_t *item;

    (void)state;
    assert_non_null(strstr(html, "<!doctype html>"));
    json_object_foreach(json_object_get(doc, "paths"), path, item)
    {
        char want[512];
        snprintf(want, sizeof(want), "<code>%s</code></h3>", path);
        if (!strstr(html, want)) {
            fail_msg("/docs does not show %s", path);
        }
    }
    assert_non_null(strstr(html, "id=\"schema-Problem\""));
    /* self-contained: no script, stylesheet link, image or font from anywhere */
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "<link"));
    assert_null(strstr(html, "src="));
    assert_null(strstr(html, "@import"));
    free(html);
    json_decref(doc);
}

static void test_docs_page_escapes_the_document(void **state)
{
    const char *yaml = "openapi: 3.1.0\n"
                       "info: {title: \"<b>x</b>\", version: '1'}\n"
                       "paths:\n"
                       "  /a/{id}:\n"
                       "    get:\n"
                       "      summary: \"<script>alert('x')</script> & more\"\n"
                       "      parameters:\n"
                       "        - {$ref: '#/components/parameters/P'}\n"
                       "      responses:\n"
                       "        '200': {description: ok}\n"
                       "components:\n"
                       "  parameters:\n"
                       "    P: {name: id, in: path, required: true, schema: {type: string}}\n";
    fl_err err = FL_ERR_INIT;
    json_t *doc = NULL;
    char *html;

    (void)state;
    assert_int_equal(fl_yaml_json_parse(yaml, strlen(yaml), NULL, &doc, &err), FL_OK);
    html = fl_docs_html(doc);
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "<b>x"));
    assert_non_null(strstr(html, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more"));
    assert_non_null(strstr(html, "<td><code>id</code></td><td>path</td><td>yes</td>"));
    free(html);
    json_decref(doc);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docs_embedded_document_converts),
        cmocka_unit_test(test_docs_page_lists_every_operation),
        cmocka_unit_test(test_docs_page_escapes_the_document),
    };

    fl_log_set_level(FL_ERROR);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* one test: a glob on its name */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
