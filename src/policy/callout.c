/* callout.c - verify an address by asking its next hop (see policy/policy.h): the cache first,
 * then the dialer's connection (which keeps the per-host limit), MAIL, RCPT; the answer is
 * cached by the "knows why" rule and the connection is RSET and pooled. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <event2/event.h>

#include "policy.h"
#include "conf/conf.h"
#include "core/core.h"
#include "smtp/smtp.h"

struct callout {
    struct callout_env env;
    struct callout_req req;
    char address[ADDR_PATH_MAX + 1];
    char sender[ADDR_PATH_MAX + 1];
    char domain[ADDR_DOMAIN_MAX + 1];
    char random_addr[ADDR_PATH_MAX + 1];
    char host[256];                  /* the cache key's next hop: route_hops_name */
    const struct route_result *route;
    callout_cb cb;
    void *arg;
    struct mail_out mail;
    struct upstream *up;
    struct smtp_out *so;
    struct event *ev;                /* start and completion run from the loop */
    struct callout_outcome out;
    bool done;
};

static void co_reply(void *arg, struct smtp_out *so, enum smtp_out_cmd cmd, void *tag,
                     const struct smtp_reply *r);
static void co_failed(void *arg, struct smtp_out *so, const struct so_failure *f);
static const struct smtp_out_cbs co_cbs = { NULL, co_reply, co_failed, NULL };

enum { TAG_RANDOM = 1, TAG_REAL = 2 };

/* finish_cb - report from the loop, then free */
static void finish_cb(evutil_socket_t fd, short what, void *arg)
{
    struct callout *c = arg;
    (void)fd;
    (void)what;
    c->cb(c->arg, &c->out);
    event_free(c->ev);
    free(c);
}

/* finish - release the connection; the caller's callback runs next loop turn */
static void finish(struct callout *c, enum verify_result res)
{
    c->out.result = res;
    c->done = true;
    if (c->so) {
        dialer_recycle(c->env.dialer, c->so);   /* RSET, then it can serve again */
        c->so = NULL;
    }
    event_active(c->ev, 0, 0);
}

/* reply_text - "CODE ECODE line1\nline2" for the client, and a one-liner for logs */
static void set_reply(struct callout *c, const struct smtp_reply *r)
{
    struct sbuf one;
    sbuf_init(&one);
    smtp_reply_oneline(r, &one);
    str_fmt(c->out.reply, sizeof(c->out.reply), "%d %s %s", r->code,
            r->ecode[0] ? r->ecode : (r->code >= 500 ? "5.0.0" : "4.0.0"), r->text.s ? r->text.s : "");
    str_copy(c->out.log, one.s ? one.s : "", sizeof(c->out.log));
    sbuf_free(&one);
}

/* cache_store - remember the result of a callout (never policy or temporary refusals) */
static void cache_store(struct callout *c, enum cc_kind kind, const char *key, const struct smtp_reply *r)
{
    if (!c->req.opts.no_cache)
        cc_learn(c->env.hints, dialer_conf(c->env.dialer), kind, key, c->host, r);
}

/* real_reply - the next hop's answer for the address itself */
static void real_reply(struct callout *c, const struct smtp_reply *r)
{
    c->out.rcpt_code = r->code;
    set_reply(c, r);
    if (r->code >= 200 && r->code < 300) {
        if (!c->out.accept_all)
            cache_store(c, CC_ADDRESS, c->address, r);
        finish(c, VERIFY_OK);
    } else if (r->code >= 500) {
        cache_store(c, CC_ADDRESS, c->address, r);
        finish(c, VERIFY_FAIL);
    } else {
        finish(c, VERIFY_DEFER);
    }
}

/* random_reply - a next hop that accepts a made-up local part accepts everything at RCPT */
static void random_reply(struct callout *c, const struct smtp_reply *r)
{
    if (r->code >= 200 && r->code < 300) {
        c->out.accept_all = true;
        set_reply(c, r);
        cache_store(c, CC_DOMAIN_ACCEPT_ALL, c->domain, r);
        finish(c, VERIFY_OK);
        return;
    }
    smtp_out_rcpt(c->so, c->address, 0, NULL, (void *)(intptr_t)TAG_REAL);
}

static void co_reply(void *arg, struct smtp_out *so, enum smtp_out_cmd cmd, void *tag,
                     const struct smtp_reply *r)
{
    struct callout *c = arg;
    (void)so;
    if (cmd != SOC_RCPT || c->done)
        return;
    if ((intptr_t)tag == TAG_RANDOM)
        random_reply(c, r);
    else
        real_reply(c, r);
}

static void co_failed(void *arg, struct smtp_out *so, const struct so_failure *f)
{
    struct callout *c = arg;
    char host[320];
    smtp_out_log_host(so, host, sizeof(host));
    smtp_out_free(so);
    c->so = NULL;
    if (c->done)
        return;
    str_fmt(c->out.log, sizeof(c->out.log), "%s: %s", host, f->text);
    str_copy(c->out.reply, "451 4.4.3 Could not complete recipient verify callout", sizeof(c->out.reply));
    finish(c, VERIFY_DEFER);
}

