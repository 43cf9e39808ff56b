/* smtp_out_cmd.c - transaction commands of the outbound engine: the queue (sent together
 * under PIPELINING, one at a time otherwise, nothing after DATA before its 354 and nothing
 * after the final dot before its reply), replies handed back in order with the caller's tags,
 * the body (dot-stuffed, held until the 354, back-pressure by watermarks), BDAT, QUIT. */
#include "smtp_out_int.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

/* Per command: its name in texts, what a timeout says, and which timeout applies. */
enum so_tmo { TMO_COMMAND, TMO_DATA, TMO_QUIT };
static const struct {
    const char *name, *waiting;
    enum so_tmo tmo;
} cmd_table[] = {
    [SOC_MAIL] = { "MAIL", "reply to MAIL", TMO_COMMAND },
    [SOC_RCPT] = { "RCPT", "reply to RCPT", TMO_COMMAND },
    [SOC_DATA] = { "DATA", "reply to DATA", TMO_COMMAND },
    [SOC_BDAT] = { "BDAT", "reply to BDAT", TMO_DATA },
    [SOC_DOT] = { "end of data", "reply to end of data", TMO_DATA },
    [SOC_RSET] = { "RSET", "reply to RSET", TMO_COMMAND },
    [SOC_QUIT] = { "QUIT", "reply to QUIT", TMO_QUIT },
};

const char *so_cmd_name(enum smtp_out_cmd cmd)
{
    return (size_t)cmd < ARRAY_LEN(cmd_table) ? cmd_table[cmd].name : "?";
}

static struct so_cmd *head(const struct smtp_out *so)
{
    return so->qhead < so->qlen ? &so->q[so->qhead] : NULL;
}

const char *so_head_name(const struct smtp_out *so)
{
    const struct so_cmd *c = head(so);
    if (c && c->sent)
        return so_cmd_name(c->cmd);
    return so->dphase == DP_OPEN ? "data" : "nothing (idle)";
}

/* push - a new entry at the tail (compacting or growing the array) */
static struct so_cmd *push(struct smtp_out *so, enum smtp_out_cmd cmd, void *tag)
{
    if (so->qlen - so->qhead >= SO_QUEUE_MAX)
        fatalx("smtp_out: more than %d commands queued", SO_QUEUE_MAX);
    if (so->qlen == so->qcap && so->qhead > 0) {
        memmove(so->q, so->q + so->qhead, (so->qlen - so->qhead) * sizeof(*so->q));
        so->qlen -= so->qhead;
        so->qhead = 0;
    }
    if (so->qlen == so->qcap) {
        so->qcap = so->qcap ? so->qcap * 2 : 16;
        so->q = xreallocarray(so->q, so->qcap, sizeof(*so->q));
    }
    struct so_cmd *c = &so->q[so->qlen++];
    memset(c, 0, sizeof(*c));
    c->cmd = cmd;
    c->tag = tag;
    c->seq = so->seq++;
    sbuf_init(&c->out);
    sbuf_init(&c->reply.text);
    return c;
}

static void cmd_free(struct so_cmd *c)
{
    sbuf_free(&c->out);
    smtp_reply_free(&c->reply);
}

/* pop - remove the head entry, returning a copy (whose buffers the caller frees) */
static struct so_cmd pop(struct smtp_out *so)
{
    struct so_cmd c = so->q[so->qhead++];
    if (so->qhead == so->qlen)
        so->qhead = so->qlen = 0;
    return c;
}

void so_queue_free(struct smtp_out *so)
{
    for (size_t i = so->qhead; i < so->qlen; i++)
        cmd_free(&so->q[i]);
    free(so->q);
    so->q = NULL;
    so->qhead = so->qlen = so->qcap = 0;
}

