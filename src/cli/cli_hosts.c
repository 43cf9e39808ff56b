/* cli_hosts.c - `tandem hosts [-c FILE] list`: the health record of every next hop tandem has
 * had trouble with, shared by all its processes: "host:port state next_try last_error", state
 * `up` or `down`, next_try the time before which no process connects (`-` when up), last_error
 * the last failure not yet followed by a recovery (`-` if none). */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "core/core.h"
#include "outbound/outbound.h"
#include "store/store.h"

/* print_host - one line per host */
static void print_host(void *arg, const char *hostport, const struct host_health *h)
{
    char key[200], err[600], when[32] = "-";
    unsigned *count = arg;
    struct tm tm;
    str_sanitize(key, sizeof(key), hostport, strlen(hostport));
    str_sanitize(err, sizeof(err), h->last_error, strlen(h->last_error));
    if (h->down) {
        localtime_r(&h->next_try, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    }
    printf("%s %s %s %s\n", key, h->down ? "down" : "up", when, err[0] ? err : "-");
    (*count)++;
}

int cli_hosts(const char *conf_path, int argc, char **argv)
{
    char err[512];
    unsigned count = 0;
    if (argc != 1 || strcmp(argv[0], "list") != 0) {
        fputs("usage: tandem hosts [-c FILE] list\n", stderr);
        return 64;
    }
    struct conf *c = conf_load_or_report(conf_path);
    if (c == NULL)
        return 1;
    if (!cli_become_user(c)) {      /* root with `user` set: read the hints as that user */
        conf_free(c);
        return 1;
    }
    struct hints *h = hints_open(c->spool_directory, err, sizeof(err));
    if (h == NULL) {
        fprintf(stderr, "tandem: hosts: %s\n", err);
        conf_free(c);
        return 1;
    }
    int rc = health_each(h, print_host, &count) ? 0 : 1;
    hints_close(h);
    conf_free(c);
    return rc;
}
