/* smtp_in_cmd.c - the inbound command table and the handlers of the non-data commands. */
#include "smtp_in.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "in.h"
#include "conf/conf.h"
#include "core/core.h"
#include "outbound/outbound.h"

/* Phase bits for the table's "allowed" column. */
#define P(x) (1u << (x))
#define GREETED (P(PH_READY) | P(PH_MAIL) | P(PH_RCPT))
#define ANY (P(PH_INIT) | GREETED)

typedef void (*cmd_fn)(struct smtp_session *s, const struct smtp_cmd *c);

struct cmd_def {
    enum smtp_verb verb;
    unsigned allowed;        /* phases in which the verb is in sequence */
    cmd_fn handler;
    const char *out_of_seq;  /* reply text when out of sequence */
};

static void cmd_helo(struct smtp_session *s, const struct smtp_cmd *c);
static void cmd_mail(struct smtp_session *s, const struct smtp_cmd *c);
static void cmd_rcpt(struct smtp_session *s, const struct smtp_cmd *c);
static void cmd_data(struct smtp_session *s, const struct smtp_cmd *c);
static void cmd_bdat(struct smtp_session *s, const struct smtp_cmd *c);
static void cmd_rset(struct smtp_session *s, const struct smtp_cmd *c);
static void cmd_noop(struct smtp_session *s, const struct smtp_cmd *c);
static void cmd_quit(struct smtp_session *s, const struct smtp_cmd *c);
static void cmd_vrfy(struct smtp_session *s, const struct smtp_cmd *c);
static void cmd_expn(struct smtp_session *s, const struct smtp_cmd *c);
static void cmd_help(struct smtp_session *s, const struct smtp_cmd *c);
static void cmd_starttls(struct smtp_session *s, const struct smtp_cmd *c);
static void cmd_auth(struct smtp_session *s, const struct smtp_cmd *c);

static const struct cmd_def cmd_table[] = {
    { CMD_HELO, ANY, cmd_helo, NULL },
    { CMD_EHLO, ANY, cmd_helo, NULL },
    { CMD_MAIL, P(PH_READY), cmd_mail, NULL },
    { CMD_RCPT, P(PH_MAIL) | P(PH_RCPT), cmd_rcpt, "MAIL first" },
    { CMD_DATA, P(PH_RCPT), cmd_data, NULL },
    { CMD_BDAT, P(PH_RCPT), cmd_bdat, NULL },
    { CMD_RSET, ANY, cmd_rset, NULL },
    { CMD_NOOP, ANY, cmd_noop, NULL },
    { CMD_QUIT, ANY, cmd_quit, NULL },
    { CMD_VRFY, ANY, cmd_vrfy, NULL },
    { CMD_EXPN, ANY, cmd_expn, NULL },
    { CMD_HELP, ANY, cmd_help, NULL },
    { CMD_STARTTLS, ANY, cmd_starttls, NULL },
    { CMD_AUTH, ANY, cmd_auth, NULL },
};

/* bad_sequence - the verb is known but not allowed now: explain what is missing */
static void bad_sequence(struct smtp_session *s, const struct cmd_def *d)
{
    const char *why = d->out_of_seq;
    if (s->phase == PH_INIT && (d->verb == CMD_MAIL || d->verb == CMD_RCPT))
        why = "EHLO or HELO first";
    else if (d->verb == CMD_MAIL)
        why = "Nested MAIL command";
    else if ((d->verb == CMD_DATA || d->verb == CMD_BDAT) && s->phase == PH_MAIL &&
             s->txn && s->txn->nrcpt_attempts > 0) {
        smtp_reply(s, 554, "5.5.1", "No valid recipients");
        smtp_count_error(s);
        return;
    } else if (d->verb == CMD_DATA || d->verb == CMD_BDAT)
        why = s->phase == PH_MAIL ? "RCPT first" : "MAIL first";
    smtp_reply(s, 503, "5.5.1", "%s", why ? why : "Bad sequence of commands");
    smtp_count_error(s);
}

/* line_is_clean - a command line may not contain NUL or control characters (TAB allowed) */
static bool line_is_clean(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)line[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return false;
    }
    return true;
}

