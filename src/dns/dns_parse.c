/* dns_parse.c - DNS answers to MX and address lists, with the resolver library's own bounded
 * record parser (ns_initparse/ns_parserr, dn_expand) rather than a hand-written one. */
#include "dns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* open_answer - parse the header; DNS_OK means NOERROR with msg ready for the answer section */
static enum dns_status open_answer(const unsigned char *pkt, size_t len, ns_msg *msg)
{
    if (pkt == NULL || len < NS_HFIXEDSZ || len > 65535 ||
        ns_initparse(pkt, (int)len, msg) < 0)
        return DNS_TEMPFAIL;
    if (ns_msg_getflag(*msg, ns_f_tc))
        return DNS_TEMPFAIL;
    switch (ns_msg_getflag(*msg, ns_f_rcode)) {
    case ns_r_noerror: return DNS_OK;
    case ns_r_nxdomain: return DNS_NXDOMAIN;
    default: return DNS_TEMPFAIL;
    }
}

enum dns_status dns_parse_status(const unsigned char *pkt, size_t len, int rrtype)
{
    ns_msg msg;
    enum dns_status st = open_answer(pkt, len, &msg);
    if (st != DNS_OK)
        return st;
    int count = ns_msg_count(msg, ns_s_an);
    bool any = false;
    for (int i = 0; i < count; i++) {
        ns_rr rr;
        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
            return DNS_TEMPFAIL;
        if ((int)ns_rr_type(rr) == rrtype && ns_rr_class(rr) == ns_c_in)
            any = true;
    }
    return any ? DNS_OK : DNS_NODATA;
}

/* broken - a malformed answer yields nothing at all, not what came before the damage */
static enum dns_status broken(size_t *n)
{
    *n = 0;
    return DNS_TEMPFAIL;
}

/* mx_name - expand the MX exchange name at p: lower case, no trailing dot, "" for the root */
static bool mx_name(const ns_msg *msg, const unsigned char *p, char *out, size_t outsz)
{
    char name[NS_MAXDNAME];
    if (dn_expand(ns_msg_base(*msg), ns_msg_end(*msg), p, name, sizeof(name)) < 0)
        return false;
    size_t n = strlen(name);
    while (n > 0 && name[n - 1] == '.')
        name[--n] = '\0';
    if (n >= outsz)
        return false;
    str_lower(name);
    str_copy(out, name, outsz);
    return true;
}

enum dns_status dns_parse_mx(const unsigned char *pkt, size_t len, struct dns_mx *out,
                             size_t max, size_t *n)
{
    ns_msg msg;
    *n = 0;
    enum dns_status st = open_answer(pkt, len, &msg);
    if (st != DNS_OK)
        return st;
    int count = ns_msg_count(msg, ns_s_an);
    for (int i = 0; i < count && *n < max; i++) {
        ns_rr rr;
        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
            return broken(n);
        if (ns_rr_type(rr) != ns_t_mx || ns_rr_class(rr) != ns_c_in)
            continue;
        if (ns_rr_rdlen(rr) < 3)
            return broken(n);
        const unsigned char *rd = ns_rr_rdata(rr);
        struct dns_mx *mx = &out[*n];
        mx->pref = (unsigned)rd[0] << 8 | rd[1];
        if (!mx_name(&msg, rd + 2, mx->host, sizeof(mx->host)))
            return broken(n);
        (*n)++;
    }
    return *n > 0 ? DNS_OK : DNS_NODATA;
}

enum dns_status dns_parse_ptr(const unsigned char *pkt, size_t len, char *out, size_t outsz)
{
    ns_msg msg;
    out[0] = '\0';
    enum dns_status st = open_answer(pkt, len, &msg);
    if (st != DNS_OK)
        return st;
    int count = ns_msg_count(msg, ns_s_an);
    for (int i = 0; i < count; i++) {
        ns_rr rr;
        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
            return DNS_TEMPFAIL;
        if (ns_rr_type(rr) != ns_t_ptr || ns_rr_class(rr) != ns_c_in)
            continue;
        if (!mx_name(&msg, ns_rr_rdata(rr), out, outsz) || out[0] == '\0') {
            out[0] = '\0';
            return DNS_TEMPFAIL;
        }
        return DNS_OK;
    }
    return DNS_NODATA;
}

/* put_addr - one A/AAAA rdata as a sockaddr with port 0; false if the length is wrong */
static bool put_addr(int rrtype, const unsigned char *rd, size_t rdlen, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (rrtype == ns_t_a && rdlen == 4) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, rd, 4);
        return true;
    }
    if (rrtype == ns_t_aaaa && rdlen == 16) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, rd, 16);
        return true;
    }
    return false;
}

enum dns_status dns_parse_addr(const unsigned char *pkt, size_t len, int rrtype,
                               struct sockaddr_storage *out, size_t max, size_t *n)
{
    ns_msg msg;
    *n = 0;
    enum dns_status st = open_answer(pkt, len, &msg);
    if (st != DNS_OK)
        return st;
    int count = ns_msg_count(msg, ns_s_an);
    for (int i = 0; i < count && *n < max; i++) {
        ns_rr rr;
        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
            return broken(n);
        if ((int)ns_rr_type(rr) != rrtype || ns_rr_class(rr) != ns_c_in)
            continue;
        if (!put_addr(rrtype, ns_rr_rdata(rr), ns_rr_rdlen(rr), &out[*n]))
            return broken(n);
        (*n)++;
    }
    return *n > 0 ? DNS_OK : DNS_NODATA;
}

/* default_rnd - uniform below `below`, from the C library's self-seeding generator */
static unsigned default_rnd(unsigned below)
{
    return below ? arc4random_uniform(below) : 0;
}

/* mx_cmp - ascending preference (qsort is not stable; ties are shuffled afterwards anyway) */
static int mx_cmp(const void *a, const void *b)
{
    const struct dns_mx *x = a, *y = b;
    return x->pref < y->pref ? -1 : x->pref > y->pref;
}

void dns_mx_order(struct dns_mx *mx, size_t n, unsigned (*rnd)(unsigned below))
{
    if (rnd == NULL)
        rnd = default_rnd;
    qsort(mx, n, sizeof(*mx), mx_cmp);
    for (size_t start = 0; start < n;) {
        size_t end = start + 1;
        while (end < n && mx[end].pref == mx[start].pref)
            end++;
        for (size_t i = end - 1; i > start; i--) { /* Fisher-Yates within the run */
            size_t j = start + rnd((unsigned)(i - start + 1));
            struct dns_mx t = mx[i];
            mx[i] = mx[j];
            mx[j] = t;
        }
        start = end;
    }
}
