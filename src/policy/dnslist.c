/* dnslist.c - the dnslists condition: the client's address looked up in DNS lists through the
 * process's resolver, every zone of a condition at once, the first zone of the list that lists
 * the client deciding (then its TXT record is fetched for $dnslist_text).  Answers are kept for
 * the session, so a condition used in two ACLs (or two conditions naming one zone) looks up
 * once.  A lookup that times out (dnslist_timeout) or fails is "not listed" and logged, unless
 * +include_unknown or +defer_unknown says otherwise. */
#include "policy.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/core.h"
#include "dns/dns.h"

#define DNSL_CACHE_MAX 128     /* answers kept per session; the oldest finished one goes first */
#define DNSL_ADDRS_MAX 16      /* A records kept per answer */
#define DNSL_TEXT_MAX 400      /* bytes of a TXT record kept for $dnslist_text */

/* One looked-up name and type: pending, or its answer. */
struct dnsl_entry {
    char name[256];
    int type;                  /* ns_t_a or ns_t_txt */
    struct dnsl_cache *cache;
    struct dns_query *q;       /* in flight */
    struct event *timer;       /* dnslist_timeout */
    bool done, timed_out;
    enum dns_status st;
    uint32_t addrs[DNSL_ADDRS_MAX]; /* A: 127/8 answers, host order */
    size_t naddrs;
    char text[DNSL_TEXT_MAX];  /* TXT: the first record */
};

struct dnsl_check {
    struct dnsl_cache *cache;
    const struct dnsl_spec *spec;
    char rev[72];              /* the client's address, reversed */
    char ip[64];
    dnsl_cb cb;
    void *arg;
    struct event *ev;          /* re-evaluate from the loop after an answer came */
    struct dnsl_check *next;
};

struct dnsl_cache {
    struct dns_ctx *dns;
    unsigned timeout;
    struct dnsl_entry **e;
    size_t n;
    struct dnsl_check *checks; /* waiting for answers */
};

struct dnsl_cache *dnsl_cache_new(struct dns_ctx *dns, unsigned timeout)
{
    struct dnsl_cache *c = xcalloc(1, sizeof(*c));
    c->dns = dns;
    c->timeout = timeout ? timeout : 5;
    return c;
}

/* entry_free - a cache entry, its lookup withdrawn if still in flight */
static void entry_free(struct dnsl_entry *e)
{
    if (e->q)
        dns_cancel(e->q);
    if (e->timer)
        event_free(e->timer);
    free(e);
}

void dnsl_cache_free(struct dnsl_cache *c)
{
    if (c == NULL)
        return;
    while (c->checks)
        dnsl_check_cancel(c->checks);
    for (size_t i = 0; i < c->n; i++)
        entry_free(c->e[i]);
    free(c->e);
    free(c);
}

/* wake_checks - an answer came: every waiting check looks again, from the loop */
static void wake_checks(struct dnsl_cache *c)
{
    for (struct dnsl_check *k = c->checks; k; k = k->next)
        event_active(k->ev, 0, 0);
}

/* keep_addrs - A records of the list's range (Exim ignores others: a list whose domain was
 * lost may answer anything); what is left out is logged */
static void keep_addrs(struct dnsl_entry *e, const struct sockaddr_storage *a, size_t n)
{
    for (size_t i = 0; i < n && e->naddrs < DNSL_ADDRS_MAX; i++) {
        uint32_t v = ntohl(((const struct sockaddr_in *)&a[i])->sin_addr.s_addr);
        if ((v >> 24) == 127) {
            e->addrs[e->naddrs++] = v;
            continue;
        }
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&a[i])->sin_addr, ip, sizeof(ip));
        log_main("dnslists: %s returned %s, outside 127.0.0.0/8: ignored", e->name, ip);
    }
}

