/* dial.c - one dial (see outbound/outbound.h): walk a route's hosts in order; skip those in
 * their retry window (host_health), have tls_policy decide each one's TLS requirement, reuse a
 * pooled connection made under the same requirement after an RSET, or take a lease under the
 * per-host limit (waiting as the use allows) and connect.  The outcome goes to the caller from
 * the loop: a ready connection, or why none could be had. */
#include "dialer_int.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "core/core.h"
#include "store/store.h"

struct dial {
    struct dialer *dr;
    const struct route_result *route;
    struct dial_req req;
    dial_cb cb;
    void *arg;
    size_t i;                       /* the hop being tried */
    bool in_check, checked, may_try;
    struct tlsp_query *tq;          /* deciding its TLS requirement */
    struct tls_req *treq;           /* ... decided */
    struct next_hop hop_dial;       /* the hop as dialled: its tls from the decision */
    struct smtp_out *so;            /* connecting, or being checked: ours until reported */
    bool reused;
    struct limit_wait *wait;
    struct event *report_ev;
    struct dial_result res;
    struct smtp_reply last_reply;   /* the reply that came with the last failure */
    bool have_last_reply;
};

static void step(struct dial *d);
static void try_pool(struct dial *d);


static const struct next_hop *cur_hop(const struct dial *d)
{
    return &d->route->hops[d->i];
}

static void report_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dial *d = arg;
    (void)fd;
    (void)what;
    struct dial_result r = d->res;
    r.reply = d->have_last_reply ? &d->last_reply : NULL;
    d->cb(d->arg, &r);   /* may free d */
}

/* report - the outcome goes to the caller from the loop */
static void report(struct dial *d, enum dial_status st)
{
    d->res.status = st;
    if (st == DIAL_OK) {
        d->res.so = d->so;
        d->res.hop = cur_hop(d);
        d->res.reused = d->reused;
        d->so = NULL;
    } else {
        d->res.so = NULL;
    }
    event_active(d->report_ev, EV_TIMEOUT, 0);
}

/* remember - why the current host did not do, for the report if no host does */
static void remember(struct dial *d, const struct so_failure *f, const char *host)
{
    if (d->have_last_reply)
        smtp_reply_free(&d->last_reply);
    d->have_last_reply = f->reply != NULL;
    if (f->reply)
        smtp_reply_copy(&d->last_reply, f->reply);
    d->res.fail_kind = f->kind;
    d->res.sys_errno = f->sys_errno;
    str_fmt(d->res.text, sizeof(d->res.text), "%s: %s", host, f->text);
    str_copy(d->res.why, f->text, sizeof(d->res.why));
    str_copy(d->res.host, host[0] == 'H' && host[1] == '=' ? host + 2 : host, sizeof(d->res.host));
}

/* next_host - the current host did not do: on to the next one */
static void next_host(struct dial *d)
{
    d->i++;
    step(d);
}

/* all_failed - no host gave a connection: say why (a failure beats a limit beats a retry wait) */
static void all_failed(struct dial *d)
{
    if (d->res.tried > 0) {
        report(d, DIAL_FAILED);
    } else if (d->res.busy > 0) {
        str_copy(d->res.text, "connection limit (callout_max_per_host) reached for every host",
                 sizeof(d->res.text));
        report(d, DIAL_LIMIT);
    } else {
        if (strncmp(d->res.text, "retry time not reached", 22) != 0)   /* else it says why */
            str_copy(d->res.text, d->route->nhops ? "retry time not reached for any host"
                                                  : "no next hop", sizeof(d->res.text));
        report(d, d->route->nhops ? DIAL_RETRY_WAIT : DIAL_FAILED);
    }
}

static void dial_ready(void *arg, struct smtp_out *so)
{
    struct dial *d = arg;
    (void)so;
    report(d, DIAL_OK);
}

static void dial_failed(void *arg, struct smtp_out *so, const struct so_failure *f)
{
    struct dial *d = arg;
    char host[320];
    smtp_out_log_host(so, host, sizeof(host));
    remember(d, f, host);
    d->res.hop = cur_hop(d);
    smtp_out_free(so);
    d->so = NULL;
    next_host(d);
}

