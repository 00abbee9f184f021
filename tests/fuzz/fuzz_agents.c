/* tests/fuzz/fuzz_agents.c -- the agent profile loader on arbitrary bytes. Any input must
 * give a profile or at least one located problem; never a crash, leak or hang. Aliases
 * are refused and depth and node count are capped, so the seeds include an alias bomb
 * and deep nesting. */
#include <stdint.h>
#include <stdlib.h>

#include "core/log.h"
#include "engine/agents.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fl_agent *a = NULL;
    fl_diags d;
    fl_rc rc;

    fl_log_set_level(FL_ERROR);
    fl_diags_init(&d, 200);
    rc = fl_agent_parse((const char *)data, size, "fuzz.yaml", &a, &d);
    if (rc == FL_OK) {
        json_t *j;
        fl_assert(a != NULL && d.count == 0);
        j = fl_agent_to_json(a, true);
        fl_assert(j != NULL);
        json_decref(j);
        fl_agents_check_set(&a, 1, true, "fuzz", &d); /* a set of one: the set checks too */
    } else {
        fl_assert(a == NULL && d.count + d.dropped > 0); /* every failure explains itself */
    }
    fl_agent_free(a);
    fl_diags_deinit(&d);
    return 0;
}
