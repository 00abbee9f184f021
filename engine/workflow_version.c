/* engine/workflow_version.c -- rewriting the `version:` of a definition's text
 * (engine/workflow.h, fl_workflow_set_version).
 *
 * Design: the API numbers the versions it stores, and the stored text must say the same
 * number, because the engine takes a definition's version from its text. Re-emitting the
 * YAML would lose comments and layout, so the one scalar is replaced in place: libyaml's
 * events find it (the value of the key `version` of the top-level mapping) and its marks
 * say where it is. Marks count characters, not bytes, so the byte offset is found from
 * the mark's line and column over the UTF-8 text.
 *
 * Thread-safety: reentrant. */
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "core/mem.h"
#include "engine/workflow.h"

typedef struct span {
    yaml_mark_t start, end;
    bool found;
} span;

/* The byte offset of (line, column) -- both 0-based, column in characters. */
static size_t byte_offset(const char *text, size_t len, size_t line, size_t column)
{
    size_t off = 0;

    for (size_t l = 0; l < line && off < len; off++) {
        l += text[off] == '\n';
    }
    /* one character = a lead byte and its continuation bytes (10xxxxxx) */
    for (size_t c = 0; c < column && off < len; c++) {
        off++;
        while (off < len && ((unsigned char)text[off] & 0xc0) == 0x80) {
            off++;
        }
    }
    return off;
}

/* Walks the events of the first document: sets s->found and the value's marks. */
static void find_version(yaml_parser_t *p, span *s)
{
    yaml_event_t ev;
    int depth = 0;
    bool key_turn = true, want = false, done = false;

    while (!done && yaml_parser_parse(p, &ev)) {
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT || t == YAML_DOCUMENT_END_EVENT) {
            done = true;
        } else if (t == YAML_MAPPING_END_EVENT || t == YAML_SEQUENCE_END_EVENT) {
            depth--;
        } else if (depth == 1 &&
                   (t == YAML_SCALAR_EVENT || t == YAML_ALIAS_EVENT ||
                    t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT)) {
            if (!key_turn && want && t == YAML_SCALAR_EVENT) {
                *s = (span){ev.start_mark, ev.end_mark, true};
                done = true;
            }
            want = key_turn && t == YAML_SCALAR_EVENT &&
                   strcmp((const char *)ev.data.scalar.value, "version") == 0;
            key_turn = !key_turn;
        }
        if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT) {
            depth++;
        }
        yaml_event_delete(&ev);
    }
}

fl_rc fl_workflow_set_version(const char *text, size_t len, int version, char **out, fl_err *err)
{
    yaml_parser_t p;
    span s = {.found = false};
    size_t from, to;
    char num[16];
    int n;

    *out = NULL;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    find_version(&p, &s);
    yaml_parser_delete(&p);
    if (!s.found) {
        return fl_err_set(err, FL_EINVAL, "the definition has no top-level version to rewrite");
    }
    from = byte_offset(text, len, s.start.line, s.start.column);
    to = byte_offset(text, len, s.end.line, s.end.column);
    n = snprintf(num, sizeof(num), "%d", version);
    *out = fl_xmalloc(len - (to - from) + (size_t)n + 1);
    memcpy(*out, text, from);
    memcpy(*out + from, num, (size_t)n);
    memcpy(*out + from + n, text + to, len - to);
    (*out)[len - (to - from) + (size_t)n] = '\0';
    return FL_OK;
}
