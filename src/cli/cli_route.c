/* cli_route.c - `tandem route [-c FILE] ADDRESS...`: how each address would be routed (like
 * `exim -bt`): the matching route and its line, the status, the next hops in the order they
 * would be tried, and for tls=dane hops the TLS requirement that would apply and why (DANE
 * records found, MTA-STS policy id and mode).  Exit 0 when every address is routable, 2
 * otherwise. */
#include "cli.h"

#include <event2/event.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/core.h"
#include "dns/dns.h"
#include "outbound/outbound.h"
#include "route/route.h"
#include "store/store.h"

struct cli_addr {
    const char *addr;
    struct route_result *res;
    bool bad_syntax;
    struct tlsp *tlsp;
    char **tls;                 /* per hop of res: the TLS decision, for tls=dane hops */
};

/* One TLS decision being made for a hop. */
struct cli_tls {
    struct cli_addr *a;
    size_t hop;
};

static void on_tls(void *arg, const struct tls_req *req)
{
    struct cli_tls *t = arg;
    struct sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "%s%s", req->refuse ? "defer: " : "", req->why);
    t->a->tls[t->hop] = sbuf_steal(&b);
    free(t);
}

/* decide_tls - ask for the TLS requirement of every tls=dane hop of a */
static void decide_tls(struct cli_addr *a)
{
    a->tls = xcalloc(a->res->nhops ? a->res->nhops : 1, sizeof(*a->tls));
    for (size_t i = 0; a->res->status == ROUTE_OK && i < a->res->nhops; i++) {
        if (a->res->hops[i].tls != TLS_DANE)
            continue;
        struct cli_tls *t = xcalloc(1, sizeof(*t));
        t->a = a;
        t->hop = i;
        tlsp_decide(a->tlsp, a->res->domain, &a->res->hops[i], on_tls, t);
    }
}

static void on_route(void *arg, struct route_result *res)
{
    struct cli_addr *a = arg;
    a->res = res;
    decide_tls(a);
}

/* print_tls - "  tls NAME [IP]: what applies and why" per tls=dane hop */
static void print_tls(const struct cli_addr *a)
{
    for (size_t i = 0; a->res->status == ROUTE_OK && i < a->res->nhops; i++) {
        char host[400], why[1200];
        if (a->tls[i] == NULL)
            continue;
        hop_log_text(&a->res->hops[i], host, sizeof(host));
        str_sanitize(why, sizeof(why), a->tls[i], strlen(a->tls[i]));
        printf("  tls %s: %s\n", host, why);
    }
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
    print_tls(a);
    return a->res->status == ROUTE_OK;
}

/* resolve_all - route every address at once and run the loop until all are answered */
static int resolve_all(const struct conf *c, struct cli_addr *addrs, int n)
{
    struct event_base *base = event_base_new();
    if (base == NULL)
        fatalx("cannot create an event base");
    struct dns_ctx *d = dns_new(base, c->dns_servers, c->dnssec_trust_anchor);
    char err[512];
    struct hints *h = hints_open(c->spool_directory, err, sizeof(err));   /* MTA-STS cache */
    struct tlsp *tlsp = tlsp_new(base, c, d, h);
    for (int i = 0; i < n; i++) {
        addrs[i].tlsp = tlsp;
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
        for (size_t k = 0; addrs[i].res && addrs[i].tls && k < addrs[i].res->nhops; k++)
            free(addrs[i].tls[k]);
        free(addrs[i].tls);
        route_result_free(addrs[i].res);
    }
    tlsp_free(tlsp);
    hints_close(h);
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
