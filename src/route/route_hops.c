/* route_hops.c - next-hop lists: construction, loops to self, de-duplication, keys, names. */
#include "route.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static const char *const status_names[] = {
    [ROUTE_OK] = "ok",
    [ROUTE_UNROUTABLE] = "unroutable",
    [ROUTE_NULL_MX] = "null MX",
    [ROUTE_NO_DOMAIN] = "no such domain",
    [ROUTE_TEMPFAIL] = "temporary DNS failure",
    [ROUTE_NO_HOSTS] = "no usable hosts",
    [ROUTE_LOOKUP_DEFER] = "lookup deferred",
};

const char *route_status_name(enum route_status st)
{
    return (size_t)st < ARRAY_LEN(status_names) ? status_names[st] : "?";
}

/* route_status_reply - the reply an address gets when routing ends in st */
void route_status_reply(enum route_status st, int *code, const char **ecode)
{
    static const struct { int code; const char *ecode; } replies[] = {
        [ROUTE_OK] = { 250, "2.1.5" },
        [ROUTE_UNROUTABLE] = { 550, "5.1.2" },
        [ROUTE_NULL_MX] = { 550, "5.1.10" },
        [ROUTE_NO_DOMAIN] = { 550, "5.1.2" },
        [ROUTE_TEMPFAIL] = { 451, "4.4.3" },
        [ROUTE_NO_HOSTS] = { 451, "4.4.4" },
        [ROUTE_LOOKUP_DEFER] = { 451, "4.4.3" },
    };
    size_t i = (size_t)st < ARRAY_LEN(replies) ? (size_t)st : ROUTE_TEMPFAIL;
    *code = replies[i].code;
    *ecode = replies[i].ecode;
}

void route_result_free(struct route_result *res)
{
    if (res == NULL)
        return;
    free(res->hops);
    free(res);
}

void hop_fill(struct next_hop *h, const char *name, const struct sockaddr_storage *addr,
              uint16_t port, unsigned pref, bool literal, enum tls_policy tls)
{
    memset(h, 0, sizeof(*h));
    str_copy(h->name, name, sizeof(h->name));
    h->addr = *addr;
    if (addr->ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&h->addr;
        sin6->sin6_port = htons(port);
        h->addrlen = sizeof(*sin6);
        inet_ntop(AF_INET6, &sin6->sin6_addr, h->ip, sizeof(h->ip));
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&h->addr;
        sin->sin_port = htons(port);
        h->addrlen = sizeof(*sin);
        inet_ntop(AF_INET, &sin->sin_addr, h->ip, sizeof(h->ip));
    }
    h->port = port;
    h->pref = pref;
    h->is_literal = literal;
    h->tls = tls;
}

bool route_parse_ip(const char *text, struct sockaddr_storage *addr)
{
    char buf[64];
    size_t n = strlen(text);
    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
        text++;
        n -= 2;
    }
    if (n >= sizeof(buf))
        return false;
    memcpy(buf, text, n);
    buf[n] = '\0';
    memset(addr, 0, sizeof(*addr));
    struct sockaddr_in *sin = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)addr;
    if (inet_pton(AF_INET, buf, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        return true;
    }
    if (str_iprefix(buf, "ipv6:"))
        memmove(buf, buf + 5, strlen(buf + 5) + 1);
    if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        return true;
    }
    return false;
}

/* addr_bytes - the address as 16 bytes, IPv4 (and v4-mapped IPv6) as ::ffff:a.b.c.d */
static void addr_bytes(const struct sockaddr_storage *ss, unsigned char out[16])
{
    memset(out, 0, 16);
    if (ss->ss_family == AF_INET) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    }
}

static uint16_t addr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return 0;
}

/* is_wildcard - 0.0.0.0 or :: (a listener on every local address) */
static bool is_wildcard(const struct sockaddr_storage *ss)
{
    static const unsigned char any6[16], any4[16] = { [10] = 0xff, [11] = 0xff };
    unsigned char b[16];
    addr_bytes(ss, b);
    return memcmp(b, any6, 16) == 0 || memcmp(b, any4, 16) == 0;
}

/* is_local - 127.0.0.1, ::1, or an address of one of our interfaces */
static bool is_local(const unsigned char a[16], const struct sockaddr_storage *locals, size_t n)
{
    static const unsigned char lo4[16] = { [10] = 0xff, [11] = 0xff, [12] = 127, [15] = 1 };
    static const unsigned char lo6[16] = { [15] = 1 };
    if (memcmp(a, lo4, 16) == 0 || memcmp(a, lo6, 16) == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char b[16];
        addr_bytes(&locals[i], b);
        if (memcmp(a, b, 16) == 0)
            return true;
    }
    return false;
}

