/* tls_policy.c - the TLS requirement of one next hop (see outbound/outbound.h: tls_policy):
 * DANE from secure TLSA records, else the domain's MTA-STS policy for MX hosts, else `may`;
 * other route policies pass through unchanged.  Every answer comes from the event loop. */
#include "tls_policy_int.h"

#include <arpa/nameser.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/core.h"
#include "dns/dns.h"

struct tlsp_query {
    struct tlsp *t;
    struct next_hop hop;
    char domain[256];
    tlsp_cb cb;
    void *arg;
    struct dns_query *tlsaq;
    struct sts_lookup *sts;
    struct event *done_ev;
    struct tls_req req;
    struct dns_tlsa tlsa[DNS_TLSA_MAX];     /* the usable records (DANE) */
    size_t ntlsa;
    char dane_note[200];                    /* why DANE does not apply, for req.why */
};

const char *tls_auth_name(enum tls_auth a)
{
    static const char *const names[] = { "none", "dane", "mta-sts" };
    return (unsigned)a < ARRAY_LEN(names) ? names[a] : "?";
}

struct tlsp *tlsp_new(struct event_base *base, const struct conf *c, struct dns_ctx *dns,
                      struct hints *hints)
{
    struct tlsp *t = xcalloc(1, sizeof(*t));
    t->base = base;
    t->conf = c;
    t->dns = dns;
    t->hints = hints;
    return t;
}

void tlsp_free(struct tlsp *t)
{
    if (t == NULL)
        return;
    sts_jobs_free(t);
    sts_fetcher_free(t->fetcher);
    free(t);
}

/* done_cb - hand the decision to the caller, then forget the query */
static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tlsp_query *q = arg;
    (void)fd;
    (void)what;
    q->req.tlsa = q->ntlsa ? q->tlsa : NULL;
    q->req.ntlsa = q->ntlsa;
    q->cb(q->arg, &q->req);
    tlsp_cancel(q);
}

/* decided - the requirement is known: report it from the loop */
static void decided(struct tlsp_query *q, enum tls_policy tls, enum tls_auth auth, const char *fmt, ...)
    PRINTF_LIKE(4, 5);
static void decided(struct tlsp_query *q, enum tls_policy tls, enum tls_auth auth, const char *fmt, ...)
{
    va_list ap;
    q->req.tls = tls;
    q->req.auth = auth;
    va_start(ap, fmt);
    str_vfmt(q->req.why, sizeof(q->req.why), fmt, ap);
    va_end(ap);
    event_active(q->done_ev, 0, 0);
}

/* refused - this hop must not be dialled */
static void refused(struct tlsp_query *q, const char *why)
{
    q->req.refuse = true;
    decided(q, TLS_ENCRYPT, TLS_AUTH_NONE, "%s", why);
}

/* ---- MTA-STS ---------------------------------------------------------------------------- */

/* sts_done - the domain's policy (or none) decides for this MX host */
static void sts_done(void *arg, const struct sts_policy *p, const char *note)
{
    struct tlsp_query *q = arg;
    char mx[600], pol[900];
    q->sts = NULL;
    if (p == NULL) {
        decided(q, TLS_MAY, TLS_AUTH_NONE, "may: no MTA-STS policy for %s (%s); %s", q->domain,
                note, q->dane_note);
        return;
    }
    bool match = sts_mx_match(p, q->hop.name);
    sts_mx_list(p, mx, sizeof(mx));
    str_fmt(pol, sizeof(pol), "MTA-STS policy of %s (id=%s mode=%s max_age=%u mx: %s%s%s)",
            q->domain, p->id, sts_mode_name(p->mode), (unsigned)p->max_age, mx, note[0] ? "; " : "",
            note);
    if (p->mode == STS_ENFORCE && match) {
        decided(q, TLS_VERIFY, TLS_AUTH_MTA_STS, "verify: %s: MX host %s matches; %s", pol,
                q->hop.name, q->dane_note);
    } else if (p->mode == STS_ENFORCE) {
        char text[1200];
        str_fmt(text, sizeof(text), "MX host %s is not in the %s; %s", q->hop.name, pol, q->dane_note);
        refused(q, text);
    } else if (p->mode == STS_TESTING) {
        q->req.sts_testing = true;
        if (!match)
            log_main("MTA-STS testing policy for %s: MX host %s is not in the policy "
                     "(enforce would defer; delivering anyway)", q->domain, q->hop.name);
        decided(q, TLS_MAY, TLS_AUTH_NONE, "may: %s: MX host %s %s; %s", pol, q->hop.name,
                match ? "matches" : "does not match", q->dane_note);
    } else {
        decided(q, TLS_MAY, TLS_AUTH_NONE, "may: %s; %s", pol, q->dane_note);
    }
}

