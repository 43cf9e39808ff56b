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

static void cut_event(void *arg, struct cut_link *l, const struct cut_result *r);
static void cut_drained(void *arg, struct cut_link *l);

/* upstream_env - what the link needs from the server */
static struct upstream_env upstream_env_of(struct smtp_session *s)
{
    struct upstream_env ue = { s->srv->base, s->srv->conf, s->srv->client_tls };
    return ue;
}

/* cut_mail_of - the sender side of the client's transaction */
static struct cut_mail cut_mail_of(struct txn *t)
{
    struct cut_mail m = {
        .sender = t->env.sender, .size = t->mail.size_given ? t->mail.size : 0,
        .body_8bit = t->mail.body == BODY_8BITMIME, .smtputf8 = t->mail.smtputf8,
        .ret = t->mail.ret, .envid = t->mail.envid[0] ? t->mail.envid : NULL,
    };
    return m;
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
    evbuffer_add(bufferevent_get_output(s->bev), out.s, out.len);
    sbuf_free(&out);
}

/* log_rcpt_refusal - Exim's wording for a recipient the next hop refused */
static void log_rcpt_refusal(struct smtp_session *s, const char *rcpt, const char *text, bool temp)
{
    char host[160], sender[560], r[560], link_host[320] = "";
    struct txn *t = s->txn;
    smtp_log_host(s, host, sizeof(host));
    str_sanitize_utf8(sender, sizeof(sender), t->env.sender, strlen(t->env.sender));
    str_sanitize_utf8(r, sizeof(r), rcpt, strlen(rcpt));
    if (t->cut)
        cut_link_log_host(t->cut, link_host, sizeof(link_host));
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

static void add_rcpt(struct smtp_session *s, bool via_cut)
{
    smtp_accept_rcpt(s, via_cut);
}

/* rcpt_temporary - the next hop could not say yes or no now: defer mode decides */
static void rcpt_temporary(struct smtp_session *s, const struct cut_result *r)
{
    struct txn *t = s->txn;
    if (t->cut_opts.defer == CUT_DEFER_SPOOL) {
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
    struct acl_run *run = s->cut_verify_run;
    char reply[700];
    s->cut_verify_run = NULL;
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

/* cut_off - give up cutthrough for this message: it will be spooled and queued */
static void cut_off(struct smtp_session *s)
{
    struct txn *t = s->txn;
    t->cut_off = true;
    if (t->cut) {
        cut_link_cancel_txn(t->cut);
        for (size_t i = 0; i < t->env.nrcpts; i++)
            t->via_cut[i] = false;
    }
}

/* link_for - the link for a route with this key: the transaction's, a reusable idle one, or
 * a new one (route is taken over or freed) */
static struct cut_link *link_for(struct smtp_session *s, struct route_result *route,
                                 const struct cutthrough_opts *opts)
{
    struct txn *t = s->txn;
    struct upstream_env ue = upstream_env_of(s);
    struct cut_mail m = cut_mail_of(t);
    char key[1024];
    route_hops_key(route, key, sizeof(key));
    if (s->cut_idle && strcmp(cut_link_key(s->cut_idle), key) == 0 && cut_link_restart(s->cut_idle, &m)) {
        t->cut = s->cut_idle;
        s->cut_idle = NULL;
        route_result_free(route);
    } else {
        t->cut = cut_link_new(&ue, route, &m, opts, cut_event, cut_drained, s);
    }
    t->cut_opts = *opts;
    return t->cut;
}

/* mirror_over - the RCPT was answered without the link: the session goes on */
static void mirror_over(struct smtp_session *s, bool verifying)
{
    if (verifying)
        return;                 /* the ACL goes on, and resumes the session when it is done */
    s->busy = false;
    smtp_resume(s);
}

/* routed - the recipient's next hops are known: mirror the RCPT on the right link */
static void routed(struct smtp_session *s, struct route_result *res)
{
    struct txn *t = s->txn;
    const struct rcpt_params *rp = &t->pending_rcpt;
    struct cutthrough_opts opts = s->cut_req_opts;
    bool verifying = s->cut_verify_run != NULL;
    char key[1024];
    if (res->status != ROUTE_OK) {
        int code;
        const char *ecode;
        route_status_reply(res->status, &code, &ecode);
        struct cut_result r = { CUT_STEP_RCPT, NULL, "", false };
        str_copy(r.text, res->error, sizeof(r.text));
        route_result_free(res);
        if (s->cut_verify_run) {
            char reply[400];
            str_fmt(reply, sizeof(reply), "%d %s %s", code, ecode, r.text);
            struct acl_run *run = s->cut_verify_run;
            s->cut_verify_run = NULL;
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
    if (t->cut && cut_link_alive(t->cut) && strcmp(cut_link_key(t->cut), key) != 0) {
        route_result_free(res);
        if (t->cut_opts.split == CUT_SPLIT_DEFER) {
            const char *text = "Recipient goes to a different next hop; send it in a new transaction";
            if (s->cut_verify_run) {
                struct acl_run *run = s->cut_verify_run;
                char reply[200];
                s->cut_verify_run = NULL;
                str_fmt(reply, sizeof(reply), "452 4.5.3 %s", text);
                acl_verify_done(run, VERIFY_DEFER, reply);
            } else {
                smtp_reply(s, 452, "4.5.3", "%s", text);
            }
            mirror_over(s, verifying);
            return;
        }
        cut_off(s);                                     /* split=spool */
        if (s->cut_verify_run) {
            struct acl_run *run = s->cut_verify_run;
            s->cut_verify_run = NULL;
            acl_verify_done(run, VERIFY_OK, NULL);      /* the queue will deliver it */
        } else {
            add_rcpt(s, false);
        }
        mirror_over(s, verifying);
        return;
    }
    if (t->cut == NULL || !cut_link_alive(t->cut)) {
        if (t->cut)
            cut_link_free(t->cut);
        t->cut = NULL;
        link_for(s, res, &opts);
    } else {
        route_result_free(res);
    }
    cut_link_rcpt(t->cut, rp->rcpt, rp->notify, rp->orcpt[0] ? rp->orcpt : NULL);
}

static void cut_routed_cb(void *arg, struct route_result *res)
{
    struct smtp_session *s = arg;
    s->cut_rq = NULL;
    routed(s, res);
}

/* start_mirror - route the pending recipient, then mirror it on the link */
static void start_mirror(struct smtp_session *s, const struct cutthrough_opts *opts)
{
    char local[ADDR_PATH_MAX + 1], domain[ADDR_DOMAIN_MAX + 1];
    s->cut_req_opts = *opts;
    addr_split(s->txn->pending_rcpt.rcpt, local, sizeof(local), domain, sizeof(domain));
    s->busy = true;
    s->cut_rq = route_resolve(s->srv->dns, s->srv->conf, domain, cut_routed_cb, s);
}

/* smtp_cut_rcpt - an accepted RCPT with cutthrough: the client's reply waits for the next hop */
void smtp_cut_rcpt(struct smtp_session *s, const struct cutthrough_opts *opts)
{
    struct txn *t = s->txn;
    if (t->cut_off || s->srv->dns == NULL) {
        add_rcpt(s, false);
        return;
    }
    if (t->cut && cut_link_alive(t->cut) && cut_link_has_rcpt(t->cut, t->pending_rcpt.rcpt)) {
        add_rcpt(s, true);        /* a callout on this link already has it */
        return;
    }
    start_mirror(s, opts);
}

/* smtp_cut_verify - verify = recipient/callout in a cutthrough ACL: the RCPT on the link is
 * the callout */
void smtp_cut_verify(struct smtp_session *s, struct acl_run *run, const struct cutthrough_opts *opts)
{
    s->cut_verify_run = run;
    start_mirror(s, opts);
}

void smtp_cut_verify_cancel(struct smtp_session *s)
{
    s->cut_verify_run = NULL;
    if (s->cut_rq) {
        route_cancel(s->cut_rq);
        s->cut_rq = NULL;
    }
}

/* smtp_cut_active - is the message being cut through (a link with recipients on it)?  The
 * link may have died since: the next step then reports that, and the defer mode decides. */
bool smtp_cut_active(struct smtp_session *s)
{
    struct txn *t = s->txn;
    if (t == NULL || t->cut == NULL || t->cut_off)
        return false;
    for (size_t i = 0; i < t->env.nrcpts; i++)
        if (t->via_cut[i])
            return true;
    return false;
}

/* smtp_cut_data - the client said DATA: ask the next hop first */
void smtp_cut_data(struct smtp_session *s)
{
    struct txn *t = s->txn;
    if (t->cut && cut_link_naccepted(t->cut) > 0) {
        /* The next hop has recipients the client does not (refused by our ACL after the
         * callout): this transaction cannot carry the message.  Spool it instead. */
        size_t mine = 0;
        for (size_t i = 0; i < t->env.nrcpts; i++)
            mine += t->via_cut[i];
        if (mine != cut_link_naccepted(t->cut)) {
            cut_off(s);
            smtp_data_begin(s);
            return;
        }
    }
    s->busy = true;
    cut_link_data(t->cut);
}

/* smtp_cut_data_async - BDAT: DATA goes upstream while the chunks keep coming (the link
 * holds the body until the 354); a refusal is answered at the end of the message */
void smtp_cut_data_async(struct smtp_session *s)
{
    s->txn->cut_data_async = true;
    cut_link_data(s->txn->cut);
}

/* data_async_result - the answer to an asynchronous DATA (BDAT input) */
static void dot_result(struct smtp_session *s, const struct cut_result *r);

static void data_async_result(struct smtp_session *s, const struct cut_result *r)
{
    struct txn *t = s->txn;
    t->cut_data_async = false;
    if (t->cut_dot_pending) {          /* the client finished first: the dot was waiting */
        t->cut_dot_pending = false;
        if (r->reply && r->reply->code == 354)
            cut_link_dot(t->cut);
        else
            dot_result(s, r);          /* a refused DATA is the verdict */
        return;
    }
    if (r->reply && r->reply->code == 354)
        return;
    if (r->reply && r->reply->code >= 500) {
        smtp_txn_latch(t, r->reply->code, r->reply->ecode[0] ? r->reply->ecode : "5.0.0",
                       r->reply->text.s ? r->reply->text.s : "refused by the next hop");
        cut_link_cancel_txn(t->cut);
    } else if (t->cut_opts.defer == CUT_DEFER_SPOOL) {
        cut_off(s);
    } else {
        smtp_txn_latch(t, 451, "4.4.2", "Next hop not available; try again later");
        cut_link_cancel_txn(t->cut);
    }
}

/* data_result - the next hop's answer to DATA */
static void data_result(struct smtp_session *s, const struct cut_result *r)
{
    struct txn *t = s->txn;
    char host[160], sender[560], link_host[320];
    if (t->cut_data_async) {
        data_async_result(s, r);
        return;
    }
    s->busy = false;
    if (r->reply && r->reply->code == 354) {
        cut_link_cork(t->cut, true);
        smtp_data_begin(s);
        cut_link_cork(t->cut, false);
        smtp_resume(s);
        return;
    }
    smtp_log_host(s, host, sizeof(host));
    str_sanitize_utf8(sender, sizeof(sender), t->env.sender, strlen(t->env.sender));
    cut_link_log_host(t->cut, link_host, sizeof(link_host));
    if (r->reply && r->reply->code >= 500) {
        log_reject("%s F=<%s> rejected DATA: %s: SMTP error from remote mail server after DATA: %s",
                   host, sender, link_host, r->text);
        reply_upstream(s, r->reply, 0, NULL);
        cut_link_cancel_txn(t->cut);
    } else if (t->cut_opts.defer == CUT_DEFER_SPOOL) {
        log_main("%s F=<%s> cutthrough DATA deferred by %s: %s; message will be queued", host,
                 sender, link_host, r->text);
        cut_off(s);
        smtp_data_begin(s);
    } else {
        log_reject("%s F=<%s> temporarily rejected DATA: %s: %s", host, sender, link_host, r->text);
        if (r->reply && r->reply->code >= 400)
            reply_upstream(s, r->reply, 0, NULL);
        else
            smtp_reply(s, 451, "4.4.2", "Next hop %s; try again later",
                       r->timed_out ? "timed out" : "connection lost");
        cut_link_cancel_txn(t->cut);
    }
    smtp_resume(s);
}

/* smtp_cut_body - content on its way to the spool goes to the next hop too */
void smtp_cut_body(struct smtp_session *s, const char *p, size_t n)
{
    struct txn *t = s->txn;
    if (!t->cut_off && t->cut)
        cut_link_body(t->cut, p, n);
}

/* smtp_cut_blocked - pause reading the client while the next hop is behind */
bool smtp_cut_blocked(struct smtp_session *s)
{
    struct txn *t = s->txn;
    if (t == NULL || t->cut_off || t->cut == NULL || !cut_link_blocked(t->cut))
        return false;
    s->cut_paused = true;
    s->busy = true;
    return true;
}

static void cut_drained(void *arg, struct cut_link *l)
{
    struct smtp_session *s = arg;
    (void)l;
    if (!s->cut_paused)
        return;
    s->cut_paused = false;
    s->busy = false;
    smtp_resume(s);
}

/* smtp_cut_abort - a local refusal after body bytes went out: the next hop must keep nothing */
void smtp_cut_abort(struct smtp_session *s)
{
    struct txn *t = s->txn;
    if (t && t->cut)
        cut_link_cancel_txn(t->cut);
}

/* smtp_cut_end - all checks passed: send the dot; the next hop's reply is the verdict */
void smtp_cut_end(struct smtp_session *s)
{
    s->busy = true;
    if (s->txn->cut_data_async)
        s->txn->cut_dot_pending = true;   /* BDAT: sent once the 354 is in */
    else
        cut_link_dot(s->txn->cut);
}

/* smtp_cut_log_deliveries - Exim's ">>" lines for recipients the next hop accepted */
void smtp_cut_log_deliveries(struct smtp_session *s, const char *reply_text)
{
    struct txn *t = s->txn;
    char host[320], tls[256], r[560], c[600];
    if (t->cut == NULL)
        return;
    cut_link_log_host(t->cut, host, sizeof(host));
    cut_link_log_tls(t->cut, tls, sizeof(tls));
    str_sanitize(c, sizeof(c), reply_text, strlen(reply_text));
    for (size_t i = 0; i < t->env.nrcpts; i++) {
        if (t->env.rcpts[i].state != RCPT_DELIVERED)
            continue;
        str_sanitize_utf8(r, sizeof(r), t->env.rcpts[i].addr, strlen(t->env.rcpts[i].addr));
        log_main("%s >> %s R=%s T=remote_smtp %s%s C=\"%s\"", t->env.id, r,
                 cut_link_route_name(t->cut), host, tls, c);
    }
}

/* log_deferrals - "==" lines when the message is queued after the next hop failed at the end */
static void log_deferrals(struct smtp_session *s, const char *why)
{
    struct txn *t = s->txn;
    char host[320], r[560], w[400];
    cut_link_log_host(t->cut, host, sizeof(host));
    str_sanitize(w, sizeof(w), why, strlen(why));
    for (size_t i = 0; i < t->env.nrcpts; i++) {
        if (!t->via_cut[i])
            continue;
        str_sanitize_utf8(r, sizeof(r), t->env.rcpts[i].addr, strlen(t->env.rcpts[i].addr));
        log_main("%s == %s R=%s T=remote_smtp defer (-1): %s: cutthrough: %s", t->env.id, r,
                 cut_link_route_name(t->cut), host, w);
    }
}

/* dot_result - the verdict (DESIGN.md's end-of-data table) */
static void dot_result(struct smtp_session *s, const struct cut_result *r)
{
    struct txn *t = s->txn;
    char host[160], sender[560], link_host[320], note[300];
    s->busy = false;
    if (r->reply && r->reply->code >= 200 && r->reply->code < 300) {
        for (size_t i = 0; i < t->env.nrcpts; i++)
            if (t->via_cut[i])
                t->env.rcpts[i].state = RCPT_DELIVERED;
        str_sanitize(note, sizeof(note), r->text, strlen(r->text) < 200 ? strlen(r->text) : 200);
        smtp_data_accept(s, note, r->text);
    } else if (r->reply && r->reply->code >= 500) {
        smtp_log_host(s, host, sizeof(host));
        str_sanitize_utf8(sender, sizeof(sender), t->env.sender, strlen(t->env.sender));
        cut_link_log_host(t->cut, link_host, sizeof(link_host));
        log_reject("%s F=<%s> rejected after DATA: %s: C=\"%s\"", host, sender, link_host, r->text);
        reply_upstream(s, r->reply, 0, NULL);
        smtp_data_refused(s);
    } else if (t->cut_opts.defer == CUT_DEFER_SPOOL) {
        log_deferrals(s, r->reply ? r->text : r->timed_out ? "timed out waiting for reply to end of data"
                                                          : "connection lost after end of data");
        smtp_data_accept(s, NULL, NULL);
    } else {
        smtp_log_host(s, host, sizeof(host));
        str_sanitize_utf8(sender, sizeof(sender), t->env.sender, strlen(t->env.sender));
        cut_link_log_host(t->cut, link_host, sizeof(link_host));
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
    (void)l;
    switch (r->step) {
    case CUT_STEP_RCPT:
        if (s->cut_verify_run) {
            verify_result(s, r);
        } else {
            s->busy = false;
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
 * next message, close anything else */
void smtp_cut_txn_reset(struct smtp_session *s, struct txn *t)
{
    if (t->cut == NULL)
        return;
    if (s->cut_rq) {
        route_cancel(s->cut_rq);
        s->cut_rq = NULL;
    }
    cut_link_cancel_txn(t->cut);
    if (cut_link_alive(t->cut) && !s->closing) {
        if (s->cut_idle)
            cut_link_free(s->cut_idle);
        s->cut_idle = t->cut;       /* idle after RSET or a completed transaction */
    } else {
        cut_link_free(t->cut);
    }
    t->cut = NULL;
}

void smtp_cut_session_end(struct smtp_session *s)
{
    if (s->cut_rq)
        route_cancel(s->cut_rq);
    s->cut_rq = NULL;
    if (s->cut_idle)
        cut_link_free(s->cut_idle);
    s->cut_idle = NULL;
}
