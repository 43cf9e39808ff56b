/* route_drive.c - run dns_lookup_mx / dns_lookup_addr / route_resolve_route against a test DNS
 * server, for tests/outbound/test_route.py (no configuration file needed).
 * Usage: route_drive --dns IP:PORT [--listen ADDR:PORT]... [--hop SPEC]... [--port N]
 *          [--tls POLICY] [--remote-port N] [--repeat N] mx|addr|route|cancel NAME
 * SPEC: "mx", "host", "host:port", "[ip]", "[ip]:port". */
#include <event2/event.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/core.h"
#include "dns/dns.h"
#include "route/route.h"

static int outstanding;

static void mx_done(void *arg, enum dns_status st, enum dns_security sec, const struct dns_mx *mx,
                    size_t n)
{
    (void)arg;
    (void)sec;
    printf("mx %s %zu\n", dns_status_name(st), n);
    for (size_t i = 0; i < n; i++)
        printf("  %u \"%s\"\n", mx[i].pref, mx[i].host);
    outstanding--;
}

static void addr_done(void *arg, enum dns_status st, enum dns_security sec,
                      const struct sockaddr_storage *a, size_t n)
{
    (void)arg;
    (void)sec;
    printf("addr %s %zu\n", dns_status_name(st), n);
    for (size_t i = 0; i < n; i++) {
        struct next_hop h;
        hop_fill(&h, "", &a[i], 0, 0, false, TLS_NONE);
        printf("  %s\n", h.ip);
    }
    outstanding--;
}

static void route_done(void *arg, struct route_result *res)
{
    (void)arg;
    char key[512];
    route_hops_key(res, key, sizeof(key));
    route_result_print(stdout, res);
    printf("  key %s\n", key);
    route_result_free(res);
    outstanding--;
}

/* parse_hop - one hop spec of the test route */
static void parse_hop(struct route *r, const char *spec)
{
    struct hop_spec *h;
    r->hops = xreallocarray(r->hops, r->nhops + 1, sizeof(*r->hops));
    h = &r->hops[r->nhops++];
    memset(h, 0, sizeof(*h));
    if (strcmp(spec, "mx") == 0) {
        h->kind = HOP_MX;
        return;
    }
    char buf[300];
    str_copy(buf, spec, sizeof(buf));
    char *port = NULL;
    if (buf[0] == '[') {
        char *end = strchr(buf, ']');
        if (end == NULL)
            fatalx("bad hop %s", spec);
        *end = '\0';
        port = end[1] == ':' ? end + 2 : NULL;
        h->kind = HOP_IP;
        h->name = xstrdup(buf + 1);
    } else {
        port = strrchr(buf, ':');
        if (port)
            *port++ = '\0';
        h->kind = HOP_HOST;
        h->name = xstrdup(buf);
    }
    h->port = port ? (uint16_t)atoi(port) : 0;
}

static void add_listen(struct conf *c, const char *text)
{
    char buf[100];
    str_copy(buf, text, sizeof(buf));
    char *colon = strrchr(buf, ':');
    if (colon == NULL)
        fatalx("bad listen %s", text);
    *colon = '\0';
    c->listen = xreallocarray(c->listen, c->nlisten + 1, sizeof(*c->listen));
    struct listen_addr *l = &c->listen[c->nlisten++];
    memset(l, 0, sizeof(*l));
    if (!route_parse_ip(buf, &l->ss))
        fatalx("bad listen address %s", buf);
    struct next_hop tmp;
    hop_fill(&tmp, "", &l->ss, (uint16_t)atoi(colon + 1), 0, false, TLS_NONE);
    l->ss = tmp.addr;
    l->sslen = tmp.addrlen;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dns", 1, NULL, 'd' }, { "listen", 1, NULL, 'l' }, { "hop", 1, NULL, 'h' },
        { "port", 1, NULL, 'p' }, { "tls", 1, NULL, 't' }, { "remote-port", 1, NULL, 'r' },
        { "repeat", 1, NULL, 'R' }, { NULL, 0, NULL, 0 },
    };
    static const char *const policies[] = { "", "none", "may", "encrypt", "verify" };
    struct conf c;
    struct route r;
    char *servers[2] = { NULL, NULL };
    int repeat = 1, ch;
    memset(&c, 0, sizeof(c));
    memset(&r, 0, sizeof(r));
    r.pattern = "*";
    c.remote_port = 25;
    c.tls_outbound = TLS_MAY;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': servers[0] = optarg; c.dns_servers = servers; break;
        case 'l': add_listen(&c, optarg); break;
        case 'h': parse_hop(&r, optarg); break;
        case 'p': r.port = (uint16_t)atoi(optarg); break;
        case 't':
            for (size_t i = 1; i < ARRAY_LEN(policies); i++)
                if (strcmp(optarg, policies[i]) == 0)
                    r.tls = (enum tls_policy)i;
            break;
        case 'r': c.remote_port = (uint16_t)atoi(optarg); break;
        case 'R': repeat = atoi(optarg); break;
        default: return 64;
        }
    }
    if (argc - optind != 2)
        return 64;
    const char *what = argv[optind], *name = argv[optind + 1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct event_base *base = event_base_new();
    struct dns_ctx *d = dns_new(base, c.dns_servers, c.dnssec_trust_anchor);
    for (int i = 0; i < repeat; i++) {
        outstanding++;
        if (strcmp(what, "mx") == 0) {
            dns_lookup_mx(d, name, mx_done, NULL);
        } else if (strcmp(what, "addr") == 0) {
            dns_lookup_addr(d, name, addr_done, NULL);
        } else if (strcmp(what, "route") == 0) {
            route_resolve_route(d, &c, r.nhops ? &r : NULL, name, route_done, NULL);
        } else if (strcmp(what, "cancel") == 0) { /* start everything, cancel at once */
            route_cancel(route_resolve_route(d, &c, &r, name, route_done, NULL));
            dns_cancel(dns_lookup_mx(d, name, mx_done, NULL));
            dns_cancel(dns_lookup_addr(d, name, addr_done, NULL));
            outstanding--;
        } else {
            return 64;
        }
    }
    event_base_dispatch(base);
    printf("exit outstanding=%d\n", outstanding);
    dns_free(d);
    event_base_free(base);
    for (size_t i = 0; i < r.nhops; i++)
        free(r.hops[i].name);
    free(r.hops);
    free(c.listen);
    return 0;
}
