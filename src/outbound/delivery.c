/* delivery.c - one delivery attempt of one message: route every pending recipient's domain,
 * put recipients whose domains have the same next hops into one group, run the groups (a few
 * at a time), and report a result per recipient.  Routing failures are decided here; the
 * SMTP side is delivery_txn.c. */
#include "delivery_int.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/core.h"

static void finish(struct dlv *d);

/* domain_of - the recipient's domain, or NULL when the address is unusable on the wire */
static const char *domain_of(const char *addr)
{
    const char *at = strrchr(addr, '@');
    if (at == NULL || at[1] == '\0' || at == addr || strlen(at + 1) > 255)
        return NULL;
    for (const char *p = addr; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return NULL;
    return at + 1;
}

/* domain_index - the domain's slot, added when new (case-insensitive) */
static size_t domain_index(struct dlv *d, const char *name)
{
    for (size_t i = 0; i < d->ndomains; i++)
        if (str_ieq(d->domains[i].name, name))
            return i;
    struct dlv_domain *dom = &d->domains[d->ndomains];
    dom->d = d;
    str_copy(dom->name, name, sizeof(dom->name));
    str_lower(dom->name);
    return d->ndomains++;
}

/* route_verdict - a recipient whose domain could not be routed */
static void route_verdict(struct dlv *d, size_t i, const struct route_result *res)
{
    int code;
    const char *ecode;
    route_status_reply(res->status, &code, &ecode);
    struct dlv_verdict v = { .outcome = code >= 500 ? DLV_FAILED : DLV_DEFERRED, .code = code,
                             .ecode = ecode, .text = res->error, .errnum = DLV_ERRNO_DNSDEFER,
                             .routing = true };
    dlv_decide(d, i, &v);
}

/* start_txns - keep up to DLV_PARALLEL groups running */
static void start_txns(struct dlv *d)
{
    while (d->txns_running < DLV_PARALLEL && d->next_txn < d->ntxns) {
        d->txns_running++;
        dlv_txn_start(d->txns[d->next_txn++]);
    }
    if (d->txns_running == 0 && d->next_txn == d->ntxns)
        finish(d);
}

void dlv_txn_finished(struct dlv_txn *t)
{
    struct dlv *d = t->d;
    d->txns_running--;
    start_txns(d);
}

/* new_txn - a group for the domains whose hops key equals dom's */
static void new_txn(struct dlv *d, struct dlv_domain *dom)
{
    struct dlv_txn *t = xcalloc(1, sizeof(*t));
    t->d = d;
    t->res = dom->res;
    t->rcpts = xcalloc(d->env->nrcpts, sizeof(*t->rcpts));
    for (size_t i = 0; i < d->env->nrcpts; i++) {
        size_t di = d->rcpt_domain[i];
        if (di == SIZE_MAX || dlv_decided(d, i) || d->domains[di].res->status != ROUTE_OK ||
            strcmp(d->domains[di].key, dom->key) != 0)
            continue;
        t->rcpts[t->nrcpts++] = i;
        d->domains[di].grouped = true;
    }
    d->txns[d->ntxns++] = t;
}

/* group_and_run - every domain is routed: form the groups and start them */
static void group_and_run(struct dlv *d)
{
    d->txns = xcalloc(d->ndomains ? d->ndomains : 1, sizeof(*d->txns));
    for (size_t i = 0; i < d->ndomains; i++) {
        struct dlv_domain *dom = &d->domains[i];
        if (dom->res->status == ROUTE_OK && !dom->grouped)
            new_txn(d, dom);
    }
    start_txns(d);
}

static void on_route(void *arg, struct route_result *res)
{
    struct dlv_domain *dom = arg;
    struct dlv *d = dom->d;
    dom->rq = NULL;
    dom->res = res;
    if (res->status == ROUTE_OK) {
        route_hops_key(res, dom->key, sizeof(dom->key));
    } else {
        for (size_t i = 0; i < d->env->nrcpts; i++)
            if (d->rcpt_domain[i] == (size_t)(dom - d->domains))
                route_verdict(d, i, res);
    }
    if (--d->routes_pending == 0)
        group_and_run(d);
}

/* on_done - report from the loop, then free everything */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
    struct dlv *d = arg;
    (void)fd;
    (void)what;
    d->cb(d->arg, d->results);
    for (size_t i = 0; i < d->ntxns; i++) {
        free(d->txns[i]->rcpts);
        free(d->txns[i]->batch);
        free(d->txns[i]->batch_ok);
        free(d->txns[i]);
    }
    free(d->txns);
    for (size_t i = 0; i < d->ndomains; i++) {
        route_cancel(d->domains[i].rq);
        route_result_free(d->domains[i].res);
    }
    free(d->domains);
    free(d->rcpt_domain);
    free(d->results);
    event_free(d->done_ev);
    free(d);
}

static void finish(struct dlv *d)
{
    event_active(d->done_ev, EV_TIMEOUT, 0);
}

/* classify - recipients to attempt: a domain each, or a failure for unusable addresses */
static void classify(struct dlv *d, const bool *attempt)
{
    for (size_t i = 0; i < d->env->nrcpts; i++) {
        d->rcpt_domain[i] = SIZE_MAX;
        if (!attempt[i] || d->env->rcpts[i].state != RCPT_PENDING)
            continue;
        const char *dom = domain_of(d->env->rcpts[i].addr);
        if (dom == NULL) {
            struct dlv_verdict v = { .outcome = DLV_FAILED, .code = 550, .ecode = "5.1.3",
                                     .text = "bad recipient address syntax", .routing = true };
            dlv_decide(d, i, &v);
            continue;
        }
        d->rcpt_domain[i] = domain_index(d, dom);
    }
}

void delivery_start(const struct delivery_env *de, const struct envelope *env, const bool *attempt,
                    bool ignore_retry, delivery_final_cb final_cb, delivery_done_cb cb,
                    void *arg)
{
    struct dlv *d = xcalloc(1, sizeof(*d));
    size_t n = env->nrcpts ? env->nrcpts : 1;
    d->de = de;
    d->env = env;
    d->ignore_retry = ignore_retry;
    d->final_cb = final_cb;
    d->cb = cb;
    d->arg = arg;
    d->results = xcalloc(n, sizeof(*d->results));
    d->rcpt_domain = xcalloc(n, sizeof(*d->rcpt_domain));
    d->domains = xcalloc(n, sizeof(*d->domains));
    d->done_ev = event_new(de->base, -1, 0, on_done, d);
    if (d->done_ev == NULL)
        fatalx("delivery: cannot create an event");
    classify(d, attempt);
    d->routes_pending = d->ndomains;
    if (d->ndomains == 0) {
        finish(d);
        return;
    }
    for (size_t i = 0; i < d->ndomains; i++)
        d->domains[i].rq = route_resolve(de->dns, de->conf, d->domains[i].name, on_route,
                                         &d->domains[i]);
}
