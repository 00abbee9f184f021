/* core/metrics_int.h -- what the files of the metrics module share: the family table's
 * row type and the text-format helpers. Private to core/metrics*.c (R1.1).
 *
 * Thread-safety: the family table is static and read-only; the helpers keep no state. */
#ifndef FL_CORE_METRICS_INT_H
#define FL_CORE_METRICS_INT_H

#include <stddef.h>

#include "core/metrics.h"

typedef enum fl_metric_type {
    FL_METRIC_COUNTER,
    FL_METRIC_GAUGE,
    FL_METRIC_HISTOGRAM
} fl_metric_type;

/* One row of the family table (core/metrics.c). */
typedef struct fl_metric_family {
    const char *name;
    const char *help;
    fl_metric_type type;
    const char *labels[FL_METRIC_MAX_LABELS]; /* names, NULL-terminated when fewer */
    const double *buckets;                    /* histograms: upper bounds, ascending */
    size_t nbuckets;
    int max_series; /* the label-set cap */
} fl_metric_family;

const fl_metric_family *fl_metrics__family(fl_metric_id id);
size_t fl_metrics__nlabels(const fl_metric_family *f);

/* A double as the text format writes it: shortest exact form, NaN, +Inf, -Inf. */
void fl_metrics__format_double(double v, char *out, size_t size);

/* Appends "# HELP ..." and "# TYPE ..." of a family. Errors: FL_ETOOBIG. */
fl_rc fl_metrics__header(fl_buf *out, const fl_metric_family *f, fl_err *err);

/* Appends one sample line: name + suffix, the labels (escaped) plus `le` when non-NULL,
 * and the already formatted value. Errors: FL_ETOOBIG. */
fl_rc fl_metrics__sample(fl_buf *out, const fl_metric_family *f, const char *suffix,
                         char lv[][FL_METRIC_LABEL_MAX], const char *le, const char *value,
                         fl_err *err);

/* Makes the series that exist from the first scrape: build info, unlabelled gauges. */
void fl_metrics__builtin(void);

#endif
