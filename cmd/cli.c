/* cmd/cli.c -- argument parsing, dispatch, and the small commands (config, version). */
#include "cmd/cli.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api/server.h"
#include "core/log.h"

#ifndef FLOWD_VERSION
#define FLOWD_VERSION "0.1.0"
#endif

static const char usage[] =
    "usage: flowd [--config FILE] [--<setting>=VALUE ...] <command>\n"
    "\n"
    "commands:\n"
    "  serve                 run every role: HTTP API, engine, timers, relay, consumers\n"
    "  migrate               apply the SQL migrations compiled into this binary\n"
    "  topics ensure [--wait DURATION]\n"
    "                        wait for Kafka, create missing topics, check partition counts\n"
    "  validate FILE...      check workflow definitions (exit 1, one line per problem)\n"
    "  graph FILE [--format mermaid|dot]\n"
    "                        print a workflow's state diagram\n"
    "  config check [FILE]   validate a configuration file (exit 1 with file:line:col)\n"
    "  config dump           print the effective configuration, secrets redacted\n"
    "  config reference      print every setting as a Markdown table\n"
    "  keys create --tenant T --name N --scopes read,write\n"
    "                        create an API key; prints the key alone on stdout, once\n"
    "  keys list [--tenant T] [--format table|json]\n"
    "                        list API keys (never the key text)\n"
    "  keys revoke ID        revoke an API key\n"
    "  routes                print the HTTP routes, one \"METHOD /path\" per line\n"
    "  version               print the version\n"
    "\n"
    "The configuration file is --config, else $FLOWD_CONFIG, else var/flowd.yaml, else\n"
    "./flowd.yaml. FLOWD_<KEY> environment variables override it; flags override both.\n";

/* --name=value or --name value; returns how many argv slots were consumed, 0 on error. */
static int take_flag(fl_cli *cli, int argc, char **argv, int i, fl_err *err)
{
    const char *name = argv[i] + 2, *eq = strchr(name, '=');
    const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);

    if (!value) {
        return fl_err_set(err, FL_EINVAL, "option --%s needs a value", name), 0;
    }
    if (nlen == 6 && !strncmp(name, "config", 6)) {
        cli->config_path = value;
    } else if (nlen == 4 && !strncmp(name, "wait", 4)) {
        cli->wait = value;
    } else if (nlen == 6 && !strncmp(name, "format", 6)) {
        cli->format = value;
    } else if (cli->nflags < FL_CLI_MAX_FLAGS && nlen < 128) {
        /* the key must be NUL-terminated: keep --key=value keys in argv by splitting at '=' */
        if (eq) {
            *(char *)eq = '\0';
        }
        cli->flags[cli->nflags++] = (fl_config_flag){name, value};
    } else {
        return fl_err_set(err, FL_EINVAL, "too many options"), 0;
    }
    return eq ? 1 : 2;
}

fl_rc fl_cli_parse(fl_cli *cli, int argc, char **argv, fl_err *err)
{
    for (int i = 1; i < argc;) {
        int used = 1;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            cli->words[cli->nwords++] = "help";
        } else if (!strncmp(argv[i], "--", 2) && argv[i][2]) {
            used = take_flag(cli, argc, argv, i, err);
        } else if (cli->nwords < FL_CLI_MAX_WORDS) {
            cli->words[cli->nwords++] = argv[i];
        } else {
            return fl_err_set(err, FL_EINVAL, "too many arguments");
        }
        if (!used) {
            return FL_EINVAL;
        }
        i += used;
    }
    if (!cli->nwords) {
        return fl_err_set(err, FL_EINVAL, "no command given");
    }
    return FL_OK;
}

static bool file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

fl_rc fl_cli_load_config(const fl_cli *cli, fl_config **out, fl_err *err)
{
    const char *path = fl_config_default_path(cli->config_path, cli->envp, file_exists);
    fl_log_level level;
    fl_rc rc = fl_config_load(out, path, cli->envp, cli->flags, cli->nflags, err);

    if (rc == FL_OK && fl_log_level_parse((*out)->log.level, &level)) {
        fl_log_set_level(level);
    }
    return rc;
}

/* `config check [FILE]`: the file alone (plus defaults), so the environment of the
 * machine running the check cannot hide or cause an error. */
