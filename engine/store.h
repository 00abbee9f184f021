/* engine/store.h -- the engine's persistence in PostgreSQL: definitions, instances and
 * the one-transaction-per-batch write of everything a step produced.
 *
 * The hot path is a batch (fl_store_batch): the engine adds, for each event it processed,
 * the event's inbox row and every instance step it caused; fl_store_batch_commit writes
 * them in ONE transaction -- inbox, instance rows (row-version checked), history,
 * transcript, outbox (EMIT + lifecycle events), timers, activities, and one
 * `NOTIFY flowd_changes` per step -- sent with libpq pipeline mode and prepared
 * statements, so a batch of N steps costs one round trip plus one commit. Any failure
 * (stale row version, second running instance for a trigger, event already in the
 * inbox, server error) rolls the WHOLE batch back; nothing is ever half written.
 *
 * Outbox rows carry CloudEvents binary-mode headers (ce_id, ce_source, ce_type,
 * ce_specversion, ce_time, ce_subject, ce_tenant, content-type) as a JSON object, so the
 * relay copies them to Kafka verbatim. Ids of produced events are deterministic
 * (`emit:<instance>/<seq>/<effect index>`, `lifecycle:<instance>/<seq>`), so a replayed
 * step produces the same ids.
 *
 * Errors of every call: FL_EUNAVAIL when PostgreSQL is down or the connection broke,
 * FL_ECONFLICT on row-version, unique or definition conflicts, FL_ETIMEDOUT when no
 * pooled connection frees up, FL_EIO otherwise. Messages never carry parameter values
 * (they may be user data).
 *
 * Thread-safety: an fl_store is shared by all threads; each call borrows one pooled
 * connection for its duration. An fl_store_batch belongs to one thread at a time. */
#ifndef FL_ENGINE_STORE_H
#define FL_ENGINE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/pg.h"
#include "engine/machine.h"
#include "engine/workflow.h"

typedef struct fl_store fl_store;             /* opaque */
typedef struct fl_store_batch fl_store_batch; /* opaque: the writes of one transaction */

/* Maps an emitted event's type to its topic when the emit names none; returns NULL for
 * "no rule" (then opts.default_topic). Called on the thread that adds the step. */
typedef const char *(*fl_store_topic_fn)(void *arg, const char *tenant, const char *type);

typedef struct fl_store_opts {
    const char *source;                /* ce_source of produced events ("flowd") */
    const char *default_topic;         /* emits without topic and rule ("flowd.events") */
    const char *workflow_events_topic; /* lifecycle events ("workflow.events") */
    const char *dead_letter_topic;     /* "dead.letter.queue" */
    fl_store_topic_fn topic_for;       /* may be NULL */
    void *topic_arg;
    int acquire_timeout_ms; /* waiting for a pooled connection */
    int timeout_ms;         /* bound of one call's I/O; <= 0: none */
} fl_store_opts;

#define FL_STORE_OPTS_INIT \
    {"flowd", "flowd.events", "workflow.events", "dead.letter.queue", NULL, NULL, 5000, 30000}

/* Ownership: *out is owned by the caller (fl_store_close); pool is borrowed and must
 * outlive the store; opts' strings are copied. Errors: FL_EINVAL (a topic is empty). */
fl_rc fl_store_open(fl_store **out, fl_pg_pool *pool, const fl_store_opts *opts, fl_err *err);
void fl_store_close(fl_store *st); /* NULL-safe */

/* ---- definitions --------------------------------------------------------------------- */

typedef struct fl_store_definition {
    const char *tenant;
    const char *name;
    int version;
    const char *source;   /* the YAML text */
    const char *checksum; /* sha256 of source, hex */
    bool shipped;         /* visible to every tenant */
} fl_store_definition;

typedef struct fl_store_definitions {
    fl_store_definition *items; /* strings borrowed from the list itself */
    size_t count;
    fl_pg_rows *rows; /* owns the strings */
} fl_store_definitions;

/* Saves one definition idempotently: the same checksum again is a no-op. A NULL
 * checksum is computed by the server (sha256 of source). Ownership: borrows def. Errors: FL_ECONFLICT ((tenant, name, version) exists with
 * another checksum), FL_EIO (e.g. unknown tenant), FL_EUNAVAIL. */
fl_rc fl_store_definition_save(fl_store *st, const fl_store_definition *def, fl_err *err);

/* The definitions visible to tenant: its own plus the shipped ones, by name, version.
 * Ownership: *out is owned by the caller (fl_store_definitions_deinit), also on failure.
 * Errors: FL_EUNAVAIL, FL_EIO. */
fl_rc fl_store_definitions_list(fl_store *st, const char *tenant, fl_store_definitions *out,
                                fl_err *err);
void fl_store_definitions_deinit(fl_store_definitions *defs);

