/* upstream.c - open a transaction at the first next hop that takes it (see outbound/outbound.h):
 * the dialer gives a connection, MAIL is sent; a 4xx to MAIL moves on to the dialer's next
 * host, a 5xx is the answer.  A message that needs SMTPUTF8 is refused at once (553 5.6.7) by
 * a next hop that does not offer it, as RFC 6531 3.7.1 asks: it must not go out downgraded. */
#include "outbound.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "core/core.h"

struct upstream {
    struct dialer *dr;
    const struct route_result *route;
    const struct mail_out *mail;
    struct dial_req req;
    upstream_cb cb;
    void *arg;
    struct dial *dial;
    struct smtp_out *so;           /* MAIL sent, reply awaited */
    const struct next_hop *hop;
    bool reused;
    struct smtp_reply last;        /* copy of the last deciding reply */
    bool have_last;
    char last_text[600];
    enum dial_status last_status;
    size_t tried_at_mail;          /* hosts the dialer had tried when MAIL was last answered */
};

/* finish - report and free; so is handed over on success */
static void finish(struct upstream *u, enum upstream_status st, struct smtp_out *so)
{
    struct upstream_result r;
    memset(&r, 0, sizeof(r));
    r.status = st;
    r.so = so;
    r.hop = u->hop;
    r.reused = u->reused;
    r.why = u->last_status;
    r.reply = u->have_last ? &u->last : NULL;
    str_copy(r.text, u->last_text[0] ? u->last_text : "no next hop available", sizeof(r.text));
    u->cb(u->arg, &r);
    upstream_cancel(u);
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

/* utf8_refusal - the message needs SMTPUTF8 and this next hop does not offer it */
static void utf8_refusal(struct upstream *u)
{
    struct smtp_reply r = { 553, "5.6.7", { 0 }, 1 };
    sbuf_init(&r.text);
    sbuf_addstr(&r.text, "SMTPUTF8 is required but the next hop does not offer it");
    remember(u, &r, NULL);
    smtp_reply_free(&r);
    dialer_release(u->dr, u->so);
    u->so = NULL;
    finish(u, UP_REFUSED, NULL);
}

static void up_reply(void *arg, struct smtp_out *so, enum smtp_out_cmd cmd, void *tag,
                     const struct smtp_reply *r)
{
    struct upstream *u = arg;
    (void)tag;
    if (cmd != SOC_MAIL)
        return;
    remember(u, r, NULL);
    u->so = NULL;
    if (r->code >= 200 && r->code < 300) {
        finish(u, UP_OK, so);
    } else if (r->code >= 500) {
        dialer_release(u->dr, so);
        finish(u, UP_REFUSED, NULL);
    } else {                             /* 4xx: another host may take it */
        dialer_release(u->dr, so);
        u->last_status = DIAL_FAILED;
        dial_next(u->dial);
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
    u->last_status = DIAL_FAILED;
    smtp_out_free(so);
    dial_next(u->dial);
}

static const struct smtp_out_cbs up_cbs = { NULL, up_reply, up_failed, NULL };

/* dialed - a connection (MAIL goes out), or none to be had */
static void dialed(void *arg, const struct dial_result *r)
{
    struct upstream *u = arg;
    if (r->status != DIAL_OK) {
        u->last_status = r->status;
        if (r->tried > u->tried_at_mail || r->status != DIAL_FAILED || !u->last_text[0])
            remember(u, r->reply, r->text);   /* a later failure than MAIL's 4xx: it says why */
        if (r->hop)
            u->hop = r->hop;
        finish(u, UP_TEMPFAIL, NULL);
        return;
    }
    u->so = r->so;
    u->hop = r->hop;
    u->reused = r->reused;
    u->tried_at_mail = r->tried;
    if (u->mail->smtputf8 && !(smtp_out_exts(u->so) & EXT_SMTPUTF8)) {
        utf8_refusal(u);
        return;
    }
    smtp_out_set_cbs(u->so, &up_cbs, u);
    smtp_out_mail(u->so, u->mail, NULL);
}

struct upstream *upstream_open(struct dialer *dr, const struct route_result *route,
                               const struct mail_out *mail, const struct dial_req *req,
                               upstream_cb cb, void *arg)
{
    struct upstream *u = xcalloc(1, sizeof(*u));
    u->dr = dr;
    u->route = route;
    u->mail = mail;
    u->req = *req;
    u->cb = cb;
    u->arg = arg;
    u->last_status = DIAL_FAILED;
    u->dial = dial_start(dr, route, &u->req, dialed, u);
    return u;
}

void upstream_cancel(struct upstream *u)
{
    if (u == NULL)
        return;
    if (u->so)
        smtp_out_free(u->so);
    dial_free(u->dial);
    if (u->have_last)
        smtp_reply_free(&u->last);
    free(u);
}
