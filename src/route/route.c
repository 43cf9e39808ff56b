/* route.c - resolve a recipient domain to its next hops: the first matching route, its static
 * hosts and/or the domain's MX hosts, every address of every host, in the order to try. */
#include "route.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "dns/dns.h"

/* One host whose addresses are looked up: a static host, or one MX host. */
struct route_slot {
    struct route_query *q;
    char name[256];
    uint16_t port;
    unsigned pref;
    bool literal;
    struct dns_query *dq;
    enum dns_status st;
    enum dns_security sec;
    struct sockaddr_storage addrs[2 * DNS_ADDR_MAX];
    size_t naddrs;
};

/* One next-hop spec of the route: a host, an IP literal, or `mx` (many slots). */
struct route_group {
    enum hop_kind kind;
    enum dns_status mx_st;      /* mx: the MX lookup's status */
    enum dns_security mx_sec;   /* mx: the MX lookup's DNSSEC status */
    bool null_mx;
    struct route_slot *slots;
    size_t nslots;
};

struct route_query {
    struct dns_ctx *d;
    const struct conf *c;
    const struct route *r;
    char domain[256];
    route_cb cb;
    void *arg;
    struct route_group *groups;
    size_t ngroups, npending;
    struct dns_query *mxq;
    struct route_group *mxg;
    struct event *done_ev;
    struct route_result *res;
};

static void finish(struct route_query *q);

/* query_step_done - one lookup fewer outstanding; assemble when none is left */
static void query_step_done(struct route_query *q)
{
    if (--q->npending == 0)
        finish(q);
}

static void slot_answer(void *arg, enum dns_status st, enum dns_security sec,
                        const struct sockaddr_storage *addrs, size_t n)
{
    struct route_slot *s = arg;
    s->dq = NULL;
    s->st = st;
    s->sec = sec;
    s->naddrs = n < ARRAY_LEN(s->addrs) ? n : ARRAY_LEN(s->addrs);
    if (s->naddrs)
        memcpy(s->addrs, addrs, s->naddrs * sizeof(*addrs));
    query_step_done(s->q);
}

static void slot_start(struct route_query *q, struct route_slot *s)
{
    s->q = q;
    q->npending++;
    s->dq = dns_lookup_addr(q->d, s->name, slot_answer, s);
}

/* mx_slots - the MX hosts, ordered, each a slot to look up; NODATA: the domain itself */
static void mx_slots(struct route_query *q, struct route_group *g, const struct dns_mx *mx, size_t n)
{
    struct dns_mx list[DNS_MX_MAX];
    size_t k = 0;
    for (size_t i = 0; i < n && k < DNS_MX_MAX; i++)
        if (mx[i].host[0] != '\0')
            list[k++] = mx[i];
    if (n == 0) { /* implicit MX (RFC 5321 5.1) */
        str_copy(list[0].host, q->domain, sizeof(list[0].host));
        list[0].pref = 0;
        k = 1;
    }
    dns_mx_order(list, k, NULL);
    g->slots = xcalloc(k, sizeof(*g->slots));
    g->nslots = k;
    for (size_t i = 0; i < k; i++) {
        str_copy(g->slots[i].name, list[i].host, sizeof(g->slots[i].name));
        g->slots[i].pref = list[i].pref;
        g->slots[i].port = route_hop_port(q->c, q->r, 0);
        g->slots[i].st = DNS_TEMPFAIL;
    }
    for (size_t i = 0; i < k; i++)
        slot_start(q, &g->slots[i]);
}

static void mx_answer(void *arg, enum dns_status st, enum dns_security sec,
                      const struct dns_mx *mx, size_t n)
{
    struct route_query *q = arg;
    struct route_group *g = q->mxg;
    q->mxq = NULL;
    g->mx_st = st;
    g->mx_sec = sec;
    size_t named = 0;
    for (size_t i = 0; st == DNS_OK && i < n; i++)
        named += mx[i].host[0] != '\0';
    if (st == DNS_OK && named == 0)
        g->null_mx = true; /* RFC 7505: the MX is "." */
    else if (st == DNS_OK || st == DNS_NODATA)
        mx_slots(q, g, mx, st == DNS_OK ? n : 0);
    query_step_done(q);
}

