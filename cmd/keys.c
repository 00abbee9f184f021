/* cmd/keys.c -- `flowd keys create|list|revoke`: API keys straight in PostgreSQL (db.url),
 * so the first key (or a lost admin key) needs no running server and no other key.
 *
 * `keys create` prints the key alone on stdout, once, so scripts can capture it:
 *     KEY=$(flowd keys create --tenant acme --name ci --scopes read,write)
 * Everything else goes to stderr. Exit: 0 done, 1 failure (database), 2 bad arguments. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/keys.h"
#include "cmd/cli.h"
#include "core/migrate.h"
#include "core/pg.h"

static const char keys_usage[] =
    "usage: flowd [--config FILE] keys create --tenant TENANT --name NAME --scopes SCOPES\n"
    "       flowd [--config FILE] keys list [--tenant TENANT] [--format table|json]\n"
    "       flowd [--config FILE] keys revoke [--tenant TENANT] ID\n"
    "\n"
    "  create  creates a key and prints it alone on stdout (it is shown only this once);\n"
    "          SCOPES is a comma-separated list of read, write, admin (the strongest wins;\n"
    "          admin implies write implies read). The tenant is created with its first key.\n"
    "  list    prints every key (revoked ones too), newest first: a table, or with\n"
    "          --format json one JSON object per line; never the key text or its hash\n"
    "  revoke  revokes key ID (the fk_<ID>_... part, or the whole key); requests with it\n"
    "          get 401 within api.key_cache_ttl\n";

/* The command's own options, taken out of the flags the CLI parser collected. */
typedef struct keys_args {
    const char *tenant, *name, *scopes;
    fl_cli cli; /* the rest: configuration flags only */
} keys_args;

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("flowd: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n", stderr);
    fputs(keys_usage, stderr);
    return FL_EXIT_USAGE;
}

static void split_args(const fl_cli *cli, keys_args *a)
{
    memset(a, 0, sizeof(*a));
    a->cli = *cli;
    a->cli.nflags = 0;
    for (size_t i = 0; i < cli->nflags; i++) {
        const fl_config_flag *f = &cli->flags[i];
        if (!strcmp(f->key, "tenant")) {
            a->tenant = f->value;
        } else if (!strcmp(f->key, "name")) {
            a->name = f->value;
        } else if (!strcmp(f->key, "scopes")) {
            a->scopes = f->value;
        } else {
            a->cli.flags[a->cli.nflags++] = *f;
        }
    }
}

/* Loads the configuration and opens the pool (it connects on first use). */
static int open_db(const keys_args *a, fl_config **cfg, fl_pg_pool **pool)
{
    fl_err err = FL_ERR_INIT;

    if (fl_cli_load_config(&a->cli, cfg, &err) != FL_OK ||
        fl_pg_pool_open(pool, &(*cfg)->db, &err) != FL_OK) {
        fprintf(stderr, "flowd: %s\n", err.msg);
        return FL_EXIT_FAIL;
    }
    return FL_EXIT_OK;
}

/* A database failure, explained by the schema check when the schema is the cause. */
static int db_failure(fl_pg_pool *pool, const fl_err *err)
{
    fl_migration_list known = fl_migrate_embedded();
    fl_err why = FL_ERR_INIT;

    if (fl_migrate_check(pool, &known, 5000, &why) != FL_OK && why.msg[0]) {
        fprintf(stderr, "flowd: %s\n", why.msg);
    } else {
        fprintf(stderr, "flowd: %s\n", err->msg);
    }
    return FL_EXIT_FAIL;
}

static int keys_create(const keys_args *a, fl_pg_pool *pool)
{
    char *secret = NULL;
    json_t *row = NULL;
    fl_err err = FL_ERR_INIT;
    fl_rc rc = fl_keys_create(pool, a->tenant, a->name, a->scopes, &secret, &row, &err);
    int status = FL_EXIT_OK;

    if (rc == FL_EINVAL) {
        status = usage_error("%s", err.msg);
    } else if (rc != FL_OK) {
        status = db_failure(pool, &err);
    } else {
        printf("%s\n", secret);
        fflush(stdout);
        fprintf(stderr, "flowd: created key %s (tenant %s, scope %s); it is not shown again\n",
                json_string_value(json_object_get(row, "id")), a->tenant,
                json_string_value(json_object_get(row, "scope")));
    }
    free(secret);
    json_decref(row);
    return status;
}

