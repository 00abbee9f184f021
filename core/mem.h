/* core/mem.h -- allocation that never returns NULL, and a bounded growable buffer.
 *
 * OOM policy (R5.1): log "oom" and abort, as Redis, PostgreSQL and h2o do. Raw
 * malloc/calloc/realloc/strdup are banned outside core/mem.c (make lint).
 *
 * Thread-safety: the allocators are thread-safe; an fl_buf belongs to one thread. */
#ifndef FL_CORE_MEM_H
#define FL_CORE_MEM_H

#include <stddef.h>

#include "core/err.h"

void *fl_xmalloc(size_t n);
void *fl_xcalloc(size_t count, size_t size);
void *fl_xrealloc(void *p, size_t n);
char *fl_xstrdup(const char *s);
char *fl_xstrndup(const char *s, size_t n);
/* printf into a new string. Ownership: the result is owned by the caller (free()). */
char *fl_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A byte buffer with a hard cap, like curl's dynbuf: appends past `max` fail with
 * FL_ETOOBIG and leave the buffer as it was. The data is always NUL-terminated. */
typedef struct fl_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
} fl_buf;

void fl_buf_init(fl_buf *b, size_t max);
void fl_buf_deinit(fl_buf *b);
void fl_buf_reset(fl_buf *b);
fl_rc fl_buf_append(fl_buf *b, const void *data, size_t len, fl_err *err);
fl_rc fl_buf_appendf(fl_buf *b, fl_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Hands the data to the caller (free()) and leaves b empty. */
char *fl_buf_steal(fl_buf *b);

/* Reads a whole file of at most `max` bytes into b (appending).
 * Errors: FL_ENOTFOUND, FL_EIO, FL_ETOOBIG. */
fl_rc fl_buf_read_file(fl_buf *b, const char *path, fl_err *err);

#endif
