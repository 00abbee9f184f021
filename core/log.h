/* core/log.h -- structured logs: one JSON object per line on stderr (R6).
 *
 *   fl_log(FL_INFO, "instance.started", FL_STR("instance_id", id), FL_INT("seq", 3));
 *   -> {"ts":"2026-01-05T10:00:00.123Z","level":"info","event":"instance.started",...}
 *
 * Thread-safety: fl_log is thread-safe (one write(2) per line under a mutex). The sink
 * and level are the process's only mutable globals (R8.1): set them in main before any
 * thread starts; the level may change later (atomic). */
#ifndef FL_CORE_LOG_H
#define FL_CORE_LOG_H

#include <stdbool.h>

typedef enum fl_log_level { FL_DEBUG, FL_INFO, FL_WARN, FL_ERROR } fl_log_level;

typedef struct fl_kv {
    const char *key;
    enum { FL_KV_END, FL_KV_STR, FL_KV_INT, FL_KV_BOOL } type;
    union {
        const char *s;
        long long i;
        bool b;
    };
} fl_kv;

#define FL_STR(k, x)  ((fl_kv){.key = (k), .type = FL_KV_STR, .s = (x)})
#define FL_INT(k, x)  ((fl_kv){.key = (k), .type = FL_KV_INT, .i = (x)})
#define FL_BOOL(k, x) ((fl_kv){.key = (k), .type = FL_KV_BOOL, .b = (x)})
#define FL_END        ((fl_kv){.key = NULL, .type = FL_KV_END})

void fl_log_(fl_log_level level, const char *event, const fl_kv *kv);
/* fl_log(level, event, kv...): FL_END is appended so that a call with no kv works in
 * plain C11 (no __VA_OPT__). */
#define fl_log(level, ...)            fl_log_kv_((level), __VA_ARGS__, FL_END)
#define fl_log_kv_(level, event, ...) fl_log_((level), (event), (const fl_kv[]){__VA_ARGS__})

/* The sink defaults to stderr (fd 2); tests point it at a pipe. */
void fl_log_set_fd(int fd);
void fl_log_set_level(fl_log_level level);
fl_log_level fl_log_get_level(void);

/* "debug" | "info" | "warn" | "error" -> level; false when the name is unknown. */
bool fl_log_level_parse(const char *name, fl_log_level *out);
const char *fl_log_level_name(fl_log_level level);

/* Always compiled in; for programmer errors only, never for input (R4.5). */
#define fl_assert(cond) ((cond) ? (void)0 : fl_assert_fail_(#cond, __FILE__, __LINE__))
_Noreturn void fl_assert_fail_(const char *cond, const char *file, int line);

#endif
