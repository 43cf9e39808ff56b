/* cutthrough.c - the cutthrough link (see outbound/outbound.h): the onward transaction's state
 * machine.  Every step's outcome is reported from the event loop through one callback. */
#include "outbound.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "core/core.h"
#include "smtp/smtp.h"

enum cl_state {
    CL_NEW,       /* nothing sent yet */
    CL_OPENING,   /* connecting, MAIL (upstream_open) */
    CL_MAIL,      /* MAIL sent on a reused connection */
    CL_OPEN,      /* MAIL accepted: RCPTs */
    CL_DATA,      /* DATA sent, waiting for 354 */
    CL_BODY,      /* streaming the body */
    CL_DOT,       /* final dot sent */
    CL_RSET,      /* transaction being reset */
    CL_IDLE,      /* transaction over, connection ready for another */
    CL_DEAD,      /* the connection is gone (or never came) */
};

struct cut_link {
    struct upstream_env ue;
    struct route_result *route;
    char key[1024];
    struct cutthrough_opts opts;
    char sender[ADDR_PATH_MAX + 1];
    char envid[400];
    struct mail_out mail;
    cut_cb cb;
    cut_drained_cb drained;
    void *arg;
    enum cl_state st;
    struct upstream *up;
    struct smtp_out *so;
    char host[320], tls[256];
    /* the recipient waiting for the connection */
    bool rcpt_queued;
    char q_rcpt[ADDR_PATH_MAX + 1];
    unsigned q_notify;
    char q_orcpt[600];
    char **accepted;
    size_t naccepted;
    /* the report waiting to be delivered from the loop */
    struct event *report_ev;
    bool have_report, have_reply;
    struct cut_result report;
    struct smtp_reply report_reply;
    int waiting;                 /* the step whose outcome is awaited, -1 none */
    bool corking;                /* body goes to `corked` (cut_link_cork) */
    struct sbuf corked;          /* held body: out ahead of the next body bytes or the dot */
    char dead_text[600];
    bool dead_timeout;
};

static void cl_ready(void *arg, struct smtp_out *so);
static void cl_reply(void *arg, struct smtp_out *so, enum smtp_out_cmd cmd, void *tag,
                     const struct smtp_reply *r);
static void cl_failed(void *arg, struct smtp_out *so, const struct so_failure *f);
static void cl_drained(void *arg, struct smtp_out *so);
static const struct smtp_out_cbs cl_cbs = { cl_ready, cl_reply, cl_failed, cl_drained };

#define CUT_ADDED_HEADERS_MAX 4096 /* SIZE headroom for the headers tandem adds */

/* report_cb - deliver the pending report */
static void report_cb(evutil_socket_t fd, short what, void *arg)
{
    struct cut_link *l = arg;
    struct cut_result r = l->report;
    (void)fd;
    (void)what;
    if (!l->have_report)
        return;
    l->have_report = false;
    r.reply = l->have_reply ? &l->report_reply : NULL;
    l->cb(l->arg, l, &r);   /* may free l: touch nothing afterwards */
}

/* report - queue the outcome of the awaited step (with a copy of the reply) */
static void report(struct cut_link *l, const struct smtp_reply *reply, const char *text, bool timed_out)
{
    if (l->waiting < 0)
        return;
    if (l->have_reply)
        smtp_reply_free(&l->report_reply);
    l->have_reply = reply != NULL;
    memset(&l->report, 0, sizeof(l->report));
    l->report.step = (enum cut_step)l->waiting;
    l->report.timed_out = timed_out;
    if (reply) {
        struct sbuf one;
        sbuf_init(&one);
        smtp_reply_copy(&l->report_reply, reply);
        smtp_reply_oneline(reply, &one);
        str_copy(l->report.text, one.s ? one.s : "", sizeof(l->report.text));
        sbuf_free(&one);
    } else {
        str_copy(l->report.text, text, sizeof(l->report.text));
    }
    l->waiting = -1;
    l->have_report = true;
    event_active(l->report_ev, 0, 0);
}

