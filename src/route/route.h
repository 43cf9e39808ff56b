/* route/route.h - the contract of routing: from a recipient domain to the ordered next hops.
 * May include: core, smtp, conf, dns. */
#ifndef TANDEM_ROUTE_H
#define TANDEM_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "conf/conf.h"

/* ---- route: from a recipient domain to the ordered list of next-hop addresses to try. */

struct dns_ctx;

struct next_hop {
    char name[256];             /* host name (the MX name for mx routes), or the IP literal */
    char ip[64];                /* numeric address */
    struct sockaddr_storage addr;  /* with port set */
    socklen_t addrlen;
    uint16_t port;
    unsigned pref;              /* MX preference; 0 for static hosts */
    bool is_literal;            /* given as an IP literal: TLS verify matches the IP */
    enum tls_policy tls;        /* the route's tls=, else tls_outbound */
    bool via_mx;                /* an MX host of the recipient domain (or its implicit MX) */
    bool dnssec;                /* every DNS answer that led here was DNSSEC-validated: the
                                 * MX records (mx routes) and the host's addresses */
};

enum route_status {
    ROUTE_OK,
    ROUTE_UNROUTABLE,   /* no route matches: 550 5.1.2 */
    ROUTE_NULL_MX,      /* RFC 7505: 550 5.1.10 */
    ROUTE_NO_DOMAIN,    /* NXDOMAIN for the domain (mx routes): 550 5.1.2 */
    ROUTE_TEMPFAIL,     /* DNS trouble: 451 4.4.3, never permanent */
    ROUTE_NO_HOSTS,     /* every host lookup failed permanently or pointed back at us: 4.4.4/5.4.4 */
    ROUTE_LOOKUP_DEFER, /* a lookup in a route pattern failed before a route matched: 451 4.4.3 */
};

struct route_result {
    enum route_status status;
    const struct route *route;   /* the matching route (NULL when unroutable) */
    struct next_hop *hops;       /* in the order to try */
    size_t nhops;
    char domain[256];            /* the recipient domain routed (lower case) */
    char error[256];             /* human text for logs and replies */
};

typedef void (*route_cb)(void *arg, struct route_result *res);

/* Resolve where mail for domain goes.  cb runs later from the event loop and owns res (free
 * it with route_result_free).  The returned handle can cancel the resolution. */
struct route_query;
struct route_query *route_resolve(struct dns_ctx *d, const struct conf *c, const char *domain,
                                  route_cb cb, void *arg);
/* The same for a route already chosen (r NULL: unroutable), e.g. by a caller that matched it. */
struct route_query *route_resolve_route(struct dns_ctx *d, const struct conf *c,
                                        const struct route *r, const char *domain,
                                        route_cb cb, void *arg);
void route_cancel(struct route_query *q);
void route_result_free(struct route_result *res);

/* The SMTP reply (code, enhanced code) an address gets for a failed routing status. */
void route_status_reply(enum route_status st, int *code, const char **ecode);
const char *route_status_name(enum route_status st);

/* A key that is equal for two results iff they have the same hops in the same order (used to
 * put recipients with the same next hops into one transaction).  Under tls=dane the TLS
 * requirement of a hop depends on the domain (its MX records' DNSSEC status, its MTA-STS
 * policy), so such hops also carry the domain and their DNSSEC status in the key. */
void route_hops_key(const struct route_result *res, char *buf, size_t sz);

/* ---- route_hops: the pure parts of routing: building next hops from addresses, loops to self,
 * de-duplication, keys and names.  No I/O except route_local_addrs. */

#define ROUTE_HOPS_MAX 64   /* next hops kept per result */

/* Fill h for address addr (port ignored) reached as name on port. */
void hop_fill(struct next_hop *h, const char *name, const struct sockaddr_storage *addr,
              uint16_t port, unsigned pref, bool literal, enum tls_policy tls);

/* Parse an IP literal ("192.0.2.7", "::1", optionally in brackets) into addr (port 0). */
bool route_parse_ip(const char *text, struct sockaddr_storage *addr);

/* Whether addr:port is one of tandem's own listeners: the same address and port, or a wildcard
 * listener (0.0.0.0, ::) on that port when addr is 127.0.0.1, ::1 or one of locals. */
bool route_is_self(const struct conf *c, const struct sockaddr_storage *addr, uint16_t port,
                   const struct sockaddr_storage *locals, size_t nlocals);

/* Drop hops that are ourselves and repeats of an earlier address:port; returns how many hops
 * were dropped as self (the array is compacted, *n updated). */
size_t route_filter_hops(const struct conf *c, struct next_hop *hops, size_t *n,
                         const struct sockaddr_storage *locals, size_t nlocals);

/* The policy a route gives its hops: tls=, else tls_outbound, else may. */
enum tls_policy route_tls_policy(const struct conf *c, const struct route *r);

/* The port for a hop spec: its own, else the route's port=, else remote_port (else 25). */
uint16_t route_hop_port(const struct conf *c, const struct route *r, uint16_t spec_port);

/* "ip:port", IPv6 as "[ip]:port" (the hints key of a next hop). */
void hop_addr_key(const struct next_hop *h, char *buf, size_t sz);
/* "name [ip]:port", or "[ip]:port" for an IP literal (the name sanitized), as in H= fields. */
void hop_log_text(const struct next_hop *h, char *buf, size_t sz);

/* ---- route_print: print a routing result for people (tandem route) and tests. */

/* "  status: ok, N next hops" then "  host NAME [IP] port=P pref=N tls=POLICY [literal]
 * [dnssec]" lines, or "  status: NAME (CODE ECODE text)". */
void route_result_print(FILE *f, const struct route_result *res);

#endif
