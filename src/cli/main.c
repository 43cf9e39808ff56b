/* main.c - the command line: serve, stop, check-config, session, version (and, as they land,
 * route, queue and callout-cache). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "conf/conf.h"
#include "core/core.h"
#include "proc/proc.h"

#define DEFAULT_CONF "etc/tandem.conf"

struct cli {
    const char *conf;
    const char *client;
    bool foreground, no_deliver;
    int argc;        /* operands after the options */
    char **argv;
};

static int usage(void)
{
    fputs("usage: tandem serve [-c FILE] [--foreground]\n"
          "       tandem stop [-c FILE]\n"
          "       tandem check-config [-c FILE]\n"
          "       tandem session [-c FILE] [--client IP] [--no-deliver]\n"
          "       tandem queue [-c FILE] list [--count] | show [--raw] ID | deliver ID |\n"
          "                    deliver-all | remove ID\n"
          "       tandem route [-c FILE] ADDRESS...\n"
          "       tandem callout-cache [-c FILE] list | purge [DOMAIN]\n"
          "       tandem version\n", stderr);
    return 64;
}

/* parse_options - the options common to the subcommands; false on an unknown option */
static bool parse_options(int argc, char **argv, struct cli *cli)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "foreground", no_argument, NULL, 'f' },
        { "client", required_argument, NULL, 'C' },
        { "no-deliver", no_argument, NULL, 'n' },
        { NULL, 0, NULL, 0 },
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': cli->conf = optarg; break;
        case 'f': cli->foreground = true; break;
        case 'C': cli->client = optarg; break;
        case 'n': cli->no_deliver = true; break;
        default: return false;
        }
    }
    cli->argc = argc - optind;
    cli->argv = argv + optind;
    return true;
}

static int cmd_check_config(const struct cli *cli)
{
    struct conf *c = conf_load_or_report(cli->conf);
    if (c == NULL)
        return 1;
    struct sbuf warnings;
    sbuf_init(&warnings);
    conf_lookups_check(c, &warnings);   /* files that would defer now: warnings, not errors */
    if (warnings.len > 0)
        fputs(warnings.s, stderr);
    sbuf_free(&warnings);
    printf("%s: configuration OK\n", cli->conf);
    conf_free(c);
    return 0;
}

static int cmd_session(const struct cli *cli)
{
    struct conf *c = conf_load_or_report(cli->conf);
    if (c == NULL)
        return 1;
    int rc = session_stdio_run(c, cli->client, cli->no_deliver);
    conf_free(c);
    return rc;
}

int main(int argc, char **argv)
{
    struct cli cli = { DEFAULT_CONF, NULL, false, false, 0, NULL };
    if (argc < 2)
        return usage();
    const char *cmd = argv[1];
    if (strcmp(cmd, "queue") == 0)   /* has options of its own (--raw, --count) */
        return cli_queue(cli.conf, argc - 1, argv + 1);
    if (!parse_options(argc - 1, argv + 1, &cli))
        return usage();
    if (strcmp(cmd, "version") == 0) {
        printf("tandem %s\n", TANDEM_VERSION);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return parent_serve(cli.conf, cli.foreground);
    if (strcmp(cmd, "stop") == 0)
        return parent_stop(cli.conf);
    if (strcmp(cmd, "check-config") == 0)
        return cmd_check_config(&cli);
    if (strcmp(cmd, "callout-cache") == 0)
        return cli_callout_cache(cli.conf, cli.argc, cli.argv);
    if (strcmp(cmd, "route") == 0)
        return cli_route(cli.conf, cli.argc, cli.argv);
    if (strcmp(cmd, "session") == 0)
        return cmd_session(&cli);
    return usage();
}
