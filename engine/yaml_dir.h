/* engine/yaml_dir.h -- a directory of YAML files as the loaders read it (workflow
 * definitions, agent profiles): which files, in which order, and how their problems are
 * logged.
 *
 * Thread-safety: reentrant; nothing is shared. */
#ifndef FL_ENGINE_YAML_DIR_H
#define FL_ENGINE_YAML_DIR_H

#include <stddef.h>

#include "core/diag.h"
#include "core/err.h"

/* The paths ("dir/name.yaml") of the *.yaml files of dir, hidden ones skipped, sorted so
 * problems are reported in a stable order. `what` names the directory in the error
 * ("workflows" -> cannot open workflows directory "..."). Ownership: *out and each of its
 * *n strings are the caller's (free each, then the array); NULL and 0 when there are
 * none. Errors: FL_ENOTFOUND when dir cannot be opened. */
fl_rc fl_yaml_dir_list(const char *dir, const char *what, char ***out, size_t *n, fl_err *err);

/* Logs every problem of d at FL_ERROR as event `event`, one line each. */
void fl_yaml_dir_log_problems(const fl_diags *d, const char *event);

#endif
