/* tests/system/store_probe.c -- drives engine/store against the real PostgreSQL for the
 * system tests (test_store.py). It prints one JSON object per line on stdout; errors are
 * {"event":"error","rc":"FL_...","error":"..."} and exit status 1.
 *
 *   store_probe DBURL start KEY EVENT_ID     start a "probe" instance for KEY
 *   store_probe DBURL step KEY EVENT_ID TYPE deliver an event to KEY's running instances
 *   store_probe DBURL stale KEY              a batch with a stale row version for KEY plus
 *                                            a new start for KEY-other: must roll back
 *   store_probe DBURL dead                   one dead letter
 *   store_probe DBURL defs                   definition save / conflict / list
 *   store_probe DBURL bench BATCH TOTAL      steps persisted per second
 *
 * Test code, not product code: printing on stdout is its purpose. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/pg.h"
#include "engine/machine.h"
#include "engine/store.h"
#include "engine/workflow.h"

static const char probe_yaml[] = "workflow: probe\n"
                                 "version: 1\n"
                                 "triggers: [probe.start]\n"
                                 "initial: waiting\n"
                                 "states:\n"
                                 "  waiting:\n"
                                 "    entry:\n"
                                 "      - reply: {content: hello}\n"
                                 "      - emit: {type: probe.started, data: {n: 1}}\n"
                                 "      - call: http\n"
                                 "        with: {method: GET, url: 'http://127.0.0.1:9/'}\n"
                                 "        into: result\n"
                                 "    transitions:\n"
                                 "      - {event: probe.go, to: done}\n"
                                 "      - {after: 1h, to: done}\n"
                                 "  done: {final: true}\n";

typedef struct probe {
    fl_pg_pool *pool;
    fl_store *st;
    fl_machine *m;
    fl_workflow *wf;
    fl_ids *ids;
} probe;

static void emit(json_t *o)
{
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

    printf("%s\n", line);
    fflush(stdout);
    free(line);
    json_decref(o);
}

static int fail(const char *what, const fl_err *err)
{
    emit(json_pack("{s:s,s:s,s:s,s:s}", "event", "error", "what", what, "rc", fl_rc_name(err->code),
                   "error", err->msg));
    return 1;
}

static const fl_workflow *resolve(void *arg, const char *tenant, const char *name, int version)
{
    const probe *p = arg;

    (void)tenant;
    return strcmp(name, p->wf->name) == 0 && version == p->wf->version ? p->wf : NULL;
}

static fl_event event_of(const char *key, const char *id, const char *type)
{
    fl_event ev = {.id = id,
                   .type = type,
                   .source = "store-probe",
                   .subject = key,
                   .tenant = "default",
                   .time = "2026-01-05T10:00:00Z",
                   .data = NULL};
    return ev;
}

/* Queues the start of one instance for key (its inbox row included). */
static fl_rc queue_start(probe *p, fl_store_batch *b, const char *key, const char *event_id,
                         char *id_out, fl_err *err)
{
    fl_event ev = event_of(key, event_id, "probe.start");
    fl_instance_init init = {id_out, key, "default"};
    fl_instance *in = NULL;
    fl_effects fx;
    fl_rc rc;
    int64_t now = fl_clock_now_ms(fl_clock_system());

    fl_effects_init(&fx);
    fl_ids_uuid7(p->ids, id_out);
    rc = fl_machine_start(p->m, p->wf, &init, &ev, now, &in, &fx, err);
    if (rc == FL_OK) {
        fl_store_step step = {&ev, p->wf, NULL, 0, in, &fx, now};
        fl_store_batch_add_event(b, &ev);
        rc = fl_store_batch_add_step(p->st, b, &step, err);
    }
    fl_instance_free(in);
    fl_effects_deinit(&fx);
    return rc;
}

/* Queues ev for every loaded instance; version_delta makes the row version stale. */
static fl_rc queue_steps(probe *p, fl_store_batch *b, const fl_store_instances *list,
                         const fl_event *ev, int version_delta, fl_err *err)
{
    fl_rc rc = FL_OK;
    int64_t now = fl_clock_now_ms(fl_clock_system());

    fl_store_batch_add_event(b, ev);
    for (size_t i = 0; i < list->count && rc == FL_OK; i++) {
        fl_instance *out = NULL;
        fl_effects fx;
        fl_effects_init(&fx);
        rc = fl_machine_step(p->m, list->items[i].wf, list->items[i].inst, ev, now, &out, &fx, err);
        if (rc == FL_OK) {
            fl_store_step step = {ev,
                                  list->items[i].wf,
                                  list->items[i].inst,
                                  list->items[i].row_version + version_delta,
                                  out,
                                  &fx,
                                  now};
            rc = fl_store_batch_add_step(p->st, b, &step, err);
        }
        fl_instance_free(out);
        fl_effects_deinit(&fx);
    }
    return rc;
}

