/* mta_sts.c - the MTA-STS policy of a recipient domain (RFC 8461 3.3 and 5.1): look up the
 * `_mta-sts` TXT record; when its id is the cached policy's (and the policy is fresh), use the
 * cache; otherwise fetch https://mta-sts.DOMAIN/.well-known/mta-sts.txt, once per domain at a
 * time however many deliveries wait for it, and cache it for its max_age.  When there is no
 * record, or the lookup or the fetch fails, a cached policy still applies while it is valid. */
#include "tls_policy_int.h"

#include <arpa/nameser.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "core/core.h"
#include "dns/dns.h"

#define STS_PATH "/.well-known/mta-sts.txt"

/* One fetch of one domain's policy, shared by the lookups waiting for it. */
struct sts_job {
    struct tlsp *t;
    struct sts_job *next;
    char domain[256];
    char host[300];               /* mta-sts.DOMAIN */
    char id[STS_ID_MAX + 1];      /* the TXT id that asked for it */
    struct dns_query *aq;
    struct sts_fetch *fx;
    struct sts_lookup *waiters;
};

struct sts_lookup {
    struct tlsp *t;
    char domain[256];
    sts_cb cb;
    void *arg;
    struct dns_query *txtq;
    struct sts_job *job;          /* waiting for this fetch */
    struct sts_lookup *next;      /* in job->waiters */
    struct sts_policy cached;     /* the cache's policy, when fresh */
    bool have_cached;
    struct sts_policy result;     /* what is reported */
    bool have_result;
    char note[400];
    struct event *report_ev;
};

/* ---- reporting ------------------------------------------------------------------------- */

static void lookup_free(struct sts_lookup *l)
{
    if (l->txtq)
        dns_cancel(l->txtq);
    event_free(l->report_ev);
    free(l);
}

static void report_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sts_lookup *l = arg;
    (void)fd;
    (void)what;
    l->cb(l->arg, l->have_result ? &l->result : NULL, l->note);
    lookup_free(l);
}

/* report - p (NULL: no policy) is the answer; the caller hears it from the loop */
static void report(struct sts_lookup *l, const struct sts_policy *p, const char *note)
{
    l->have_result = p != NULL;
    if (p)
        l->result = *p;
    str_copy(l->note, note, sizeof(l->note));
    event_active(l->report_ev, 0, 0);
}

/* report_fallback - no live policy (what says why): the cached one while it is valid, else
 * none */
static void report_fallback(struct sts_lookup *l, const char *what)
{
    char note[400];
    if (l->have_cached) {
        str_fmt(note, sizeof(note), "cached, as %s", what);
        report(l, &l->cached, note);
    } else {
        report(l, NULL, what);
    }
}

/* ---- the fetch -------------------------------------------------------------------------- */

static void job_unlink(struct sts_job *j)
{
    for (struct sts_job **pp = &j->t->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            return;
        }
}

static void job_free(struct sts_job *j)
{
    if (j->aq)
        dns_cancel(j->aq);
    if (j->fx)
        sts_fetch_cancel(j->fx);
    free(j);
}

/* job_done - every waiter gets the fetched policy, or its own fallback */
static void job_done(struct sts_job *j, const struct sts_policy *p, const char *err)
{
    char what[400];
    if (p == NULL) {
        str_fmt(what, sizeof(what), "the fetch from %s failed: %s", j->host, err);
        log_main("MTA-STS policy of %s: %s", j->domain, what);
    } else {
        log_main("MTA-STS policy of %s fetched: id=%s mode=%s max_age=%u", j->domain, p->id,
                 sts_mode_name(p->mode), (unsigned)p->max_age);
        sts_cache_put(j->t->hints, j->domain, p);
    }
    job_unlink(j);
    for (struct sts_lookup *l = j->waiters, *next; l; l = next) {
        next = l->next;
        l->job = NULL;
        l->next = NULL;
        if (p)
            report(l, p, "");
        else
            report_fallback(l, what);
    }
    j->waiters = NULL;
    job_free(j);
}

static void fetched(void *arg, const char *body, size_t len, const char *err)
{
    struct sts_job *j = arg;
    struct sts_policy p;
    char why[200];
    j->fx = NULL;
    if (body == NULL) {
        job_done(j, NULL, err);
    } else if (!sts_parse_policy(body, len, &p, why, sizeof(why))) {
        char text[300];
        str_fmt(text, sizeof(text), "invalid policy: %s", why);
        job_done(j, NULL, text);
    } else {
        str_copy(p.id, j->id, sizeof(p.id));
        p.fetched = (int64_t)time(NULL);
        job_done(j, &p, NULL);
    }
}

