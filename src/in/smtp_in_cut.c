/* smtp_in_cut.c - cutthrough delivery from the session's side, after RCPT: DATA upstream
 * before the client's 354, the body streamed with back-pressure, the next hop's verdict at end
 * of data (doc/outbound.md's table), the log lines, handing the message to the queue when the
 * next hop cannot take it now, and keeping the link's connection when the transaction ends.
 * The RCPT side is smtp_in_cut_rcpt.c. */
#include "smtp_in_cut.h"

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

/* What a deferral line adds when the next hop may already have the message. */
#define DUPLICATE_NOTE " (the next hop may have taken the message: the queued copy may be a duplicate)"

/* smtp_cut_link - the current transaction's onward link, NULL if none (for the transaction
 * log) */
const struct cut_link *smtp_cut_link(const struct smtp_session *s)
{
    return s->cut ? s->cut->link : NULL;
}

struct smtp_cut *cut_of(struct smtp_session *s)
{
    if (s->cut == NULL)
        s->cut = xcalloc(1, sizeof(*s->cut));
    return s->cut;
}

bool cut_on_link(const struct smtp_cut *c, size_t i)
{
    return i < c->non_link && c->on_link[i];
}

int cut_client_code(const struct smtp_reply *r)
{
    return r->code == 421 ? 451 : r->code;
}

void cut_reply_upstream(struct smtp_session *s, const struct smtp_reply *r, int code, const char *ecode)
{
    struct sbuf out;
    if (code == 0)
        code = cut_client_code(r);
    sbuf_init(&out);
    smtp_reply_format(r, code, ecode, &out);
    if (s->txn) {
        s->txn->final_code = code ? code : r->code;
        str_copy(s->txn->final_text, out.s + 4, sizeof(s->txn->final_text));
    }
    evbuffer_add(bufferevent_get_output(s->bev), out.s, out.len);
    sbuf_free(&out);
}

void cut_add_rcpt(struct smtp_session *s, bool via_link)
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

void cut_abandon(struct smtp_session *s)
{
    struct smtp_cut *ct = cut_of(s);
    ct->abandoned = true;
    if (ct->link) {
        cut_link_cancel_txn(ct->link);
        if (ct->non_link)
            memset(ct->on_link, 0, ct->non_link * sizeof(*ct->on_link));
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
        if (cut_on_link(ct, i))
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
            mine += cut_on_link(ct, i);
        if (mine != cut_link_naccepted(ct->link)) {
            cut_abandon(s);
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
        cut_abandon(s);
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
        cut_reply_upstream(s, r->reply, 0, NULL);
        cut_link_cancel_txn(ct->link);
    } else if (ct->opts.defer == CUT_DEFER_SPOOL) {
        log_main("%s F=<%s> cutthrough DATA deferred by %s: %s; message will be queued", host,
                 sender, link_host, r->text);
        cut_abandon(s);
        smtp_data_begin(s);
    } else {
        log_reject("%s F=<%s> temporarily rejected DATA: %s: %s", host, sender, link_host, r->text);
        if (r->reply && r->reply->code >= 400)
            cut_reply_upstream(s, r->reply, 0, NULL);
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

void cut_drained(void *arg, struct cut_link *l)
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

/* log_deferrals - "==" lines when the message is queued after the next hop failed at the end;
 * maybe_taken: the final dot went out and no verdict came back, so the next hop may have the
 * message and the queued copy may duplicate it */
static void log_deferrals(struct smtp_session *s, const char *why, bool maybe_taken)
{
    struct smtp_cut *ct = cut_of(s);
    struct txn *t = s->txn;
    char host[320], r[560], w[400];
    cut_link_log_host(ct->link, host, sizeof(host));
    str_sanitize(w, sizeof(w), why, strlen(why));
    for (size_t i = 0; i < t->env.nrcpts; i++) {
        if (!cut_on_link(ct, i))
            continue;
        str_sanitize_utf8(r, sizeof(r), t->env.rcpts[i].addr, strlen(t->env.rcpts[i].addr));
        metric_inc(M_DLV_DEFERRED);
        log_main("%s == %s R=%s T=remote_smtp defer (-1): %s: cutthrough: %s%s", t->env.id, r,
                 cut_link_route_name(ct->link), host, w, maybe_taken ? DUPLICATE_NOTE : "");
    }
}

/* dot_result - the verdict (doc/outbound.md, "What the client is told") */
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
            if (cut_on_link(ct, i))
                t->env.rcpts[i].state = RCPT_DELIVERED;
        str_sanitize(note, sizeof(note), r->text, strlen(r->text) < 200 ? strlen(r->text) : 200);
        smtp_data_accept(s, note, r->text);
    } else if (r->reply && r->reply->code >= 500) {
        smtp_log_host(s, host, sizeof(host));
        str_sanitize_utf8(sender, sizeof(sender), t->env.sender, strlen(t->env.sender));
        cut_link_log_host(ct->link, link_host, sizeof(link_host));
        log_reject("%s F=<%s> rejected after DATA: %s: C=\"%s\"", host, sender, link_host, r->text);
        cut_reply_upstream(s, r->reply, 0, NULL);
        smtp_data_refused(s);
    } else if (ct->opts.defer == CUT_DEFER_SPOOL) {
        log_deferrals(s, r->reply ? r->text : r->timed_out ? "timed out waiting for reply to end of data"
                                                          : "connection lost after end of data",
                      r->reply == NULL && r->after_dot);
        smtp_data_accept(s, NULL, NULL);
    } else {
        smtp_log_host(s, host, sizeof(host));
        str_sanitize_utf8(sender, sizeof(sender), t->env.sender, strlen(t->env.sender));
        cut_link_log_host(ct->link, link_host, sizeof(link_host));
        log_reject("%s F=<%s> temporarily rejected after DATA: %s: %s", host, sender, link_host,
                   r->reply ? r->text : r->timed_out ? "timed out waiting for reply to end of data"
                                                     : "connection lost after end of data");
        if (r->reply && r->reply->code >= 400)
            cut_reply_upstream(s, r->reply, 0, NULL);
        else
            smtp_reply(s, 451, "4.4.2", "Next hop %s; try again later",
                       r->timed_out ? "timed out" : "connection lost");
        smtp_data_refused(s);
    }
    smtp_resume(s);
}

/* cut_event - a step of the link finished */
void cut_event(void *arg, struct cut_link *l, const struct cut_result *r)
{
    struct smtp_session *s = arg;
    (void)l;
    switch (r->step) {
    case CUT_STEP_RCPT:
        cut_rcpt_event(s, r);
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
    if (ct->have_unans_reply)
        smtp_reply_free(&ct->unans_reply);
    free(ct);
    s->cut = NULL;
}
