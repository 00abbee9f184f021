/* engine/relay_rows.c -- the pure parts of the outbox relay: an outbox row's headers as
 * Kafka headers, the (topic, key) pairs held back after a failure, and which rows of a
 * pass may be marked published. No I/O, no clock; unit-tested in tests/unit/test_relay.c.
 *
 * Thread-safety: every function is reentrant. */
#include "engine/relay_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"

/* ---- headers ------------------------------------------------------------------------ */

static void header_set(fl_kafka_header *h, const char *name, const json_t *v)
{
    char *text = NULL;

    if (json_is_string(v)) {
        h->len = json_string_length(v); /* may hold NUL bytes (\u0000): copy by length */
        text = fl_xmalloc(h->len + 1);
        memcpy(text, json_string_value(v), h->len);
        text[h->len] = '\0';
    } else if (!json_is_null(v)) {
        text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        fl_assert(text != NULL); /* jansson fails only on OOM */
        h->len = strlen(text);
    }
    h->name = fl_xstrdup(name);
    h->value = text;
}

fl_rc fl_relay_headers_from_json(const char *json, bool has_payload, fl_kafka_header **out,
                                 size_t *count, fl_err *err)
{
    json_t *doc = fl_json_from_pg(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    fl_kafka_header *h = NULL;
    const char *name;
    json_t *v;
    size_t n = 0;
    bool typed = false; /* the row has a content-type of its own */
    fl_rc rc = FL_OK;

    *out = NULL;
    *count = 0;
    if (!json_is_object(doc)) {
        rc = fl_err_set(err, FL_EINVAL,
                        "cannot publish an outbox row: its headers are not a "
                        "JSON object");
        goto out;
    }
    h = fl_xcalloc(json_object_size(doc) + 1, sizeof(*h));
    json_object_foreach(doc, name, v)
    {
        bool is_ct = strcasecmp(name, "content-type") == 0;
        typed = typed || is_ct;
        if (!is_ct || has_payload) {
            header_set(&h[n++], name, v);
        }
    }
    if (has_payload && !typed) {
        json_t *ct = json_string("application/json");
        header_set(&h[n++], "content-type", ct);
        json_decref(ct);
    }
    *out = h;
    *count = n;
    h = NULL;
out:
    json_decref(doc);
    return rc;
}

void fl_relay_headers_free(fl_kafka_header *headers, size_t count)
{
    if (!headers) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        free((void *)headers[i].name);
        free((void *)headers[i].value);
    }
    free(headers);
}

/* ---- keys held back --------------------------------------------------------------------- */

/* A set of (topic, key) pairs, as the keys of a jansson object: "<topic>\x1f<key>". A
 * topic name cannot hold \x1f, so the first one separates the pair unambiguously; the
 * _nocheck setter takes keys that are not UTF-8 (an aggregateid may be any text). */
static char *pair_name(const char *topic, const char *key)
{
    return fl_xasprintf("%s\x1f%s", topic, key);
}

void fl_relay__held_add(json_t *held, const char *topic, const char *key)
{
    char *name = pair_name(topic, key);

    json_object_set_new_nocheck(held, name, json_true());
    free(name);
}

bool fl_relay__held_has(const json_t *held, const char *topic, const char *key)
{
    char *name = pair_name(topic, key);
    bool has = json_object_get(held, name) != NULL;

    free(name);
    return has;
}

size_t fl_relay_marks(const fl_relay_outcome *rows, size_t n, bool *mark)
{
    json_t *held = json_object();
    size_t marked = 0;

    for (size_t i = 0; i < n; i++) {
        mark[i] = rows[i].delivered && !fl_relay__held_has(held, rows[i].topic, rows[i].key);
        if (!rows[i].delivered) {
            fl_relay__held_add(held, rows[i].topic, rows[i].key);
        }
        marked += mark[i] ? 1 : 0;
    }
    json_decref(held);
    return marked;
}
