/* smtp_in_cut.c - cutthrough delivery from the session's side: which recipients go through
 * the link, what the client is told at RCPT, DATA and end of data (DESIGN.md's table), the
 * log lines, and handing the message to the queue when the next hop cannot take it now. */
#include "smtp_in.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "in.h"
#include "conf/conf.h"
#include "core/core.h"
#include "dns/dns.h"
#include "outbound/outbound.h"
#include "route/route.h"
#include "store/store.h"

/* The session's cutthrough state (doc/architecture.md, "Cutthrough"): the link of the
 * current transaction and the idle one kept for the next message, the recipient being
 * mirrored, and which recipients the link carries.  No other file sees inside it. */
struct smtp_cut {
    /* across transactions */
    struct cut_link *idle;          /* a finished onward connection kept for the next message */
    struct route_query *rq;         /* routing the recipient being mirrored */
    struct acl_run *verify_run;     /* the ACL whose recipient callout is the mirrored RCPT */
    struct cutthrough_opts req_opts; /* the options of the RCPT being mirrored */
    bool paused;                    /* input paused for the next hop's back-pressure */
    /* the current transaction */
    struct cut_link *link;          /* the onward transaction, NULL if none */
    struct cutthrough_opts opts;
    bool abandoned;                 /* cutthrough given up: the message goes to the queue */
    bool *on_link;                  /* per recipient index: the next hop accepted it at RCPT */
    size_t non_link;
    bool data_async;                /* DATA sent upstream for BDAT input, answer pending */
    bool dot_pending;               /* end of data reached before that answer */
};

static void cut_event(void *arg, struct cut_link *l, const struct cut_result *r);
static void cut_drained(void *arg, struct cut_link *l);

/* smtp_cut_link - the current transaction's onward link, NULL if none (for the transaction
 * log) */
const struct cut_link *smtp_cut_link(const struct smtp_session *s)
{
    return s->cut ? s->cut->link : NULL;
}

/* cut_of - the session's cutthrough state, made on first use */
static struct smtp_cut *cut_of(struct smtp_session *s)
{
    if (s->cut == NULL)
        s->cut = xcalloc(1, sizeof(*s->cut));
    return s->cut;
}

/* on_link - is recipient i carried by the link? */
static bool on_link(const struct smtp_cut *c, size_t i)
{
    return i < c->non_link && c->on_link[i];
}

/* upstream_env - what the link needs from the server */
static struct upstream_env upstream_env_of(struct smtp_session *s)
{
    struct upstream_env ue = { s->srv->base, s->srv->conf, s->srv->client_tls, s->srv->tlsp };
    return ue;
}


/* client_code - the code a next hop's reply has for our client: its 421 closed the next
 * hop's connection, not the client's, so the client hears 451 */
static int client_code(const struct smtp_reply *r)
{
    return r->code == 421 ? 451 : r->code;
}

/* reply_upstream - pass a next hop's reply to the client, well-formed and sanitised */
static void reply_upstream(struct smtp_session *s, const struct smtp_reply *r, int code, const char *ecode)
{
    struct sbuf out;
    if (code == 0)
        code = client_code(r);
    sbuf_init(&out);
    smtp_reply_format(r, code, ecode, &out);
    if (s->txn) {
        s->txn->final_code = code ? code : r->code;
        str_copy(s->txn->final_text, out.s + 4, sizeof(s->txn->final_text));
    }
    evbuffer_add(bufferevent_get_output(s->bev), out.s, out.len);
    sbuf_free(&out);
}

/* log_rcpt_refusal - Exim's wording for a recipient the next hop refused */
static void log_rcpt_refusal(struct smtp_session *s, const char *rcpt, const char *text, bool temp)
{
    struct smtp_cut *ct = cut_of(s);
    char host[160], sender[560], r[560], link_host[320] = "";
    struct txn *t = s->txn;
    smtp_log_host(s, host, sizeof(host));
    str_sanitize_utf8(sender, sizeof(sender), t->env.sender, strlen(t->env.sender));
    str_sanitize_utf8(r, sizeof(r), rcpt, strlen(rcpt));
    if (ct->link)
        cut_link_log_host(ct->link, link_host, sizeof(link_host));
    log_reject("%s F=<%s> %s RCPT <%s>: %s%sSMTP error from remote mail server after RCPT TO:<%s>: %s",
               host, sender, temp ? "temporarily rejected" : "rejected", r, link_host,
               link_host[0] ? ": " : "", r, text);
}

