/* dns_rr.c - TLSA and TXT answers into records, with the resolver library's bounded record
 * parser (ns_initparse/ns_parserr), as dns_parse.c does for MX and addresses. */
#include "dns.h"

#include <arpa/nameser.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* open_answer - the header: DNS_OK means NOERROR with msg ready for the answer section */
static enum dns_status open_answer(const unsigned char *pkt, size_t len, ns_msg *msg)
{
    if (pkt == NULL || len < NS_HFIXEDSZ || len > 65535 || ns_initparse(pkt, (int)len, msg) < 0)
        return DNS_TEMPFAIL;
    if (ns_msg_getflag(*msg, ns_f_tc))
        return DNS_TEMPFAIL;
    switch (ns_msg_getflag(*msg, ns_f_rcode)) {
    case ns_r_noerror: return DNS_OK;
    case ns_r_nxdomain: return DNS_NXDOMAIN;
    default: return DNS_TEMPFAIL;
    }
}

void dns_tlsa_copy(struct dns_tlsa *dst, const struct dns_tlsa *src)
{
    *dst = *src;
    dst->data = xcalloc(1, src->len + 1);
    if (src->len)
        memcpy(dst->data, src->data, src->len);
}

void dns_tlsa_free(struct dns_tlsa *t, size_t n)
{
    for (size_t i = 0; t != NULL && i < n; i++) {
        free(t[i].data);
        t[i].data = NULL;
        t[i].len = 0;
    }
}

/* tlsa_broken - a malformed answer yields nothing at all */
static enum dns_status tlsa_broken(struct dns_tlsa *out, size_t *n)
{
    dns_tlsa_free(out, *n);
    *n = 0;
    return DNS_TEMPFAIL;
}

enum dns_status dns_parse_tlsa(const unsigned char *pkt, size_t len, struct dns_tlsa *out,
                               size_t max, size_t *n)
{
    ns_msg msg;
    *n = 0;
    enum dns_status st = open_answer(pkt, len, &msg);
    if (st != DNS_OK)
        return st;
    bool any = false;
    int count = ns_msg_count(msg, ns_s_an);
    for (int i = 0; i < count && *n < max; i++) {
        ns_rr rr;
        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
            return tlsa_broken(out, n);
        if (ns_rr_type(rr) != ns_t_tlsa || ns_rr_class(rr) != ns_c_in)
            continue;
        size_t rdlen = ns_rr_rdlen(rr);
        const unsigned char *rd = ns_rr_rdata(rr);
        if (rdlen < 3)
            return tlsa_broken(out, n);
        any = true;
        if (rdlen - 3 > DNS_TLSA_DATA_MAX)
            continue;
        struct dns_tlsa *t = &out[(*n)++];
        t->usage = rd[0];
        t->selector = rd[1];
        t->mtype = rd[2];
        t->len = rdlen - 3;
        t->data = xcalloc(1, t->len + 1);
        memcpy(t->data, rd + 3, t->len);
    }
    return any ? DNS_OK : DNS_NODATA;
}

/* txt_join - the character-strings of one TXT rdata, joined into t; false if malformed */
static bool txt_join(const unsigned char *rd, size_t rdlen, struct dns_txt *t)
{
    memset(t, 0, sizeof(*t));
    for (size_t off = 0; off < rdlen;) {
        size_t slen = rd[off++];
        if (slen > rdlen - off)
            return false;
        size_t room = sizeof(t->text) - 1 - t->len;
        size_t take = slen < room ? slen : room;
        memcpy(t->text + t->len, rd + off, take);
        t->len += take;
        t->truncated |= take < slen;
        off += slen;
    }
    t->text[t->len] = '\0';
    return rdlen > 0;
}

enum dns_status dns_parse_txt(const unsigned char *pkt, size_t len, struct dns_txt *out,
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
        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0 ||
            (ns_rr_type(rr) == ns_t_txt && ns_rr_class(rr) == ns_c_in &&
             !txt_join(ns_rr_rdata(rr), ns_rr_rdlen(rr), &out[*n]))) {
            *n = 0;
            return DNS_TEMPFAIL;
        }
        if (ns_rr_type(rr) == ns_t_txt && ns_rr_class(rr) == ns_c_in)
            (*n)++;
    }
    return *n > 0 ? DNS_OK : DNS_NODATA;
}
