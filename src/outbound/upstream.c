/* upstream.c - try the next hops in order until one accepts MAIL (see outbound/outbound.h). */
#include "outbound.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "core/core.h"

struct upstream {
    struct upstream_env env;
    const struct route_result *route;
    const struct mail_out *mail;
    unsigned timeout;
    upstream_cb cb;
    void *arg;
    size_t next_hop;
    struct tlsp_query *tq;         /* deciding the TLS requirement of the hop about to be tried */
    struct smtp_out *so;
    struct smtp_reply last;        /* copy of the last deciding reply */
    bool have_last;
    char last_text[600];
    struct event *start_ev;        /* the first attempt starts from the loop, never inline */
};

static void try_next(struct upstream *u);

/* finish - report and free; so is handed over on success */
static void finish(struct upstream *u, enum upstream_status st, struct smtp_out *so,
                   const struct next_hop *hop)
{
    struct upstream_result r;
    memset(&r, 0, sizeof(r));
    r.status = st;
    r.so = so;
    r.hop = hop;
    r.reply = u->have_last ? &u->last : NULL;
    str_copy(r.text, u->last_text[0] ? u->last_text : "no next hop available", sizeof(r.text));
    u->cb(u->arg, &r);
    if (u->have_last)
        smtp_reply_free(&u->last);
    event_free(u->start_ev);
    free(u);
}

/* remember - keep the reply or text that explains why this host did not do: text (when
 * given) describes a failure, with the reply that came with it kept beside it */
static void remember(struct upstream *u, const struct smtp_reply *r, const char *text)
{
    if (u->have_last)
        smtp_reply_free(&u->last);
    u->have_last = r != NULL;
    if (r)
        smtp_reply_copy(&u->last, r);
    if (text) {
        str_copy(u->last_text, text, sizeof(u->last_text));
    } else if (r) {
        struct sbuf line;
        sbuf_init(&line);
        smtp_reply_oneline(r, &line);
        str_copy(u->last_text, line.s ? line.s : "", sizeof(u->last_text));
        sbuf_free(&line);
    }
}

static void up_ready(void *arg, struct smtp_out *so)
{
    struct upstream *u = arg;
    smtp_out_mail(so, u->mail, NULL);
}

static void up_reply(void *arg, struct smtp_out *so, enum smtp_out_cmd cmd, void *tag,
                     const struct smtp_reply *r)
{
    struct upstream *u = arg;
    const struct next_hop *hop = smtp_out_hop(so);
    (void)tag;
    if (cmd != SOC_MAIL)
        return;
    remember(u, r, NULL);
    if (r->code >= 200 && r->code < 300) {
        u->so = NULL;
        finish(u, UP_OK, so, hop);
    } else if (r->code >= 500) {
        u->so = NULL;
        smtp_out_quit(so);
        finish(u, UP_REFUSED, NULL, hop);
    } else {                             /* 4xx: another host may take it */
        u->so = NULL;
        smtp_out_quit(so);
        try_next(u);
    }
}

static void up_failed(void *arg, struct smtp_out *so, const struct so_failure *f)
{
    struct upstream *u = arg;
    char host[320], text[600];
    smtp_out_log_host(so, host, sizeof(host));
    str_fmt(text, sizeof(text), "%s: %s", host, f->text);
    remember(u, f->reply, text);
    u->so = NULL;
    smtp_out_free(so);
    try_next(u);
}

static const struct smtp_out_cbs up_cbs = { up_ready, up_reply, up_failed, NULL };

/* hop_decided - the hop's TLS requirement is known: dial it, or move on if it is refused */
static void hop_decided(void *arg, const struct tls_req *req)
{
    struct upstream *u = arg;
    const struct conf *c = u->env.conf;
    const struct next_hop *hop = &u->route->hops[u->next_hop - 1];
    u->tq = NULL;
    if (req->refuse) {
        char host[400], text[1000];
        hop_log_text(hop, host, sizeof(host));
        str_fmt(text, sizeof(text), "H=%s: %s", host, req->why);
        remember(u, NULL, text);
        try_next(u);
        return;
    }
    struct next_hop dial = *hop;
    struct smtp_out_opts o = {
        .helo = c->helo_data ? c->helo_data : c->hostname,
        .ssl_ctx = u->env.client_tls,
        .connect_timeout = u->timeout,
        .command_timeout = u->timeout,
        .data_timeout = c->cutthrough_data_timeout,
    };
    tlsp_apply(req, &dial, &o);
    if (o.ssl_ctx == NULL && o.tls == TLS_MAY)
        o.tls = TLS_NONE;
    if (o.ssl_ctx == NULL && o.tls >= TLS_ENCRYPT) {   /* tls_outbound_ca could not be loaded */
        remember(u, NULL, "TLS required but no TLS client context");
        try_next(u);
        return;
    }
    u->so = smtp_out_new(u->env.base, &dial, &o, &up_cbs, u);
    smtp_out_connect(u->so);
}

/* try_next - decide the TLS requirement of the next hop in route order, or give up */
static void try_next(struct upstream *u)
{
    if (u->next_hop >= u->route->nhops) {
        finish(u, UP_TEMPFAIL, NULL, NULL);
        return;
    }
    const struct next_hop *hop = &u->route->hops[u->next_hop++];
    u->tq = tlsp_decide(u->env.tlsp, u->route->domain, hop, hop_decided, u);
}

static void start_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    try_next(arg);
}

struct upstream *upstream_open(const struct upstream_env *ue, const struct route_result *route,
                               const struct mail_out *mail, unsigned timeout, upstream_cb cb, void *arg)
{
    struct upstream *u = xcalloc(1, sizeof(*u));
    u->env = *ue;
    u->route = route;
    u->mail = mail;
    u->timeout = timeout ? timeout : ue->conf->callout_timeout;
    u->cb = cb;
    u->arg = arg;
    u->start_ev = event_new(ue->base, -1, 0, start_cb, u);
    event_active(u->start_ev, 0, 0);
    return u;
}

void upstream_cancel(struct upstream *u)
{
    tlsp_cancel(u->tq);
    if (u->so)
        smtp_out_free(u->so);
    if (u->have_last)
        smtp_reply_free(&u->last);
    event_free(u->start_ev);
    free(u);
}