/* die - the connection is gone; an awaited step fails */
static void die(struct cut_link *l, const char *text, bool timed_out)
{
    if (l->so) {
        smtp_out_free(l->so);
        l->so = NULL;
    }
    l->st = CL_DEAD;
    str_copy(l->dead_text, text, sizeof(l->dead_text));
    l->dead_timeout = timed_out;
    report(l, NULL, text, timed_out);
}

/* note_connection - remember the host and TLS state for the log lines */
static void note_connection(struct cut_link *l)
{
    const char *tls = smtp_out_tls_info(l->so);
    char ta[40];
    smtp_out_log_host(l->so, l->host, sizeof(l->host));
    smtp_out_log_auth(l->so, ta, sizeof(ta));
    if (tls)
        str_fmt(l->tls, sizeof(l->tls), " X=%s CV=%s%s", tls,
                smtp_out_tls_verified(l->so) ? "yes" : "no", ta);
    else
        str_copy(l->tls, ta, sizeof(l->tls));
}

static void send_queued_rcpt(struct cut_link *l)
{
    if (!l->rcpt_queued)
        return;
    l->rcpt_queued = false;
    smtp_out_rcpt(l->so, l->q_rcpt, l->q_notify, l->q_orcpt[0] ? l->q_orcpt : NULL, NULL);
}

/* open_verdict - the reply a failed open passes on to the RCPT waiting for it.  A 5xx refusal
 * of MAIL is a verdict and passes on as the RCPT's; any other failure is a temporary one,
 * whatever reply came with it: a greeting "250 ...", a "220" to STARTTLS followed by junk or
 * a failed handshake, a "554" banner.  Its 4xx passes on as such; other codes, never. */
static const struct smtp_reply *open_verdict(const struct upstream_result *r)
{
    if (r->reply == NULL)
        return NULL;
    if (r->status == UP_REFUSED)
        return r->reply->code >= 500 && r->reply->code < 600 ? r->reply : NULL;
    return r->reply->code >= 400 && r->reply->code < 500 ? r->reply : NULL;
}

/* opened - upstream_open finished: MAIL accepted, refused, or no host */
static void opened(void *arg, const struct upstream_result *r)
{
    struct cut_link *l = arg;
    l->up = NULL;
    if (r->status == UP_OK) {
        l->so = r->so;
        smtp_out_set_cbs(l->so, &cl_cbs, l);
        note_connection(l);
        l->st = CL_OPEN;
        send_queued_rcpt(l);
        return;
    }
    if (r->hop)
        str_fmt(l->host, sizeof(l->host), "H=%s [%s]:%u", r->hop->name, r->hop->ip, r->hop->port);
    l->st = CL_DEAD;
    str_copy(l->dead_text, r->text, sizeof(l->dead_text));
    report(l, open_verdict(r), r->text, false);
}

static void cl_ready(void *arg, struct smtp_out *so)
{
    (void)arg;
    (void)so;
}

/* mail_reply - MAIL on a reused connection */
static void mail_reply(struct cut_link *l, const struct smtp_reply *r)
{
    if (r->code >= 200 && r->code < 300) {
        l->st = CL_OPEN;
        send_queued_rcpt(l);
        return;
    }
    l->st = CL_IDLE;          /* the connection is fine; this transaction is not */
    l->rcpt_queued = false;
    report(l, r, NULL, false);
}

static void cl_reply(void *arg, struct smtp_out *so, enum smtp_out_cmd cmd, void *tag,
                     const struct smtp_reply *r)
{
    struct cut_link *l = arg;
    (void)so;
    (void)tag;
    switch (cmd) {
    case SOC_MAIL:
        mail_reply(l, r);
        break;
    case SOC_RCPT:
        /* Only an open transaction awaits it: after a refused MAIL, the reply to a RCPT
         * pipelined behind it (503) answers nobody. */
        if (l->st != CL_OPEN)
            break;
        if (r->code >= 200 && r->code < 300) {
            l->accepted = xreallocarray(l->accepted, l->naccepted + 1, sizeof(*l->accepted));
            l->accepted[l->naccepted++] = xstrdup(l->q_rcpt);
        }
        report(l, r, NULL, false);
        break;
    case SOC_DATA:
        l->st = r->code == 354 ? CL_BODY : CL_OPEN;
        report(l, r, NULL, false);
        break;
    case SOC_DOT:
        l->st = CL_IDLE;
        report(l, r, NULL, false);
        break;
    case SOC_RSET:
        l->st = r->code >= 200 && r->code < 300 ? CL_IDLE : CL_DEAD;
        break;
    default:
        break;
    }
}