/* log_rcpt_link_failure - a recipient deferred because the link failed: text says where and
 * how ("H=... [ip]:port: Connection refused") */
static void log_rcpt_link_failure(struct smtp_session *s, const char *rcpt, const char *text)
{
    char host[160], sender[560], r[560], why[400];
    smtp_log_host(s, host, sizeof(host));
    str_sanitize_utf8(sender, sizeof(sender), s->txn->env.sender, strlen(s->txn->env.sender));
    str_sanitize_utf8(r, sizeof(r), rcpt, strlen(rcpt));
    str_sanitize(why, sizeof(why), text, strlen(text));
    log_reject("%s F=<%s> temporarily rejected RCPT <%s>: %s", host, sender, r, why);
}

/* add_rcpt - accept the pending recipient, noting whether the link carries it */
static void add_rcpt(struct smtp_session *s, bool via_link)
{
    struct smtp_cut *c = cut_of(s);
    size_t i = smtp_accept_rcpt(s);
    if (i >= c->non_link) {
        c->on_link = xreallocarray(c->on_link, i + 1, sizeof(*c->on_link));
        memset(c->on_link + c->non_link, 0, (i + 1 - c->non_link) * sizeof(*c->on_link));
        c->non_link = i + 1;
    }
    c->on_link[i] = via_link;
}

/* rcpt_temporary - the next hop could not say yes or no now: defer mode decides */
static void rcpt_temporary(struct smtp_session *s, const struct cut_result *r)
{
    struct smtp_cut *ct = cut_of(s);
    struct txn *t = s->txn;
    if (ct->opts.defer == CUT_DEFER_SPOOL) {
        add_rcpt(s, false);      /* accepted; delivered from the queue */
        return;
    }
    if (r->reply)
        log_rcpt_refusal(s, t->pending_rcpt.rcpt, r->text, true);
    else
        log_rcpt_link_failure(s, t->pending_rcpt.rcpt, r->text);
    if (r->reply && r->reply->code >= 400 && r->reply->code < 500)
        reply_upstream(s, r->reply, 0, NULL);
    else
        smtp_reply(s, 451, r->timed_out ? "4.4.2" : "4.4.1", "Next hop %s; try again later",
                   r->timed_out ? "timed out" : "not reachable");
}

/* rcpt_result - the next hop answered the mirrored RCPT (or the link failed) */
static void rcpt_result(struct smtp_session *s, const struct cut_result *r)
{
    if (r->reply && r->reply->code >= 200 && r->reply->code < 300) {
        add_rcpt(s, true);
    } else if (r->reply && r->reply->code >= 500) {
        log_rcpt_refusal(s, s->txn->pending_rcpt.rcpt, r->text, false);
        reply_upstream(s, r->reply, 0, NULL);
        smtp_count_error(s);
    } else {
        rcpt_temporary(s, r);
    }
}

/* verify_result - the mirrored RCPT served as the recipient's callout */
static void verify_result(struct smtp_session *s, const struct cut_result *r)
{
    struct smtp_cut *ct = cut_of(s);
    struct acl_run *run = ct->verify_run;
    char reply[700];
    ct->verify_run = NULL;
    if (r->reply && r->reply->code >= 200 && r->reply->code < 300) {
        acl_verify_done(run, VERIFY_OK, NULL);
        return;
    }
    if (r->reply) {
        str_fmt(reply, sizeof(reply), "%d %s %s", client_code(r->reply),
                r->reply->ecode[0] ? r->reply->ecode : r->reply->code >= 500 ? "5.0.0" : "4.0.0",
                r->reply->text.s ? r->reply->text.s : "");
    } else {
        str_copy(reply, "451 4.4.3 Could not complete recipient verify callout", sizeof(reply));
    }
    if (r->reply)
        log_rcpt_refusal(s, s->txn->pending_rcpt.rcpt, r->text, r->reply->code < 500);
    acl_verify_done(run, r->reply && r->reply->code >= 500 ? VERIFY_FAIL : VERIFY_DEFER, reply);
}