/* smtp_dispatch - look the verb up in the table, check its sequence, run its handler */
void smtp_dispatch(struct smtp_session *s, const char *line, size_t len)
{
    struct smtp_cmd c;
    if (!line_is_clean(line, len)) {
        smtp_reply(s, 500, "5.5.2", "Invalid character in command");
        smtp_count_error(s);
        return;
    }
    smtp_cmd_split(line, len, &c);
    if (c.no_keyword) {
        smtp_reply(s, 501, "5.5.4", "Syntax: %s", c.verb == CMD_MAIL ? "MAIL FROM:<address>"
                                                                      : "RCPT TO:<address>");
        smtp_count_error(s);
        return;
    }
    if (s->txn && s->txn->bdat_started && c.verb != CMD_BDAT && c.verb != CMD_RSET &&
        c.verb != CMD_QUIT && c.verb != CMD_NOOP) {
        smtp_reply(s, 503, "5.5.1", "Only BDAT, RSET, NOOP or QUIT during a BDAT transfer");
        smtp_count_error(s);
        return;
    }
    for (size_t i = 0; i < ARRAY_LEN(cmd_table); i++) {
        const struct cmd_def *d = &cmd_table[i];
        if (d->verb != c.verb)
            continue;
        if (!(d->allowed & P(s->phase))) {
            if (d->verb == CMD_BDAT)
                smtp_bdat_reject(s, &c);
            bad_sequence(s, d);
        } else {
            d->handler(s, &c);
        }
        return;
    }
    smtp_reply(s, 500, "5.5.2", "Command unrecognized");
    smtp_count_error(s);
}

/* helo_arg_ok - the EHLO/HELO argument: one printable ASCII word */
static bool helo_arg_ok(const char *arg, size_t len)
{
    if (len == 0 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)arg[i] <= ' ' || (unsigned char)arg[i] >= 0x7f)
            return false;
    return true;
}

/* offered - is the client in an *_advertise_hosts list; a lookup that defers (logged by the
 * lookup) means no: the extension is optional, and the answer must not be "yes" by accident */
static bool offered(const struct list *l, const char *ip)
{
    return list_check_host(l, ip, NULL, NULL) == LIST_MATCH;
}

/* ehlo_reply - the greeting and the extensions offered to this client */
static void ehlo_reply(struct smtp_session *s)
{
    const struct conf *c = s->srv->conf;
    struct sbuf *r = &s->reply;
    sbuf_reset(r);
    sbuf_printf(r, "%s Hello %s [%s]", c->hostname, s->helo, s->peer_ip);
    if (!sf_has(s, SF_ESMTP)) {
        smtp_reply(s, 250, NULL, "%s", r->s);
        return;
    }
    sbuf_printf(r, "\nSIZE %llu\n8BITMIME", (unsigned long long)c->message_size_limit);
    if (offered(&c->pipelining_advertise_hosts, s->peer_ip))
        sbuf_addstr(r, "\nPIPELINING");
    if (offered(&c->dsn_advertise_hosts, s->peer_ip))
        sbuf_addstr(r, "\nDSN");
    if (offered(&c->chunking_advertise_hosts, s->peer_ip))
        sbuf_addstr(r, "\nCHUNKING");
    if (smtp_starttls_offered(s))
        sbuf_addstr(r, "\nSTARTTLS");
    sbuf_addstr(r, "\nENHANCEDSTATUSCODES\nSMTPUTF8\nHELP");
    smtp_reply(s, 250, NULL, "%s", r->s);
}

/* helo_acl_done - the HELO ACL decided */
static void helo_acl_done(struct smtp_session *s, const struct acl_outcome *o)
{
    if (o->result == ACL_ACCEPT || o->result == ACL_DISCARD) {
        s->phase = PH_READY;
        ehlo_reply(s);
    } else {
        smtp_acl_log_reject(s, o, "EHLO");    /* names the refused HELO name */
        free(s->helo);
        s->helo = NULL;
        smtp_acl_reply(s, o, 550, "5.7.1", "Administrative prohibition");
        if (o->result == ACL_DROP)
            smtp_close_with(s, 0, NULL, NULL);
    }
    smtp_resume(s);
}

static void cmd_helo(struct smtp_session *s, const struct smtp_cmd *c)
{
    if (!helo_arg_ok(c->arg, c->arglen)) {
        smtp_reply(s, 501, "5.5.4", "Syntactically invalid %s argument",
                   c->verb == CMD_EHLO ? "EHLO" : "HELO");
        smtp_count_error(s);
        return;
    }
    smtp_txn_reset(s);
    free(s->helo);
    s->helo = xstrndup(c->arg, c->arglen);
    sf_put(s, SF_ESMTP, c->verb == CMD_EHLO);
    s->phase = PH_INIT;
    smtp_acl_run(s, ACL_HELO, NULL, helo_acl_done);
}

/* mail_acl_done - the MAIL ACL decided: start the transaction or refuse */
static void mail_acl_done(struct smtp_session *s, const struct acl_outcome *o)
{
    struct txn *t = s->txn;
    if (o->result == ACL_ACCEPT || o->result == ACL_DISCARD) {
        s->phase = PH_MAIL;
        if (o->result == ACL_DISCARD) {   /* Exim: every recipient will be discarded */
            t->discard = true;
            t->discarded_by = "MAIL";
        }
        smtp_acl_headers_merge(&t->acl_headers, &o->headers, &t->acl_headers);
        smtp_reply(s, 250, "2.1.0", "OK");
    } else {
        smtp_acl_log_reject(s, o, "MAIL");
        smtp_acl_reply(s, o, 550, "5.7.1", "Administrative prohibition");
        smtp_txn_reset(s);
        if (o->result == ACL_DROP)
            smtp_close_with(s, 0, NULL, NULL);
    }
    smtp_resume(s);
}

