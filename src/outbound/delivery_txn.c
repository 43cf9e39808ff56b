/* delivery_txn.c - one group of recipients over its next hops: the dialer gives a connection
 * (hosts in their retry window skipped, a pooled one reused, the per-host limit kept, health
 * recorded), then SMTP transactions of at most DLV_BATCH_MAX recipients, every reply mapped to
 * recipient verdicts; connection-level trouble (or a 4xx to MAIL) before the final dot moves
 * on to the dialer's next host. */
#include "delivery_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "outbound.h"
#include "conf/conf.h"
#include "core/core.h"
#include "route/route.h"
#include "store/store.h"

static void start_batch(struct dlv_txn *t);
static void on_reply(void *arg, struct smtp_out *so, enum smtp_out_cmd cmd, void *tag,
                     const struct smtp_reply *r);
static void on_failed(void *arg, struct smtp_out *so, const struct so_failure *f);
static void on_drained(void *arg, struct smtp_out *so);

static const struct smtp_out_cbs txn_cbs = { NULL, on_reply, on_failed, on_drained };

/* txn_end - the group is done: keep the connection for reuse (or QUIT it) and report */
static void txn_end(struct dlv_txn *t, bool keep)
{
    dlv_body_close(t);
    if (t->so) {
        if (keep)
            dialer_release(t->d->de->dialer, t->so);   /* pooled if it is between transactions */
        else
            smtp_out_free(t->so);
        t->so = NULL;
    }
    dial_free(t->dial);
    t->dial = NULL;
    t->phase = TP_IDLE;
    dlv_txn_finished(t);
}

/* defer_rest - every undecided recipient of the group gets the same deferral */
static void defer_rest(struct dlv_txn *t, const struct dlv_verdict *v)
{
    for (size_t k = 0; k < t->nrcpts; k++)
        dlv_decide(t->d, t->rcpts[k], v);
}

/* ---- hosts ------------------------------------------------------------------------------ */

/* errnum_for - Exim's "defer (N)" for a connection-level failure */
static int errnum_for(enum so_fail kind, int sys_errno)
{
    switch (kind) {
    case SOF_CONNECT: return sys_errno ? sys_errno : -1;
    case SOF_LOST: return sys_errno ? sys_errno : DLV_ERRNO_SMTPCLOSED;
    case SOF_TIMEOUT: return 110; /* ETIMEDOUT */
    case SOF_TLS: return DLV_ERRNO_TLSFAILURE;
    default: return -1;
    }
}

/* all_failed - no host took the recipients: defer them with the last host's error */
static void all_failed(struct dlv_txn *t, const struct dial_result *r)
{
    struct dlv_verdict v = { .outcome = DLV_DEFERRED, .code = 0, .ecode = "4.4.1" };
    if (r->tried > t->tried_at_handover && r->host[0]) {  /* a later failure than ours */
        str_copy(t->last_err, r->why, sizeof(t->last_err));
        str_copy(t->last_host, r->host, sizeof(t->last_host));
        t->last_errno = r->tls_refused ? DLV_ERRNO_TLSREQUIRED : errnum_for(r->fail_kind, r->sys_errno);
    }
    if (t->last_host[0] == '\0' && r->status == DIAL_RETRY_WAIT) {
        v.text = r->text;          /* "retry time not reached for any host (H=...: why)" */
        v.errnum = DLV_ERRNO_HRETRY;
    } else if (t->last_host[0] == '\0' && r->status != DIAL_FAILED) {
        v.text = r->text;          /* every host at its connection limit */
        v.errnum = -1;
    } else {
        v.text = t->last_err[0] ? t->last_err : r->text;
        v.errnum = t->last_errno;
        v.host = t->last_host[0] ? t->last_host : NULL;
    }
    defer_rest(t, &v);
    txn_end(t, false);
}

/* on_dialed - a connection to the first host that gave one, or none */
static void on_dialed(void *arg, const struct dial_result *r)
{
    struct dlv_txn *t = arg;
    if (r->status != DIAL_OK) {
        all_failed(t, r);
        return;
    }
    t->so = r->so;
    t->tried_at_handover = r->tried;
    smtp_out_set_cbs(t->so, &txn_cbs, t);
    start_batch(t);
}

/* next_host - this host cannot take the group now: the dialer's next one */
static void next_host(struct dlv_txn *t)
{
    dlv_body_close(t);
    t->phase = TP_CONNECT;
    dial_next(t->dial);
}

