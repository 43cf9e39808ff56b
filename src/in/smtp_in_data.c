/* smtp_in_data.c - the data phase: DATA and BDAT input decoded strictly, the Received header,
 * missing Date/Message-ID added, limits latched and answered once at the end, the data ACL,
 * and the durable commit before the 250. */
#include "smtp_in.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "in.h"
#include "conf/conf.h"
#include "core/core.h"
#include "store/store.h"

static void message_end(struct smtp_session *s);

/* smtp_txn_latch - remember the first error of a transaction; later ones are ignored */
void smtp_txn_latch(struct txn *t, int code, const char *ecode, const char *text)
{
    if (t->err.code)
        return;
    t->err.code = code;
    str_copy(t->err.ecode, ecode, sizeof(t->err.ecode));
    str_copy(t->err.text, text, sizeof(t->err.text));
}

/* smtp_txn_reset - forget the transaction, discarding any partly received message */
void smtp_txn_reset(struct smtp_session *s)
{
    struct txn *t = s->txn;
    if (t == NULL)
        return;
    smtp_cut_txn_reset(s);
    smtp_policy_txn_reset(s);
    if (t->spool)
        spool_abort(t->spool);
    free(t->discard_log);
    envelope_free(&t->env);
    sbuf_free(&t->acl_headers);
    sbuf_free(&t->decoded);
    hdr_scan_free(&t->hdr);
    free(t);
    s->txn = NULL;
}

/* rfc5322_date - the current time as an RFC 5322 date */
static void rfc5322_date(char *buf, size_t sz)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    static const char *days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *mons[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    long off = tm.tm_gmtoff / 60;
    str_fmt(buf, sz, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday], tm.tm_mday,
            mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
            off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
}

/* protocol_name - RFC 3848 "with" keyword; the log's P= is its lower-case form */
static const char *protocol_name(const struct smtp_session *s)
{
    if (!sf_has(s, SF_ESMTP))
        return "SMTP";
    if (s->txn && s->txn->mail.smtputf8)
        return sf_has(s, SF_TLS) ? "UTF8SMTPS" : "UTF8SMTP";
    return sf_has(s, SF_TLS) ? "ESMTPS" : "ESMTP";
}

/* emit - content on its way to the spool (and, with cutthrough, the next hop) */
static void emit(void *arg, const char *p, size_t n)
{
    struct smtp_session *s = arg;
    struct txn *t = s->txn;
    if (t->err.code)
        return;
    smtp_cut_body(s, p, n);
    smtp_policy_body(s, p, n);
    if (t->spool == NULL)
        return;
    if (!spool_write(t->spool, p, n)) {
        log_panic("%s: spool write failed: %s", t->env.id, strerror(errno));
        smtp_txn_latch(t, errno == ENOSPC ? 452 : 451, errno == ENOSPC ? "4.3.1" : "4.3.0",
                       errno == ENOSPC ? "Insufficient system storage" : "Local error in processing");
        spool_abort(t->spool);
        t->spool = NULL;
    }
}

/* add_missing_headers - Date: and Message-ID: at the end of the header section if absent */
static void add_missing_headers(void *arg, const struct hdr_scan *h)
{
    struct smtp_session *s = arg;
    char line[600], date[64];
    if (!h->has_message_id) {
        str_fmt(line, sizeof(line), "Message-ID: <%s@%s>\r\n", s->txn->env.id, s->srv->conf->hostname);
        emit(s, line, strlen(line));
    }
    if (!h->has_date) {
        rfc5322_date(date, sizeof(date));
        str_fmt(line, sizeof(line), "Date: %s\r\n", date);
        emit(s, line, strlen(line));
    }
}