bool route_is_self(const struct conf *c, const struct sockaddr_storage *addr, uint16_t port,
                   const struct sockaddr_storage *locals, size_t nlocals)
{
    unsigned char a[16];
    addr_bytes(addr, a);
    for (size_t i = 0; i < c->nlisten; i++) {
        const struct sockaddr_storage *l = &c->listen[i].ss;
        if (addr_port(l) != port)
            continue;
        unsigned char b[16];
        addr_bytes(l, b);
        if (memcmp(a, b, 16) == 0)
            return true;
        if (is_wildcard(l) && is_local(a, locals, nlocals))
            return true;
    }
    return false;
}

/* same_hop - the same address and port (names and policies aside) */
static bool same_hop(const struct next_hop *x, const struct next_hop *y)
{
    unsigned char a[16], b[16];
    addr_bytes(&x->addr, a);
    addr_bytes(&y->addr, b);
    return x->port == y->port && memcmp(a, b, 16) == 0;
}

size_t route_filter_hops(const struct conf *c, struct next_hop *hops, size_t *n,
                         const struct sockaddr_storage *locals, size_t nlocals)
{
    size_t kept = 0, self = 0;
    for (size_t i = 0; i < *n; i++) {
        bool drop = false;
        if (route_is_self(c, &hops[i].addr, hops[i].port, locals, nlocals)) {
            drop = true;
            self++;
        }
        for (size_t j = 0; j < kept && !drop; j++)
            drop = same_hop(&hops[j], &hops[i]);
        if (!drop)
            hops[kept++] = hops[i];
    }
    *n = kept;
    return self;
}

enum tls_policy route_tls_policy(const struct conf *c, const struct route *r)
{
    if (r && r->tls != TLS_UNSET)
        return r->tls;
    return c->tls_outbound != TLS_UNSET ? c->tls_outbound : TLS_MAY;
}

uint16_t route_hop_port(const struct conf *c, const struct route *r, uint16_t spec_port)
{
    if (spec_port)
        return spec_port;
    if (r && r->port)
        return r->port;
    return c->remote_port ? c->remote_port : 25;
}

void hop_addr_key(const struct next_hop *h, char *buf, size_t sz)
{
    if (h->addr.ss_family == AF_INET6)
        str_fmt(buf, sz, "[%s]:%u", h->ip, (unsigned)h->port);
    else
        str_fmt(buf, sz, "%s:%u", h->ip, (unsigned)h->port);
}

void hop_log_text(const struct next_hop *h, char *buf, size_t sz)
{
    char name[300];
    str_sanitize(name, sizeof(name), h->name, strlen(h->name));
    if (name[0] && !h->is_literal && strcmp(name, h->ip) != 0)
        str_fmt(buf, sz, "%s [%s]:%u", name, h->ip, (unsigned)h->port);
    else
        str_fmt(buf, sz, "[%s]:%u", h->ip, (unsigned)h->port);
}

/* fnv64 - FNV-1a, to keep over-long keys distinct */
static uint64_t fnv64(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

void route_hops_key(const struct route_result *res, char *buf, size_t sz)
{
    struct sbuf k;
    sbuf_init(&k);
    sbuf_printf(&k, "%s", route_status_name(res->status));
    for (size_t i = 0; i < res->nhops; i++) {
        char a[80];
        hop_addr_key(&res->hops[i], a, sizeof(a));
        const struct next_hop *h = &res->hops[i];
        sbuf_printf(&k, " %s/%d/%s", a, (int)h->tls, h->name);
        if (h->tls == TLS_DANE)
            sbuf_printf(&k, "/%s/%s", h->dnssec ? "dnssec" : "insecure", res->domain);
    }
    if (k.len < sz) {
        str_copy(buf, k.s, sz);
    } else if (sz > 18) {
        char tail[18];
        str_fmt(tail, sizeof(tail), "#%016llx", (unsigned long long)fnv64(k.s, k.len));
        memcpy(buf, k.s, sz - 18);
        str_copy(buf + sz - 18, tail, 18);
    } else if (sz) {
        buf[0] = '\0';
    }
    sbuf_free(&k);
}
