/* cli_route.c - `tandem route [-c FILE] ADDRESS...`: how each address would be routed (like
 * `exim -bt`): the matching route and its line, the status, and the next hops in the order
 * they would be tried.  Exit 0 when every address is routable, 2 otherwise. */
#include "cli.h"

#include <event2/event.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/core.h"
#include "dns/dns.h"
#include "route/route.h"

struct cli_addr {
    const char *addr;
    struct route_result *res;
    bool bad_syntax;
};

static void on_route(void *arg, struct route_result *res)
{
    struct cli_addr *a = arg;
    a->res = res;
}

/* print_one - the block for one address; true if it is routable */
static bool print_one(const struct cli_addr *a)
{
    char addr[600];
    str_sanitize(addr, sizeof(addr), a->addr, strlen(a->addr));
    printf("%s\n", addr);
    if (a->bad_syntax) {
        printf("  status: bad address (550 5.1.3 not local@domain)\n");
        return false;
    }
    const struct route *r = a->res->route;
    if (r) {
        char pat[300];
        str_sanitize(pat, sizeof(pat), r->pattern, strlen(r->pattern));
        printf("  route: %s (line %d)\n", pat, r->line);
    } else {
        printf("  route: none\n");
    }
    route_result_print(stdout, a->res);
    return a->res->status == ROUTE_OK;
}

/* resolve_all - route every address at once and run the loop until all are answered */
static int resolve_all(const struct conf *c, struct cli_addr *addrs, int n)
{
    struct event_base *base = event_base_new();
    if (base == NULL)
        fatalx("cannot create an event base");
    struct dns_ctx *d = dns_new(base, c->dns_servers, c->dnssec_trust_anchor);
    for (int i = 0; i < n; i++) {
        const char *at = strrchr(addrs[i].addr, '@');
        if (at == NULL || at[1] == '\0' || at == addrs[i].addr) {
            addrs[i].bad_syntax = true;
            continue;
        }
        route_resolve(d, c, at + 1, on_route, &addrs[i]);
    }
    event_base_dispatch(base);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (!print_one(&addrs[i]))
            rc = 2;
        route_result_free(addrs[i].res);
    }
    dns_free(d);
    event_base_free(base);
    return rc;
}

int cli_route(const char *conf_path, int argc, char **argv)
{
    if (argc < 1) {
        fputs("usage: tandem route [-c FILE] ADDRESS...\n", stderr);
        return 64;
    }
    struct conf *c = conf_load_or_report(conf_path);
    if (c == NULL)
        return 1;
    if (!cli_become_user(c)) {     /* DNS answers are parsed without root's rights */
        conf_free(c);
        return 1;
    }
    struct cli_addr *addrs = xcalloc((size_t)argc, sizeof(*addrs));
    for (int i = 0; i < argc; i++)
        addrs[i].addr = argv[i];
    int rc = resolve_all(c, addrs, argc);
    free(addrs);
    conf_free(c);
    return rc;
}