/* write_received - the trace header (RFC 5321 4.4) and headers the ACLs added before DATA */
static void write_received(struct smtp_session *s)
{
    struct txn *t = s->txn;
    const struct conf *c = s->srv->conf;
    char date[64];
    struct sbuf h;
    sbuf_init(&h);
    rfc5322_date(date, sizeof(date));
    const char *name = s->rdns.name ? s->rdns.name : "";
    if (s->helo && addr_valid_domain(s->helo, true))
        sbuf_printf(&h, "Received: from %s (%s%s[%s])\r\n", s->helo, name, name[0] ? " " : "", s->peer_ip);
    else
        sbuf_printf(&h, "Received: from %s%s[%s]\r\n", name, name[0] ? " " : "", s->peer_ip);
    sbuf_printf(&h, "\tby %s (tandem) with %s id %s", c->hostname, protocol_name(s), t->env.id);
    if (sf_has(s, SF_TLS) && t->env.tls)
        sbuf_printf(&h, "\r\n\t(%s)", t->env.tls);
    if (t->env.nrcpts == 1)
        sbuf_printf(&h, "\r\n\tfor <%s>", t->env.rcpts[0].addr);
    sbuf_printf(&h, ";\r\n\t%s\r\n", date);
    emit(s, h.s, h.len);
    if (t->acl_headers.len)
        emit(s, t->acl_headers.s, t->acl_headers.len);
    sbuf_free(&h);
}

/* fill_envelope - what the spool records about the client and the transaction */
static void fill_envelope(struct smtp_session *s)
{
    struct txn *t = s->txn;
    t->env.arrival = time(NULL);
    envelope_set(&t->env.client_ip, s->peer_ip);
    t->env.client_port = s->peer_port;
    envelope_set(&t->env.helo, s->helo);
    envelope_set(&t->env.tls, s->tls_info);
    envelope_set(&t->env.protocol, !sf_has(s, SF_ESMTP) ? "smtp" : sf_has(s, SF_TLS) ? "esmtps" : "esmtp");
}

/* receive_begin - create the spool file and start decoding (DATA or the first BDAT) */
static bool receive_begin(struct smtp_session *s, bool raw)
{
    struct txn *t = s->txn;
    fill_envelope(s);
    if (s->srv->no_deliver || t->discard || t->env.nrcpts == 0) {
        msgid_new(t->env.id);
    } else if ((t->spool = s->srv->spool_pool ? spool_create_pooled(s->srv->spool_pool, &t->env)
                                              : spool_create(s->srv->conf->spool_directory, &t->env)) == NULL) {
        log_panic("cannot create spool file: %s", strerror(errno));
        smtp_reply(s, 451, "4.3.0", "Local error in processing");
        return false;
    }
    data_dec_init(&t->dec, raw);
    hdr_scan_init(&t->hdr);
    smtp_policy_data_begin(s);
    write_received(s);
    return true;
}

/* smtp_early_data - RFC 2920: DATA ends a pipelined group; bytes already queued behind it are
 * message content sent before our 354 (or smuggling): refuse and close */
bool smtp_early_data(struct smtp_session *s)
{
    if (s->srv->interactive || evbuffer_get_length(bufferevent_get_input(s->bev)) == 0)
        return false;
    char host[160], sender[560];
    str_sanitize_utf8(sender, sizeof(sender), s->txn->env.sender, strlen(s->txn->env.sender));
    log_reject("%s F=<%s> rejected DATA: SMTP synchronization error (input sent before 354)",
               smtp_log_host(s, host, sizeof(host)), sender);
    smtp_close_with(s, 554, "5.5.0", "SMTP synchronization error");
    return true;
}

void smtp_data_begin(struct smtp_session *s)
{
    if (smtp_early_data(s) || !receive_begin(s, false))
        return;
    s->phase = PH_DATA;
    s->data_cmd = "DATA";
    smtp_reply(s, 354, NULL, "Enter message, ending with \".\" on a line by itself");
}

/* content - decoded bytes from DATA or BDAT: size limit, header scan, spool */
static void content(struct smtp_session *s)
{
    struct txn *t = s->txn;
    struct hdr_sink sink = { emit, add_missing_headers, s };
    if (t->dec.out_len > s->srv->conf->message_size_limit && t->err.code == 0) {
        smtp_txn_latch(t, 552, "5.3.4", "Message size exceeds fixed maximum message size");
        if (t->spool)
            spool_abort(t->spool);
        t->spool = NULL;
    }
    if (t->err.code == 0)
        hdr_scan_feed(&t->hdr, t->decoded.s, t->decoded.len, &sink);
    sbuf_reset(&t->decoded);
}

