/* tests/unit/scratch_files.h -- writing a file into a test's scratch directory. */
#ifndef FL_TESTS_SCRATCH_FILES_H
#define FL_TESTS_SCRATCH_FILES_H

#include <stdio.h>

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

#endif
