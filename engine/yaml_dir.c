/* engine/yaml_dir.c -- a directory of YAML files (see engine/yaml_dir.h).
 *
 * Thread-safety: reentrant. */
#include "engine/yaml_dir.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

fl_rc fl_yaml_dir_list(const char *dir, const char *what, char ***out, size_t *n, fl_err *err)
{
    DIR *d = opendir(dir);
    size_t cap = 0;

    *out = NULL;
    *n = 0;
    if (!d) {
        return fl_err_set(err, FL_ENOTFOUND, "cannot open %s directory \"%s\"", what, dir);
    }
    for (struct dirent *de = readdir(d); de; de = readdir(d)) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".yaml") != 0 || de->d_name[0] == '.') {
            continue;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            *out = fl_xrealloc(*out, cap * sizeof(**out));
        }
        (*out)[(*n)++] = fl_xasprintf("%s/%s", dir, de->d_name);
    }
    closedir(d);
    if (*n) {
        qsort(*out, *n, sizeof(**out), cmp_str);
    }
    return FL_OK;
}

void fl_yaml_dir_log_problems(const fl_diags *d, const char *event)
{
    char line[512];

    for (size_t i = 0; i < d->count; i++) {
        fl_diags_format(d, i, line, sizeof(line));
        fl_log(FL_ERROR, event, FL_STR("problem", line));
    }
}