/* no_dane - DANE does not apply (note says why): MTA-STS for MX hosts, else `may` */
static void no_dane(struct tlsp_query *q, const char *note)
{
    str_copy(q->dane_note, note, sizeof(q->dane_note));
    if (!q->hop.via_mx) {
        decided(q, TLS_MAY, TLS_AUTH_NONE, "may: not an MX host: no MTA-STS; %s", note);
        return;
    }
    q->sts = sts_lookup_start(q->t, q->domain, sts_done, q);
}

/* ---- DANE ------------------------------------------------------------------------------- */

/* tlsa_usable - RFC 7672 3.1: DANE-TA(2) or DANE-EE(3), selector 0/1, matching type 0/1/2
 * with a digest of the right length */
static bool tlsa_usable(const struct dns_tlsa *t)
{
    if ((t->usage != 2 && t->usage != 3) || t->selector > 1 || t->len == 0)
        return false;
    return t->mtype == 0 || (t->mtype == 1 && t->len == 32) || (t->mtype == 2 && t->len == 64);
}

/* tlsa_text - "3 1 1 0a1b2c3d..." (the data shortened) for logs and `tandem route` */
static void tlsa_text(const struct dns_tlsa *t, char *buf, size_t sz)
{
    static const char hex[] = "0123456789abcdef";
    char data[17];
    size_t n = 0;
    for (size_t i = 0; i < t->len && n + 2 < sizeof(data); i++) {
        data[n++] = hex[t->data[i] >> 4];
        data[n++] = hex[t->data[i] & 15];
    }
    data[n] = '\0';
    str_fmt(buf, sz, "%u %u %u %s%s", t->usage, t->selector, t->mtype, data, t->len > 8 ? "..." : "");
}

/* keep_usable - move the usable records into q; the rest are freed */
static void keep_usable(struct tlsp_query *q, struct dns_tlsa *all, size_t n, char *list, size_t sz)
{
    struct sbuf b;
    sbuf_init(&b);
    for (size_t i = 0; i < n; i++) {
        char one[64];
        if (tlsa_usable(&all[i]) && q->ntlsa < DNS_TLSA_MAX) {
            tlsa_text(&all[i], one, sizeof(one));
            sbuf_printf(&b, "%s%s", q->ntlsa ? ", " : "", one);
            q->tlsa[q->ntlsa++] = all[i];
        } else {
            dns_tlsa_free(&all[i], 1);
        }
    }
    str_copy(list, b.s ? b.s : "", sz);
    sbuf_free(&b);
}

/* tlsa_answer - secure TLSA records mean DANE; none, or insecure ones, mean no DANE; a failed
 * or bogus lookup means this hop cannot be used now */
static void tlsa_answer(void *arg, enum dns_status st, enum dns_security sec,
                        const unsigned char *pkt, size_t len)
{
    struct tlsp_query *q = arg;
    char name[300], list[700];
    struct dns_tlsa all[DNS_TLSA_MAX];
    size_t n = 0;
    q->tlsaq = NULL;
    str_fmt(name, sizeof(name), "_%u._tcp.%s", (unsigned)q->hop.port, q->hop.name);
    if (st == DNS_OK && sec == DNS_SECURE)
        st = dns_parse_tlsa(pkt, len, all, DNS_TLSA_MAX, &n);
    if (st == DNS_TEMPFAIL) {
        char why[400];
        str_fmt(why, sizeof(why), "DANE: TLSA lookup for %s failed%s", name,
                sec == DNS_BOGUS ? " (DNSSEC validation failed)" : "");
        refused(q, why);
    } else if (st != DNS_OK) {
        char note[400];
        str_fmt(note, sizeof(note), "no TLSA records for %s", name);
        no_dane(q, note);
    } else if (sec != DNS_SECURE) {
        char note[400];
        str_fmt(note, sizeof(note), "TLSA records for %s are not DNSSEC-signed", name);
        no_dane(q, note);
    } else {
        keep_usable(q, all, n, list, sizeof(list));
        if (q->ntlsa > 0)
            decided(q, TLS_DANE, TLS_AUTH_DANE, "dane: %zu usable TLSA record%s for %s: %s",
                    q->ntlsa, q->ntlsa == 1 ? "" : "s", name, list);
        else
            decided(q, TLS_ENCRYPT, TLS_AUTH_NONE, "encrypt: no usable TLSA record for %s "
                    "(TLS without authentication, RFC 7672 2.2)", name);
    }
}

