/* core/err.c -- the fl_rc table and error detail helpers. */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    const char *text;
    int http;
} rc_table[] = {
#define X(code, text, http) {#code, text, http},
    FL_RC_LIST(X)
#undef X
};

#define RC_COUNT (sizeof(rc_table) / sizeof(rc_table[0]))

const char *fl_rc_name(fl_rc rc)
{
    return (unsigned)rc < RC_COUNT ? rc_table[rc].name : "FL_EINTERNAL";
}

const char *fl_rc_text(fl_rc rc)
{
    return (unsigned)rc < RC_COUNT ? rc_table[rc].text : "internal error";
}

int fl_rc_http_status(fl_rc rc)
{
    return (unsigned)rc < RC_COUNT ? rc_table[rc].http : 500;
}

fl_rc fl_err_set(fl_err *err, fl_rc code, const char *fmt, ...)
{
    va_list ap;

    if (!err || err->code != FL_OK) {
        return code;
    }
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

void fl_err_prefix(fl_err *err, const char *fmt, ...)
{
    char prefix[sizeof(err->msg)];
    char old[sizeof(err->msg)];
    va_list ap;

    if (!err) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
}

void fl_err_clear(fl_err *err)
{
    if (!err) {
        return;
    }
    err->code = FL_OK;
    err->msg[0] = '\0';
}
