/* core/err.h -- return codes and the caller-owned error detail.
 *
 * Every fallible function returns an fl_rc and, when the caller passes a non-NULL
 * fl_err, fills it once at the origin of the failure (R4). The fl_rc -> HTTP status
 * mapping lives only here.
 *
 * Thread-safety: all functions are reentrant; an fl_err belongs to one thread. */
#ifndef FL_CORE_ERR_H
#define FL_CORE_ERR_H

#define FL_RC_LIST(X)                             \
    X(FL_OK, "ok", 200)                           \
    X(FL_EINVAL, "invalid argument", 400)         \
    X(FL_ENOTFOUND, "not found", 404)             \
    X(FL_ECONFLICT, "conflict", 409)              \
    X(FL_ETOOBIG, "too large", 413)               \
    X(FL_EIO, "input/output error", 500)          \
    X(FL_EINTERNAL, "internal error", 500)        \
    X(FL_EUNAVAIL, "dependency unavailable", 503) \
    X(FL_ETIMEDOUT, "timed out", 504)

typedef enum fl_rc {
#define X(code, text, http) code,
    FL_RC_LIST(X)
#undef X
} fl_rc;

typedef struct fl_err {
    fl_rc code;
    char msg[256]; /* one line, PostgreSQL message style: lower case, no final period */
} fl_err;

#define FL_ERR_INIT \
    {               \
        FL_OK,      \
        {           \
            0       \
        }           \
    }

const char *fl_rc_name(fl_rc rc); /* "FL_ENOTFOUND" */
const char *fl_rc_text(fl_rc rc); /* "not found" */
int fl_rc_http_status(fl_rc rc);

/* Fills err (if non-NULL) and returns code, so callers can `return fl_err_set(...)`.
 * An error already set is not overwritten (R4.2): the origin wins. */
fl_rc fl_err_set(fl_err *err, fl_rc code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message with context: "loading \"x\": <old message>". */
void fl_err_prefix(fl_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Forgets a previous error so the struct can be reused. */
void fl_err_clear(fl_err *err);

#endif
