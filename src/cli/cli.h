/* cli/cli.h - the command-line tools main() dispatches to.  Each returns the process's exit
 * status.  May include every folder. */
#ifndef TANDEM_CLI_H
#define TANDEM_CLI_H

#include <stdbool.h>

struct conf;

/* `tandem queue [-c FILE] list [--count] | show [--raw] ID | deliver ID | deliver-all |
 * remove ID`: argv[0] is "queue"; conf_path is the configuration used unless -c is given. */
int cli_queue(const char *conf_path, int argc, char **argv);

/* `tandem callout-cache list | purge [DOMAIN]`. */
int cli_callout_cache(const char *conf_path, int argc, char **argv);

/* `tandem hosts list`: the health of the next hops ("host:port state next_try last_error"). */
int cli_hosts(const char *conf_path, int argc, char **argv);

/* `tandem route [-c FILE] ADDRESS...` (like exim -bt): route every address and print the
 * result; 0 if all are routable, 2 if not, 1 on a configuration error, 64 on a usage error. */
int cli_route(const char *conf_path, int argc, char **argv);

/* Started as root with `user` set: become that user for good (see doc/security.md), before
 * anything in the spool is opened or created.  A no-op otherwise; false (with a message on
 * stderr) if the user does not exist. */
bool cli_become_user(const struct conf *c);

/* `tandem session`: one SMTP session on stdin/stdout, with the daemon's code, for a client at
 * client_ip (NULL = 127.0.0.1). */
int session_stdio_run(const struct conf *c, const char *client_ip, bool no_deliver);

#endif
