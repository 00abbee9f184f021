/* core/log.c -- JSON-lines logger. jansson does the escaping; one write(2) per line. */
#include "core/log.h"

#include "core/clock.h"
#include "core/mem.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* The process's logger globals (R8.1): sink and level. */
static int log_fd = STDERR_FILENO;
static atomic_int log_level = FL_INFO;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

void fl_log_set_fd(int fd)
{
    log_fd = fd;
}

void fl_log_set_level(fl_log_level level)
{
    atomic_store(&log_level, (int)level);
}

fl_log_level fl_log_get_level(void)
{
    return (fl_log_level)atomic_load(&log_level);
}

bool fl_log_level_parse(const char *name, fl_log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (fl_log_level)i;
            return true;
        }
    }
    return false;
}

const char *fl_log_level_name(fl_log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : "error";
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(log_fd, p, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return; /* nowhere left to report a failing log sink */
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Log values come from anywhere (peer names, library messages): invalid UTF-8 is
 * replaced byte by byte with '?' so the line stays one valid JSON object. */
static json_t *string_value(const char *s)
{
    json_t *v = json_string(s);
    char *copy;

    if (v) {
        return v;
    }
    copy = fl_xstrdup(s);
    for (char *p = copy; *p; p++) {
        if ((unsigned char)*p >= 0x80) {
            *p = '?';
        }
    }
    v = json_string(copy);
    free(copy);
    return v;
}

void fl_log_(fl_log_level level, const char *event, const fl_kv *kv)
{
    char ts[40];
    json_t *o;
    char *line;

    if ((int)level < atomic_load(&log_level)) {
        return;
    }
    fl_clock_format_rfc3339(fl_clock_now_ms(fl_clock_system()), ts, sizeof(ts));
    o = json_object();
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(fl_log_level_name(level)));
    json_object_set_new(o, "event", json_string(event));
    for (; kv->type != FL_KV_END; kv++) {
        json_t *v = NULL;
        if (kv->type == FL_KV_STR) {
            v = kv->s ? string_value(kv->s) : json_null();
        } else if (kv->type == FL_KV_INT) {
            v = json_integer(kv->i);
        } else {
            v = json_boolean(kv->b);
        }
        json_object_set_new(o, kv->key, v);
    }
    /* ENSURE_ASCII keeps the line valid JSON even for invalid UTF-8 in values */
    line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(o);
    if (!line) {
        return;
    }
    pthread_mutex_lock(&log_mu);
    {
        size_t n = strlen(line);
        line[n] = '\n'; /* overwrite the NUL: one write for the whole line */
        write_all(line, n + 1);
        line[n] = '\0';
    }
    pthread_mutex_unlock(&log_mu);
    free(line);
}

void fl_assert_fail_(const char *cond, const char *file, int line)
{
    fl_log(FL_ERROR, "assert.failed", FL_STR("cond", cond), FL_STR("file", file),
           FL_INT("line", line));
    abort();
}