size_t smtp_data_feed(struct smtp_session *s, const char *in, size_t len)
{
    struct txn *t = s->txn;
    size_t used = data_dec_feed(&t->dec, in, len, &t->decoded);
    content(s);
    if (t->dec.done)
        message_end(s);
    else if (!smtp_cut_pause_if_behind(s))  /* pauses input while the next hop catches up */
        smtp_policy_pause_if_behind(s);     /* ... or the content scanner */
    return used;
}

/* smtp_bdat_reject - a refused BDAT: read and drop its chunk, then give the reply */
void smtp_bdat_reject(struct smtp_session *s, const struct smtp_cmd *c)
{
    struct parse_err err;
    uint64_t size;
    bool last;
    if (!smtp_parse_bdat(c->arg, c->arglen, &size, &last, &err))
        return;
    s->skip_remaining = size;
    s->phase = PH_SKIP;
}

/* chunk_done - a BDAT chunk has been read completely */
static void chunk_done(struct smtp_session *s)
{
    struct txn *t = s->txn;
    if (t->bdat_last) {
        data_dec_finish(&t->dec, &t->decoded);
        content(s);
        message_end(s);
        return;
    }
    s->phase = PH_RCPT;
    smtp_reply(s, 250, "2.0.0", "%llu octets received", (unsigned long long)t->bdat_chunk);
}

void smtp_bdat_begin(struct smtp_session *s, uint64_t size, bool last)
{
    struct txn *t = s->txn;
    if (!t->bdat_started) {
        /* DATA goes upstream first: the link holds what receive_begin writes (the Received
         * header) until the 354, as it holds the chunks that follow */
        bool cut = smtp_cut_active(s);
        if (cut)
            smtp_cut_data_async(s);
        if (!receive_begin(s, true)) {
            if (cut)
                smtp_cut_abort(s);
            s->skip_remaining = size;
            s->phase = PH_SKIP;
            return;
        }
        t->bdat_started = true;
        s->data_cmd = "BDAT";
    }
    t->bdat_remaining = t->bdat_chunk = size;
    t->bdat_last = last;
    s->phase = PH_BDAT;
    if (size == 0)
        chunk_done(s);
}

/* skip_feed - discard a refused chunk's bytes; the refusal was already queued */
static size_t skip_feed(struct smtp_session *s, size_t len)
{
    size_t n = len < s->skip_remaining ? len : (size_t)s->skip_remaining;
    s->skip_remaining -= n;
    if (s->skip_remaining == 0)
        s->phase = s->txn ? (s->txn->env.nrcpts ? PH_RCPT : PH_MAIL) : (s->helo ? PH_READY : PH_INIT);
    return n;
}

size_t smtp_bdat_feed(struct smtp_session *s, const char *in, size_t len)
{
    if (s->phase == PH_SKIP)
        return skip_feed(s, len);
    struct txn *t = s->txn;
    size_t n = len < t->bdat_remaining ? len : (size_t)t->bdat_remaining;
    data_dec_feed(&t->dec, in, n, &t->decoded);
    t->bdat_remaining -= n;
    content(s);
    if (t->bdat_remaining == 0)
        chunk_done(s);
    else if (!smtp_cut_pause_if_behind(s))
        smtp_policy_pause_if_behind(s);
    return n;
}

/* local_checks - what the message itself must satisfy; latches the first failure */
static void local_checks(struct smtp_session *s)
{
    struct txn *t = s->txn;
    const struct conf *c = s->srv->conf;
    if ((t->dec.flags & (DATA_BARE_CR | DATA_BARE_LF)) && c->bare_newline == BARE_NEWLINE_REJECT)
        smtp_txn_latch(t, 554, "5.6.0", "Message contains a bare CR or LF (RFC 5321 2.3.8)");
    if (t->hdr.nreceived > c->received_headers_max)
        smtp_txn_latch(t, 554, "5.4.6", "Too many \"Received\" headers - suspected mail loop");
}

