/* cmd/admin.c -- one-shot operator commands: `flowd migrate`, `flowd topics ensure`.
 * They log JSON lines like `serve` and exit 0 on success, 1 on failure. */
#include <string.h>

#include "cmd/cli.h"
#include "core/kafka.h"
#include "core/log.h"
#include "core/migrate.h"
#include "core/pg.h"

int fl_cmd_migrate(const fl_cli *cli)
{
    fl_config *cfg = NULL;
    fl_pg_pool *pool = NULL;
    fl_migration_list known = fl_migrate_embedded();
    fl_err err = FL_ERR_INIT;
    fl_rc rc;

    rc = fl_cli_load_config(cli, &cfg, &err);
    if (rc == FL_OK) {
        rc = fl_pg_pool_open(&pool, &cfg->db, &err);
    }
    if (rc == FL_OK) {
        rc = fl_migrate_run(pool, &known, &err);
    }
    if (rc != FL_OK) {
        fl_log(FL_ERROR, "migrate.failed", FL_STR("error", err.msg));
    }
    fl_pg_pool_close(pool);
    fl_config_free(cfg);
    return rc == FL_OK ? FL_EXIT_OK : FL_EXIT_FAIL;
}

/* --wait uses the configuration's duration syntax ("60s", "500ms"); absent = 0. */
static int wait_ms(const char *text)
{
    long long ms = 0;

    if (text && (!fl_config_parse_duration(text, &ms) || ms > 3600 * 1000LL)) {
        return -1;
    }
    return (int)ms;
}

int fl_cmd_topics(const fl_cli *cli)
{
    fl_config *cfg = NULL;
    fl_kafka_producer *p = NULL;
    fl_err err = FL_ERR_INIT;
    int wait = wait_ms(cli->wait);
    fl_rc rc;

    if (cli->nwords < 2 || strcmp(cli->words[1], "ensure") != 0 || wait < 0) {
        fl_cli_usage();
        return FL_EXIT_USAGE;
    }
    rc = fl_cli_load_config(cli, &cfg, &err);
    if (rc == FL_OK) {
        rc = fl_kafka_producer_open(&p, &cfg->kafka, &err);
    }
    if (rc == FL_OK) {
        rc = fl_kafka_topics_ensure(p, &cfg->kafka, wait, &err);
    }
    if (rc != FL_OK) {
        fl_log(FL_ERROR, "topics.failed", FL_STR("error", err.msg));
    } else {
        fl_log(FL_INFO, "topics.ready", FL_INT("partitions", cfg->kafka.topics.partitions));
    }
    fl_kafka_producer_close(p, 1000);
    fl_config_free(cfg);
    return rc == FL_OK ? FL_EXIT_OK : FL_EXIT_FAIL;
}