/* start_dane - look up TLSA records when the hop is known from secure DNS */
static void start_dane(struct tlsp_query *q)
{
    char name[300];
    if (q->hop.is_literal || q->hop.name[0] == '\0') {
        no_dane(q, "no DANE for an IP literal");
    } else if (!q->hop.dnssec) {
        no_dane(q, q->hop.via_mx ? "no DANE: MX or address records not DNSSEC-validated"
                                 : "no DANE: address records not DNSSEC-validated");
    } else if (!str_fmt(name, sizeof(name), "_%u._tcp.%s", (unsigned)q->hop.port, q->hop.name)) {
        refused(q, "DANE: the TLSA name is too long");
    } else {
        q->tlsaq = dns_lookup_raw(q->t->dns, name, ns_t_tlsa, tlsa_answer, q);
    }
}

struct tlsp_query *tlsp_decide(struct tlsp *t, const char *domain, const struct next_hop *hop,
                               tlsp_cb cb, void *arg)
{
    if (t == NULL)
        fatalx("tlsp_decide: no context");
    struct tlsp_query *q = xcalloc(1, sizeof(*q));
    q->t = t;
    q->hop = *hop;
    str_copy(q->domain, domain ? domain : "", sizeof(q->domain));
    str_lower(q->domain);
    q->cb = cb;
    q->arg = arg;
    q->req.show_auth = hop->tls == TLS_DANE;
    q->done_ev = event_new(t->base, -1, 0, done_cb, q);
    if (q->done_ev == NULL)
        fatalx("tls_policy: cannot create an event");
    if (hop->tls != TLS_DANE)
        decided(q, hop->tls, TLS_AUTH_NONE, "%s: the route's policy", tls_policy_name(hop->tls));
    else
        start_dane(q);
    return q;
}

void tlsp_cancel(struct tlsp_query *q)
{
    if (q == NULL)
        return;
    if (q->tlsaq)
        dns_cancel(q->tlsaq);
    if (q->sts)
        sts_lookup_cancel(q->sts);
    dns_tlsa_free(q->tlsa, q->ntlsa);
    event_free(q->done_ev);
    free(q);
}

struct tls_req *tls_req_dup(const struct tls_req *req)
{
    struct tls_req *d = xmemdup(req, sizeof(*req));
    struct dns_tlsa *t = req->ntlsa ? xcalloc(req->ntlsa, sizeof(*t)) : NULL;
    for (size_t i = 0; i < req->ntlsa; i++)
        dns_tlsa_copy(&t[i], &req->tlsa[i]);
    d->tlsa = t;
    return d;
}

void tls_req_free(struct tls_req *req)
{
    if (req == NULL)
        return;
    struct dns_tlsa *t = (struct dns_tlsa *)req->tlsa;
    dns_tlsa_free(t, req->ntlsa);
    free(t);
    free(req);
}

void tlsp_apply(const struct tls_req *req, struct next_hop *hop, struct smtp_out_opts *o)
{
    hop->tls = req->tls;
    o->tls = req->tls;
    o->tlsa = req->tls == TLS_DANE ? req->tlsa : NULL;
    o->ntlsa = req->tls == TLS_DANE ? req->ntlsa : 0;
    o->auth = req->auth;
    o->show_auth = req->show_auth;
    o->sts_testing = req->sts_testing;
}