static const char *text_or_dash(const json_t *row, const char *field)
{
    const char *s = json_string_value(json_object_get(row, field));

    return s ? s : "-";
}

static void print_table(const json_t *rows)
{
    size_t i;
    const json_t *row;

    printf("%-16s  %-20s  %-5s  %-24s  %-24s  %-24s  %s\n", "ID", "TENANT", "SCOPE", "CREATED",
           "LAST_USED", "REVOKED", "NAME");
    json_array_foreach(rows, i, row)
    {
        printf("%-16s  %-20s  %-5s  %-24s  %-24s  %-24s  %s\n", text_or_dash(row, "id"),
               text_or_dash(row, "tenant"), text_or_dash(row, "scope"),
               text_or_dash(row, "created_at"), text_or_dash(row, "last_used_at"),
               text_or_dash(row, "revoked_at"), text_or_dash(row, "name"));
    }
}

static int keys_list(const keys_args *a, fl_pg_pool *pool)
{
    json_t *rows = NULL;
    fl_err err = FL_ERR_INIT;
    size_t i;
    const json_t *row;

    if (fl_keys_list(pool, a->tenant, &rows, &err) != FL_OK) {
        return db_failure(pool, &err);
    }
    if (a->cli.format && !strcmp(a->cli.format, "json")) {
        json_array_foreach(rows, i, row)
        {
            char *line = json_dumps(row, JSON_COMPACT | JSON_PRESERVE_ORDER);
            printf("%s\n", line ? line : "{}");
            free(line);
        }
    } else {
        print_table(rows);
    }
    json_decref(rows);
    return FL_EXIT_OK;
}

static int keys_revoke(const keys_args *a, fl_pg_pool *pool, const char *arg)
{
    char part[17];
    const char *id = arg;
    fl_err err = FL_ERR_INIT;
    fl_rc rc;

    /* the whole key is accepted too (flowd keys revoke "$(cat var/dev-api-key)"): only its
     * id part is used, so the secret never reaches a message */
    if (!strncmp(arg, "fk_", 3) && strlen(arg) > 19 && arg[19] == '_') {
        snprintf(part, sizeof(part), "%.16s", arg + 3);
        id = part;
    }
    rc = fl_keys_revoke(pool, a->tenant, id, &err);

    if (rc == FL_ENOTFOUND) {
        fprintf(stderr, "flowd: no API key \"%s\"%s%s\n", id, a->tenant ? " in tenant " : "",
                a->tenant ? a->tenant : "");
        return FL_EXIT_FAIL;
    }
    if (rc != FL_OK) {
        return db_failure(pool, &err);
    }
    fprintf(stderr, "flowd: revoked key %s\n", id);
    return FL_EXIT_OK;
}

/* Checks the words and options of each subcommand before anything is opened. */
static int check_usage(const keys_args *a, const fl_cli *cli, const char *sub)
{
    if (!strcmp(sub, "create")) {
        if (cli->nwords != 2 || !a->tenant || !a->name || !a->scopes) {
            return usage_error("%s", "keys create needs --tenant, --name and --scopes");
        }
    } else if (!strcmp(sub, "list")) {
        if (cli->nwords != 2 || a->name || a->scopes ||
            (cli->format && strcmp(cli->format, "json") && strcmp(cli->format, "table"))) {
            return usage_error("%s", "keys list takes [--tenant TENANT] [--format table|json]");
        }
    } else if (!strcmp(sub, "revoke")) {
        if (cli->nwords != 3 || a->name || a->scopes) {
            return usage_error("%s", "keys revoke takes one key ID");
        }
    } else {
        return usage_error("unknown keys command \"%s\"", sub);
    }
    return FL_EXIT_OK;
}

int fl_cmd_keys(const fl_cli *cli)
{
    const char *sub = cli->nwords > 1 ? cli->words[1] : "";
    keys_args a;
    fl_config *cfg = NULL;
    fl_pg_pool *pool = NULL;
    int status;

    split_args(cli, &a);
    status = check_usage(&a, cli, sub);
    if (status == FL_EXIT_OK) {
        status = open_db(&a, &cfg, &pool);
    }
    if (status == FL_EXIT_OK) {
        if (!strcmp(sub, "create")) {
            status = keys_create(&a, pool);
        } else if (!strcmp(sub, "list")) {
            status = keys_list(&a, pool);
        } else {
            status = keys_revoke(&a, pool, cli->words[2]);
        }
    }
    fl_pg_pool_close(pool);
    fl_config_free(cfg);
    return status;
}
