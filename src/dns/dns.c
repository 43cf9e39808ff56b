/* dns.c - asynchronous MX and address lookups with libunbound on the caller's libevent loop.
 * Every answer is parsed inside unbound's callback (its packet is not ours to keep) and handed
 * to the caller from a separate event, so callbacks never run inside dns_lookup_*(), and a
 * query can be cancelled at any time before its callback. */
#include "dns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ifaddrs.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unbound-event.h>
#include <unbound.h>

#include "core/core.h"

#define DNS_QUERY_TIMEOUT 20 /* seconds: a lookup unbound has not finished by then is TEMPFAIL */

#define LOCAL_ADDRS_TTL 60  /* seconds the list of this machine's addresses is reused */

struct dns_ctx {
    struct event_base *base;
    struct ub_ctx *ub;      /* NULL when it could not be set up: every lookup is TEMPFAIL */
    struct sockaddr_storage locals[64];   /* this machine's addresses, for loop detection */
    size_t nlocals;
    time_t locals_at;
};

/* One unbound query: A, AAAA or MX. */
struct dns_sub {
    struct dns_query *q;
    int rrtype;
    int async_id;           /* 0: answered synchronously or never started */
    bool pending;
    enum dns_status st;
    struct sockaddr_storage addrs[DNS_ADDR_MAX];
    size_t naddrs;
    enum dns_security sec;
    unsigned char *raw;     /* dns_lookup_raw: a copy of the answer packet */
    size_t rawlen;
};

struct dns_query {
    struct dns_ctx *d;
    dns_mx_cb mx_cb;
    dns_addr_cb addr_cb;
    dns_ptr_cb ptr_cb;
    dns_raw_cb raw_cb;
    char ptr[256];
    void *arg;
    struct event *done_ev;  /* runs the caller's callback from the loop */
    struct event *timer;
    struct dns_sub sub[2];  /* MX: sub[0]; addresses: sub[0] = A, sub[1] = AAAA */
    size_t nsub, npending;
    struct dns_mx mx[DNS_MX_MAX];
    size_t nmx;
    bool literal;           /* the "host" was an IP literal: no query */
};

static const char *const status_names[] = { "ok", "nxdomain", "nodata", "tempfail" };

const char *dns_status_name(enum dns_status st)
{
    return (size_t)st < ARRAY_LEN(status_names) ? status_names[st] : "?";
}

/* fwd_addr - "ip:port" or "[ip6]:port" as unbound's "ip@port"; false if malformed */
static bool fwd_addr(const char *server, char *out, size_t sz)
{
    char host[64];
    const char *port = NULL;
    if (server[0] == '[') {
        const char *end = strchr(server, ']');
        if (end == NULL || (size_t)(end - server - 1) >= sizeof(host))
            return false;
        memcpy(host, server + 1, (size_t)(end - server - 1));
        host[end - server - 1] = '\0';
        port = end[1] == ':' ? end + 2 : NULL;
    } else {
        const char *colon = strrchr(server, ':');
        size_t n = colon && strchr(server, ':') == colon ? (size_t)(colon - server) : strlen(server);
        if (n >= sizeof(host))
            return false;
        memcpy(host, server, n);
        host[n] = '\0';
        port = colon && strchr(server, ':') == colon ? colon + 1 : NULL;
    }
    return port ? str_fmt(out, sz, "%s@%s", host, port) : str_fmt(out, sz, "%s", host);
}

/* setup - options and forwarders; false (with a panic-log line) if unbound refuses them */
static bool setup(struct ub_ctx *ub, char *const *servers, const char *trust_anchor)
{
    int rc = ub_ctx_set_option(ub, "do-not-query-localhost:", "no");
    /* unbound answers RFC 6761 "test." itself (NXDOMAIN); ask the servers like any zone */
    if (rc == 0)
        rc = ub_ctx_set_option(ub, "local-zone:", "test. transparent");
    /* likewise the loopback reverse zone, so configured servers can name loopback clients */
    if (rc == 0 && servers)
        rc = ub_ctx_set_option(ub, "local-zone:", "127.in-addr.arpa. transparent");
    if (rc == 0 && trust_anchor == NULL)
        rc = ub_ctx_set_option(ub, "module-config:", "iterator");
    if (rc == 0 && trust_anchor)
        rc = ub_ctx_add_ta_file(ub, trust_anchor);
    if (rc == 0 && servers) {
        for (char *const *s = servers; rc == 0 && *s; s++) {
            char fwd[128];
            rc = fwd_addr(*s, fwd, sizeof(fwd)) ? ub_ctx_set_fwd(ub, fwd) : UB_SYNTAX;
        }
    } else if (rc == 0) {
        rc = ub_ctx_resolvconf(ub, NULL);
        if (rc == 0)
            rc = ub_ctx_hosts(ub, NULL);
    }
    if (rc != 0)
        log_panic("dns: resolver setup failed: %s", ub_strerror(rc));
    return rc == 0;
}