static int cmd_start(probe *p, char **argv)
{
    fl_store_batch *b = fl_store_batch_new();
    char id[FL_UUID_STRLEN + 1];
    fl_err err = FL_ERR_INIT;
    int status = 0;

    if (queue_start(p, b, argv[0], argv[1], id, &err) != FL_OK ||
        fl_store_batch_commit(p->st, b, &err) != FL_OK) {
        status = fail("start", &err);
    } else {
        emit(json_pack("{s:s,s:s,s:s}", "event", "committed", "instance_id", id, "key", argv[0]));
    }
    fl_store_batch_free(b);
    return status;
}

/* Loads KEY's running instances and steps them with ev, unless the inbox saw ev. */
static int run_step(probe *p, const char *key, const fl_event *ev, int version_delta,
                    const char *extra_key)
{
    fl_store_key k = {"default", key};
    fl_store_event_ref ref = {ev->tenant, ev->source, ev->id};
    fl_store_resolver res = {resolve, p};
    fl_store_instances list = {0};
    fl_store_batch *b = fl_store_batch_new();
    char id[FL_UUID_STRLEN + 1];
    fl_err err = FL_ERR_INIT;
    bool seen = false;
    int status = 0;

    if (fl_store_inbox_seen(p->st, &ref, 1, &seen, &err) != FL_OK) {
        status = fail("inbox", &err);
    } else if (seen) {
        emit(json_pack("{s:s,s:s}", "event", "seen", "id", ev->id));
    } else if (fl_store_instances_load(p->st, &k, 1, &res, &list, &err) != FL_OK ||
               queue_steps(p, b, &list, ev, version_delta, &err) != FL_OK ||
               (extra_key && queue_start(p, b, extra_key, "extra-start", id, &err) != FL_OK) ||
               fl_store_batch_commit(p->st, b, &err) != FL_OK) {
        status = fail("step", &err);
    } else {
        emit(json_pack("{s:s,s:i,s:I}", "event", "committed", "instances", (int)list.count,
                       "row_version",
                       list.count ? (json_int_t)list.items[0].row_version + 1 : (json_int_t)0));
    }
    fl_store_instances_deinit(&list);
    fl_store_batch_free(b);
    return status;
}

static int cmd_step(probe *p, char **argv)
{
    fl_event ev = event_of(argv[0], argv[1], argv[2]);

    return run_step(p, argv[0], &ev, 0, NULL);
}

static int cmd_stale(probe *p, char **argv)
{
    fl_event ev = event_of(argv[0], "stale-go", "probe.go");
    char *other = fl_xasprintf("%s-other", argv[0]);
    int status = run_step(p, argv[0], &ev, -1, other);

    free(other);
    return status;
}

static int cmd_dead(probe *p, char **argv)
{
    static const unsigned char payload[] = {'{', 0x00, 0xff, 'x'};
    json_t *headers = json_pack("{s:s}", "ce_type", "broken");
    fl_store_dead_letter dl = {.tenant = "default",
                               .topic = "flowd.events",
                               .partition = 3,
                               .offset = 42,
                               .key = "dl-key",
                               .headers = headers,
                               .payload = payload,
                               .payload_len = sizeof(payload),
                               .reason = "invalid_json",
                               .detail = "unexpected byte"};
    fl_err err = FL_ERR_INIT;
    int status = 0;

    (void)argv;
    if (fl_store_dead_letter_add(p->st, &dl, &err) != FL_OK) {
        status = fail("dead", &err);
    } else {
        emit(json_pack("{s:s}", "event", "dead_letter"));
    }
    json_decref(headers);
    return status;
}

static void def_save(probe *p, const char *tenant, const char *checksum, bool shipped)
{
    fl_store_definition d = {tenant, "probe", 1, probe_yaml, checksum, shipped};
    fl_err err = FL_ERR_INIT;
    fl_rc rc = fl_store_definition_save(p->st, &d, &err);

    emit(json_pack("{s:s,s:s,s:s,s:s}", "event", "saved", "tenant", tenant, "checksum", checksum,
                   "rc", fl_rc_name(rc)));
}