/* abandon - give up cutthrough for this message: it will be spooled and queued */
static void abandon(struct smtp_session *s)
{
    struct smtp_cut *ct = cut_of(s);
    ct->abandoned = true;
    if (ct->link) {
        cut_link_cancel_txn(ct->link);
        if (ct->non_link)
            memset(ct->on_link, 0, ct->non_link * sizeof(*ct->on_link));
    }
}

/* link_for - the link for a route with this key: the transaction's, a reusable idle one, or
 * a new one (route is taken over or freed) */
static struct cut_link *link_for(struct smtp_session *s, struct route_result *route,
                                 const struct cutthrough_opts *opts)
{
    struct smtp_cut *ct = cut_of(s);
    struct txn *t = s->txn;
    struct upstream_env ue = upstream_env_of(s);
    struct mail_out m;
    mail_out_from_envelope(&m, &t->env, t->mail.size_given ? t->mail.size : 0);
    char key[1024];
    route_hops_key(route, key, sizeof(key));
    if (ct->idle && strcmp(cut_link_key(ct->idle), key) == 0 && cut_link_restart(ct->idle, &m)) {
        ct->link = ct->idle;
        ct->idle = NULL;
        metric_inc(M_ONWARD_REUSED);
        route_result_free(route);
    } else {
        ct->link = cut_link_new(&ue, route, &m, opts, cut_event, cut_drained, s);
    }
    ct->opts = *opts;
    return ct->link;
}

/* mirror_over - the RCPT was answered without the link: the session goes on */
static void mirror_over(struct smtp_session *s, bool verifying)
{
    if (verifying)
        return;                 /* the ACL goes on, and resumes the session when it is done */
    sf_clear(s, SF_WAITING);
    smtp_resume(s);
}

/* routed - the recipient's next hops are known: mirror the RCPT on the right link */
static void routed(struct smtp_session *s, struct route_result *res)
{
    struct smtp_cut *ct = cut_of(s);
    struct txn *t = s->txn;
    const struct rcpt_params *rp = &t->pending_rcpt;
    struct cutthrough_opts opts = ct->req_opts;
    bool verifying = ct->verify_run != NULL;
    char key[1024];
    if (res->status != ROUTE_OK) {
        int code;
        const char *ecode;
        route_status_reply(res->status, &code, &ecode);
        struct cut_result r = { CUT_STEP_RCPT, NULL, "", false };
        str_copy(r.text, res->error, sizeof(r.text));
        route_result_free(res);
        if (ct->verify_run) {
            char reply[400];
            str_fmt(reply, sizeof(reply), "%d %s %s", code, ecode, r.text);
            struct acl_run *run = ct->verify_run;
            ct->verify_run = NULL;
            acl_verify_done(run, code >= 500 ? VERIFY_FAIL : VERIFY_DEFER, reply);
        } else if (code >= 500) {
            smtp_reply(s, code, ecode, "%s", r.text);
        } else {
            rcpt_temporary(s, &r);
        }
        mirror_over(s, verifying);
        return;
    }
    route_hops_key(res, key, sizeof(key));
    if (ct->link && cut_link_alive(ct->link) && strcmp(cut_link_key(ct->link), key) != 0) {
        route_result_free(res);
        if (ct->opts.split == CUT_SPLIT_DEFER) {
            const char *text = "Recipient goes to a different next hop; send it in a new transaction";
            if (ct->verify_run) {
                struct acl_run *run = ct->verify_run;
                char reply[200];
                ct->verify_run = NULL;
                str_fmt(reply, sizeof(reply), "452 4.5.3 %s", text);
                acl_verify_done(run, VERIFY_DEFER, reply);
            } else {
                smtp_reply(s, 452, "4.5.3", "%s", text);
            }
            mirror_over(s, verifying);
            return;
        }
        abandon(s);                                     /* split=spool */
        if (ct->verify_run) {
            struct acl_run *run = ct->verify_run;
            ct->verify_run = NULL;
            acl_verify_done(run, VERIFY_OK, NULL);      /* the queue will deliver it */
        } else {
            add_rcpt(s, false);
        }
        mirror_over(s, verifying);
        return;
    }
    if (ct->link == NULL || !cut_link_alive(ct->link)) {
        if (ct->link)
            cut_link_free(ct->link);
        ct->link = NULL;
        link_for(s, res, &opts);
    } else {
        route_result_free(res);
    }
    cut_link_rcpt(ct->link, rp->rcpt, rp->notify, rp->orcpt[0] ? rp->orcpt : NULL);
}