static void cmd_mail(struct smtp_session *s, const struct smtp_cmd *c)
{
    const struct conf *conf = s->srv->conf;
    struct parse_err err;
    struct txn *t = xcalloc(1, sizeof(*t));
    bool dsn = sf_has(s, SF_ESMTP) && offered(&conf->dsn_advertise_hosts, s->peer_ip);
    if (!smtp_parse_mail(c->arg, c->arglen, dsn, sf_has(s, SF_ESMTP), conf->message_size_limit, &t->mail, &err)) {
        free(t);
        smtp_reply(s, err.code, err.ecode, "%s", err.text);
        smtp_count_error(s);
        return;
    }
    envelope_init(&t->env);
    t->start_us = now_mono_us();
    t->env.sender = xstrdup(t->mail.sender);
    envelope_set(&t->env.envid, t->mail.envid[0] ? t->mail.envid : NULL);
    t->env.ret = t->mail.ret;
    t->env.body = t->mail.body;
    t->env.smtputf8 = t->mail.smtputf8;
    sbuf_init(&t->acl_headers);
    sbuf_init(&t->decoded);
    s->txn = t;
    smtp_acl_run(s, ACL_MAIL, NULL, mail_acl_done);
}

size_t smtp_accept_rcpt(struct smtp_session *s)
{
    struct txn *t = s->txn;
    const struct rcpt_params *rp = &t->pending_rcpt;
    envelope_add_rcpt(&t->env, rp->rcpt, rp->notify, rp->orcpt[0] ? rp->orcpt : NULL);
    s->phase = PH_RCPT;
    smtp_reply(s, 250, "2.1.5", "Accepted");
    return t->env.nrcpts - 1;
}

/* discard_rcpt - accept a recipient and forget it, logging it as Exim does (main and reject
 * logs): "H=... F=<sender> RCPT <rcpt>: discarded by RCPT ACL[: log_message]" */
static void discard_rcpt(struct smtp_session *s, const char *by, const char *log_message)
{
    struct txn *t = s->txn;
    char host[160], sender[560], rcpt[560], why[1000] = "";
    str_sanitize_utf8(sender, sizeof(sender), t->env.sender, strlen(t->env.sender));
    str_sanitize_utf8(rcpt, sizeof(rcpt), t->pending_rcpt.rcpt, strlen(t->pending_rcpt.rcpt));
    if (log_message) {
        memcpy(why, ": ", 3);
        str_sanitize(why + 2, sizeof(why) - 2, log_message, strlen(log_message));
    }
    log_reject("%s F=<%s> RCPT <%s>: discarded by %s ACL%s", smtp_log_host(s, host, sizeof(host)),
               sender, rcpt, by, why);
    t->ndiscarded++;
    s->phase = PH_RCPT;
    smtp_reply(s, 250, "2.1.5", "Accepted");
}

/* rcpt_acl_done - the RCPT ACL decided: add the recipient (through the cutthrough link when
 * asked), discard it, or refuse it */
static void rcpt_acl_done(struct smtp_session *s, const struct acl_outcome *o)
{
    struct txn *t = s->txn;
    if (o->result == ACL_ACCEPT) {
        smtp_acl_headers_merge(&t->acl_headers, &o->headers, &t->acl_headers);
        if (o->cutthrough)
            smtp_cut_rcpt(s, &o->cut);
        else
            smtp_cut_accept_rcpt(s);       /* on the link if its callout ran there */
    } else if (o->result == ACL_DISCARD) {
        discard_rcpt(s, "RCPT", o->log_message);
    } else {
        smtp_acl_log_reject(s, o, "RCPT");
        smtp_acl_reply(s, o, 550, "5.7.1", "Administrative prohibition");
        if (o->result == ACL_DROP)
            smtp_close_with(s, 0, NULL, NULL);
    }
    smtp_resume(s);
}

