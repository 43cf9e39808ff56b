/* route.h - from a recipient domain to the ordered list of next-hop addresses to try. */
#ifndef TANDEM_ROUTE_H
#define TANDEM_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf.h"

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
};

enum route_status {
    ROUTE_OK,
    ROUTE_UNROUTABLE,   /* no route matches: 550 5.1.2 */
    ROUTE_NULL_MX,      /* RFC 7505: 550 5.1.10 */
    ROUTE_NO_DOMAIN,    /* NXDOMAIN for the domain (mx routes): 550 5.1.2 */
    ROUTE_TEMPFAIL,     /* DNS trouble: 451 4.4.3, never permanent */
    ROUTE_NO_HOSTS,     /* every host lookup failed permanently or pointed back at us: 4.4.4/5.4.4 */
};

struct route_result {
    enum route_status status;
    const struct route *route;   /* the matching route (NULL when unroutable) */
    struct next_hop *hops;       /* in the order to try */
    size_t nhops;
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
 * put recipients with the same next hops into one transaction). */
void route_hops_key(const struct route_result *res, char *buf, size_t sz);

#endif
