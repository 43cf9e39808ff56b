/* smtp_out_session.c - the opening of an outbound session: the greeting, EHLO (HELO when EHLO
 * is refused), the extensions offered, STARTTLS per the hop's policy and EHLO again under TLS.
 * One handler per state, in a table. */
#include "smtp_out_int.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "core/core.h"

/* oneline - the reply on one line for failure texts */
static void oneline(const struct smtp_reply *r, char *buf, size_t sz)
{
    struct sbuf b;
    sbuf_init(&b);
    smtp_reply_oneline(r, &b);
    str_sanitize(buf, sz, b.s ? b.s : "", b.len);
    sbuf_free(&b);
}

static void send_line(struct smtp_out *so, enum so_state st, const char *what, const char *line)
{
    struct sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "%s\r\n", line);
    so->state = st;
    so_arm_timer(so, so->opts.command_timeout, what);
    so_write(so, b.s, b.len);
    sbuf_free(&b);
}

static void send_ehlo(struct smtp_out *so)
{
    struct sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "EHLO %s", so->helo);
    send_line(so, SO_EHLO, "reply to EHLO", b.s);
    sbuf_free(&b);
}

void so_session_start(struct smtp_out *so)
{
    so->state = SO_GREETING;
    so_arm_timer(so, so->opts.command_timeout, "greeting");
}

/* go_ready - the session is open: hand it to the caller */
static void go_ready(struct smtp_out *so)
{
    so->state = SO_READY;
    so_stop_timer(so);
    if (!so->quiet && so->cbs.ready)
        so->cbs.ready(so->arg, so);
    if (!so->zombie && so->state == SO_READY)
        so_flush(so);
}

/* after_ehlo - extensions known: STARTTLS when the policy asks for it, else ready */
static void after_ehlo(struct smtp_out *so)
{
    enum tls_policy p = so->opts.tls;
    bool want = !so->tls_on && !so->tls_skip && p >= TLS_MAY && so->opts.ssl_ctx != NULL;
    if (want && (so->exts & EXT_STARTTLS))
        send_line(so, SO_STARTTLS, "reply to STARTTLS", "STARTTLS");
    else if (!so->tls_on && p >= TLS_ENCRYPT)
        so_fail(so, SOF_TLS, NULL, "TLS is required but the server does not offer STARTTLS");
    else {
        if (!so->tls_on && !so->tls_skip)
            so_tls_testing_clear(so, "the server does not offer STARTTLS");
        go_ready(so);
    }
}

static void on_greeting(struct smtp_out *so, const struct smtp_reply *r)
{
    char line[200];
    if (r->code == 220) {
        send_ehlo(so);
        return;
    }
    oneline(r, line, sizeof(line));
    so_fail(so, SOF_GREETING, r, "SMTP error from remote mail server after initial connection: %s", line);
}

static void on_ehlo(struct smtp_out *so, const struct smtp_reply *r)
{
    char line[200];
    if (r->code >= 200 && r->code < 300) {
        so_parse_ehlo(r->text.s ? r->text.s : "", r->text.len, &so->exts, &so->size_limit);
        after_ehlo(so);
    } else if (r->code >= 500 && !so->tls_on) {
        struct sbuf b;
        sbuf_init(&b);
        sbuf_printf(&b, "HELO %s", so->helo);
        send_line(so, SO_HELO, "reply to HELO", b.s);
        sbuf_free(&b);
    } else {
        oneline(r, line, sizeof(line));
        so_fail(so, SOF_EHLO, r, "SMTP error from remote mail server after EHLO %s: %s", so->helo, line);
    }
}

static void on_helo(struct smtp_out *so, const struct smtp_reply *r)
{
    char line[200];
    if (r->code >= 200 && r->code < 300) {
        so->exts = 0;
        so->size_limit = 0;
        after_ehlo(so);
        return;
    }
    oneline(r, line, sizeof(line));
    so_fail(so, SOF_EHLO, r, "SMTP error from remote mail server after HELO %s: %s", so->helo, line);
}

static void on_starttls(struct smtp_out *so, const struct smtp_reply *r)
{
    char line[200];
    if (r->code == 220) {
        /* Nothing may follow the 220 before the handshake: such bytes would be taken as the
         * server's first words under TLS (CVE-2021-38371 class). */
        if (evbuffer_get_length(bufferevent_get_input(so->bev)) > 0)
            so_fail(so, SOF_PROTOCOL, r, "unexpected data after the reply to STARTTLS");
        else
            so_tls_start(so);
        return;
    }
    oneline(r, line, sizeof(line));
    if (so->opts.tls == TLS_MAY && r->code != 421) {
        char host[400];
        smtp_out_log_host(so, host, sizeof(host));
        log_main("%s STARTTLS refused (%s): continuing in clear", host, line);
        so_tls_testing_clear(so, "STARTTLS refused");
        go_ready(so);
        return;
    }
    so_fail(so, r->code == 421 ? SOF_LOST : SOF_TLS, r,
            "SMTP error from remote mail server after STARTTLS: %s", line);
}

static const struct {
    enum so_state state;
    void (*on_reply)(struct smtp_out *so, const struct smtp_reply *r);
} phases[] = {
    { SO_GREETING, on_greeting },
    { SO_EHLO, on_ehlo },
    { SO_HELO, on_helo },
    { SO_STARTTLS, on_starttls },
};

bool so_session_reply(struct smtp_out *so, const struct smtp_reply *r)
{
    for (size_t i = 0; i < ARRAY_LEN(phases); i++) {
        if (phases[i].state == so->state) {
            phases[i].on_reply(so, r);
            return true;
        }
    }
    return false;
}

void so_after_tls(struct smtp_out *so)
{
    so->tls_on = true;
    metric_inc(M_TLS_OUT);
    so->exts = 0; /* RFC 3207: forget everything learnt in clear */
    so->size_limit = 0;
    send_ehlo(so);
}