static void cmd_rcpt(struct smtp_session *s, const struct smtp_cmd *c)
{
    const struct conf *conf = s->srv->conf;
    struct txn *t = s->txn;
    struct parse_err err;
    bool dsn = sf_has(s, SF_ESMTP) && offered(&conf->dsn_advertise_hosts, s->peer_ip);
    t->nrcpt_attempts++;
    if (!smtp_parse_rcpt(c->arg, c->arglen, dsn, t->mail.smtputf8, &t->pending_rcpt, &err)) {
        smtp_reply(s, err.code, err.ecode, "%s", err.text);
        smtp_count_error(s);
        return;
    }
    if (strcmp(t->pending_rcpt.rcpt, "postmaster") == 0)   /* RFC 5321 4.5.1: ours */
        str_fmt(t->pending_rcpt.rcpt, sizeof(t->pending_rcpt.rcpt), "postmaster@%s", conf->hostname);
    if (t->env.nrcpts + t->ndiscarded >= conf->recipients_max) {
        smtp_reply(s, 452, "4.5.3", "Too many recipients");
        return;
    }
    if (t->discard) {                  /* the MAIL ACL discarded them all: no RCPT ACL (Exim) */
        discard_rcpt(s, "MAIL", NULL);
        return;
    }
    smtp_acl_run(s, ACL_RCPT, t->pending_rcpt.rcpt, rcpt_acl_done);
}

/* predata_acl_done - the predata ACL decided: start receiving, or refuse DATA */
static void predata_acl_done(struct smtp_session *s, const struct acl_outcome *o)
{
    if (o->result == ACL_ACCEPT || o->result == ACL_DISCARD) {
        if (o->result == ACL_DISCARD) {
            s->txn->discard = true;
            s->txn->discarded_by = "PREDATA";
            smtp_cut_abort(s);             /* the next hop gets no DATA, and no dot later */
        }
        smtp_acl_headers_merge(&s->txn->acl_headers, &o->headers, &s->txn->acl_headers);
        if (o->result == ACL_ACCEPT && smtp_cut_active(s))
            smtp_cut_data(s);          /* the client's 354 waits for the next hop's */
        else
            smtp_data_begin(s);
    } else {
        smtp_acl_log_reject(s, o, "DATA");
        smtp_acl_reply(s, o, 550, "5.7.1", "Administrative prohibition");
        if (o->result == ACL_DROP)
            smtp_close_with(s, 0, NULL, NULL);
    }
    smtp_resume(s);
}

static void cmd_data(struct smtp_session *s, const struct smtp_cmd *c)
{
    if (c->arglen) {
        smtp_reply(s, 501, "5.5.4", "DATA takes no argument");
        smtp_count_error(s);
        return;
    }
    if (smtp_early_data(s))
        return;
    smtp_acl_run(s, ACL_PREDATA, NULL, predata_acl_done);
}

static void cmd_bdat(struct smtp_session *s, const struct smtp_cmd *c)
{
    struct parse_err err;
    uint64_t size;
    bool last;
    if (!smtp_parse_bdat(c->arg, c->arglen, &size, &last, &err)) {
        smtp_reply(s, err.code, err.ecode, "%s", err.text);
        smtp_close_with(s, 0, NULL, NULL); /* the chunk cannot be skipped: its size is unknown */
        return;
    }
    smtp_bdat_begin(s, size, last);
}

static void cmd_rset(struct smtp_session *s, const struct smtp_cmd *c)
{
    (void)c;
    smtp_txn_reset(s);
    if (s->phase != PH_INIT)
        s->phase = PH_READY;
    smtp_reply(s, 250, "2.0.0", "Reset OK");
}

static void cmd_noop(struct smtp_session *s, const struct smtp_cmd *c)
{
    (void)c;
    smtp_reply(s, 250, "2.0.0", "OK");
}

static void cmd_quit(struct smtp_session *s, const struct smtp_cmd *c)
{
    char text[300];
    (void)c;
    sf_set(s, SF_QUIT_AFTER_REPLY);
    str_fmt(text, sizeof(text), "%s closing connection", s->srv->conf->hostname);
    smtp_close_with(s, 221, "2.0.0", text);
}

static void cmd_vrfy(struct smtp_session *s, const struct smtp_cmd *c)
{
    (void)c;
    smtp_reply(s, 252, "2.1.5", "Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_expn(struct smtp_session *s, const struct smtp_cmd *c)
{
    (void)c;
    smtp_reply(s, 502, "5.5.1", "EXPN not available");
}

static void cmd_help(struct smtp_session *s, const struct smtp_cmd *c)
{
    (void)c;
    smtp_reply(s, 214, "2.0.0", "Commands supported:\n"
               "EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP%s",
               smtp_starttls_offered(s) ? " STARTTLS" : "");
}

static void cmd_starttls(struct smtp_session *s, const struct smtp_cmd *c)
{
    if (s->srv->tls_ctx == NULL) {
        smtp_reply(s, 502, "5.5.1", "STARTTLS not available");
        smtp_count_error(s);
        return;
    }
    smtp_starttls(s, c);
}

static void cmd_auth(struct smtp_session *s, const struct smtp_cmd *c)
{
    (void)c;
    smtp_reply(s, 502, "5.5.1", "AUTH not available");
    smtp_count_error(s);
}
