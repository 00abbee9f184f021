/* core/diag.c -- the located problem list. */
#include "core/diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

void fl_diags_init(fl_diags *d, size_t max)
{
    memset(d, 0, sizeof(*d));
    d->max = max;
}

void fl_diags_deinit(fl_diags *d)
{
    for (size_t i = 0; i < d->count; i++) {
        free(d->items[i].file);
        free(d->items[i].msg);
    }
    free(d->items);
    fl_diags_init(d, d->max);
}

void fl_diags_add(fl_diags *d, const char *file, unsigned line, unsigned col, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (d->count >= d->max) {
        d->dropped++;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (d->count == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->items = fl_xrealloc(d->items, d->cap * sizeof(*d->items));
    }
    d->items[d->count] =
        (fl_diag){fl_xstrdup(file ? file : ""), line, col, fl_xstrdup(msg), d->count};
    d->count++;
}

static int by_position(const void *a, const void *b)
{
    const fl_diag *x = a, *y = b;
    int c = strcmp(x->file, y->file);

    if (c != 0) {
        return c;
    }
    if (x->line != y->line) {
        return x->line < y->line ? -1 : 1;
    }
    if (x->col != y->col) {
        return x->col < y->col ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void fl_diags_sort(fl_diags *d)
{
    if (d->count > 1) {
        qsort(d->items, d->count, sizeof(*d->items), by_position);
    }
}

void fl_diags_format(const fl_diags *d, size_t i, char *out, size_t size)
{
    const fl_diag *g = &d->items[i];

    if (g->line) {
        snprintf(out, size, "%s:%u:%u: error: %s", g->file, g->line, g->col, g->msg);
    } else {
        snprintf(out, size, "%s: error: %s", g->file, g->msg);
    }
}
