/* consumers/engine_group.c -- the pure bookkeeping of a batch: grouping its events by
 * (tenant, key), finding events given twice, and when a batch stops filling.
 *
 * Design: both sort an index array (qsort, O(n log n)) instead of hashing: a batch holds
 * at most engine.batch_size events, the comparison is two strcmp calls, and the result
 * must keep first-seen order (the order events are applied in), which the sort's
 * tie-break on the index gives.
 *
 * Thread-safety: reentrant. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/engine_int.h"
#include "core/mem.h"

typedef struct ref3 {
    const char *a, *b, *c; /* compared in this order; c may be NULL */
    size_t idx;
} ref3;

static int cmp_opt(const char *x, const char *y)
{
    if (!x || !y) {
        return (x != NULL) - (y != NULL);
    }
    return strcmp(x, y);
}

static int cmp_ref3(const void *pa, const void *pb)
{
    const ref3 *x = pa, *y = pb;
    int c = cmp_opt(x->a, y->a);

    if (c == 0) {
        c = cmp_opt(x->b, y->b);
    }
    if (c == 0) {
        c = cmp_opt(x->c, y->c);
    }
    if (c == 0) {
        c = (x->idx > y->idx) - (x->idx < y->idx);
    }
    return c;
}

static bool same(const ref3 *x, const ref3 *y)
{
    return cmp_opt(x->a, y->a) == 0 && cmp_opt(x->b, y->b) == 0 && cmp_opt(x->c, y->c) == 0;
}

/* Sorted copies of the triples; the caller frees. */
static ref3 *sorted(const ref3 *in, size_t n)
{
    ref3 *s = fl_xcalloc(n ? n : 1, sizeof(*s));

    memcpy(s, in, n * sizeof(*s));
    qsort(s, n, sizeof(*s), cmp_ref3);
    return s;
}

size_t fl_engine__group(const fl_store_key *in, size_t n, size_t *group_out, fl_store_key *keys_out)
{
    ref3 *r = fl_xcalloc(n ? n : 1, sizeof(*r));
    size_t *first = fl_xcalloc(n ? n : 1, sizeof(*first)); /* index of a pair's first use */
    ref3 *s;
    size_t nkeys = 0;

    for (size_t i = 0; i < n; i++) {
        r[i] = (ref3){in[i].tenant, in[i].key, NULL, i};
    }
    s = sorted(r, n);
    for (size_t i = 0; i < n; i++) {
        first[s[i].idx] = i > 0 && same(&s[i - 1], &s[i]) ? first[s[i - 1].idx] : s[i].idx;
    }
    /* number the groups in first-seen order */
    for (size_t i = 0; i < n; i++) {
        if (!in[i].key || !in[i].tenant) {
            group_out[i] = SIZE_MAX;
        } else if (first[i] == i) {
            keys_out[nkeys] = in[i];
            group_out[i] = nkeys++;
        } else {
            group_out[i] = group_out[first[i]];
        }
    }
    free(s);
    free(first);
    free(r);
    return nkeys;
}

void fl_engine__dedupe(const fl_store_event_ref *refs, size_t n, bool *dup_out)
{
    ref3 *r = fl_xcalloc(n ? n : 1, sizeof(*r));
    ref3 *s;

    for (size_t i = 0; i < n; i++) {
        r[i] = (ref3){refs[i].tenant, refs[i].source, refs[i].id, i};
        dup_out[i] = false;
    }
    s = sorted(r, n);
    for (size_t i = 1; i < n; i++) {
        /* the sort puts the earliest index of equal triples first */
        if (s[i].c && same(&s[i - 1], &s[i])) {
            dup_out[s[i].idx] = true;
        }
    }
    free(s);
    free(r);
}

int fl_engine__fill_wait(size_t n, size_t batch_size, int64_t now_ms, int64_t deadline_ms,
                         int idle_ms)
{
    if (n >= batch_size) {
        return -1;
    }
    if (n == 0) {
        return idle_ms;
    }
    return now_ms < deadline_ms ? 0 : -1;
}
