/* delivery_txn.c - one group of recipients over its next hops: skip hosts in their retry
 * period, connect (or reuse a cached connection after an RSET), run SMTP transactions of at
 * most DLV_BATCH_MAX recipients, map every reply to recipient verdicts, move on to the next
 * host on connection-level trouble, and record host failures and recoveries in the hints. */
#include "delivery_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "outbound.h"
#include "conf/conf.h"
#include "core/core.h"
#include "route/route.h"
#include "store/store.h"

static void try_hop(struct dlv_txn *t);
static void start_batch(struct dlv_txn *t);
static void on_ready(void *arg, struct smtp_out *so);
static void on_reply(void *arg, struct smtp_out *so, enum smtp_out_cmd cmd, void *tag,
                     const struct smtp_reply *r);
static void on_failed(void *arg, struct smtp_out *so, const struct so_failure *f);
static void on_drained(void *arg, struct smtp_out *so);

static const struct smtp_out_cbs txn_cbs = { on_ready, on_reply, on_failed, on_drained };

static const struct next_hop *cur_hop(const struct dlv_txn *t)
{
    return &t->res->hops[t->hop];
}

/* forget_req - the current hop's TLS decision is no longer needed */
static void forget_req(struct dlv_txn *t)
{
    tlsp_cancel(t->tq);
    t->tq = NULL;
    tls_req_free(t->req);
    t->req = NULL;
}

/* txn_end - the group is done: keep the connection for reuse (or QUIT it) and report */
static void txn_end(struct dlv_txn *t, bool keep)
{
    dlv_body_close(t);
    forget_req(t);
    if (t->so) {
        if (keep && t->d->de->cache && smtp_out_is_ready(t->so))
            conn_cache_put(t->d->de->cache, t->so);
        else if (keep)
            smtp_out_quit(t->so);
        else
            smtp_out_free(t->so);
        t->so = NULL;
    }
    t->phase = TP_IDLE;
    dlv_txn_finished(t);
}

/* defer_rest - every undecided recipient of the group gets the same deferral */
static void defer_rest(struct dlv_txn *t, const struct dlv_verdict *v)
{
    for (size_t k = 0; k < t->nrcpts; k++)
        dlv_decide(t->d, t->rcpts[k], v);
}

/* ---- hosts and their retry state ------------------------------------------------------ */

static time_t host_retry_interval(const struct conf *c, unsigned failures)
{
    if (c->nretry_intervals == 0)
        return 300;
    size_t i = failures > 0 ? failures - 1 : 0;
    return (time_t)c->retry_intervals[i < c->nretry_intervals ? i : c->nretry_intervals - 1];
}

/* retry_blocked - the host failed recently and its retry time has not come */
static bool retry_blocked(struct dlv_txn *t, const struct next_hop *h)
{
    struct retry_rec rec;
    char key[80];
    if (t->d->ignore_retry || t->d->de->hints == NULL)
        return false;
    hop_addr_key(h, key, sizeof(key));
    return hints_retry_get(t->d->de->hints, key, &rec) && rec.next_try > time(NULL);
}

static void host_ok(struct dlv_txn *t)
{
    struct retry_rec rec;
    char key[80];
    hop_addr_key(cur_hop(t), key, sizeof(key));
    if (t->d->de->hints && hints_retry_get(t->d->de->hints, key, &rec))
        hints_retry_del(t->d->de->hints, key);
}

static void host_failed(struct dlv_txn *t, const char *why)
{
    struct retry_rec rec;
    char key[80];
    time_t now = time(NULL);
    if (t->d->de->hints == NULL)
        return;
    hop_addr_key(cur_hop(t), key, sizeof(key));
    if (!hints_retry_get(t->d->de->hints, key, &rec)) {
        memset(&rec, 0, sizeof(rec));
        rec.first_failure = now;
    }
    rec.failures++;
    rec.last_try = now;
    rec.next_try = now + host_retry_interval(t->d->de->conf, rec.failures);
    str_copy(rec.last_error, why, sizeof(rec.last_error));
    hints_retry_put(t->d->de->hints, key, &rec);
}

/* all_failed - no host took the recipients: defer them with the last host's error */
static void all_failed(struct dlv_txn *t)
{
    struct dlv_verdict v = { .outcome = DLV_DEFERRED, .code = 0, .ecode = "4.4.1" };
    if (t->tried == 0) {
        v.text = "retry time not reached for any host";
        v.errnum = DLV_ERRNO_HRETRY;
    } else {
        v.text = t->last_err;
        v.errnum = t->last_errno;
        v.host = t->last_host;
    }
    defer_rest(t, &v);
    txn_end(t, false);
}

/* opts_for - engine options for the current hop from the configuration and its TLS decision */
static bool opts_for(struct dlv_txn *t, struct smtp_out_opts *o)
{
    const struct delivery_env *de = t->d->de;
    const struct conf *c = de->conf;
    unsigned data = c->data_timeout ? c->data_timeout : 300;
    memset(o, 0, sizeof(*o));
    o->helo = c->helo_data ? c->helo_data : c->hostname ? c->hostname : "localhost";
    tlsp_apply(t->req, &t->dial, o);
    o->ssl_ctx = de->client_tls;
    o->connect_timeout = c->connect_timeout ? c->connect_timeout : 30;
    o->command_timeout = data < DLV_COMMAND_TIMEOUT ? data : DLV_COMMAND_TIMEOUT;
    o->data_timeout = data;
    if (o->ssl_ctx == NULL && o->tls == TLS_MAY)
        o->tls = TLS_NONE;
    return o->ssl_ctx != NULL || o->tls <= TLS_NONE || o->tls == TLS_UNSET;
}

