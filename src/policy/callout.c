/* callout.c - verify an address by asking its next hop (see policy/policy.h). */
#include "callout_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <event2/event.h>

#include "policy.h"
#include "conf/conf.h"
#include "core/core.h"

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

/* finish - release the connection and the slot; the caller's callback runs next loop turn */
static void finish(struct callout *c, enum verify_result res)
{
    c->out.result = res;
    c->done = true;
    if (c->so) {
        if (c->req.keep && res == VERIFY_OK) {
            c->out.kept = c->so;   /* callbacks stay ours until the caller takes it */
        } else {
            smtp_out_quit(c->so);
        }
        c->so = NULL;
    }
    if (c->holding_slot && c->env.limiter)
        callout_limit_release(c->env.limiter, c->host);
    c->holding_slot = false;
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
static void cache_store(struct callout *c, enum cc_kind kind, const char *key, bool ok,
                        const struct smtp_reply *r)
{
    const struct conf *conf = c->env.up.conf;
    struct cc_entry e;
    if (c->env.hints == NULL || c->req.opts.no_cache)
        return;
    if (!ok && !cc_is_mailbox_refusal(r->code, r->ecode))
        return;
    memset(&e, 0, sizeof(e));
    e.kind = kind;
    str_copy(e.key, key, sizeof(e.key));
    str_copy(e.host, c->host, sizeof(e.host));
    e.result = ok ? CC_ACCEPTED : CC_REFUSED;
    e.expires = time(NULL) + (ok ? conf->callout_cache_positive : conf->callout_cache_negative);
    str_copy(e.reason, c->out.log, sizeof(e.reason));
    cc_put(c->env.hints, &e);
}

/* real_reply - the next hop's answer for the address itself */
static void real_reply(struct callout *c, const struct smtp_reply *r)
{
    c->out.rcpt_code = r->code;
    set_reply(c, r);
    if (r->code >= 200 && r->code < 300) {
        if (!c->out.accept_all)
            cache_store(c, CC_ADDRESS, c->address, true, r);
        finish(c, VERIFY_OK);
    } else if (r->code >= 500) {
        cache_store(c, CC_ADDRESS, c->address, false, r);
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
        cache_store(c, CC_DOMAIN_ACCEPT_ALL, c->domain, true, r);
        if (!c->req.keep) {
            finish(c, VERIFY_OK);
            return;
        }
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
    if (c->out.kept == so)
        c->out.kept = NULL;        /* died before the caller took it */
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

/* callout_proceed - we hold a slot for this next hop: connect */
void callout_proceed(struct callout *c)
{
    c->holding_slot = true;
    c->mail.sender = c->sender;
    c->up = upstream_open(&c->env.up, c->route, &c->mail, c->req.opts.timeout, upstream_done, c);
}

/* from_cache - answer from the cache if it knows; true if it did */
static bool from_cache(struct callout *c)
{
    struct cc_entry e;
    if (c->env.hints == NULL || c->req.opts.no_cache)
        return false;
    if (c->req.opts.random && cc_get(c->env.hints, CC_DOMAIN_ACCEPT_ALL, c->domain, c->host, &e)) {
        c->out.accept_all = true;
    } else if (!cc_get(c->env.hints, CC_ADDRESS, c->address, c->host, &e)) {
        metric_inc(M_CALLOUT_CACHE_MISS);
        return false;
    }
    metric_inc(M_CALLOUT_CACHE_HIT);
    c->out.from_cache = true;
    str_copy(c->out.log, e.reason, sizeof(c->out.log));
    if (e.result == CC_ACCEPTED) {
        finish(c, VERIFY_OK);
    } else {
        str_copy(c->out.reply, e.reason, sizeof(c->out.reply));
        finish(c, VERIFY_FAIL);
    }
    return true;
}

static void start_cb(evutil_socket_t fd, short what, void *arg)
{
    struct callout *c = arg;
    (void)fd;
    (void)what;
    event_free(c->ev);
    c->ev = event_new(c->env.up.base, -1, 0, finish_cb, c);
    if (c->route->nhops == 0) {
        str_copy(c->out.reply, "451 4.4.3 Could not complete recipient verify callout", sizeof(c->out.reply));
        str_copy(c->out.log, "no next hop", sizeof(c->out.log));
        finish(c, VERIFY_DEFER);
        return;
    }
    if (from_cache(c))
        return;
    if (c->env.limiter == NULL || callout_limit_acquire(c->env.limiter, c))
        callout_proceed(c);
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
    str_copy(c->host, route->nhops ? route->hops[0].name : "", sizeof(c->host));
    c->cb = cb;
    c->arg = arg;
    c->ev = event_new(ce->up.base, -1, 0, start_cb, c);
    event_active(c->ev, 0, 0);
    return c;
}

void callout_cancel(struct callout *c)
{
    if (c->waiting && c->env.limiter)
        callout_limit_forget(c->env.limiter, c);
    if (c->up)
        upstream_cancel(c->up);
    if (c->so)
        smtp_out_free(c->so);
    if (c->out.kept)
        smtp_out_quit(c->out.kept);
    if (c->holding_slot && c->env.limiter)
        callout_limit_release(c->env.limiter, c->host);
    event_free(c->ev);
    free(c);
}