struct dns_ctx *dns_new(struct event_base *base, char *const *servers, const char *trust_anchor)
{
    struct dns_ctx *d = xcalloc(1, sizeof(*d));
    d->base = base;
    d->ub = ub_ctx_create_event(base);
    if (d->ub == NULL) {
        log_panic("dns: cannot create the resolver context");
    } else if (!setup(d->ub, servers, trust_anchor)) {
        ub_ctx_delete(d->ub);
        d->ub = NULL;
    }
    return d;
}

void dns_free(struct dns_ctx *d)
{
    if (d == NULL)
        return;
    if (d->ub)
        ub_ctx_delete(d->ub);
    free(d);
}

struct event_base *dns_base(const struct dns_ctx *d)
{
    return d->base;
}

/* query_done - all answers are in: the caller's callback runs from the loop */
static void query_done(struct dns_query *q)
{
    event_del(q->timer);
    event_active(q->done_ev, EV_TIMEOUT, 0);
}

/* sub_answer - unbound's callback: parse now, report later */
static void sub_answer(void *data, int rcode, void *packet, int len, int sec, char *why_bogus,
                       int ratelimited)
{
    struct dns_sub *s = data;
    (void)why_bogus;
    (void)ratelimited;
    s->pending = false;
    s->async_id = 0;
    s->sec = sec == 2 ? DNS_SECURE : sec == 1 ? DNS_BOGUS : DNS_INSECURE;
    if (s->q->raw_cb && rcode == 0 && sec != 1 && packet && len > 0) {
        s->raw = xmemdup(packet, (size_t)len);
        s->rawlen = (size_t)len;
    }
    if (sec == 1)                       /* bogus: never used, not even as NXDOMAIN */
        s->st = DNS_TEMPFAIL;
    else if (rcode == ns_r_nxdomain)
        s->st = DNS_NXDOMAIN;
    else if (rcode != 0 || packet == NULL || len <= 0)
        s->st = DNS_TEMPFAIL;
    else if (s->q->raw_cb)
        s->st = dns_parse_status(packet, (size_t)len, s->rrtype);
    else if (s->rrtype == ns_t_mx)
        s->st = dns_parse_mx(packet, (size_t)len, s->q->mx, DNS_MX_MAX, &s->q->nmx);
    else if (s->rrtype == ns_t_ptr)
        s->st = dns_parse_ptr(packet, (size_t)len, s->q->ptr, sizeof(s->q->ptr));
    else
        s->st = dns_parse_addr(packet, (size_t)len, s->rrtype, s->addrs, DNS_ADDR_MAX, &s->naddrs);
    if (--s->q->npending == 0)
        query_done(s->q);
}

/* sub_start - send one query (counted in q->npending already); a failure to start is an
 * immediate TEMPFAIL answer */
static void sub_start(struct dns_query *q, struct dns_sub *s, const char *name, int rrtype)
{
    s->q = q;
    s->rrtype = rrtype;
    s->pending = true;
    s->st = DNS_TEMPFAIL;
    int id = 0;
    int rc = q->d->ub ? ub_resolve_event(q->d->ub, name, rrtype, ns_c_in, s, sub_answer, &id)
                      : UB_INITFAIL;
    if (rc != 0) {
        s->pending = false;
        if (--q->npending == 0)
            query_done(q);
    } else if (s->pending) {
        s->async_id = id;
    }
}

/* cancel_subs - withdraw the queries unbound has not answered yet */
static void cancel_subs(struct dns_query *q)
{
    for (size_t i = 0; i < q->nsub; i++) {
        struct dns_sub *s = &q->sub[i];
        if (s->pending && s->async_id != 0 && q->d->ub)
            ub_cancel(q->d->ub, s->async_id);
        s->pending = false;
    }
}

static void query_free(struct dns_query *q)
{
    for (size_t i = 0; i < q->nsub; i++)
        free(q->sub[i].raw);
    event_free(q->done_ev);
    event_free(q->timer);
    free(q);
}

