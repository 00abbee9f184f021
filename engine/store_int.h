/* engine/store_int.h -- what the three files of the store share: engine/store.c (open,
 * definitions, instance loads, inbox lookups), engine/store_batch.c (turning steps and
 * effects into queued statements) and engine/store_pipe.c (the prepared statements and
 * the pipelined transaction). Private to the module: only engine/store*.c include it
 * (R1.1); its functions are module-private, hence fl_store__ (R2.1).
 *
 * A batch is a list of queued statements (fl_store_op), each naming one of the prepared
 * statements below and owning its text parameters, so that a batch is independent of the
 * instances and effects it was built from and can be retried as is.
 *
 * Thread-safety: the session list of fl_store is guarded by mu; the rest of fl_store is
 * immutable after open. A batch belongs to one thread. */
#ifndef FL_ENGINE_STORE_INT_H
#define FL_ENGINE_STORE_INT_H

#include "engine/store.h"

#include <pthread.h>

/* The prepared statements of the hot path, in the order of their table (store_pipe.c). */
typedef enum fl_store_stmt {
    FL_STORE_INBOX,
    FL_STORE_INSTANCE_INSERT,
    FL_STORE_INSTANCE_UPDATE,
    FL_STORE_HISTORY,
    FL_STORE_MESSAGE,
    FL_STORE_OUTBOX,
    FL_STORE_TIMER_ARM,
    FL_STORE_TIMER_CANCEL,
    FL_STORE_ACTIVITY,
    FL_STORE_NOTIFY,
    FL_STORE_DEAD_LETTER,
    FL_STORE_NSTMTS
} fl_store_stmt;

#define FL_STORE_MAX_PARAMS 13 /* the transcript row (sql_message) */

typedef struct fl_store_op {
    fl_store_stmt stmt;
    int nparams;
    char *params[FL_STORE_MAX_PARAMS]; /* owned; NULL = SQL NULL */
} fl_store_op;

struct fl_store_batch {
    fl_store_op *ops;
    size_t count, cap;
    size_t nsteps;
};

/* A server session that has our statements prepared: libpq gives no per-connection
 * user data, so the store remembers (PGconn, backend pid) pairs. A stale entry only
 * costs a retry (SQLSTATE 26000 -> prepare again). */
typedef struct fl_store_session {
    const void *pg;
    int pid;
} fl_store_session;

#define FL_STORE_MAX_SESSIONS 64

struct fl_store {
    fl_pg_pool *pool; /* borrowed */
    char *source, *default_topic, *wf_topic, *dlq_topic;
    fl_store_topic_fn topic_for;
    void *topic_arg;
    int acquire_timeout_ms, timeout_ms;
    pthread_mutex_t mu;
    fl_store_session sessions[FL_STORE_MAX_SESSIONS]; /* guarded by mu */
    size_t nsessions;                                 /* guarded by mu */
    size_t next_evict;                                /* guarded by mu */
};

/* The SQL text of one hot-path statement, exactly as it is prepared (store_pipe.c), so
 * that engine/store_script.c writes out the very statements the engine runs. */
const char *fl_store__sql(fl_store_stmt stmt);

/* Queues one statement. Ownership: takes params[0 .. n) (owned strings or NULL). */
void fl_store__op_add_take(fl_store_batch *b, fl_store_stmt stmt, int n, char **params);

/* Drops the statements queued after the first `count`. */
void fl_store__truncate(fl_store_batch *b, size_t count);

/* Runs the batch's statements in one implicit transaction on one pooled connection.
 * Errors: as fl_store_batch_commit. */
fl_rc fl_store__run(fl_store *st, const fl_store_batch *b, fl_err *err);

/* The CloudEvents headers of a produced event as a JSON text. Ownership: caller frees. */
char *fl_store__headers(const fl_store *st, const char *id, const char *type, const char *subject,
                        const char *tenant, int64_t time_ms);

/* Owned copies of values as statement parameters. */
char *fl_store__str(const char *s); /* NULL stays NULL */
char *fl_store__int(long long v);
char *fl_store__json(const json_t *j); /* NULL stays NULL; compact, sorted keys */

#endif
