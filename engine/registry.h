/* engine/registry.h -- the engine's cache of parsed workflow definitions.
 *
 * Holds every definition the engine has seen, keyed by (tenant, name, version): the
 * shipped ones (workflows_dir, tenant "system", visible to every tenant) and those of
 * tenants, read back from the store when an event needs them. Lookups answer the two
 * questions of the engine loop: "which definition does this instance run on" (the
 * store's resolver) and "which workflows does event type T start for tenant X".
 * A tenant's own definition of a name hides the shipped one of the same name.
 *
 * Definitions are immutable once added and never removed, so a pointer returned by a
 * lookup stays valid until fl_registry_free.
 *
 * Thread-safety: an fl_registry belongs to one thread (the engine loop); the shipped set
 * is loaded before that thread starts. */
#ifndef FL_ENGINE_REGISTRY_H
#define FL_ENGINE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "engine/store.h"
#include "engine/workflow.h"

#define FL_REGISTRY_SYSTEM_TENANT "system"

typedef struct fl_registry fl_registry;

/* Ownership: the result is owned by the caller (fl_registry_free); lim is copied. */
fl_registry *fl_registry_new(const fl_workflow_limits *lim);
void fl_registry_free(fl_registry *r); /* NULL-safe */

/* Loads every *.yaml of dir as shipped definitions and checks them as one set
 * (fl_workflow_check_set). Every problem is logged (`registry.invalid`, one line each).
 * Errors: FL_EINVAL (at least one problem; err counts them), FL_ENOTFOUND (no such dir). */
fl_rc fl_registry_load_dir(fl_registry *r, const char *dir, fl_err *err);

/* Adds one parsed definition. Ownership: takes wf; source is copied (may be NULL).
 * A definition already present under (tenant, name, version) is kept and wf freed. */
void fl_registry_add_take(fl_registry *r, const char *tenant, bool shipped, const char *source,
                          fl_workflow *wf);

/* The definition `tenant` sees under (name, version): its own first, then the shipped
 * one. version <= 0 means the newest. NULL when none. Borrowed from r. */
const fl_workflow *fl_registry_get(const fl_registry *r, const char *tenant, const char *name,
                                   int version);

/* The workflows an event of `type` starts for `tenant`: per name the newest version
 * visible to it. Fills at most max pointers into out; returns how many exist. */
size_t fl_registry_triggered(const fl_registry *r, const char *tenant, const char *type,
                             const fl_workflow **out, size_t max);

/* The newest definition visible to tenant named `name` that has a `schedule:`, or NULL. */
const fl_workflow *fl_registry_scheduled(const fl_registry *r, const char *tenant,
                                         const char *name);

/* Rate limit of the re-reads: true (and remembers now_ms) when (tenant, type) was not
 * re-read within the last second, so a flood of unknown types reads Postgres at most
 * once per type per second. */
bool fl_registry_may_refresh(fl_registry *r, const char *tenant, const char *type, int64_t now_ms);

/* The "in effect once its PUT returned" rule (ARCHITECTURE.md section 2): the engine
 * counts each tenant's stored definitions once per batch (fl_store_definitions_count)
 * and re-reads a tenant whose count differs from the one noted when it was last read
 * (or that was never read). is_stale answers that; set_seen notes the count after a
 * successful fl_registry_refresh. */
bool fl_registry_is_stale(const fl_registry *r, const char *tenant, int64_t stored);
void fl_registry_set_seen(fl_registry *r, const char *tenant, int64_t stored);

/* Saves the shipped definitions through the store (tenant "system", shipped) and
 * upserts a schedules row for each one with a `schedule:` (next_at = now_ms + every, or
 * the next cron time; an existing row keeps its next_at). Errors: as the store's. */
fl_rc fl_registry_save_shipped(fl_registry *r, fl_store *st, int64_t now_ms, fl_err *err);

/* Re-reads the definitions visible to tenant from the store and adds the new ones. A
 * stored definition that does not parse is logged and skipped. Errors: as the store's. */
fl_rc fl_registry_refresh(fl_registry *r, fl_store *st, const char *tenant, fl_err *err);

#endif
