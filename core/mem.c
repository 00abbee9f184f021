/* core/mem.c -- the only place that calls the C allocator directly. */
#include "core/mem.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes straight to stderr: the logger itself may need memory, and we are dying. */
static void oom(size_t n)
{
    char line[128];
    int len =
        snprintf(line, sizeof(line), "{\"level\":\"fatal\",\"event\":\"oom\",\"bytes\":%zu}\n", n);
    if (len > 0 && write(STDERR_FILENO, line, (size_t)len) < 0) {
        abort();
    }
    abort();
}

void *fl_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        oom(n);
    }
    return p;
}

void *fl_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) {
        oom(count * size);
    }
    return p;
}

void *fl_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        oom(n);
    }
    return q;
}

char *fl_xstrdup(const char *s)
{
    return fl_xstrndup(s, strlen(s));
}

char *fl_xstrndup(const char *s, size_t n)
{
    char *p = fl_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *fl_xasprintf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *p;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        oom(0);
    }
    p = fl_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void fl_buf_init(fl_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void fl_buf_deinit(fl_buf *b)
{
    free(b->data);
    fl_buf_init(b, b->max);
}

void fl_buf_reset(fl_buf *b)
{
    b->len = 0;
    if (b->data) {
        b->data[0] = '\0';
    }
}

fl_rc fl_buf_append(fl_buf *b, const void *data, size_t len, fl_err *err)
{
    size_t need;

    if (len > b->max || b->len > b->max - len) {
        return fl_err_set(err, FL_ETOOBIG, "data exceeds the limit of %zu bytes", b->max);
    }
    need = b->len + len + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need) {
            cap *= 2;
        }
        b->data = fl_xrealloc(b->data, cap);
        b->cap = cap;
    }
    if (len) {
        memcpy(b->data + b->len, data, len);
    }
    b->len += len;
    b->data[b->len] = '\0';
    return FL_OK;
}

fl_rc fl_buf_appendf(fl_buf *b, fl_err *err, const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;
    fl_rc rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return fl_err_set(err, FL_EINTERNAL, "cannot format text");
    }
    s = fl_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    rc = fl_buf_append(b, s, (size_t)n, err);
    free(s);
    return rc;
}

char *fl_buf_steal(fl_buf *b)
{
    char *p = b->data ? b->data : fl_xstrdup("");
    fl_buf_init(b, b->max);
    return p;
}

fl_rc fl_buf_read_file(fl_buf *b, const char *path, fl_err *err)
{
    char chunk[8192];
    size_t n;
    fl_rc rc = FL_OK;
    FILE *f = fopen(path, "rb");

    if (!f) {
        int e = errno;
        return fl_err_set(err, e == ENOENT ? FL_ENOTFOUND : FL_EIO,
                          "could not open file \"%s\": %s", path, strerror(e));
    }
    for (;;) {
        n = fread(chunk, 1, sizeof(chunk), f);
        if (n == 0) {
            break;
        }
        rc = fl_buf_append(b, chunk, n, err);
        if (rc != FL_OK) {
            fl_err_prefix(err, "file \"%s\"", path);
            goto out;
        }
    }
    if (ferror(f)) {
        rc = fl_err_set(err, FL_EIO, "could not read file \"%s\": %s", path, strerror(errno));
    }
out:
    fclose(f);
    return rc;
}