/* combined_status - A and AAAA together: a bogus answer spoils both (it is never used), then
 * any address wins, then TEMPFAIL, then NODATA */
static enum dns_status combined_status(const struct dns_query *q)
{
    bool any = false, tempfail = false, nx = true;
    for (size_t i = 0; i < q->nsub; i++) {
        if (q->sub[i].sec == DNS_BOGUS)
            return DNS_TEMPFAIL;
        any |= q->sub[i].st == DNS_OK;
        tempfail |= q->sub[i].st == DNS_TEMPFAIL;
        nx &= q->sub[i].st == DNS_NXDOMAIN;
    }
    return any ? DNS_OK : tempfail ? DNS_TEMPFAIL : nx ? DNS_NXDOMAIN : DNS_NODATA;
}

/* combined_security - secure when every answer the result is made of was validated: the ones
 * that gave addresses, or all of them when none did (a query that never answered adds nothing,
 * so dropping the AAAA query cannot make the A answer's addresses look insecure) */
static enum dns_security combined_security(const struct dns_query *q, enum dns_status st)
{
    if (q->literal)
        return DNS_INSECURE;
    for (size_t i = 0; i < q->nsub; i++) {
        const struct dns_sub *s = &q->sub[i];
        if (s->sec == DNS_BOGUS)
            return DNS_BOGUS;
        if ((st != DNS_OK || s->st == DNS_OK) && s->sec != DNS_SECURE)
            return DNS_INSECURE;
    }
    return DNS_SECURE;
}

/* deliver - run the caller's callback with the collected answers, then free the query */
static void deliver(evutil_socket_t fd, short what, void *arg)
{
    struct dns_query *q = arg;
    (void)fd;
    (void)what;
    if (q->raw_cb) {
        const struct dns_sub *s = &q->sub[0];
        q->raw_cb(q->arg, s->st, s->sec, s->raw, s->rawlen);
    } else if (q->ptr_cb) {
        q->ptr_cb(q->arg, q->sub[0].st, q->sub[0].st == DNS_OK ? q->ptr : "");
    } else if (q->mx_cb) {
        const struct dns_sub *s = &q->sub[0];
        q->mx_cb(q->arg, s->st, s->sec, q->nmx ? q->mx : NULL, s->st == DNS_OK ? q->nmx : 0);
    } else {
        struct sockaddr_storage all[2 * DNS_ADDR_MAX];
        size_t n = 0;
        for (size_t i = 0; i < q->nsub; i++)
            for (size_t j = 0; j < q->sub[i].naddrs; j++)
                all[n++] = q->sub[i].addrs[j];
        enum dns_status st = combined_status(q);
        q->addr_cb(q->arg, st, combined_security(q, st), n ? all : NULL, st == DNS_OK ? n : 0);
    }
    query_free(q);
}

/* timed_out - unbound took too long: whatever has not answered is TEMPFAIL */
static void timed_out(evutil_socket_t fd, short what, void *arg)
{
    struct dns_query *q = arg;
    (void)fd;
    (void)what;
    cancel_subs(q);
    q->npending = 0;
    event_active(q->done_ev, EV_TIMEOUT, 0);
}

static struct dns_query *query_new(struct dns_ctx *d, void *arg)
{
    struct dns_query *q = xcalloc(1, sizeof(*q));
    q->d = d;
    q->arg = arg;
    q->done_ev = event_new(d->base, -1, 0, deliver, q);
    q->timer = evtimer_new(d->base, timed_out, q);
    if (q->done_ev == NULL || q->timer == NULL)
        fatalx("dns: cannot create events");
    struct timeval tv = { DNS_QUERY_TIMEOUT, 0 };
    evtimer_add(q->timer, &tv);
    return q;
}

/* valid_name - a name unbound may be asked about: printable, bounded, no empty labels */
static bool valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 253 || name[0] == '.' || strstr(name, "..") != NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] <= 0x20 || (unsigned char)name[i] >= 0x7f)
            return false;
    return true;
}

struct dns_query *dns_lookup_mx(struct dns_ctx *d, const char *domain, dns_mx_cb cb, void *arg)
{
    struct dns_query *q = query_new(d, arg);
    q->mx_cb = cb;
    q->nsub = 1;
    if (valid_name(domain)) {
        q->npending = 1;
        sub_start(q, &q->sub[0], domain, ns_t_mx);
    } else {
        q->sub[0].st = DNS_NXDOMAIN;
        query_done(q);
    }
    return q;
}