static void cl_failed(void *arg, struct smtp_out *so, const struct so_failure *f)
{
    struct cut_link *l = arg;
    (void)so;
    die(l, f->text, f->kind == SOF_TIMEOUT);
}

static void cl_drained(void *arg, struct smtp_out *so)
{
    struct cut_link *l = arg;
    (void)so;
    if (l->drained)
        l->drained(l->arg, l);
}

/* set_mail - copy the sender side into the link */
static void set_mail(struct cut_link *l, const struct mail_out *m)
{
    const struct conf *c = l->ue.conf;
    str_copy(l->sender, m->sender, sizeof(l->sender));
    str_copy(l->envid, m->envid ? m->envid : "", sizeof(l->envid));
    memset(&l->mail, 0, sizeof(l->mail));
    l->mail.sender = l->sender;
    /* the client's SIZE plus room for the headers tandem adds */
    l->mail.size = m->size ? m->size + CUT_ADDED_HEADERS_MAX : 0;
    if (c->message_size_limit && l->mail.size > c->message_size_limit + CUT_ADDED_HEADERS_MAX)
        l->mail.size = c->message_size_limit + CUT_ADDED_HEADERS_MAX;
    l->mail.body_8bit = m->body_8bit;
    l->mail.smtputf8 = m->smtputf8;
    l->mail.ret = m->ret;
    l->mail.envid = l->envid[0] ? l->envid : NULL;
    for (size_t i = 0; i < l->naccepted; i++)
        free(l->accepted[i]);
    l->naccepted = 0;
}

struct cut_link *cut_link_new(const struct upstream_env *ue, struct route_result *route,
                              const struct mail_out *mail, const struct cutthrough_opts *opts,
                              cut_cb cb, cut_drained_cb drained, void *arg)
{
    struct cut_link *l = xcalloc(1, sizeof(*l));
    sbuf_init(&l->corked);
    l->ue = *ue;
    l->route = route;
    route_hops_key(route, l->key, sizeof(l->key));
    l->opts = *opts;
    l->cb = cb;
    l->drained = drained;
    l->arg = arg;
    l->waiting = -1;
    l->report_ev = event_new(ue->base, -1, 0, report_cb, l);
    set_mail(l, mail);
    return l;
}

void cut_link_adopt(struct cut_link *l, struct smtp_out *kept, const char *kept_rcpt)
{
    l->so = kept;
    smtp_out_set_cbs(kept, &cl_cbs, l);
    note_connection(l);
    l->st = CL_OPEN;
    l->accepted = xreallocarray(l->accepted, l->naccepted + 1, sizeof(*l->accepted));
    l->accepted[l->naccepted++] = xstrdup(kept_rcpt);
}

bool cut_link_restart(struct cut_link *l, const struct mail_out *mail)
{
    if (l->st != CL_IDLE || l->so == NULL || !smtp_out_is_ready(l->so))
        return false;
    set_mail(l, mail);
    l->st = CL_MAIL;
    smtp_out_mail(l->so, &l->mail, NULL);
    return true;
}

const char *cut_link_key(const struct cut_link *l) { return l->key; }
bool cut_link_alive(const struct cut_link *l) { return l->st != CL_DEAD; }
size_t cut_link_naccepted(const struct cut_link *l) { return l->naccepted; }

bool cut_link_has_rcpt(const struct cut_link *l, const char *rcpt)
{
    for (size_t i = 0; i < l->naccepted; i++)
        if (strcmp(l->accepted[i], rcpt) == 0)
            return true;
    return false;
}