static int cmd_defs(probe *p, char **argv)
{
    fl_store_definitions defs;
    fl_err err = FL_ERR_INIT;
    int status = 0;

    (void)argv;
    def_save(p, "default", "c1", false);
    def_save(p, "default", "c1", false);
    def_save(p, "default", "c2", false);
    def_save(p, "system", "s1", true);
    if (fl_store_definitions_list(p->st, "default", &defs, &err) != FL_OK) {
        status = fail("list", &err);
    }
    for (size_t i = 0; status == 0 && i < defs.count; i++) {
        emit(json_pack("{s:s,s:s,s:s,s:i,s:b}", "event", "definition", "tenant",
                       defs.items[i].tenant, "name", defs.items[i].name, "version",
                       defs.items[i].version, "shipped", defs.items[i].shipped));
    }
    fl_store_definitions_deinit(&defs);
    return status;
}

/* TOTAL instance starts (each: inbox, instance, history, transcript, emit, lifecycle,
 * timer, activity, notify) in batches of BATCH, on one connection. */
static int cmd_bench(probe *p, char **argv)
{
    long batch = strtol(argv[0], NULL, 10), total = strtol(argv[1], NULL, 10);
    fl_store_batch *b = fl_store_batch_new();
    char prefix[FL_UUID_STRLEN + 1], id[FL_UUID_STRLEN + 1], key[96], evid[96];
    fl_err err = FL_ERR_INIT;
    int64_t t0 = fl_clock_mono_ms(fl_clock_system());
    int status = 0;

    fl_ids_uuid7(p->ids, prefix);
    for (long done = 0; done < total && status == 0;) {
        for (long i = 0; i < batch && done < total && status == 0; i++, done++) {
            snprintf(key, sizeof(key), "bench-%s-%ld", prefix, done);
            snprintf(evid, sizeof(evid), "ev-%s-%ld", prefix, done);
            if (queue_start(p, b, key, evid, id, &err) != FL_OK) {
                status = fail("bench", &err);
            }
        }
        if (status == 0 && fl_store_batch_commit(p->st, b, &err) != FL_OK) {
            status = fail("bench", &err);
        }
    }
    if (status == 0) {
        double secs = (double)(fl_clock_mono_ms(fl_clock_system()) - t0) / 1000.0;
        emit(json_pack("{s:s,s:i,s:i,s:f,s:f}", "event", "bench", "batch", (int)batch, "steps",
                       (int)total, "seconds", secs, "steps_per_s", (double)total / secs));
    }
    fl_store_batch_free(b);
    return status;
}

static int probe_open(probe *p, const char *url, fl_err *err)
{
    fl_config_db db = {.url = (char *)url,
                       .pool_size = 2,
                       .connect_timeout_ms = 5000,
                       .statement_timeout_ms = 30000};
    fl_store_opts opts = FL_STORE_OPTS_INIT;
    fl_workflow_limits lim = FL_WORKFLOW_LIMITS_DEFAULT;
    fl_expr_limits xlim = FL_EXPR_LIMITS_DEFAULT;
    fl_diags diags;
    int status = 0;

    fl_diags_init(&diags, 20);
    p->ids = fl_ids_new(fl_clock_system());
    if (fl_pg_pool_open(&p->pool, &db, err) != FL_OK ||
        fl_store_open(&p->st, p->pool, &opts, err) != FL_OK ||
        fl_machine_new(&p->m, &xlim, err) != FL_OK) {
        status = fail("open", err);
    } else if (fl_workflow_parse(probe_yaml, sizeof(probe_yaml) - 1, "probe.yaml", &lim, &p->wf,
                                 &diags) != FL_OK) {
        char line[256];
        fl_diags_format(&diags, 0, line, sizeof(line));
        fl_err_set(err, FL_EINVAL, "%s", line);
        status = fail("parse", err);
    }
    fl_diags_deinit(&diags);
    return status;
}

typedef struct command {
    const char *name;
    int nargs;
    int (*fn)(probe *p, char **argv);
} command;

static const command commands[] = {
    {"start", 2, cmd_start}, {"step", 3, cmd_step}, {"stale", 1, cmd_stale},
    {"dead", 0, cmd_dead},   {"defs", 0, cmd_defs}, {"bench", 2, cmd_bench},
};

int main(int argc, char **argv)
{
    probe p = {0};
    fl_err err = FL_ERR_INIT;
    int status = 2;

    fl_log_set_level(FL_WARN);
    for (size_t i = 0; argc >= 3 && i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[2], commands[i].name) == 0 && argc - 3 == commands[i].nargs) {
            status = probe_open(&p, argv[1], &err);
            status = status ? status : commands[i].fn(&p, argv + 3);
        }
    }
    if (status == 2) {
        fprintf(stderr, "usage: store_probe DBURL start|step|stale|dead|defs|bench ARGS...\n");
    }
    fl_workflow_free(p.wf);
    fl_machine_free(p.m);
    fl_store_close(p.st);
    fl_pg_pool_close(p.pool);
    fl_ids_free(p.ids);
    return status;
}