/* arm - the timer follows the oldest command awaiting its reply */
static void arm(struct smtp_out *so)
{
    struct so_cmd *c = head(so);
    if (so->state != SO_READY && so->state != SO_QUITTING)
        return;
    if (c == NULL || !c->sent || c->local) {
        so_stop_timer(so);
        return;
    }
    if (so->armed_seq == c->seq)
        return;
    enum so_tmo k = cmd_table[c->cmd].tmo;
    unsigned t = k == TMO_DATA ? so->opts.data_timeout
                 : k == TMO_QUIT ? SO_QUIT_TIMEOUT : so->opts.command_timeout;
    so_arm_timer(so, t, cmd_table[c->cmd].waiting);
    so->armed_seq = c->seq;
}

/* write_cmd - put one entry on the wire */
static void write_cmd(struct smtp_out *so, struct so_cmd *c)
{
    if (c->cmd == SOC_DOT) {
        sbuf_reset(&so->wbuf);
        data_enc_finish(&so->enc, &so->wbuf);
        so_write(so, so->wbuf.s, so->wbuf.len);
        so->dphase = DP_NONE;
        c->sent_us = now_mono_us();
    } else {
        so_write(so, c->out.s, c->out.len);
        so->unsent_bytes -= c->out.len;
        if (c->cmd == SOC_DATA)
            so->dphase = DP_WAIT;
    }
    c->sent = true;
}

static void on_local(evutil_socket_t fd, short what, void *arg);

/* check_local - local replies at the head are delivered from the loop, in order */
static void check_local(struct smtp_out *so)
{
    struct so_cmd *c = head(so);
    if (c == NULL || !c->local)
        return;
    if (so->local_ev == NULL && (so->local_ev = event_new(so->base, -1, 0, on_local, so)) == NULL)
        fatalx("smtp_out: cannot create an event");
    event_active(so->local_ev, EV_TIMEOUT, 0);
}

void so_flush(struct smtp_out *so)
{
    if (so->state != SO_READY && so->state != SO_QUITTING)
        return;
    bool pipelining = (so->exts & EXT_PIPELINING) != 0;
    for (size_t i = so->qhead; i < so->qlen && so->bev; i++) {
        struct so_cmd *c = &so->q[i];
        if (c->sent)
            continue;
        if (!pipelining && i > so->qhead)
            break; /* one at a time: the previous one still awaits its reply */
        if (c->cmd == SOC_DOT ? so->dphase != DP_OPEN : so->dphase != DP_NONE)
            break; /* the data phase decides what may go next */
        write_cmd(so, c);
        if (c->cmd == SOC_DATA || c->cmd == SOC_DOT)
            break; /* wait for 354, or for the verdict */
    }
    arm(so);
    check_local(so);
}

/* data_reply - the 354 opens the data phase (held body goes out); anything else refuses it */
static void data_reply(struct smtp_out *so, const struct smtp_reply *r)
{
    if (r->code == 354) {
        so->dphase = DP_OPEN;
        so_write(so, so->held.s, so->held.len);
        sbuf_free(&so->held);
        return;
    }
    so->dphase = DP_REFUSED;
    sbuf_free(&so->held);
    smtp_reply_free(&so->data_refusal);
    smtp_reply_copy(&so->data_refusal, r);
    for (size_t i = so->qhead; i < so->qlen; i++) {
        struct so_cmd *c = &so->q[i];
        if (c->cmd == SOC_DOT && !c->sent) { /* the dot was queued already: answer it here */
            c->sent = c->local = true;
            smtp_reply_copy(&c->reply, r);
            so->dphase = DP_NONE;
            so->body_open = false;
        }
    }
}

/* count_verdict - the next hop's verdicts on recipients and at the end of data, for metrics */
static void count_verdict(const struct so_cmd *c, const struct smtp_reply *r)
{
    int cls = r->code / 100;
    if (c->cmd == SOC_RCPT)
        metric_inc(cls == 2 ? M_NH_RCPT_2XX : cls == 4 ? M_NH_RCPT_4XX : M_NH_RCPT_5XX);
    if ((c->cmd == SOC_DOT || (c->cmd == SOC_BDAT && c->last)) && !c->local) {
        metric_inc(cls == 2 ? M_NH_DOT_2XX : cls == 4 ? M_NH_DOT_4XX : M_NH_DOT_5XX);
        if (c->sent_us)
            metric_observe_us(H_EOD_NEXTHOP, now_mono_us() - c->sent_us);
    }
}