/* connect_hop - a fresh connection to the current hop */
static void connect_hop(struct dlv_txn *t)
{
    struct smtp_out_opts o;
    t->reused = false;
    t->phase = TP_CONNECT;
    if (!opts_for(t, &o)) {
        str_copy(t->last_err, "TLS required but no TLS client context", sizeof(t->last_err));
        t->last_errno = DLV_ERRNO_TLSREQUIRED;
        t->hop++;
        try_hop(t);
        return;
    }
    t->so = smtp_out_new(t->d->de->base, &t->dial, &o, &txn_cbs, t);
    smtp_out_connect(t->so);
}

/* refused_hop - the TLS decision rules this hop out: remember why, try the next */
static void refused_hop(struct dlv_txn *t, const struct tls_req *req)
{
    hop_log_text(cur_hop(t), t->last_host, sizeof(t->last_host));
    str_copy(t->last_err, req->why, sizeof(t->last_err));
    t->last_errno = DLV_ERRNO_TLSREQUIRED;
    t->hop++;
    try_hop(t);
}

/* hop_decided - the hop's TLS requirement is known: reuse a cached connection made under the
 * same requirement, or dial */
static void hop_decided(void *arg, const struct tls_req *req)
{
    struct dlv_txn *t = arg;
    t->tq = NULL;
    if (req->refuse) {
        refused_hop(t, req);
        return;
    }
    t->req = tls_req_dup(req);
    t->dial = *cur_hop(t);
    t->dial.tls = req->tls;
    struct smtp_out *so = conn_cache_take(t->d->de->cache, &t->dial);
    if (so == NULL) {
        connect_hop(t);
        return;
    }
    t->so = so;
    t->reused = true;
    t->phase = TP_RESET;
    smtp_out_set_cbs(so, &txn_cbs, t);
    smtp_out_set_auth(so, req->auth, req->show_auth);
    smtp_out_rset(so, NULL);
}

/* try_hop - the next host not in its retry period, once its TLS requirement is decided */
static void try_hop(struct dlv_txn *t)
{
    forget_req(t);
    while (t->hop < t->res->nhops && retry_blocked(t, cur_hop(t))) {
        t->skipped++;
        t->hop++;
    }
    if (t->hop >= t->res->nhops) {
        all_failed(t);
        return;
    }
    t->tried++;
    t->tq = tlsp_decide(t->d->de->tlsp, t->res->domain, cur_hop(t), hop_decided, t);
}

void dlv_txn_start(struct dlv_txn *t)
{
    t->hop = 0;
    t->batch = xcalloc(DLV_BATCH_MAX, sizeof(*t->batch));
    t->batch_ok = xcalloc(DLV_BATCH_MAX, sizeof(*t->batch_ok));
    try_hop(t);
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

static void on_ready(void *arg, struct smtp_out *so)
{
    struct dlv_txn *t = arg;
    (void)so;
    host_ok(t);
    start_batch(t);
}

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
        if (t->phase == TP_RESET && r->code / 100 == 2) {
            start_batch(t);
        } else if (t->phase == TP_RESET) { /* a stale cached connection: not the host's fault */
            smtp_out_free(t->so);
            t->so = NULL;
            connect_hop(t);
        } else if (r->code / 100 == 2) {
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

/* errnum_for - Exim's "defer (N)" for a connection-level failure */
static int errnum_for(const struct so_failure *f)
{
    switch (f->kind) {
    case SOF_CONNECT: return f->sys_errno ? f->sys_errno : -1;
    case SOF_LOST: return f->sys_errno ? f->sys_errno : DLV_ERRNO_SMTPCLOSED;
    case SOF_TIMEOUT: return 110; /* ETIMEDOUT */
    case SOF_TLS: return DLV_ERRNO_TLSFAILURE;
    default: return -1;
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
    if (t->reused && t->phase == TP_RESET) { /* the cached connection had gone stale */
        connect_hop(t);
        return;
    }
    str_copy(t->last_host, host + 2, sizeof(t->last_host));
    str_copy(t->last_err, f->text, sizeof(t->last_err));
    t->last_errno = errnum_for(f);
    if (t->dot_sent) { /* the message may have arrived: never send it to another host */
        struct dlv_verdict v = { .outcome = DLV_DEFERRED, .ecode = "4.4.2", .text = f->text,
                                 .errnum = t->last_errno, .host = t->last_host };
        defer_rest(t, &v);
        txn_end(t, false);
        return;
    }
    host_failed(t, f->text);
    t->hop++;
    try_hop(t);
}

static void on_drained(void *arg, struct smtp_out *so)
{
    struct dlv_txn *t = arg;
    (void)so;
    if (t->phase == TP_BODY)
        dlv_body_pump(t);
}