/* group_start - begin resolving one next-hop spec */
static void group_start(struct route_query *q, struct route_group *g, const struct hop_spec *hs)
{
    g->kind = hs->kind;
    if (hs->kind == HOP_MX) {
        if (q->mxq != NULL)
            return; /* `mx` twice in one route: once is enough */
        q->mxg = g;
        q->npending++;
        q->mxq = dns_lookup_mx(q->d, q->domain, mx_answer, q);
        return;
    }
    g->slots = xcalloc(1, sizeof(*g->slots));
    g->nslots = 1;
    struct route_slot *s = &g->slots[0];
    str_copy(s->name, hs->name ? hs->name : "", sizeof(s->name));
    s->port = route_hop_port(q->c, q->r, hs->port);
    s->literal = hs->kind == HOP_IP;
    s->st = DNS_TEMPFAIL;
    slot_start(q, s);
}

/* result_new - an empty result with status and text */
static struct route_result *result_new(struct route_query *q, enum route_status st, const char *why)
{
    struct route_result *res = xcalloc(1, sizeof(*res));
    res->status = st;
    res->route = q->r;
    str_copy(res->domain, q->domain, sizeof(res->domain));
    str_copy(res->error, why, sizeof(res->error));
    return res;
}

/* self_pref - the lowest preference at which an MX host is ourselves (RFC 5321 5.1: hosts at
 * that preference and above are not tried); UINT_MAX if none is */
static unsigned self_pref(struct route_query *q, const struct route_group *g,
                          const struct sockaddr_storage *locals, size_t nlocals)
{
    unsigned pref = ~0u;
    for (size_t i = 0; g->kind == HOP_MX && i < g->nslots; i++)
        for (size_t j = 0; j < g->slots[i].naddrs; j++)
            if (route_is_self(q->c, &g->slots[i].addrs[j], g->slots[i].port, locals, nlocals) &&
                g->slots[i].pref < pref)
                pref = g->slots[i].pref;
    return pref;
}

/* collect - every address of every slot, in order; counts what was left out as self */
static size_t collect(struct route_query *q, struct next_hop *hops, size_t *self_dropped,
                      const struct sockaddr_storage *locals, size_t nlocals)
{
    size_t n = 0;
    enum tls_policy tls = route_tls_policy(q->c, q->r);
    for (size_t gi = 0; gi < q->ngroups; gi++) {
        struct route_group *g = &q->groups[gi];
        unsigned limit = self_pref(q, g, locals, nlocals);
        for (size_t i = 0; i < g->nslots; i++) {
            struct route_slot *s = &g->slots[i];
            if (g->kind == HOP_MX && s->pref >= limit) {
                *self_dropped += s->naddrs;
                continue;
            }
            bool mx = g->kind == HOP_MX;
            bool dnssec = !s->literal && s->sec == DNS_SECURE && (!mx || g->mx_sec == DNS_SECURE);
            for (size_t j = 0; j < s->naddrs && n < ROUTE_HOPS_MAX; j++) {
                hop_fill(&hops[n], s->name, &s->addrs[j], s->port, s->pref, s->literal, tls);
                hops[n].via_mx = mx;
                hops[n++].dnssec = dnssec;
            }
        }
    }
    return n;
}

/* failure - why no hop is left, from the most specific cause */
static struct route_result *failure(struct route_query *q, size_t self_dropped)
{
    char why[256];
    bool tempfail = false, nodomain = false, nullmx = false;
    const char *bad = NULL;
    for (size_t gi = 0; gi < q->ngroups; gi++) {
        const struct route_group *g = &q->groups[gi];
        nullmx |= g->null_mx;
        nodomain |= g->kind == HOP_MX && g->mx_st == DNS_NXDOMAIN;
        tempfail |= g->kind == HOP_MX && g->mx_st == DNS_TEMPFAIL;
        for (size_t i = 0; i < g->nslots; i++) {
            tempfail |= g->slots[i].st == DNS_TEMPFAIL;
            if (g->slots[i].st != DNS_OK && bad == NULL)
                bad = g->slots[i].name;
        }
    }
    if (nullmx) {
        str_fmt(why, sizeof(why), "domain %s has a null MX: it accepts no mail", q->domain);
        return result_new(q, ROUTE_NULL_MX, why);
    }
    if (nodomain) {
        str_fmt(why, sizeof(why), "domain %s does not exist", q->domain);
        return result_new(q, ROUTE_NO_DOMAIN, why);
    }
    if (tempfail) {
        str_fmt(why, sizeof(why), "DNS lookup for %s gave a temporary error", bad ? bad : q->domain);
        return result_new(q, ROUTE_TEMPFAIL, why);
    }
    if (self_dropped)
        return result_new(q, ROUTE_NO_HOSTS, "all hosts are this machine (mail loop)");
    str_fmt(why, sizeof(why), "no address found for %s", bad ? bad : q->domain);
    return result_new(q, ROUTE_NO_HOSTS, why);
}

