/* smtp_in_tls.c - inbound STARTTLS (RFC 3207): offered per tls_advertise_hosts when a
 * certificate is configured; plaintext pipelined behind STARTTLS is thrown away (the
 * CVE-2011-0411 class); after the handshake the session starts over from EHLO. */
#include "smtp_in.h"

#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "in.h"
#include "conf/conf.h"
#include "core/core.h"

/* smtp_starttls_offered - a lookup in tls_advertise_hosts that defers offers STARTTLS (as
 * Exim does): offering encryption is the safe side */
bool smtp_starttls_offered(struct smtp_session *s)
{
    return s->srv->tls_ctx != NULL && !sf_has(s, SF_TLS) && sf_has(s, SF_ESMTP) &&
           list_check_host(&s->srv->conf->tls_advertise_hosts, s->peer_ip, NULL, NULL) !=
               LIST_NO_MATCH;
}

/* starttls_refusal - the reply for a STARTTLS that cannot be honoured now, or NULL */
static const char *starttls_refusal(struct smtp_session *s, const struct smtp_cmd *c, int *code)
{
    *code = 503;
    if (sf_has(s, SF_TLS))
        return "TLS already active";
    if (s->phase == PH_INIT)
        return "EHLO first";
    if (s->phase != PH_READY)
        return "STARTTLS not permitted inside a mail transaction";
    *code = 501;
    if (c->arglen)
        return "STARTTLS takes no argument";
    *code = 454;
    if (!smtp_starttls_offered(s))
        return "TLS not available";
    return NULL;
}

void smtp_starttls(struct smtp_session *s, const struct smtp_cmd *c)
{
    int code;
    const char *why = starttls_refusal(s, c, &code);
    if (why) {
        smtp_reply(s, code, code == 454 ? "4.7.0" : code == 501 ? "5.5.4" : "5.5.1", "%s", why);
        smtp_count_error(s);
        return;
    }
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t junk = evbuffer_get_length(in);
    if (junk) {
        char host[160];
        log_main("%s: %zu bytes of pipelined plaintext after STARTTLS discarded",
                 smtp_log_host(s, host, sizeof(host)), junk);
        evbuffer_drain(in, junk);
    }
    smtp_reply(s, 220, "2.0.0", "Ready to start TLS");
    SSL *ssl = SSL_new(s->srv->tls_ctx);
    if (ssl == NULL)
        fatalx("SSL_new");
    bev_direct_detach(&s->direct);   /* the TLS layer writes to the socket from now on */
    struct bufferevent *tbev = bufferevent_openssl_filter_new(
        s->srv->base, s->bev, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (tbev == NULL)
        fatalx("bufferevent_openssl_filter_new");
    sf_set(s, SF_WAITING); /* until the handshake completes */
    sf_set(s, SF_TLS_HANDSHAKE);
    smtp_session_swap_bev(s, tbev);
    smtp_deadline_start(s);          /* the whole handshake within smtp_receive_timeout */
}

/* smtp_tls_accept_bev - a bufferevent that starts with the TLS handshake (implicit TLS) */
struct bufferevent *smtp_tls_accept_bev(struct smtp_session *s, int fd)
{
    SSL *ssl = SSL_new(s->srv->tls_ctx);
    if (ssl == NULL)
        fatalx("SSL_new");
    sf_set(s, SF_TLS_HANDSHAKE);
    return bufferevent_openssl_socket_new(s->srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

/* smtp_tls_established - handshake done: after STARTTLS the session starts over (RFC 3207
 * 4.2); on an implicit-TLS port the banner comes next */
void smtp_tls_established(struct smtp_session *s)
{
    char desc[200];
    sf_set(s, SF_TLS);
    sf_clear(s, SF_TLS_HANDSHAKE);
    smtp_deadline_stop(s);
    metric_inc(M_TLS_IN);
    if (s->phase == PH_CONNECT) {
        tls_describe(bufferevent_openssl_get_ssl(s->bev), desc, sizeof(desc));
        s->tls_info = xstrdup(desc);
        smtp_session_connected(s);
        return;
    }
    sf_clear(s, SF_WAITING);
    smtp_txn_reset(s);
    free(s->helo);
    s->helo = NULL;
    sf_clear(s, SF_ESMTP);
    s->phase = PH_INIT;
    tls_describe(bufferevent_openssl_get_ssl(s->bev), desc, sizeof(desc));
    free(s->tls_info);
    s->tls_info = xstrdup(desc);
    smtp_resume(s);
}

/* smtp_tls_error_text - the OpenSSL error queue, for the log */
void smtp_tls_error_text(struct bufferevent *bev, char *buf, size_t sz)
{
    unsigned long e = bufferevent_get_openssl_error(bev);
    if (e == 0)
        e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sz);
    else
        str_copy(buf, "connection closed during handshake", sz);
    ERR_clear_error();
}
