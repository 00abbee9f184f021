/* core/app.h -- ordered start and bounded, reverse-order stop of a process's modules.
 *
 * The app knows nothing of what it runs: the caller (cmd/serve.c) registers each module
 * with a start and a stop function, in start order (store -> producer -> ... -> HTTP,
 * R9.2). Start runs them in order and, on the first failure, stops those already
 * started. Stop runs in the exact reverse order, logs one `module.stopped` line per
 * module, and is bounded by shutdown_timeout_ms: past it, a watchdog logs
 * `shutdown.timeout` and exits the process with status 70 rather than hang.
 *
 * Thread-safety: use from the main thread only. */
#ifndef FL_CORE_APP_H
#define FL_CORE_APP_H

#include "core/err.h"

typedef fl_rc (*fl_app_start_fn)(void *module, fl_err *err);
typedef void (*fl_app_stop_fn)(void *module);

typedef struct fl_app fl_app;

/* Ownership: *out is owned by the caller (fl_app_free). */
void fl_app_new(fl_app **out, int shutdown_timeout_ms);
void fl_app_free(fl_app *app); /* NULL-safe; stops what is still running first */

/* Registers a module; `name` must be a static string. `module` is borrowed. */
void fl_app_add(fl_app *app, const char *name, fl_app_start_fn start, fl_app_stop_fn stop,
                void *module);

/* Starts every module in registration order. Errors: whatever the failing module says
 * (its name is prefixed to err); the modules already started are stopped again. */
fl_rc fl_app_start(fl_app *app, fl_err *err);

/* Stops the started modules in reverse order, within shutdown_timeout_ms. Idempotent. */
void fl_app_stop(fl_app *app);

#endif