/* finish - turn the lookups into a result, and report it from the loop */
static void finish(struct route_query *q)
{
    const struct sockaddr_storage *locals;
    size_t nlocals = dns_local_addrs(q->d, &locals);
    struct next_hop *hops = xcalloc(ROUTE_HOPS_MAX, sizeof(*hops));
    size_t self_dropped = 0;
    size_t n = collect(q, hops, &self_dropped, locals, nlocals);
    self_dropped += route_filter_hops(q->c, hops, &n, locals, nlocals);
    if (n == 0) {
        free(hops);
        q->res = failure(q, self_dropped);
    } else {
        q->res = result_new(q, ROUTE_OK, "");
        q->res->hops = hops;
        q->res->nhops = n;
    }
    event_active(q->done_ev, EV_TIMEOUT, 0);
}

static void query_free(struct route_query *q)
{
    if (q->mxq)
        dns_cancel(q->mxq);
    for (size_t gi = 0; gi < q->ngroups; gi++) {
        for (size_t i = 0; i < q->groups[gi].nslots; i++)
            if (q->groups[gi].slots[i].dq)
                dns_cancel(q->groups[gi].slots[i].dq);
        free(q->groups[gi].slots);
    }
    free(q->groups);
    if (q->done_ev)
        event_free(q->done_ev);
    route_result_free(q->res);
    free(q);
}

/* report - hand the result to the caller, who owns it from now on */
static void report(evutil_socket_t fd, short what, void *arg)
{
    struct route_query *q = arg;
    (void)fd;
    (void)what;
    struct route_result *res = q->res;
    q->res = NULL;
    route_cb cb = q->cb;
    void *cbarg = q->arg;
    query_free(q);
    cb(cbarg, res);
}

/* query_new - a query for domain on route r (NULL: none) */
static struct route_query *query_new(struct dns_ctx *d, const struct conf *c, const struct route *r,
                                     const char *domain, route_cb cb, void *arg)
{
    struct route_query *q = xcalloc(1, sizeof(*q));
    q->d = d;
    q->c = c;
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    str_copy(q->domain, domain, sizeof(q->domain));
    str_lower(q->domain);
    q->done_ev = event_new(dns_base(d), -1, 0, report, q);
    if (q->done_ev == NULL)
        fatalx("route: cannot create an event");
    return q;
}

/* answer_soon - a query whose answer is known already: reported from the event loop */
static struct route_query *answer_soon(struct route_query *q, enum route_status st, const char *why)
{
    q->res = result_new(q, st, why);
    event_active(q->done_ev, EV_TIMEOUT, 0);
    return q;
}

struct route_query *route_resolve_route(struct dns_ctx *d, const struct conf *c,
                                        const struct route *r, const char *domain,
                                        route_cb cb, void *arg)
{
    struct route_query *q = query_new(d, c, r, domain, cb, arg);
    if (r == NULL)
        return answer_soon(q, ROUTE_UNROUTABLE, "Unrouteable address");
    q->ngroups = r->nhops;
    q->groups = xcalloc(r->nhops ? r->nhops : 1, sizeof(*q->groups));
    q->npending = 1; /* held until every group has started */
    for (size_t i = 0; i < r->nhops; i++)
        group_start(q, &q->groups[i], &r->hops[i]);
    query_step_done(q);
    return q;
}

/* route_resolve - the first matching route, then its hops.  A lookup in a route pattern that
 * defers is a temporary routing failure (451 4.4.3, delivery deferred), never a match or a
 * "no route" by accident; the lookup logs which file failed, the reply does not name it. */
struct route_query *route_resolve(struct dns_ctx *d, const struct conf *c, const char *domain,
                                  route_cb cb, void *arg)
{
    const struct route *r;
    if (conf_route_find(c, domain, &r, NULL) == LIST_DEFER)
        return answer_soon(query_new(d, c, NULL, domain, cb, arg), ROUTE_LOOKUP_DEFER,
                           "Temporary local problem routing the address (a lookup failed)");
    return route_resolve_route(d, c, r, domain, cb, arg);
}

void route_cancel(struct route_query *q)
{
    if (q)
        query_free(q);
}