/* How many definitions each of tenants[0..n) has stored (shipped ones are stored under
 * the system tenant): definitions are only ever added, so a count that moved means new
 * ones to read (the engine's "in effect once its PUT returned" check, one query a batch).
 * Ownership: counts_out has n elements, owned by the caller. Errors: FL_EUNAVAIL, FL_EIO. */
fl_rc fl_store_definitions_count(fl_store *st, const char *const *tenants, size_t n,
                                 int64_t *counts_out, fl_err *err);

/* One `schedule:` of a definition: cron XOR every_ms. */
typedef struct fl_store_schedule {
    const char *tenant;
    const char *workflow;
    const char *cron; /* NULL for an interval */
    int64_t every_ms;
    int64_t next_at_ms; /* used only when the row is new */
} fl_store_schedule;

/* Upserts the schedules row of (tenant, workflow): a new row gets next_at_ms, an
 * existing one keeps its next_at and takes the new spec. Errors: FL_EUNAVAIL, FL_EIO. */
fl_rc fl_store_schedule_save(fl_store *st, const fl_store_schedule *s, fl_err *err);

/* ---- instances ----------------------------------------------------------------------- */

/* Finds the definition an instance runs on; NULL when unknown. The engine's registry
 * (cache of parsed definitions) implements it. The result is borrowed for as long as
 * the loaded instances are used. */
typedef const fl_workflow *(*fl_store_workflow_fn)(void *arg, const char *tenant, const char *name,
                                                   int version);

typedef struct fl_store_resolver {
    fl_store_workflow_fn fn;
    void *arg;
} fl_store_resolver;

typedef struct fl_store_key {
    const char *tenant;
    const char *key;
} fl_store_key;

typedef struct fl_store_loaded {
    fl_instance *inst;     /* owned by the list */
    const fl_workflow *wf; /* borrowed from the resolver */
    int64_t row_version;   /* pass back in fl_store_step.row_version */
    size_t key_index;      /* which of the requested keys it has */
} fl_store_loaded;

typedef struct fl_store_instances {
    fl_store_loaded *items;
    size_t count;
} fl_store_instances;

/* Loads the RUNNING instances of every (tenant, key) in keys, in one query, ordered by
 * key then creation. Ownership: *out is owned by the caller (fl_store_instances_deinit),
 * also on failure. Errors: FL_ENOTFOUND (an instance runs on a definition the resolver
 * does not know: re-read definitions), FL_EIO (a row does not fit its definition),
 * FL_EUNAVAIL. */
fl_rc fl_store_instances_load(fl_store *st, const fl_store_key *keys, size_t nkeys,
                              const fl_store_resolver *res, fl_store_instances *out, fl_err *err);
void fl_store_instances_deinit(fl_store_instances *list);

/* ---- inbox --------------------------------------------------------------------------- */

typedef struct fl_store_event_ref {
    const char *tenant;
    const char *source;
    const char *id;
} fl_store_event_ref;

/* Which events were already applied: seen_out[i] for refs[i], in one query. Call it
 * before stepping a batch. Ownership: seen_out has n elements, owned by the caller.
 * Errors: FL_EUNAVAIL, FL_EIO. */
fl_rc fl_store_inbox_seen(fl_store *st, const fl_store_event_ref *refs, size_t n, bool *seen_out,
                          fl_err *err);

/* fl_store_inbox_seen and fl_store_definitions_count in one query (one round trip): the
 * engine asks both before every batch. A ref with a NULL id is never seen. */
typedef struct fl_store_batch_lookup {
    const fl_store_event_ref *refs;
    size_t nrefs;
    bool *seen_out; /* nrefs elements, owned by the caller */
    const char *const *tenants;
    size_t ntenants;
    int64_t *counts_out; /* ntenants elements, owned by the caller */
} fl_store_batch_lookup;

/* Errors: FL_EUNAVAIL, FL_EIO. */
fl_rc fl_store_lookup(fl_store *st, const fl_store_batch_lookup *q, fl_err *err);

/* ---- the batch ----------------------------------------------------------------------- */

/* One instance's step. before == NULL for an instance the step created (INSERT, row
 * version 1); otherwise an UPDATE guarded by row_version, after which the row version
 * is row_version + 1. A step without a HISTORY effect (unhandled) writes no instance row. */
typedef struct fl_store_step {
    const fl_event *event;     /* the event stepped (tenant, id, type) */
    const fl_workflow *wf;     /* the definition of `after` */
    const fl_instance *before; /* NULL for a new instance */
    int64_t row_version;       /* the version `before` was loaded with */
    const fl_instance *after;  /* the instance after the step */
    const fl_effects *effects; /* what the step produced */
    int64_t now_ms;            /* the step's `now`: ce_time of the events it produced */
} fl_store_step;