void dlv_txn_start(struct dlv_txn *t)
{
    struct dial_req req = { DIAL_DELIVERY, 0, t->d->ignore_retry };
    t->batch = xcalloc(DLV_BATCH_MAX, sizeof(*t->batch));
    t->batch_ok = xcalloc(DLV_BATCH_MAX, sizeof(*t->batch_ok));
    t->phase = TP_CONNECT;
    t->dial = dial_start(t->d->de->dialer, t->res, &req, on_dialed, t);
}

/* ---- one SMTP transaction -------------------------------------------------------------- */

/* local_refusal - the message cannot go to this server at all (SMTPUTF8, SIZE) */
static bool local_refusal(struct dlv_txn *t)
{
    const struct envelope *env = t->d->env;
    uint64_t limit = smtp_out_size_limit(t->so);
    struct dlv_verdict v = { .outcome = DLV_FAILED, .so = t->so };
    if (env->smtputf8 && !(smtp_out_exts(t->so) & EXT_SMTPUTF8)) {
        v.code = 550;
        v.ecode = "5.6.7";
        v.text = "SMTPUTF8 is required but the next hop does not offer it";
        v.errnum = DLV_ERRNO_UTF8;
    } else if ((smtp_out_exts(t->so) & EXT_SIZE) && limit && spool_content_length(env) > limit) {
        v.code = 552;
        v.ecode = "5.3.4";
        v.text = "message is larger than the next hop's SIZE limit";
    } else {
        return false;
    }
    defer_rest(t, &v);
    return true;
}

/* send_rcpts - RCPT for every recipient of the batch */
static void send_rcpts(struct dlv_txn *t)
{
    for (size_t k = 0; k < t->nbatch; k++) {
        const struct rcpt *r = &t->d->env->rcpts[t->batch[k]];
        smtp_out_rcpt(t->so, r->addr, r->notify, r->orcpt, NULL);
    }
}

static void start_batch(struct dlv_txn *t)
{
    const struct envelope *env = t->d->env;
    t->nbatch = t->rcpt_replies = t->accepted = 0;
    t->mail_ok = t->data_sent = t->dot_sent = t->ignore_dot = false;
    for (size_t k = 0; k < t->nrcpts && t->nbatch < DLV_BATCH_MAX; k++)
        if (!dlv_decided(t->d, t->rcpts[k]))
            t->batch[t->nbatch++] = t->rcpts[k];
    if (t->nbatch == 0 || local_refusal(t)) {
        txn_end(t, true);
        return;
    }
    memset(t->batch_ok, 0, DLV_BATCH_MAX * sizeof(*t->batch_ok));
    struct mail_out m;
    mail_out_from_envelope(&m, env, spool_content_length(env));
    t->phase = TP_MAIL;
    smtp_out_mail(t->so, &m, NULL);
    if (smtp_out_exts(t->so) & EXT_PIPELINING) {
        send_rcpts(t);
        smtp_out_data(t->so, NULL);
        t->data_sent = true;
    }
}

/* batch_end - the transaction is over: the next batch, or a reset, or the end */
static void batch_end(struct dlv_txn *t)
{
    if (smtp_out_is_ready(t->so)) {
        start_batch(t);
    } else if (t->phase != TP_CLEANUP) {
        t->phase = TP_CLEANUP;
        smtp_out_rset(t->so, NULL);
    } else {
        txn_end(t, false);
    }
}

/* reply_verdict - a 4xx/5xx reply decides recipient i */
static void reply_verdict(struct dlv_txn *t, size_t i, const struct smtp_reply *r, const char *after,
                          int errnum4xx)
{
    struct dlv_verdict v = { .outcome = r->code >= 500 ? DLV_FAILED : DLV_DEFERRED, .reply = r,
                             .after = after, .so = t->so, .errnum = errnum4xx };
    dlv_decide(t->d, i, &v);
}

static void on_mail(struct dlv_txn *t, const struct smtp_reply *r)
{
    char after[600];
    t->mail_ok = r->code >= 200 && r->code < 300;
    if (t->mail_ok) {
        if (!t->data_sent)
            send_rcpts(t);
        return;
    }
    str_fmt(after, sizeof(after), "MAIL FROM:<%s>", t->d->env->sender);
    if (r->code < 500) {        /* this host cannot take it now: another one may */
        char text[300], host[400];
        dlv_reply_text(r, text, sizeof(text));
        str_fmt(t->last_err, sizeof(t->last_err), "SMTP error from remote mail server after %s: %s",
                after, text);
        smtp_out_log_host(t->so, host, sizeof(host));
        str_copy(t->last_host, host + 2, sizeof(t->last_host));
        t->last_errno = DLV_ERRNO_MAIL4XX;
        dialer_release(t->d->de->dialer, t->so);
        t->so = NULL;
        next_host(t);
        return;
    }
    for (size_t k = 0; k < t->nrcpts; k++) /* a refused sender is refused for everyone */
        reply_verdict(t, t->rcpts[k], r, after, DLV_ERRNO_MAIL4XX);
    if (!t->data_sent)
        batch_end(t);
}