static int cmd_config_check(const fl_cli *cli)
{
    const char *path = cli->nwords > 2
                           ? cli->words[2]
                           : fl_config_default_path(cli->config_path, cli->envp, file_exists);
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;

    if (!path) {
        fprintf(stderr, "flowd: no configuration file to check\n");
        return FL_EXIT_USAGE;
    }
    if (fl_config_load(&cfg, path, NULL, NULL, 0, &err) != FL_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return FL_EXIT_FAIL;
    }
    fl_config_free(cfg);
    printf("%s: ok\n", path);
    return FL_EXIT_OK;
}

static int print_buf_result(fl_rc rc, fl_buf *b, const fl_err *err)
{
    if (rc == FL_OK) {
        fwrite(b->data, 1, b->len, stdout);
    } else {
        fprintf(stderr, "flowd: %s\n", err->msg);
    }
    fl_buf_deinit(b);
    return rc == FL_OK ? FL_EXIT_OK : FL_EXIT_FAIL;
}

static int cmd_config_dump(const fl_cli *cli)
{
    fl_config *cfg = NULL;
    fl_err err = FL_ERR_INIT;
    fl_buf b;
    fl_rc rc;

    fl_buf_init(&b, 1 << 20);
    rc = fl_cli_load_config(cli, &cfg, &err);
    if (rc == FL_OK) {
        rc = fl_config_dump(cfg, &b, &err);
    }
    fl_config_free(cfg);
    return print_buf_result(rc, &b, &err);
}

static int cmd_config(const fl_cli *cli)
{
    fl_buf b;
    fl_err err = FL_ERR_INIT;
    const char *sub = cli->nwords > 1 ? cli->words[1] : "";

    if (!strcmp(sub, "check")) {
        return cmd_config_check(cli);
    }
    if (!strcmp(sub, "dump")) {
        return cmd_config_dump(cli);
    }
    if (!strcmp(sub, "reference")) {
        fl_buf_init(&b, 1 << 20);
        return print_buf_result(fl_config_reference(&b, &err), &b, &err);
    }
    fprintf(stderr, "flowd: unknown config command \"%s\"\n%s", sub, usage);
    return FL_EXIT_USAGE;
}

/* `routes`: the table the server serves, for the OpenAPI consistency test. */
static int cmd_routes(const fl_cli *cli)
{
    fl_router *rt = fl_router_new();
    fl_buf b;

    (void)cli;
    fl_buf_init(&b, 1 << 20);
    fl_server_add_routes(rt);
    fl_router_list(rt, &b);
    fl_router_free(rt);
    return print_buf_result(FL_OK, &b, NULL);
}

static int cmd_help(const fl_cli *cli)
{
    (void)cli;
    fputs(usage, stdout);
    return FL_EXIT_OK;
}

static int cmd_version(const fl_cli *cli)
{
    (void)cli;
    printf("flowd %s\n", FLOWD_VERSION);
    return FL_EXIT_OK;
}

static const struct {
    const char *name;
    int (*run)(const fl_cli *cli);
} commands[] = {
    {"help", cmd_help},
    {"version", cmd_version},
    {"config", cmd_config},
    {"serve", fl_cmd_serve},
    {"migrate", fl_cmd_migrate},
    {"topics", fl_cmd_topics},
    {"validate", fl_cmd_validate},
    {"graph", fl_cmd_graph},
    {"keys", fl_cmd_keys},
    {"routes", cmd_routes},
};

int fl_cli_run(const fl_cli *cli)
{
    const char *cmd = cli->words[0];

    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (!strcmp(cmd, commands[i].name)) {
            return commands[i].run(cli);
        }
    }
    fprintf(stderr, "flowd: unknown command \"%s\"\n%s", cmd, usage);
    return FL_EXIT_USAGE;
}

void fl_cli_print_diags(fl_diags *d)
{
    char line[1024];

    fl_diags_sort(d);
    for (size_t i = 0; i < d->count; i++) {
        fl_diags_format(d, i, line, sizeof(line));
        fprintf(stderr, "%s\n", line);
    }
    if (d->dropped > 0) {
        fprintf(stderr, "flowd: %zu more problems not shown\n", d->dropped);
    }
}

void fl_cli_usage(void)
{
    fputs(usage, stderr);
}