/* One transcript row for what the engine itself records (a user's message). */
typedef struct fl_store_message {
    const char *tenant;
    const char *conversation;
    const char *role; /* user | assistant | system */
    const char *content;
    const char *agent, *provider, *model; /* may be NULL */
    const json_t *usage;                  /* {tokens_in, tokens_out, cost, latency_ms, ...}? */
    const char *message_id;               /* the API's id of a user's message, or NULL */
} fl_store_message;

/* One outbox row the engine adds directly (children on another key, commands). */
typedef struct fl_store_outbox {
    const char *id; /* CloudEvent id */
    const char *tenant;
    const char *topic;
    const char *subject; /* Kafka key */
    const char *type;
    const json_t *data; /* may be NULL */
} fl_store_outbox;

/* One record that cannot be processed (ARCHITECTURE.md section 10). */
typedef struct fl_store_dead_letter {
    const char *tenant;
    const char *topic;
    int partition;         /* < 0: unknown */
    int64_t offset;        /* < 0: unknown */
    const char *key;       /* may be NULL */
    const json_t *headers; /* {name: value}; may be NULL */
    const void *payload;
    size_t payload_len;
    const char *reason; /* stable word: a cloudevent.h reason name (not_json, no_subject,
                         * too_large, ...), or step_failed / store_failed */
    const char *detail; /* may be NULL */
} fl_store_dead_letter;

/* Ownership: owned by the caller (fl_store_batch_free). Reuse it with _clear. */
fl_store_batch *fl_store_batch_new(void);
void fl_store_batch_free(fl_store_batch *b); /* NULL-safe */
void fl_store_batch_clear(fl_store_batch *b);
size_t fl_store_batch_steps(const fl_store_batch *b); /* instance steps added */

/* Queues the inbox row of one processed event (once per event, however many instances
 * it touched, also when it touched none). Ownership: copies what it needs. */
void fl_store_batch_add_event(fl_store_batch *b, const fl_event *ev);

/* Queues everything one step wrote. Ownership: copies what it needs; step is borrowed
 * for the call only. Errors: FL_EINVAL (an effect's data lacks a field it must have). */
fl_rc fl_store_batch_add_step(fl_store *st, fl_store_batch *b, const fl_store_step *step,
                              fl_err *err);

void fl_store_batch_add_message(fl_store_batch *b, const fl_store_message *m);
void fl_store_batch_add_outbox(fl_store *st, fl_store_batch *b, const fl_store_outbox *o);
/* The dead_letters row and its outbox row to the dead-letter topic, in the batch. */
void fl_store_batch_add_dead_letter(fl_store *st, fl_store_batch *b,
                                    const fl_store_dead_letter *dl);

/* Writes the batch in one transaction (BEGIN .. COMMIT in one pipeline) and clears it
 * on success. Nothing is written unless every statement succeeded.
 * Ownership: borrows b; on failure b keeps its rows (retry, or _clear).
 * Errors: FL_ECONFLICT (stale row version, a second running instance of a workflow for
 * a key, an event already in the inbox), FL_EUNAVAIL, FL_ETIMEDOUT, FL_EIO. */
fl_rc fl_store_batch_commit(fl_store *st, fl_store_batch *b, fl_err *err);

/* A dead letter alone: the row and its outbox row in one transaction.
 * Errors: FL_EUNAVAIL, FL_EIO. */
fl_rc fl_store_dead_letter_add(fl_store *st, const fl_store_dead_letter *dl, fl_err *err);

/* ---- the benchmark's yardstick (engine/store_script.c) -------------------------------- */

/* A linear workflow as the engine writes it: an instance starts in s1 on start_type and
 * each next_type event moves it on (s1 -> s2 -> ... -> final state "done"), so it makes
 * `steps` transitions. */
typedef struct fl_store_script_opts {
    int batch_size;         /* transitions per transaction: engine.batch_size */
    int steps;              /* transitions per instance, 2 .. 64 */
    const char *tenant;     /* of the events and instances */
    const char *workflow;   /* the definition's name (version 1) */
    const char *source;     /* ce_source of the events: the inbox rows */
    const char *topic;      /* the workflow-events topic: the lifecycle outbox rows */
    const char *start_type; /* the event type that starts an instance */
    const char *next_type;  /* the event type of every later step */
} fl_store_script_opts;

/* Formats a pgbench script (run with -M prepared) whose every transaction is ONE pipeline
 * of the statements the engine's batch sends for batch_size / steps instances of the
 * workflow above, each through all its steps: the same SQL text (store_pipe.c), the same
 * order and parameter sizes. It is the baseline of the engine benchmark (issue 8, S2), so
 * a change to the engine's SQL changes its yardstick too.
 * Ownership: *out is owned by the caller (free()). Errors: FL_EINVAL (a bound or a name
 * outside [A-Za-z0-9_.-]). */
fl_rc fl_store_script_format(const fl_store_script_opts *opts, char **out, fl_err *err);

#endif
