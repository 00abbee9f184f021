/* api/instances_int.h -- what the workflow, instance and dead-letter routes share
 * (api/routes_workflows*.c, api/routes_instances*.c, api/routes_dead_letters.c).
 * Private to those files (R1.1): functions are fl_inst__x (R2.1).
 *
 * Thread-safety: everything here is called on the worker thread serving the request. */
#ifndef FL_API_INSTANCES_INT_H
#define FL_API_INSTANCES_INT_H

#include <jansson.h>
#include <stdbool.h>

#include "api/request.h"
#include "engine/workflow.h"

/* A timestamptz column as RFC 3339 UTC with milliseconds, the API's one time format. */
#define FL_INST_TS(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* The instance object of an `instances` row aliased `i` (SQL, one json value):
 * {id, workflow, version, key, state, status, context, usage, created_at, updated_at}. */
#define FL_INST_SQL_OBJECT                                                                       \
    "json_build_object('id', i.id, 'workflow', i.workflow, 'version', i.version, 'key', i.key, " \
    "'state', i.state, 'status', i.status, 'context', i.context, 'usage', i.usage, "             \
    "'created_at', " FL_INST_TS("i.created_at") ", 'updated_at', " FL_INST_TS("i.updated_at") ")"

/* The definition object of a `definitions` row aliased `d`, left OPEN so that single
 * reads can append `, 'source', d.source` before the closing parenthesis:
 * {name, version, tenant, shipped, checksum, created_at}. */
#define FL_INST_DEF_OBJECT                                                                    \
    "json_build_object('name', d.name, 'version', d.version, 'tenant', d.tenant, 'shipped', " \
    "d.shipped, 'checksum', d.checksum, 'created_at', " FL_INST_TS("d.created_at")

/* A text filter from the query string: *out is NULL when absent, else buf. A value that
 * does not fit buf or is not UTF-8 answers 400 and returns false. */
bool fl_inst__query(fl_req *r, const char *name, char *buf, size_t size, const char **out);

/* True when s is a workflow name as definitions write it: [a-z][a-z0-9_.-]*, 1..128. */
bool fl_inst__name_valid(const char *s);

/* True when s is a canonical UUID text (8-4-4-4-12 hex). */
bool fl_inst__uuid_valid(const char *s);

/* The parsed definition of a stored source, for summaries and graphs; NULL when it no
 * longer parses (logged). Ownership: caller frees (fl_workflow_free). */
fl_workflow *fl_inst__parse(const char *name, const char *source);

/* The definition `tenant` sees under name (version <= 0: the latest), as the API's
 * object with its source and a summary. Answers 404 itself when there is none (and 5xx
 * on database trouble). Ownership: *out is a new reference. */
bool fl_inst__definition(fl_req *r, const char *name, int version, json_t **out);

/* The instance `id` of the caller's tenant as the API's object; answers 404 itself (also
 * for an id that is not a UUID). Ownership: *out is a new reference. */
bool fl_inst__load(fl_req *r, const char *id, json_t **out);

/* POST /api/v1/instances/{id}/signal and /cancel (api/routes_instances_cmd.c). */
int fl_inst__signal(fl_req *r);
int fl_inst__cancel(fl_req *r);

/* PUT /api/v1/workflows/{name} (api/routes_workflows_put.c). */
int fl_inst__put_workflow(fl_req *r);

#endif