/* random_local_part - a local part no real mailbox has */
static void make_random_addr(struct callout *c)
{
    unsigned char rnd[8];
    char hex[17];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        memset(rnd, 0x5a, sizeof(rnd));
    for (int i = 0; i < 8; i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    str_fmt(c->random_addr, sizeof(c->random_addr), "tandem-verify-%s@%s", hex, c->domain);
}

/* upstream_done - a next hop took our MAIL (or none did) */
static void upstream_done(void *arg, const struct upstream_result *r)
{
    struct callout *c = arg;
    c->up = NULL;
    str_copy(c->out.log, r->text, sizeof(c->out.log));
    if (r->status == UP_REFUSED) {
        set_reply(c, r->reply);
        finish(c, VERIFY_FAIL);   /* not cached: a sender refusal says nothing of the address */
        return;
    }
    if (r->status == UP_TEMPFAIL) {
        str_copy(c->out.reply, "451 4.4.3 Could not complete recipient verify callout",
                 sizeof(c->out.reply));
        finish(c, VERIFY_DEFER);
        return;
    }
    c->so = r->so;
    smtp_out_set_cbs(c->so, &co_cbs, c);
    if (c->req.opts.random) {
        make_random_addr(c);
        smtp_out_rcpt(c->so, c->random_addr, 0, NULL, (void *)(intptr_t)TAG_RANDOM);
    } else {
        smtp_out_rcpt(c->so, c->address, 0, NULL, (void *)(intptr_t)TAG_REAL);
    }
}

/* ask - connect (the dialer keeps the per-host limit, waiting for a slot) and send MAIL */
static void ask(struct callout *c)
{
    struct dial_req req = { DIAL_CALLOUT, c->req.opts.timeout, false };
    c->mail.sender = c->sender;
    c->up = upstream_open(c->env.dialer, c->route, &c->mail, &req, upstream_done, c);
}

/* from_cache - answer from the cache if it knows; true if it did */
static bool from_cache(struct callout *c)
{
    if (c->req.opts.no_cache || !callout_cached(c->env.hints, c->address, c->route, c->req.opts.random,
                                                &c->out))
        return false;
    finish(c, c->out.result);
    return true;
}

bool callout_cached(struct hints *h, const char *address, const struct route_result *route,
                    bool random, struct callout_outcome *out)
{
    struct cc_entry e;
    char host[256], local[ADDR_PATH_MAX + 1], domain[ADDR_DOMAIN_MAX + 1];
    if (h == NULL || !addr_split(address, local, sizeof(local), domain, sizeof(domain)))
        return false;
    route_hops_name(route, host, sizeof(host));
    memset(out, 0, sizeof(*out));
    if (random && cc_get(h, CC_DOMAIN_ACCEPT_ALL, domain, host, &e))
        out->accept_all = true;
    else if (!cc_get(h, CC_ADDRESS, address, host, &e)) {
        metric_inc(M_CALLOUT_CACHE_MISS);
        return false;
    }
    metric_inc(M_CALLOUT_CACHE_HIT);
    out->from_cache = true;
    str_copy(out->log, e.reason, sizeof(out->log));
    out->result = e.result == CC_ACCEPTED ? VERIFY_OK : VERIFY_FAIL;
    if (out->result == VERIFY_FAIL)
        str_copy(out->reply, e.reason, sizeof(out->reply));
    return true;
}

static void start_cb(evutil_socket_t fd, short what, void *arg)
{
    struct callout *c = arg;
    (void)fd;
    (void)what;
    event_free(c->ev);
    c->ev = event_new(dialer_base(c->env.dialer), -1, 0, finish_cb, c);
    if (c->route->nhops == 0) {
        str_copy(c->out.reply, "451 4.4.3 Could not complete recipient verify callout", sizeof(c->out.reply));
        str_copy(c->out.log, "no next hop", sizeof(c->out.log));
        finish(c, VERIFY_DEFER);
        return;
    }
    if (from_cache(c))
        return;
    ask(c);
}

struct callout *callout_start(const struct callout_env *ce, const struct callout_req *req,
                              const struct route_result *route, callout_cb cb, void *arg)
{
    struct callout *c = xcalloc(1, sizeof(*c));
    char local[ADDR_PATH_MAX + 1];
    c->env = *ce;
    c->req = *req;
    str_copy(c->address, req->address, sizeof(c->address));
    str_copy(c->sender, req->sender, sizeof(c->sender));
    c->req.address = c->address;
    c->req.sender = c->sender;
    addr_split(c->address, local, sizeof(local), c->domain, sizeof(c->domain));
    c->route = route;
    route_hops_name(route, c->host, sizeof(c->host));
    c->cb = cb;
    c->arg = arg;
    c->ev = event_new(dialer_base(ce->dialer), -1, 0, start_cb, c);
    event_active(c->ev, 0, 0);
    return c;
}

void callout_cancel(struct callout *c)
{
    upstream_cancel(c->up);
    if (c->so)
        smtp_out_free(c->so);
    event_free(c->ev);
    free(c);
}