static void cut_routed_cb(void *arg, struct route_result *res)
{
    struct smtp_session *s = arg;
    struct smtp_cut *ct = cut_of(s);
    ct->rq = NULL;
    routed(s, res);
}

/* start_mirror - route the pending recipient, then mirror it on the link */
static void start_mirror(struct smtp_session *s, const struct cutthrough_opts *opts)
{
    struct smtp_cut *ct = cut_of(s);
    char local[ADDR_PATH_MAX + 1], domain[ADDR_DOMAIN_MAX + 1];
    ct->req_opts = *opts;
    addr_split(s->txn->pending_rcpt.rcpt, local, sizeof(local), domain, sizeof(domain));
    sf_set(s, SF_WAITING);
    ct->rq = route_resolve(s->srv->dns, s->srv->conf, domain, cut_routed_cb, s);
}

/* smtp_cut_rcpt - an accepted RCPT with cutthrough: the client's reply waits for the next hop */
void smtp_cut_rcpt(struct smtp_session *s, const struct cutthrough_opts *opts)
{
    struct smtp_cut *ct = cut_of(s);
    struct txn *t = s->txn;
    if (ct->abandoned || s->srv->dns == NULL) {
        add_rcpt(s, false);
        return;
    }
    if (ct->link && cut_link_alive(ct->link) && cut_link_has_rcpt(ct->link, t->pending_rcpt.rcpt)) {
        add_rcpt(s, true);        /* a callout on this link already has it */
        return;
    }
    start_mirror(s, opts);
}

/* smtp_cut_accept_rcpt - an RCPT accepted without the cutthrough control: the link carries it
 * when its callout ran there */
void smtp_cut_accept_rcpt(struct smtp_session *s)
{
    struct smtp_cut *ct = s->cut;
    bool carried = ct && ct->link && !ct->abandoned &&
                   cut_link_has_rcpt(ct->link, s->txn->pending_rcpt.rcpt);
    if (carried || ct)
        add_rcpt(s, carried);
    else
        smtp_accept_rcpt(s);
}

/* smtp_cut_may_verify - may a recipient callout be the RCPT mirrored on the link (the message
 * is not already headed for the queue)? */
bool smtp_cut_may_verify(struct smtp_session *s)
{
    return s->txn && !(s->cut && s->cut->abandoned);
}

/* smtp_cut_verify - verify = recipient/callout in a cutthrough ACL: the RCPT on the link is
 * the callout */
void smtp_cut_verify(struct smtp_session *s, struct acl_run *run, const struct cutthrough_opts *opts)
{
    struct smtp_cut *ct = cut_of(s);
    ct->verify_run = run;
    start_mirror(s, opts);
}

void smtp_cut_verify_cancel(struct smtp_session *s)
{
    struct smtp_cut *ct = s->cut;
    if (ct == NULL)
        return;
    ct->verify_run = NULL;
    if (ct->rq) {
        route_cancel(ct->rq);
        ct->rq = NULL;
    }
}

/* smtp_cut_active - is the message being cut through (a link with recipients on it)?  The
 * link may have died since: the next step then reports that, and the defer mode decides. */
bool smtp_cut_active(struct smtp_session *s)
{
    const struct smtp_cut *ct = s->cut;
    struct txn *t = s->txn;
    if (t == NULL || ct == NULL || ct->link == NULL || ct->abandoned)
        return false;
    for (size_t i = 0; i < t->env.nrcpts; i++)
        if (on_link(ct, i))
            return true;
    return false;
}