void cut_link_rcpt(struct cut_link *l, const char *rcpt, unsigned notify, const char *orcpt)
{
    l->waiting = CUT_STEP_RCPT;
    str_copy(l->q_rcpt, rcpt, sizeof(l->q_rcpt));
    l->q_notify = notify;
    str_copy(l->q_orcpt, orcpt ? orcpt : "", sizeof(l->q_orcpt));
    l->rcpt_queued = true;
    switch (l->st) {
    case CL_NEW:
        l->st = CL_OPENING;
        l->up = upstream_open(&l->ue, l->route, &l->mail, l->ue.conf->callout_timeout, opened, l);
        break;
    case CL_OPEN:
        send_queued_rcpt(l);
        break;
    case CL_MAIL:
        /* On a reused connection that pipelines, RCPT follows MAIL at once: one round trip
         * for both.  Should MAIL fail, its reply answers the client and RCPT's is ignored. */
        if (smtp_out_exts(l->so) & EXT_PIPELINING)
            send_queued_rcpt(l);
        break;
    case CL_OPENING:
        break;                        /* sent once MAIL is accepted */
    default:
        l->rcpt_queued = false;
        report(l, NULL, l->dead_text[0] ? l->dead_text : "cutthrough connection not usable", l->dead_timeout);
    }
}

void cut_link_data(struct cut_link *l)
{
    l->waiting = CUT_STEP_DATA;
    if (l->st != CL_OPEN) {
        report(l, NULL, l->dead_text[0] ? l->dead_text : "cutthrough connection not usable", l->dead_timeout);
        return;
    }
    l->st = CL_DATA;
    smtp_out_data(l->so, NULL);
}

/* uncork - send held body bytes ahead of what follows them */
static void uncork(struct cut_link *l)
{
    if (l->corked.len && (l->st == CL_BODY || l->st == CL_DATA) && l->so)
        smtp_out_body(l->so, l->corked.s, l->corked.len);
    sbuf_reset(&l->corked);
}

void cut_link_cork(struct cut_link *l, bool on)
{
    l->corking = on;
}

void cut_link_body(struct cut_link *l, const char *p, size_t n)
{
    if (l->corking) {
        sbuf_add(&l->corked, p, n);
        return;
    }
    uncork(l);
    if ((l->st == CL_BODY || l->st == CL_DATA) && l->so)
        smtp_out_body(l->so, p, n);
}

bool cut_link_blocked(const struct cut_link *l)
{
    return l->so && l->st == CL_BODY && smtp_out_body_pending(l->so) >= SMTP_OUT_BODY_HIGH;
}

void cut_link_dot(struct cut_link *l)
{
    uncork(l);
    l->waiting = CUT_STEP_DOT;
    if (l->st != CL_BODY) {
        report(l, NULL, l->dead_text[0] ? l->dead_text : "cutthrough connection not usable", l->dead_timeout);
        return;
    }
    l->st = CL_DOT;
    smtp_out_dot(l->so, NULL);
}

void cut_link_cancel_txn(struct cut_link *l)
{
    l->corking = false;
    sbuf_reset(&l->corked);
    l->waiting = -1;
    l->rcpt_queued = false;
    if (l->up) {
        upstream_cancel(l->up);
        l->up = NULL;
        l->st = CL_DEAD;
        return;
    }
    if (l->st == CL_OPEN && l->so) {
        l->st = CL_RSET;
        smtp_out_rset(l->so, NULL);
    } else if (l->st != CL_IDLE && l->st != CL_DEAD) {
        die(l, "transaction abandoned", false);   /* mid-DATA: close, the next hop keeps nothing */
    }
}

void cut_link_log_host(const struct cut_link *l, char *buf, size_t sz)
{
    str_copy(buf, l->host[0] ? l->host : "H=?", sz);
}

void cut_link_log_tls(const struct cut_link *l, char *buf, size_t sz)
{
    str_copy(buf, l->tls, sz);
}

const char *cut_link_route_name(const struct cut_link *l)
{
    return l->route && l->route->route ? l->route->route->pattern : "*";
}

void cut_link_free(struct cut_link *l)
{
    if (l->up)
        upstream_cancel(l->up);
    if (l->so) {
        if (l->st == CL_IDLE && smtp_out_is_ready(l->so))
            smtp_out_quit(l->so);
        else
            smtp_out_free(l->so);
    }
    for (size_t i = 0; i < l->naccepted; i++)
        free(l->accepted[i]);
    free(l->accepted);
    if (l->have_reply)
        smtp_reply_free(&l->report_reply);
    event_free(l->report_ev);
    route_result_free(l->route);
    sbuf_free(&l->corked);
    free(l);
}