static void on_rcpt(struct dlv_txn *t, const struct smtp_reply *r)
{
    size_t k = t->rcpt_replies++;
    if (!t->mail_ok || k >= t->nbatch)
        return;
    size_t i = t->batch[k];
    if (r->code >= 200 && r->code < 300) {
        t->batch_ok[k] = true;
        t->accepted++;
    } else {
        char after[600];
        str_fmt(after, sizeof(after), "RCPT TO:<%s>", t->d->env->rcpts[i].addr);
        reply_verdict(t, i, r, after, DLV_ERRNO_RCPT4XX);
    }
    if (t->rcpt_replies == t->nbatch && !t->data_sent) {
        if (t->accepted > 0) {
            smtp_out_data(t->so, NULL);
            t->data_sent = true;
        } else {
            batch_end(t);
        }
    }
}

static void on_data(struct dlv_txn *t, const struct smtp_reply *r)
{
    if (r->code == 354 && t->mail_ok && t->accepted > 0) {
        t->phase = TP_BODY;
        dlv_body_start(t);
        return;
    }
    for (size_t k = 0; k < t->nbatch && r->code != 354 && t->mail_ok; k++)
        if (t->batch_ok[k])
            reply_verdict(t, t->batch[k], r, "DATA", DLV_ERRNO_DATA4XX);
    t->ignore_dot = true; /* close the data phase (an empty one if the server said 354) */
    t->phase = TP_DOT;
    smtp_out_dot(t->so, NULL);
}

static void on_dot(struct dlv_txn *t, const struct smtp_reply *r)
{
    t->dot_sent = false;
    if (!t->ignore_dot) {
        for (size_t k = 0; k < t->nbatch; k++) {
            if (!t->batch_ok[k])
                continue;
            if (r->code >= 200 && r->code < 300) {
                struct dlv_verdict v = { .outcome = DLV_DELIVERED, .reply = r, .so = t->so };
                dlv_decide(t->d, t->batch[k], &v);
            } else {
                reply_verdict(t, t->batch[k], r, "end of data", DLV_ERRNO_DATA4XX);
            }
        }
    }
    batch_end(t);
}

/* ---- engine callbacks ------------------------------------------------------------------ */

static void on_reply(void *arg, struct smtp_out *so, enum smtp_out_cmd cmd, void *tag,
                     const struct smtp_reply *r)
{
    struct dlv_txn *t = arg;
    (void)so;
    (void)tag;
    if (r->code == 421 && cmd != SOC_DOT)
        return; /* the engine reports the closed connection next: another host gets a try */
    switch (cmd) {
    case SOC_RSET:
        if (r->code / 100 == 2) {
            batch_end(t);
        } else {
            txn_end(t, false);
        }
        break;
    case SOC_MAIL: on_mail(t, r); break;
    case SOC_RCPT: on_rcpt(t, r); break;
    case SOC_DATA: on_data(t, r); break;
    case SOC_DOT: on_dot(t, r); break;
    default: break;
    }
}

static void on_failed(void *arg, struct smtp_out *so, const struct so_failure *f)
{
    struct dlv_txn *t = arg;
    char host[400];
    smtp_out_log_host(so, host, sizeof(host));
    smtp_out_free(so);
    t->so = NULL;
    dlv_body_close(t);
    str_copy(t->last_host, host + 2, sizeof(t->last_host));
    str_copy(t->last_err, f->text, sizeof(t->last_err));
    t->last_errno = errnum_for(f->kind, f->sys_errno);
    if (t->dot_sent) { /* the message may have arrived: never send it to another host */
        char text[400];
        str_fmt(text, sizeof(text), "%s (the next hop may have taken the message: the next "
                "attempt may deliver a duplicate)", f->text);
        struct dlv_verdict v = { .outcome = DLV_DEFERRED, .ecode = "4.4.2", .text = text,
                                 .errnum = t->last_errno, .host = t->last_host };
        defer_rest(t, &v);
        txn_end(t, false);
        return;
    }
    next_host(t);          /* the dialer's watcher has recorded the host's failure */
}

static void on_drained(void *arg, struct smtp_out *so)
{
    struct dlv_txn *t = arg;
    (void)so;
    if (t->phase == TP_BODY)
        dlv_body_pump(t);
}