/* track - what a reply does to the transaction's state */
static void track(struct smtp_out *so, const struct so_cmd *c, const struct smtp_reply *r)
{
    bool ok = r->code >= 200 && r->code < 300;
    count_verdict(c, r);
    switch (c->cmd) {
    case SOC_MAIL: so->in_txn = ok; break;
    case SOC_DATA: data_reply(so, r); break;
    case SOC_DOT: so->in_txn = false; break;
    case SOC_BDAT: so->in_txn = so->in_txn && !c->last; break;
    case SOC_RSET: so->in_txn = false; break;
    default: break;
    }
}

/* deliver_reply - pop the head, hand its reply to the caller; 421 ends the connection */
static void deliver_reply(struct smtp_out *so, const struct smtp_reply *r)
{
    struct so_cmd c = pop(so);
    track(so, &c, r);
    if (c.cmd == SOC_QUIT || so->state == SO_QUITTING) {
        cmd_free(&c);
        if (c.cmd == SOC_QUIT) {
            so->state = SO_DEAD;
            so_destroy_or_defer(so);
        }
        return;
    }
    if (!so->quiet && so->cbs.reply)
        so->cbs.reply(so->arg, so, c.cmd, c.tag, r);
    if (!so->zombie && r->code == 421)
        so_fail(so, SOF_LOST, r, "connection closed by remote host after 421 reply to %s",
                so_cmd_name(c.cmd));
    cmd_free(&c);
    if (!so->zombie && so->state != SO_DEAD)
        so_flush(so);
}

void so_cmd_reply(struct smtp_out *so, const struct smtp_reply *r)
{
    struct so_cmd *c = head(so);
    if (c == NULL || !c->sent || c->local) {
        if (r->code == 421)
            so_fail(so, SOF_LOST, r, "connection closed by remote host (421)");
        else
            so_fail(so, SOF_PROTOCOL, r, "unexpected reply %d from remote host", r->code);
        return;
    }
    deliver_reply(so, r);
}

static void on_local(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_out *so = arg;
    (void)fd;
    (void)what;
    so->busy++;
    struct so_cmd *c;
    while (!so->zombie && so->state == SO_READY && (c = head(so)) != NULL && c->local) {
        struct smtp_reply r;
        smtp_reply_copy(&r, &c->reply);
        deliver_reply(so, &r);
        smtp_reply_free(&r);
    }
    if (--so->busy == 0 && so->zombie)
        so_destroy_or_defer(so);
}

/* queue_check - commands are for a live, greeted connection; anything else is a caller bug,
 * except after a failure not yet reported (the command is dropped; `failed` follows) */
static bool queue_check(struct smtp_out *so, const char *what)
{
    if (so->state == SO_DEAD)
        return false;
    if (so->state != SO_READY || so->quiet)
        fatalx("smtp_out: %s in state %s", what, so_state_name(so->state));
    return true;
}

/* enqueue - add a formatted command and send what may be sent */
static void enqueue(struct smtp_out *so, enum smtp_out_cmd cmd, void *tag, const char *line)
{
    struct so_cmd *c = push(so, cmd, tag);
    sbuf_addstr(&c->out, line);
    so->unsent_bytes += c->out.len;
    so_flush(so);
}

void smtp_out_mail(struct smtp_out *so, const struct mail_out *m, void *tag)
{
    if (!queue_check(so, "MAIL"))
        return;
    struct so_cmd *c = push(so, SOC_MAIL, tag);
    if (!so_fmt_mail(&c->out, m, so->exts))
        fatalx("smtp_out: invalid sender for MAIL");
    so->unsent_bytes += c->out.len;
    so->in_txn = true;
    so_flush(so);
}

void smtp_out_rcpt(struct smtp_out *so, const char *rcpt, unsigned notify, const char *orcpt, void *tag)
{
    if (!queue_check(so, "RCPT"))
        return;
    struct so_cmd *c = push(so, SOC_RCPT, tag);
    if (!so_fmt_rcpt(&c->out, rcpt, notify, orcpt, so->exts))
        fatalx("smtp_out: invalid recipient for RCPT");
    so->unsent_bytes += c->out.len;
    so_flush(so);
}