static const struct smtp_out_cbs dial_cbs = { dial_ready, NULL, dial_failed, NULL };

/* connect_hop - a new connection to the current host under lease */
static void connect_hop(struct dial *d, int lease)
{
    struct smtp_out_opts o;
    dialer_opts(d->dr, cur_hop(d), &d->req, d->treq, &d->hop_dial, &o);
    if (o.ssl_ctx == NULL && o.tls >= TLS_ENCRYPT) {
        host_limit_release(d->dr->limit, lease);
        str_copy(d->res.text, "TLS required but no TLS client context", sizeof(d->res.text));
        d->res.fail_kind = SOF_TLS;
        d->res.tried++;
        next_host(d);
        return;
    }
    d->res.tried++;
    d->reused = false;
    d->so = smtp_out_new(d->dr->base, &d->hop_dial, &o, &dial_cbs, d);
    dialer_watch(d->dr, d->so, &d->hop_dial, lease);
    smtp_out_connect(d->so);
}

static void on_lease(void *arg, int lease)
{
    struct dial *d = arg;
    d->wait = NULL;
    if (lease == LEASE_FULL) {
        d->res.busy++;
        next_host(d);
    } else {
        connect_hop(d, lease);
    }
}

/* try_lease - a lease under the per-host limit, waiting for one if the use allows */
static void try_lease(struct dial *d)
{
    char key[80];
    hop_addr_key(cur_hop(d), key, sizeof(key));
    int lease = host_limit_try(d->dr->limit, key);
    if (lease != LEASE_FULL) {
        connect_hop(d, lease);
        return;
    }
    struct smtp_out_opts o;
    struct next_hop dial;
    dialer_opts(d->dr, cur_hop(d), &d->req, d->treq, &dial, &o);
    unsigned wait = d->req.use == DIAL_DELIVERY ? o.connect_timeout : o.command_timeout;
    if (d->req.use == DIAL_CUTTHROUGH && wait > DIAL_CUT_LIMIT_WAIT)
        wait = DIAL_CUT_LIMIT_WAIT;   /* a client waits: then what tandem knows answers */
    d->wait = host_limit_wait(d->dr->limit, key, wait, on_lease, d);
}

/* check_reply - the RSET that checks a pooled connection */
static void check_reply(void *arg, struct smtp_out *so, enum smtp_out_cmd cmd, void *tag,
                        const struct smtp_reply *r)
{
    struct dial *d = arg;
    struct dconn *dc = smtp_out_watcher(so);
    (void)tag;
    if (cmd != SOC_RSET)
        return;
    if (r->code >= 200 && r->code < 300) {
        dc->checking = false;
        d->res.tried++;
        metric_inc(M_ONWARD_REUSED);
        if (d->treq)               /* this use's view of the TLS requirement, for its log lines */
            smtp_out_set_auth(so, d->treq->auth, d->treq->show_auth);
        report(d, DIAL_OK);
        return;
    }
    smtp_out_free(so);             /* stale: not the host's fault; its lease goes back */
    d->so = NULL;
    try_pool(d);
}

static void check_failed(void *arg, struct smtp_out *so, const struct so_failure *f)
{
    struct dial *d = arg;
    (void)f;
    smtp_out_free(so);
    d->so = NULL;
    try_pool(d);
}

static const struct smtp_out_cbs check_cbs = { NULL, check_reply, check_failed, NULL };

/* try_pool - an idle connection to the current host, checked with RSET; else a new one */
static void try_pool(struct dial *d)
{
    char key[400];
    struct smtp_out_opts o;
    struct next_hop dial;
    dialer_opts(d->dr, cur_hop(d), &d->req, d->treq, &dial, &o);
    dialer_pool_key(&dial, key, sizeof(key));   /* made under the same TLS requirement */
    struct smtp_out *so = conn_pool_take(d->dr->pool, key);
    struct dconn *dc = so ? smtp_out_watcher(so) : NULL;
    if (so == NULL || dc == NULL) {
        if (so)
            smtp_out_quit(so);
        try_lease(d);
        return;
    }
    dc->idle = false;
    dc->checking = true;
    host_limit_set_idle(d->dr->limit, dc->lease, false);
    smtp_out_set_timeouts(so, o.command_timeout, o.data_timeout);
    d->so = so;
    d->reused = true;
    smtp_out_set_cbs(so, &check_cbs, d);
    smtp_out_rset(so, NULL);
}

