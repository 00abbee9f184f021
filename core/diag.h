/* core/diag.h -- a list of located problems ("file:line:col: error: message"), for
 * checkers that report every problem in an input rather than stopping at the first
 * (flowd validate, the workflow loader).
 *
 * Thread-safety: an fl_diags belongs to one thread. */
#ifndef FL_CORE_DIAG_H
#define FL_CORE_DIAG_H

#include <stddef.h>

typedef struct fl_diag {
    char *file;
    unsigned line, col; /* 1-based; 0 when the problem has no position (a missing file) */
    char *msg;          /* lower case, no final period, no location */
    size_t seq;         /* insertion order: the tie-break that keeps sorting stable */
} fl_diag;

typedef struct fl_diags {
    fl_diag *items;
    size_t count;
    size_t cap;
    size_t max; /* further problems are counted in `dropped`, not stored */
    size_t dropped;
} fl_diags;

void fl_diags_init(fl_diags *d, size_t max);
void fl_diags_deinit(fl_diags *d);

void fl_diags_add(fl_diags *d, const char *file, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Sorts by file, line, column (stable), so reports read top to bottom. */
void fl_diags_sort(fl_diags *d);

/* Formats item i as "file:line:col: error: msg" into out (always NUL-terminated). */
void fl_diags_format(const fl_diags *d, size_t i, char *out, size_t size);

#endif