/* host_found - the policy host's addresses: fetch from them */
static void host_found(void *arg, enum dns_status st, enum dns_security sec,
                       const struct sockaddr_storage *addrs, size_t n)
{
    struct sts_job *j = arg;
    (void)sec;
    j->aq = NULL;
    if (st != DNS_OK || n == 0) {
        char err[200];
        str_fmt(err, sizeof(err), "no address (%s)", dns_status_name(st));
        job_done(j, NULL, err);
        return;
    }
    if (j->t->fetcher == NULL) {
        unsigned timeout = j->t->conf->callout_timeout;
        if (timeout == 0 || timeout > STS_FETCH_TIMEOUT)
            timeout = STS_FETCH_TIMEOUT;
        j->t->fetcher = sts_fetcher_new(j->t->base, j->t->conf->tls_outbound_ca, timeout);
    }
    j->fx = sts_fetch_start(j->t->fetcher, j->host, STS_PATH, addrs, n, fetched, j);
}

/* join_job - wait for the fetch of l's domain, starting it if none is under way */
static void join_job(struct sts_lookup *l, const char *id)
{
    struct sts_job *j = l->t->jobs;
    while (j && strcmp(j->domain, l->domain) != 0)
        j = j->next;
    if (j == NULL) {
        j = xcalloc(1, sizeof(*j));
        j->t = l->t;
        str_copy(j->domain, l->domain, sizeof(j->domain));
        str_fmt(j->host, sizeof(j->host), "mta-sts.%s", l->domain);
        str_copy(j->id, id, sizeof(j->id));
        j->next = l->t->jobs;
        l->t->jobs = j;
        j->aq = dns_lookup_addr(l->t->dns, j->host, host_found, j);
    }
    l->job = j;
    l->next = j->waiters;
    j->waiters = l;
}

/* ---- the TXT record --------------------------------------------------------------------- */

/* txt_id - the id of the one STSv1 record among the TXT records; "" (and why) if none */
static void txt_id(const struct dns_txt *txt, size_t n, char id[STS_ID_MAX + 1], const char **why)
{
    size_t sts = 0, which = 0;
    id[0] = '\0';
    for (size_t i = 0; i < n; i++)
        if (sts_txt_is_sts(txt[i].text, txt[i].len)) {
            sts++;
            which = i;
        }
    if (sts == 0)
        *why = "no _mta-sts TXT record";
    else if (sts > 1)
        *why = "more than one _mta-sts TXT record";
    else if (txt[which].truncated || !sts_parse_txt(txt[which].text, txt[which].len, id))
        *why = "an invalid _mta-sts TXT record";
}

static void txt_answer(void *arg, enum dns_status st, enum dns_security sec,
                       const unsigned char *pkt, size_t len)
{
    struct sts_lookup *l = arg;
    struct dns_txt txt[DNS_TXT_MAX];
    size_t n = 0;
    char id[STS_ID_MAX + 1] = "";
    const char *why = "no _mta-sts TXT record";
    (void)sec;
    l->txtq = NULL;
    if (st == DNS_OK)
        st = dns_parse_txt(pkt, len, txt, DNS_TXT_MAX, &n);
    if (st == DNS_TEMPFAIL)
        why = "the _mta-sts TXT lookup failed";
    else if (st == DNS_OK)
        txt_id(txt, n, id, &why);
    int64_t now = (int64_t)time(NULL);
    l->have_cached = sts_cache_get(l->t->hints, l->domain, &l->cached) &&
                     sts_policy_fresh(&l->cached, now);
    if (id[0] == '\0')
        report_fallback(l, why);
    else if (l->have_cached && strcmp(l->cached.id, id) == 0 && now - l->cached.fetched < STS_REFRESH)
        report(l, &l->cached, "");
    else
        join_job(l, id);
}

struct sts_lookup *sts_lookup_start(struct tlsp *t, const char *domain, sts_cb cb, void *arg)
{
    char name[300];
    struct sts_lookup *l = xcalloc(1, sizeof(*l));
    l->t = t;
    l->cb = cb;
    l->arg = arg;
    str_copy(l->domain, domain, sizeof(l->domain));
    str_lower(l->domain);
    l->report_ev = event_new(t->base, -1, 0, report_cb, l);
    if (l->report_ev == NULL)
        fatalx("mta-sts: cannot create an event");
    str_fmt(name, sizeof(name), "_mta-sts.%s", l->domain);
    l->txtq = dns_lookup_raw(t->dns, name, ns_t_txt, txt_answer, l);
    return l;
}

void sts_lookup_cancel(struct sts_lookup *l)
{
    if (l == NULL)
        return;
    if (l->job) {
        for (struct sts_lookup **pp = &l->job->waiters; *pp; pp = &(*pp)->next)
            if (*pp == l) {
                *pp = l->next;
                break;
            }
    }
    lookup_free(l);
}

void sts_jobs_free(struct tlsp *t)
{
    while (t->jobs) {
        struct sts_job *j = t->jobs;
        t->jobs = j->next;
        for (struct sts_lookup *l = j->waiters; l; l = l->next)
            l->job = NULL;
        job_free(j);
    }
}