/* forget_tls - the current host's TLS decision is no longer needed */
static void forget_tls(struct dial *d)
{
    tlsp_cancel(d->tq);
    d->tq = NULL;
    tls_req_free(d->treq);
    d->treq = NULL;
}

/* on_tls - the host's TLS requirement is decided: dial it, unless it is refused */
static void on_tls(void *arg, const struct tls_req *req)
{
    struct dial *d = arg;
    d->tq = NULL;
    if (req->refuse) {
        char host[400];
        hop_log_text(cur_hop(d), host, sizeof(host));
        str_fmt(d->res.text, sizeof(d->res.text), "H=%s: %s", host, req->why);
        str_copy(d->res.why, req->why, sizeof(d->res.why));
        str_copy(d->res.host, host, sizeof(d->res.host));
        d->res.fail_kind = SOF_TLS;
        d->res.sys_errno = 0;
        d->res.tls_refused = true;
        d->res.hop = cur_hop(d);
        d->res.tried++;
        next_host(d);
        return;
    }
    d->treq = tls_req_dup(req);
    try_pool(d);
}

/* decide_tls - have tls_policy decide the current host's TLS requirement (without one, the
 * hop's policy as written) */
static void decide_tls(struct dial *d)
{
    forget_tls(d);
    if (d->dr->tlsp == NULL) {
        struct tls_req req = { .tls = cur_hop(d)->tls };
        on_tls(d, &req);
        return;
    }
    d->tq = tlsp_decide(d->dr->tlsp, d->route->domain, cur_hop(d), on_tls, d);
}

/* on_health - the host's health record answered */
static void on_health(void *arg, bool may_try, const struct host_health *h)
{
    struct dial *d = arg;
    d->checked = true;
    d->may_try = may_try;
    if (!may_try && h->last_error[0] && d->res.tried == 0) {
        char host[400];
        hop_log_text(cur_hop(d), host, sizeof(host));
        str_fmt(d->res.text, sizeof(d->res.text), "retry time not reached for any host (H=%s: %s)",
                host, h->last_error);
    }
    if (d->in_check)
        return;                 /* step goes on */
    if (may_try) {
        decide_tls(d);
    } else {
        d->res.skipped++;
        next_host(d);
    }
}

/* step - the next host not in its retry window */
static void step(struct dial *d)
{
    while (d->i < d->route->nhops) {
        struct smtp_out_opts o;
        struct next_hop dial;
        dialer_opts(d->dr, cur_hop(d), &d->req, NULL, &dial, &o);
        d->in_check = true;
        d->checked = false;
        health_check(d->dr->hints, cur_hop(d), d->req.ignore_retry,
                     o.connect_timeout + 2 * o.command_timeout, on_health, d);
        d->in_check = false;
        if (!d->checked)
            return;             /* the backend answers later */
        if (d->may_try) {
            decide_tls(d);
            return;
        }
        d->res.skipped++;
        d->i++;
    }
    all_failed(d);
}

struct dial *dial_start(struct dialer *dr, const struct route_result *route, const struct dial_req *req,
                        dial_cb cb, void *arg)
{
    struct dial *d = xcalloc(1, sizeof(*d));
    d->dr = dr;
    d->route = route;
    d->req = *req;
    d->cb = cb;
    d->arg = arg;
    d->report_ev = event_new(dr->base, -1, 0, report_cb, d);
    if (d->report_ev == NULL)
        fatalx("dialer: cannot create an event");
    step(d);
    return d;
}

void dial_next(struct dial *d)
{
    d->res.so = NULL;
    next_host(d);
}

void dial_free(struct dial *d)
{
    if (d == NULL)
        return;
    host_limit_cancel(d->wait);
    forget_tls(d);
    if (d->so)
        smtp_out_free(d->so);
    if (d->have_last_reply)
        smtp_reply_free(&d->last_reply);
    event_free(d->report_ev);
    free(d);
}