struct dns_query *dns_lookup_raw(struct dns_ctx *d, const char *name, int rrtype, dns_raw_cb cb,
                                 void *arg)
{
    struct dns_query *q = query_new(d, arg);
    q->raw_cb = cb;
    q->nsub = 1;
    if (valid_name(name)) {
        q->npending = 1;
        sub_start(q, &q->sub[0], name, rrtype);
    } else {
        q->sub[0].st = DNS_NXDOMAIN;
        query_done(q);
    }
    return q;
}

/* literal_addr - an IP literal answers itself */
static bool literal_addr(struct dns_query *q, const char *host)
{
    struct dns_sub *s = &q->sub[0];
    struct sockaddr_in *sin = (struct sockaddr_in *)&s->addrs[0];
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&s->addrs[0];
    memset(&s->addrs[0], 0, sizeof(s->addrs[0]));
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1)
        sin->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1)
        sin6->sin6_family = AF_INET6;
    else
        return false;
    s->st = DNS_OK;
    s->naddrs = 1;
    q->nsub = 1;
    q->literal = true;
    return true;
}

struct dns_query *dns_lookup_addr(struct dns_ctx *d, const char *host, dns_addr_cb cb, void *arg)
{
    struct dns_query *q = query_new(d, arg);
    q->addr_cb = cb;
    if (literal_addr(q, host)) {
        query_done(q);
    } else if (!valid_name(host)) {
        q->nsub = 1;
        q->sub[0].st = DNS_NXDOMAIN;
        query_done(q);
    } else {
        q->nsub = 2;
        q->npending = 2;
        sub_start(q, &q->sub[0], host, ns_t_a);
        sub_start(q, &q->sub[1], host, ns_t_aaaa);
    }
    return q;
}

/* reverse_name - "4.3.2.1.in-addr.arpa" or the ip6.arpa nibble form; false if not an IP */
static bool reverse_name(const char *ip, char *out, size_t sz)
{
    char rev[72];
    if (!dns_reversed_ip(ip, rev, sizeof(rev)))
        return false;
    return str_fmt(out, sz, "%s.%s", rev, strchr(ip, ':') ? "ip6.arpa" : "in-addr.arpa");
}

struct dns_query *dns_lookup_ptr(struct dns_ctx *d, const char *ip, dns_ptr_cb cb, void *arg)
{
    char name[80];
    struct dns_query *q = query_new(d, arg);
    q->ptr_cb = cb;
    q->nsub = 1;
    if (reverse_name(ip, name, sizeof(name))) {
        q->npending = 1;
        sub_start(q, &q->sub[0], name, ns_t_ptr);
    } else {
        q->sub[0].st = DNS_NXDOMAIN;
        query_done(q);
    }
    return q;
}

void dns_cancel(struct dns_query *q)
{
    if (q == NULL)
        return;
    cancel_subs(q);
    query_free(q);
}

/* read_local_addrs - the addresses of this machine's interfaces (getifaddrs), at most max */
static size_t read_local_addrs(struct sockaddr_storage *out, size_t max)
{
    struct ifaddrs *ifa, *i;
    size_t n = 0;
    if (getifaddrs(&ifa) < 0)
        return 0;
    for (i = ifa; i && n < max; i = i->ifa_next) {
        if (i->ifa_addr == NULL)
            continue;
        if (i->ifa_addr->sa_family == AF_INET) {
            memset(&out[n], 0, sizeof(out[n]));
            memcpy(&out[n++], i->ifa_addr, sizeof(struct sockaddr_in));
        } else if (i->ifa_addr->sa_family == AF_INET6) {
            memset(&out[n], 0, sizeof(out[n]));
            memcpy(&out[n++], i->ifa_addr, sizeof(struct sockaddr_in6));
        }
    }
    freeifaddrs(ifa);
    return n;
}

/* dns_local_addrs - this machine's interface addresses (re-read at most once a minute: routing
 * asks for every message, and getifaddrs is a netlink dump) */
size_t dns_local_addrs(struct dns_ctx *d, const struct sockaddr_storage **out)
{
    time_t now = time(NULL);
    if (d->locals_at == 0 || now - d->locals_at >= LOCAL_ADDRS_TTL || now < d->locals_at) {
        d->nlocals = read_local_addrs(d->locals, sizeof(d->locals) / sizeof(d->locals[0]));
        d->locals_at = now;
    }
    *out = d->locals;
    return d->nlocals;
}