/* parse_answer - the records of an answer into the entry */
static void parse_answer(struct dnsl_entry *e, const unsigned char *pkt, size_t len)
{
    if (e->type == ns_t_a) {
        struct sockaddr_storage a[DNSL_ADDRS_MAX];
        size_t n = 0;
        e->st = dns_parse_addr(pkt, len, ns_t_a, a, DNSL_ADDRS_MAX, &n);
        keep_addrs(e, a, n);
        return;
    }
    struct dns_txt t[1];
    size_t n = 0;
    e->st = dns_parse_txt(pkt, len, t, 1, &n);
    if (n > 0)
        str_copy(e->text, t[0].text, sizeof(e->text));
}

/* entry_done - the entry has its answer (or none): log a failure, wake the checks */
static void entry_done(struct dnsl_entry *e)
{
    e->done = true;
    e->q = NULL;
    event_del(e->timer);
    if (e->st == DNS_TEMPFAIL)
        log_main("dnslists: %s lookup of %s %s: treated as not listed", e->type == ns_t_a ? "A" : "TXT",
                 e->name, e->timed_out ? "timed out" : "failed (SERVFAIL or bad answer)");
    wake_checks(e->cache);
}

/* answered - the resolver's report */
static void answered(void *arg, enum dns_status st, enum dns_security sec, const unsigned char *pkt,
                     size_t len)
{
    struct dnsl_entry *e = arg;
    (void)sec;
    e->st = st;
    if (st == DNS_OK)
        parse_answer(e, pkt, len);
    entry_done(e);
}

/* timed_out - dnslist_timeout passed without an answer */
static void timed_out(evutil_socket_t fd, short what, void *arg)
{
    struct dnsl_entry *e = arg;
    (void)fd;
    (void)what;
    dns_cancel(e->q);
    e->q = NULL;
    e->st = DNS_TEMPFAIL;
    e->timed_out = true;
    entry_done(e);
}

/* find - the entry for name and type, or NULL */
static struct dnsl_entry *find(struct dnsl_cache *c, const char *name, int type)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->e[i]->type == type && strcmp(c->e[i]->name, name) == 0)
            return c->e[i];
    return NULL;
}

/* make_room - drop the oldest finished entry when the cache is full */
static void make_room(struct dnsl_cache *c)
{
    if (c->n < DNSL_CACHE_MAX)
        return;
    for (size_t i = 0; i < c->n; i++) {
        if (!c->e[i]->done)
            continue;
        entry_free(c->e[i]);
        memmove(&c->e[i], &c->e[i + 1], (c->n - i - 1) * sizeof(*c->e));
        c->n--;
        return;
    }
}

/* lookup - the entry for name and type, starting its lookup if it is not known yet */
static struct dnsl_entry *lookup(struct dnsl_cache *c, const char *name, int type)
{
    struct dnsl_entry *e = find(c, name, type);
    if (e != NULL)
        return e;
    make_room(c);
    e = xcalloc(1, sizeof(*e));
    str_copy(e->name, name, sizeof(e->name));
    e->type = type;
    e->cache = c;
    c->e = xreallocarray(c->e, c->n + 1, sizeof(*c->e));
    c->e[c->n++] = e;
    struct event_base *base = dns_base(c->dns);
    e->timer = evtimer_new(base, timed_out, e);
    if (e->timer == NULL)
        fatalx("dnslists: evtimer_new failed");
    struct timeval tv = { (time_t)c->timeout, 0 };
    evtimer_add(e->timer, &tv);
    e->q = dns_lookup_raw(c->dns, name, type, answered, e);
    return e;
}

/* zone_name - "reversed-ip.zone" */
static void zone_name(const struct dnsl_check *k, const struct dnsl_zone *z, char *out, size_t sz)
{
    str_fmt(out, sz, "%s.%s", k->rev, z->zone);
}

/* value_text - Exim's $dnslist_value: the addresses, ", " between them */
static void value_text(const struct dnsl_entry *e, char *out, size_t sz)
{
    out[0] = '\0';
    for (size_t i = 0; i < e->naddrs; i++) {
        struct in_addr a = { htonl(e->addrs[i]) };
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &a, ip, sizeof(ip));
        size_t len = strlen(out);
        str_fmt(out + len, sz - len, "%s%s", i ? ", " : "", ip);
    }
}