/* smtp_cut_data - the client said DATA: ask the next hop first */
void smtp_cut_data(struct smtp_session *s)
{
    struct smtp_cut *ct = cut_of(s);
    struct txn *t = s->txn;
    if (ct->link && cut_link_naccepted(ct->link) > 0) {
        /* The next hop has recipients the client does not (refused by our ACL after the
         * callout): this transaction cannot carry the message.  Spool it instead. */
        size_t mine = 0;
        for (size_t i = 0; i < t->env.nrcpts; i++)
            mine += on_link(ct, i);
        if (mine != cut_link_naccepted(ct->link)) {
            abandon(s);
            smtp_data_begin(s);
            return;
        }
    }
    sf_set(s, SF_WAITING);
    cut_link_data(ct->link);
}

/* smtp_cut_data_async - BDAT: DATA goes upstream while the chunks keep coming (the link
 * holds the body until the 354); a refusal is answered at the end of the message */
void smtp_cut_data_async(struct smtp_session *s)
{
    struct smtp_cut *ct = cut_of(s);
    ct->data_async = true;
    cut_link_data(ct->link);
}

/* data_async_result - the answer to an asynchronous DATA (BDAT input) */
static void dot_result(struct smtp_session *s, const struct cut_result *r);

static void data_async_result(struct smtp_session *s, const struct cut_result *r)
{
    struct smtp_cut *ct = cut_of(s);
    struct txn *t = s->txn;
    ct->data_async = false;
    if (ct->dot_pending) {          /* the client finished first: the dot was waiting */
        ct->dot_pending = false;
        if (r->reply && r->reply->code == 354)
            cut_link_dot(ct->link);
        else
            dot_result(s, r);          /* a refused DATA is the verdict */
        return;
    }
    if (r->reply && r->reply->code == 354)
        return;
    if (r->reply && r->reply->code >= 500) {
        smtp_txn_latch(t, r->reply->code, r->reply->ecode[0] ? r->reply->ecode : "5.0.0",
                       r->reply->text.s ? r->reply->text.s : "refused by the next hop");
        cut_link_cancel_txn(ct->link);
    } else if (ct->opts.defer == CUT_DEFER_SPOOL) {
        abandon(s);
    } else {
        smtp_txn_latch(t, 451, "4.4.2", "Next hop not available; try again later");
        cut_link_cancel_txn(ct->link);
    }
}

/* data_result - the next hop's answer to DATA */
static void data_result(struct smtp_session *s, const struct cut_result *r)
{
    struct smtp_cut *ct = cut_of(s);
    struct txn *t = s->txn;
    char host[160], sender[560], link_host[320];
    if (ct->data_async) {
        data_async_result(s, r);
        return;
    }
    sf_clear(s, SF_WAITING);
    if (r->reply && r->reply->code == 354) {
        cut_link_cork(ct->link, true);
        smtp_data_begin(s);
        cut_link_cork(ct->link, false);
        smtp_resume(s);
        return;
    }
    smtp_log_host(s, host, sizeof(host));
    str_sanitize_utf8(sender, sizeof(sender), t->env.sender, strlen(t->env.sender));
    cut_link_log_host(ct->link, link_host, sizeof(link_host));
    if (r->reply && r->reply->code >= 500) {
        log_reject("%s F=<%s> rejected DATA: %s: SMTP error from remote mail server after DATA: %s",
                   host, sender, link_host, r->text);
        reply_upstream(s, r->reply, 0, NULL);
        cut_link_cancel_txn(ct->link);
    } else if (ct->opts.defer == CUT_DEFER_SPOOL) {
        log_main("%s F=<%s> cutthrough DATA deferred by %s: %s; message will be queued", host,
                 sender, link_host, r->text);
        abandon(s);
        smtp_data_begin(s);
    } else {
        log_reject("%s F=<%s> temporarily rejected DATA: %s: %s", host, sender, link_host, r->text);
        if (r->reply && r->reply->code >= 400)
            reply_upstream(s, r->reply, 0, NULL);
        else
            smtp_reply(s, 451, "4.4.2", "Next hop %s; try again later",
                       r->timed_out ? "timed out" : "connection lost");
        cut_link_cancel_txn(ct->link);
    }
    smtp_resume(s);
}

