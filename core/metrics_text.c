/* core/metrics_text.c -- the Prometheus text format 0.0.4: HELP/TYPE lines, escaped
 * label values, and the series every scrape shows even before anything was recorded.
 *
 * Thread-safety: no state of its own; see core/metrics.h. */
#include <stdio.h>
#include <string.h>

#include "core/metrics_int.h"

#ifndef FLOWD_VERSION
#define FLOWD_VERSION "0.1.0"
#endif

static const char *type_name(fl_metric_type t)
{
    return t == FL_METRIC_COUNTER ? "counter" : t == FL_METRIC_GAUGE ? "gauge" : "histogram";
}

/* HELP escapes backslash and newline; label values also escape the double quote. */
static fl_rc append_escaped(fl_buf *out, const char *s, bool quote, fl_err *err)
{
    fl_rc rc = FL_OK;
    size_t run = 0;

    for (const char *p = s;; p++) {
        bool special = *p == '\\' || *p == '\n' || (quote && *p == '"');
        if (*p && !special) {
            run++;
            continue;
        }
        rc = fl_buf_append(out, p - run, run, err);
        run = 0;
        if (rc != FL_OK || !*p) {
            break;
        }
        rc = fl_buf_append(out, *p == '\n' ? "\\n" : *p == '"' ? "\\\"" : "\\\\", 2, err);
        if (rc != FL_OK) {
            break;
        }
    }
    return rc;
}

fl_rc fl_metrics__header(fl_buf *out, const fl_metric_family *f, fl_err *err)
{
    fl_rc rc = fl_buf_appendf(out, err, "# HELP %s ", f->name);

    if (rc == FL_OK) {
        rc = append_escaped(out, f->help, false, err);
    }
    if (rc == FL_OK) {
        rc = fl_buf_appendf(out, err, "\n# TYPE %s %s\n", f->name, type_name(f->type));
    }
    return rc;
}

static fl_rc append_label(fl_buf *out, bool first, const char *name, const char *value, fl_err *err)
{
    fl_rc rc = fl_buf_appendf(out, err, "%s%s=\"", first ? "" : ",", name);

    if (rc == FL_OK) {
        rc = append_escaped(out, value, true, err);
    }
    return rc == FL_OK ? fl_buf_append(out, "\"", 1, err) : rc;
}

fl_rc fl_metrics__sample(fl_buf *out, const fl_metric_family *f, const char *suffix,
                         char lv[][FL_METRIC_LABEL_MAX], const char *le, const char *value,
                         fl_err *err)
{
    size_t n = fl_metrics__nlabels(f);
    fl_rc rc = fl_buf_appendf(out, err, "%s%s", f->name, suffix);

    if (rc == FL_OK && (n || le)) {
        rc = fl_buf_append(out, "{", 1, err);
    }
    for (size_t i = 0; i < n && rc == FL_OK; i++) {
        rc = append_label(out, i == 0, f->labels[i], lv[i], err);
    }
    if (rc == FL_OK && le) {
        rc = append_label(out, n == 0, "le", le, err);
    }
    if (rc == FL_OK && (n || le)) {
        rc = fl_buf_append(out, "}", 1, err);
    }
    return rc == FL_OK ? fl_buf_appendf(out, err, " %s\n", value) : rc;
}

void fl_metrics__builtin(void)
{
#ifdef __VERSION__
    const char *compiler = __VERSION__;
#else
    const char *compiler = "unknown";
#endif

    fl_metrics_set(FL_M_BUILD_INFO, FL_LABELS(FLOWD_VERSION, compiler), 1);
    fl_metrics_gauge_add(FL_M_SSE_STREAMS, NULL, 0);
    fl_metrics_gauge_add(FL_M_OUTBOX_BACKLOG, NULL, 0);
}