void smtp_out_data(struct smtp_out *so, void *tag)
{
    if (!queue_check(so, "DATA"))
        return;
    if (so->body_open)
        fatalx("smtp_out: DATA while a data phase is open");
    so->body_open = true;
    data_enc_init(&so->enc);
    enqueue(so, SOC_DATA, tag, "DATA\r\n");
}

void smtp_out_body(struct smtp_out *so, const char *p, size_t n)
{
    if (so->state == SO_DEAD || so->dphase == DP_REFUSED || n == 0)
        return;
    if (!so->body_open)
        fatalx("smtp_out: body outside a data phase");
    if (so->dphase == DP_OPEN) {
        sbuf_reset(&so->wbuf);
        data_enc_feed(&so->enc, p, n, &so->wbuf);
        so_write(so, so->wbuf.s, so->wbuf.len);
    } else {
        data_enc_feed(&so->enc, p, n, &so->held);
    }
    if (smtp_out_body_pending(so) >= SO_BODY_HIGH)
        so->body_high = true;
}

size_t smtp_out_body_pending(const struct smtp_out *so)
{
    size_t out = so->bev ? evbuffer_get_length(bufferevent_get_output(so->bev)) : 0;
    return so->held.len + so->unsent_bytes + out;
}

void so_write_progress(struct smtp_out *so)
{
    struct so_cmd *c = head(so);
    if (c && c->sent && (c->cmd == SOC_DOT || c->cmd == SOC_BDAT)) {
        so->armed_seq = 0; /* the data is still moving: restart the reply timer */
        arm(so);
    }
    if (so->body_high && smtp_out_body_pending(so) <= SO_BODY_LOW) {
        so->body_high = false;
        if (!so->quiet && so->cbs.drained)
            so->cbs.drained(so->arg, so);
    }
}

void smtp_out_dot(struct smtp_out *so, void *tag)
{
    if (so->state == SO_DEAD)
        return;
    if (!so->body_open)
        fatalx("smtp_out: end of data outside a data phase");
    struct so_cmd *c = push(so, SOC_DOT, tag);
    so->body_open = false;
    if (so->dphase == DP_REFUSED) { /* DATA was refused: the dot gets that reply */
        c->sent = c->local = true;
        smtp_reply_copy(&c->reply, &so->data_refusal);
        so->dphase = DP_NONE;
    }
    so_flush(so);
}

void smtp_out_bdat(struct smtp_out *so, const char *p, size_t n, bool last, void *tag)
{
    if (!queue_check(so, "BDAT"))
        return;
    if (so->body_open || !(so->exts & EXT_CHUNKING))
        fatalx("smtp_out: BDAT without CHUNKING or inside DATA");
    struct so_cmd *c = push(so, SOC_BDAT, tag);
    c->last = last;
    sbuf_printf(&c->out, "BDAT %zu%s\r\n", n, last ? " LAST" : "");
    sbuf_add(&c->out, p, n);
    so->unsent_bytes += c->out.len;
    so_flush(so);
}

void smtp_out_rset(struct smtp_out *so, void *tag)
{
    if (queue_check(so, "RSET"))
        enqueue(so, SOC_RSET, tag, "RSET\r\n");
}

void smtp_out_quit(struct smtp_out *so)
{
    so->quiet = true;
    bool mid_data = so->body_open || so->dphase != DP_NONE;
    if (so->state != SO_READY || mid_data || so->bev == NULL) {
        so_destroy_or_defer(so); /* nothing polite to say mid-data or before the greeting */
        return;
    }
    struct so_cmd *c = push(so, SOC_QUIT, NULL);
    sbuf_addstr(&c->out, "QUIT\r\n");
    so->unsent_bytes += c->out.len;
    so->state = SO_QUITTING;
    so_note_quitting(so);
    so_flush(so);
}