/* smtp_cut_body - content on its way to the spool goes to the next hop too */
void smtp_cut_body(struct smtp_session *s, const char *p, size_t n)
{
    struct smtp_cut *ct = s->cut;
    if (ct && !ct->abandoned && ct->link)
        cut_link_body(ct->link, p, n);
}

/* smtp_cut_pause_if_behind - pause reading the client while the next hop is behind */
bool smtp_cut_pause_if_behind(struct smtp_session *s)
{
    struct smtp_cut *ct = s->cut;
    if (s->txn == NULL || ct == NULL || ct->abandoned || ct->link == NULL ||
        !cut_link_blocked(ct->link))
        return false;
    ct->paused = true;
    sf_set(s, SF_WAITING);
    return true;
}

static void cut_drained(void *arg, struct cut_link *l)
{
    struct smtp_session *s = arg;
    struct smtp_cut *ct = cut_of(s);
    (void)l;
    if (!ct->paused)
        return;
    ct->paused = false;
    sf_clear(s, SF_WAITING);
    smtp_resume(s);
}

/* smtp_cut_abort - a local refusal after body bytes went out: the next hop must keep nothing */
void smtp_cut_abort(struct smtp_session *s)
{
    struct smtp_cut *ct = s->cut;
    if (s->txn && ct && ct->link)
        cut_link_cancel_txn(ct->link);
}

/* smtp_cut_end - all checks passed: send the dot; the next hop's reply is the verdict */
void smtp_cut_end(struct smtp_session *s)
{
    struct smtp_cut *ct = cut_of(s);
    sf_set(s, SF_WAITING);
    if (ct->data_async)
        ct->dot_pending = true;   /* BDAT: sent once the 354 is in */
    else
        cut_link_dot(ct->link);
}

/* smtp_cut_log_deliveries - Exim's ">>" lines for recipients the next hop accepted */
void smtp_cut_log_deliveries(struct smtp_session *s, const char *reply_text)
{
    struct smtp_cut *ct = cut_of(s);
    struct txn *t = s->txn;
    char host[320], tls[256], r[560], c[600];
    if (ct->link == NULL)
        return;
    cut_link_log_host(ct->link, host, sizeof(host));
    cut_link_log_tls(ct->link, tls, sizeof(tls));
    str_sanitize(c, sizeof(c), reply_text, strlen(reply_text));
    for (size_t i = 0; i < t->env.nrcpts; i++) {
        if (t->env.rcpts[i].state != RCPT_DELIVERED)
            continue;
        str_sanitize_utf8(r, sizeof(r), t->env.rcpts[i].addr, strlen(t->env.rcpts[i].addr));
        metric_inc(M_DLV_CUTTHROUGH);
        log_main("%s >> %s R=%s T=remote_smtp %s%s C=\"%s\"", t->env.id, r,
                 cut_link_route_name(ct->link), host, tls, c);
    }
}

/* log_deferrals - "==" lines when the message is queued after the next hop failed at the end */
static void log_deferrals(struct smtp_session *s, const char *why)
{
    struct smtp_cut *ct = cut_of(s);
    struct txn *t = s->txn;
    char host[320], r[560], w[400];
    cut_link_log_host(ct->link, host, sizeof(host));
    str_sanitize(w, sizeof(w), why, strlen(why));
    for (size_t i = 0; i < t->env.nrcpts; i++) {
        if (!on_link(ct, i))
            continue;
        str_sanitize_utf8(r, sizeof(r), t->env.rcpts[i].addr, strlen(t->env.rcpts[i].addr));
        metric_inc(M_DLV_DEFERRED);
        log_main("%s == %s R=%s T=remote_smtp defer (-1): %s: cutthrough: %s", t->env.id, r,
                 cut_link_route_name(ct->link), host, w);
    }
}