/* finish_txn - the transaction is over (accepted or refused): back to READY */
static void finish_txn(struct smtp_session *s)
{
    if (s->txn && s->txn->eod_us) {
        metric_observe_us(H_EOD_CLIENT, now_mono_us() - s->txn->eod_us);
        smtp_translog_write(s);
    }
    smtp_txn_reset(s);
    s->phase = PH_READY;
    s->data_cmd = NULL;
    s->nmessages++;
}

/* log_arrival - Exim's "<=" line: ID <= sender H=... P=... [X=... CV=no] S=size [id=msgid] */
static void log_arrival(struct smtp_session *s)
{
    struct txn *t = s->txn;
    char host[160], sender[600], msgid_s[400];
    struct sbuf extra;
    sbuf_init(&extra);
    str_sanitize_utf8(sender, sizeof(sender), t->env.sender, strlen(t->env.sender));
    if (t->env.tls)
        sbuf_printf(&extra, " X=%s CV=no", t->env.tls);
    sbuf_printf(&extra, " S=%llu", (unsigned long long)t->env.size);
    if (t->env.message_id) {
        str_sanitize(msgid_s, sizeof(msgid_s), t->env.message_id, strlen(t->env.message_id));
        sbuf_printf(&extra, " id=%s", msgid_s);
    }
    metric_inc(M_MSG_RECEIVED);
    log_main("%s <= %s %s P=%s%s", t->env.id, sender[0] ? sender : "<>",
             smtp_log_host(s, host, sizeof(host)), t->env.protocol, extra.s);
    sbuf_free(&extra);
}

/* store - keep the message for the queue: fsync'd before the 250.  Recipients a next hop
 * already took are journaled as delivered while the message is still locked, so the scheduler
 * never sees them pending.  False (after replying 4xx) if it could not be stored. */
static bool store(struct smtp_session *s, size_t pending)
{
    struct txn *t = s->txn;
    struct spool_writer *w = t->spool;
    int lock = -1;
    t->spool = NULL;
    if (pending == 0) {                 /* nothing left to deliver: no need to keep it */
        spool_recycle(w);
        return true;
    }
    if (!spool_commit_locked(w, &t->env, true, &lock)) {
        int e = errno;
        log_panic("%s: spool commit failed: %s", t->env.id, strerror(e));
        if (e == ENOSPC || e == EDQUOT)
            smtp_reply(s, 452, "4.3.1", "Insufficient system storage");
        else
            smtp_reply(s, 451, "4.3.0", "Local error in processing");
        return false;
    }
    for (size_t i = 0; i < t->env.nrcpts; i++)
        if (t->env.rcpts[i].state == RCPT_DELIVERED &&
            !spool_journal(s->srv->conf->spool_directory, t->env.id, i, RCPT_DELIVERED))
            log_panic("%s: journal write failed: %s", t->env.id, strerror(errno));
    spool_unlock(lock);
    return true;
}

/* note_message_id - the Message-ID for the log: the message's own, or the one we added */
static void note_message_id(struct smtp_session *s)
{
    struct txn *t = s->txn;
    char msgid[HDR_MSGID_MAX + 1];
    if (hdr_scan_message_id(&t->hdr, msgid, sizeof(msgid)))
        envelope_set(&t->env.message_id, msgid);
    else if (str_fmt(msgid, sizeof(msgid), "%s@%s", t->env.id, s->srv->conf->hostname))
        envelope_set(&t->env.message_id, msgid);
}

/* smtp_data_accept - the message is accepted: store what is still to be delivered (durably),
 * log it, then (and only then) say 250.  note: the next hop's confirmation after a cutthrough
 * delivery (for the client's reply), cut_reply: the same for the ">>" lines. */
