/* tests/fuzz/fuzz_workflow.c -- the workflow loader and validator on arbitrary bytes.
 * Any input must give a model or at least one located problem; never a crash, leak or
 * hang. The caps (size, depth, nodes with aliases expanded) are what keep alias bombs
 * and deep nesting cheap, so the seeds include both. */
#include <stdint.h>
#include <stdlib.h>

#include "core/log.h"
#include "engine/workflow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fl_workflow_limits lim = FL_WORKFLOW_LIMITS_DEFAULT;
    fl_workflow *wf = NULL;
    fl_diags d;
    fl_rc rc;

    fl_log_set_level(FL_ERROR);
    fl_diags_init(&d, 200);
    rc = fl_workflow_parse((const char *)data, size, "fuzz.yaml", &lim, &wf, &d);
    if (rc == FL_OK) {
        fl_assert(wf != NULL && d.count == 0);
        /* a set of one, so the cross-file checks run too */
        fl_workflow_check_set(&wf, 1, &d);
    } else {
        fl_assert(wf == NULL && d.count + d.dropped > 0); /* every failure explains itself */
    }
    fl_workflow_free(wf);
    fl_diags_deinit(&d);
    return 0;
}