/* dot_result - the verdict (DESIGN.md's end-of-data table) */
static void dot_result(struct smtp_session *s, const struct cut_result *r)
{
    struct smtp_cut *ct = cut_of(s);
    struct txn *t = s->txn;
    char host[160], sender[560], link_host[320], note[300];
    sf_clear(s, SF_WAITING);
    t->onward_us = now_mono_us();
    str_copy(t->onward_reply, r->text, sizeof(t->onward_reply));
    if (r->reply == NULL)
        metric_inc(r->timed_out ? M_NH_DOT_TIMEOUT : M_NH_DOT_LOST);
    if (r->reply && r->reply->code >= 200 && r->reply->code < 300) {
        for (size_t i = 0; i < t->env.nrcpts; i++)
            if (on_link(ct, i))
                t->env.rcpts[i].state = RCPT_DELIVERED;
        str_sanitize(note, sizeof(note), r->text, strlen(r->text) < 200 ? strlen(r->text) : 200);
        smtp_data_accept(s, note, r->text);
    } else if (r->reply && r->reply->code >= 500) {
        smtp_log_host(s, host, sizeof(host));
        str_sanitize_utf8(sender, sizeof(sender), t->env.sender, strlen(t->env.sender));
        cut_link_log_host(ct->link, link_host, sizeof(link_host));
        log_reject("%s F=<%s> rejected after DATA: %s: C=\"%s\"", host, sender, link_host, r->text);
        reply_upstream(s, r->reply, 0, NULL);
        smtp_data_refused(s);
    } else if (ct->opts.defer == CUT_DEFER_SPOOL) {
        log_deferrals(s, r->reply ? r->text : r->timed_out ? "timed out waiting for reply to end of data"
                                                          : "connection lost after end of data");
        smtp_data_accept(s, NULL, NULL);
    } else {
        smtp_log_host(s, host, sizeof(host));
        str_sanitize_utf8(sender, sizeof(sender), t->env.sender, strlen(t->env.sender));
        cut_link_log_host(ct->link, link_host, sizeof(link_host));
        log_reject("%s F=<%s> temporarily rejected after DATA: %s: %s", host, sender, link_host,
                   r->reply ? r->text : r->timed_out ? "timed out waiting for reply to end of data"
                                                     : "connection lost after end of data");
        if (r->reply && r->reply->code >= 400)
            reply_upstream(s, r->reply, 0, NULL);
        else
            smtp_reply(s, 451, "4.4.2", "Next hop %s; try again later",
                       r->timed_out ? "timed out" : "connection lost");
        smtp_data_refused(s);
    }
    smtp_resume(s);
}

/* cut_event - a step of the link finished */
static void cut_event(void *arg, struct cut_link *l, const struct cut_result *r)
{
    struct smtp_session *s = arg;
    struct smtp_cut *ct = cut_of(s);
    (void)l;
    switch (r->step) {
    case CUT_STEP_RCPT:
        if (ct->verify_run) {
            verify_result(s, r);
        } else {
            sf_clear(s, SF_WAITING);
            rcpt_result(s, r);
            smtp_resume(s);
        }
        break;
    case CUT_STEP_DATA:
        data_result(s, r);
        break;
    case CUT_STEP_DOT:
        dot_result(s, r);
        break;
    }
}

/* smtp_cut_txn_reset - the transaction is over: keep a finished link's connection for the
 * next message, close anything else, forget the transaction's recipients */
void smtp_cut_txn_reset(struct smtp_session *s)
{
    struct smtp_cut *ct = s->cut;
    if (ct == NULL)
        return;
    if (ct->rq) {
        route_cancel(ct->rq);
        ct->rq = NULL;
    }
    if (ct->link) {
        cut_link_cancel_txn(ct->link);
        if (cut_link_alive(ct->link) && !sf_has(s, SF_FREEING)) {
            if (ct->idle)
                cut_link_free(ct->idle);
            ct->idle = ct->link;   /* idle after RSET or a completed transaction */
        } else {
            cut_link_free(ct->link);
        }
        ct->link = NULL;
    }
    free(ct->on_link);
    ct->on_link = NULL;
    ct->non_link = 0;
    ct->abandoned = ct->data_async = ct->dot_pending = false;
    memset(&ct->opts, 0, sizeof(ct->opts));
}

void smtp_cut_session_end(struct smtp_session *s)
{
    struct smtp_cut *ct = s->cut;
    if (ct == NULL)
        return;
    smtp_cut_txn_reset(s);
    if (ct->idle)
        cut_link_free(ct->idle);
    free(ct);
    s->cut = NULL;
}