/* report - the verdict: the check is gone, then the callback runs (with copies of what it
 * reports, so that it may start another check or free the cache) */
static void report(struct dnsl_check *k, int verdict, const struct dnsl_zone *z,
                   const struct dnsl_entry *a, const struct dnsl_entry *txt)
{
    char value[DNSL_ADDRS_MAX * 17] = "", ip[64], text[DNSL_TEXT_MAX];
    if (a != NULL)
        value_text(a, value, sizeof(value));
    str_copy(ip, k->ip, sizeof(ip));
    str_copy(text, txt ? txt->text : "", sizeof(text));
    struct dnsl_result r = { verdict, z ? z->zone : "", ip, value, text };
    struct dnsl_cache *c = k->cache;
    for (struct dnsl_check **pp = &c->checks; *pp; pp = &(*pp)->next)
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    dnsl_cb cb = k->cb;
    void *arg = k->arg;
    event_free(k->ev);
    free(k);
    cb(arg, &r);
}

/* listed_zone - a zone that lists the client: its TXT record, then the verdict; false while
 * the TXT lookup is pending */
static bool listed_zone(struct dnsl_check *k, const struct dnsl_zone *z, const struct dnsl_entry *a,
                        const char *name)
{
    struct dnsl_entry *t = lookup(k->cache, name, ns_t_txt);
    if (!t->done)
        return false;
    report(k, DNSL_LISTED, z, a, t);
    return true;
}

/* evaluate - walk the zones in list order as far as the answers allow; true when the check
 * has reported (and is gone) */
static bool evaluate(struct dnsl_check *k)
{
    for (size_t i = 0; i < k->spec->n; i++) {
        const struct dnsl_zone *z = &k->spec->zones[i];
        char name[256];
        zone_name(k, z, name, sizeof(name));
        struct dnsl_entry *a = lookup(k->cache, name, ns_t_a);
        if (!a->done)
            return false;
        if (a->st == DNS_TEMPFAIL && z->unknown == DNSL_DEFER_UNKNOWN) {
            report(k, DNSL_DEFER, z, NULL, NULL);
            return true;
        }
        if (a->st == DNS_TEMPFAIL && z->unknown == DNSL_INCLUDE_UNKNOWN) {
            report(k, DNSL_LISTED, z, NULL, NULL);
            return true;
        }
        if (a->st == DNS_OK && dnsl_values_match(z, a->addrs, a->naddrs))
            return listed_zone(k, z, a, name);
    }
    report(k, DNSL_NOT_LISTED, NULL, NULL, NULL);
    return true;
}

/* check_wake - an answer came in: look again */
static void check_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    evaluate(arg);
}

struct dnsl_check *dnsl_check_start(struct dnsl_cache *c, const struct dnsl_spec *spec,
                                    const char *ip, dnsl_cb cb, void *arg)
{
    struct dnsl_check *k = xcalloc(1, sizeof(*k));
    k->cache = c;
    k->spec = spec;
    k->cb = cb;
    k->arg = arg;
    str_copy(k->ip, ip ? ip : "", sizeof(k->ip));
    k->ev = event_new(dns_base(c->dns), -1, 0, check_wake, k);
    if (k->ev == NULL)
        fatalx("dnslists: event_new failed");
    k->next = c->checks;
    c->checks = k;
    if (!dns_reversed_ip(k->ip, k->rev, sizeof(k->rev))) {
        report(k, DNSL_NOT_LISTED, NULL, NULL, NULL);    /* no client address (a local session) */
        return NULL;
    }
    for (size_t i = 0; i < spec->n; i++) {           /* every zone at once */
        char name[256];
        zone_name(k, &spec->zones[i], name, sizeof(name));
        lookup(c, name, ns_t_a);
    }
    return evaluate(k) ? NULL : k;
}

void dnsl_check_cancel(struct dnsl_check *k)
{
    if (k == NULL)
        return;
    struct dnsl_cache *c = k->cache;
    for (struct dnsl_check **pp = &c->checks; *pp; pp = &(*pp)->next)
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    event_free(k->ev);
    free(k);
}