void smtp_data_accept(struct smtp_session *s, const char *note, const char *cut_reply)
{
    struct txn *t = s->txn;
    bool keep = t->env.nrcpts > 0 && !t->discard && !s->srv->no_deliver;
    size_t pending = 0;
    for (size_t i = 0; keep && i < t->env.nrcpts; i++)
        pending += t->env.rcpts[i].state == RCPT_PENDING;
    t->env.size = t->spool ? spool_written(t->spool) : t->dec.out_len;
    note_message_id(s);
    if (t->spool && !store(s, pending)) {
        finish_txn(s);
        return;
    }
    log_arrival(s);
    if (t->env.nrcpts == 0 || t->discard)      /* Exim's wording */
        log_main("%s => blackhole (%s ACL discarded recipients)%s%s", t->env.id,
                 t->discarded_by ? t->discarded_by : "RCPT", t->discard_log ? ": " : "",
                 t->discard_log ? t->discard_log : "");
    if (cut_reply)
        smtp_cut_log_deliveries(s, cut_reply);
    if (pending > 0)
        server_notify_scheduler(s->srv, t->env.id);
    if (note)
        smtp_reply(s, 250, "2.0.0", "OK id=%s (next hop: %s)", t->env.id, note);
    else
        smtp_reply(s, 250, "2.0.0", "OK id=%s", t->env.id);
    if (pending > 0)
        metric_inc(M_MSG_QUEUED);
    else if (cut_reply)
        metric_inc(M_MSG_CUTTHROUGH);
    if (pending == 0)
        log_main("%s Completed", t->env.id);
    finish_txn(s);
}

/* smtp_data_refused - the verdict was a refusal (already answered): keep nothing */
void smtp_data_refused(struct smtp_session *s)
{
    finish_txn(s);
}

static void commit(struct smtp_session *s)
{
    smtp_data_accept(s, NULL, NULL);
}

/* refuse - answer the latched error (or the ACL's refusal) and drop the message */
static void refuse(struct smtp_session *s)
{
    struct txn *t = s->txn;
    char host[160], sender[560], why[600];
    smtp_cut_abort(s);
    str_sanitize_utf8(sender, sizeof(sender), t->env.sender, strlen(t->env.sender));
    str_sanitize_utf8(why, sizeof(why), t->err.text, strlen(t->err.text));
    log_reject("%s F=<%s> rejected after %s: %s", smtp_log_host(s, host, sizeof(host)),
               sender, s->data_cmd, why);
    smtp_reply(s, t->err.code, t->err.ecode, "%s", t->err.text);
    finish_txn(s);
}

/* data_acl_done - the data ACL decided */
static void data_acl_done(struct smtp_session *s, const struct acl_outcome *o)
{
    sf_clear(s, SF_WAITING);
    if (o->headers.len) {   /* before the content of the queued copy (doc/config.md: cutthrough) */
        struct sbuf h;
        sbuf_init(&h);
        smtp_acl_headers_merge(&s->txn->acl_headers, &o->headers, &h);   /* once each */
        if (h.len)
            envelope_set(&s->txn->env.added_headers, h.s);
        sbuf_free(&h);
    }
    if (o->result == ACL_ACCEPT && smtp_cut_active(s) && !s->txn->discard) {
        smtp_cut_end(s);
    } else if (o->result == ACL_ACCEPT) {
        commit(s);
    } else if (o->result == ACL_DISCARD) {
        smtp_cut_abort(s);
        s->txn->discard = true;
        s->txn->discarded_by = "DATA";
        if (o->log_message) {
            char why[1000];
            str_sanitize(why, sizeof(why), o->log_message, strlen(o->log_message));
            s->txn->discard_log = xstrdup(why);
        }
        if (s->txn->spool)
            spool_abort(s->txn->spool);
        s->txn->spool = NULL;
        commit(s);
    } else {
        smtp_cut_abort(s);
        smtp_acl_log_reject(s, o, "after DATA");
        smtp_acl_reply(s, o, 550, "5.7.1", "Administrative prohibition");
        finish_txn(s);
        if (o->result == ACL_DROP)
            smtp_close_with(s, 0, NULL, NULL);
    }
    smtp_resume(s);
}

/* message_end - the client finished sending: local checks, data ACL, commit or refuse */
static void message_end(struct smtp_session *s)
{
    struct txn *t = s->txn;
    struct hdr_sink sink = { emit, add_missing_headers, s };
    t->eod_us = now_mono_us();
    hdr_scan_finish(&t->hdr, &sink);
    smtp_policy_data_end(s);
    local_checks(s);
    s->phase = PH_READY;
    if (t->err.code) {
        refuse(s);
        return;
    }
    smtp_acl_run(s, ACL_DATA, NULL, data_acl_done);
}
