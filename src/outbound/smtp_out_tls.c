/* smtp_out_tls.c - STARTTLS for the outbound engine: an OpenSSL filter on the socket
 * bufferevent, SNI and name checks per hop, verification per policy (PKIX, or DANE with
 * OpenSSL's DANE support), and the `may` policy's retry in clear when the handshake fails. */
#include "smtp_out_int.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "core/core.h"
#include "dns/dns.h"

/* set_dane - RFC 7672: SNI and the TLSA base domain are the MX host name; the certificate must
 * match one of the TLSA records (DANE-EE: the key or certificate itself, without name checks;
 * DANE-TA: a chain to the named trust anchor, with name checks against the host name) */
static bool set_dane(struct smtp_out *so, SSL *ssl)
{
    int usable = 0;
    if (so->hop.is_literal || so->hop.name[0] == '\0' || SSL_dane_enable(ssl, so->hop.name) <= 0 ||
        SSL_set_tlsext_host_name(ssl, so->hop.name) != 1)
        return false;
    SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    for (size_t i = 0; i < so->opts.ntlsa; i++) {
        const struct dns_tlsa *t = &so->opts.tlsa[i];
        if (SSL_dane_tlsa_add(ssl, t->usage, t->selector, t->mtype, t->data, t->len) > 0)
            usable++;
    }
    ERR_clear_error();      /* records OpenSSL refused are unusable, nothing more */
    SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    return usable > 0;
}

/* set_peer_checks - SNI and the name (or IP) the certificate must match */
static bool set_peer_checks(struct smtp_out *so, SSL *ssl)
{
    if (so->opts.tls == TLS_DANE)
        return set_dane(so, ssl);
    if (so->hop.is_literal || so->hop.name[0] == '\0') {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), so->hop.ip) != 1)
            return false;
    } else {
        if (SSL_set_tlsext_host_name(ssl, so->hop.name) != 1 || SSL_set1_host(ssl, so->hop.name) != 1)
            return false;
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    if (so->opts.tls == TLS_VERIFY)
        SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    return true;
}

bool so_tls_start(struct smtp_out *so)
{
    SSL *ssl = SSL_new(so->opts.ssl_ctx);
    if (ssl == NULL || !set_peer_checks(so, ssl)) {
        SSL_free(ssl);
        so_fail(so, SOF_TLS, NULL, "cannot set up a TLS session");
        return false;
    }
    struct bufferevent *under = so->bev;
    bev_direct_detach(&so->direct);  /* the TLS layer writes to the socket from now on */
    struct bufferevent *tb = bufferevent_openssl_filter_new(
        so->base, under, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (tb == NULL) {
        SSL_free(ssl);
        so_fail(so, SOF_TLS, NULL, "cannot set up a TLS session");
        return false;
    }
    /* The filter hands the socket at most this much at a time: back-pressure stays visible. */
    bufferevent_setwatermark(under, EV_WRITE, 0, SO_BODY_LOW);
    bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
    so->ssl = ssl;
    so->state = SO_HANDSHAKE;
    so_install_bev(so, tb);
    so_arm_timer(so, so->opts.command_timeout, "TLS handshake");
    return true;
}

/* verify_text - why the peer's certificate does not verify */
static void verify_text(SSL *ssl, char *buf, size_t sz)
{
    long vr = SSL_get_verify_result(ssl);
    if (vr != X509_V_OK)
        str_fmt(buf, sz, "certificate verification failed: %s", X509_verify_cert_error_string(vr));
    else
        str_copy(buf, "certificate verification failed: no certificate", sz);
}

/* sts_testing_note - under an MTA-STS testing policy, say what enforce would have refused */
static void sts_testing_note(struct smtp_out *so, const char *what)
{
    char host[400];
    smtp_out_log_host(so, host, sizeof(host));
    log_main("%s MTA-STS testing policy: %s (enforce would defer; delivering anyway)", host, what);
}

void so_tls_connected(struct smtp_out *so)
{
    SSL *ssl = so->ssl;
    so_stop_timer(so);
    so->tls_verified = SSL_get0_peer_certificate(ssl) != NULL &&
                       SSL_get_verify_result(ssl) == X509_V_OK;
    if (so->opts.tls == TLS_DANE)
        so->tls_verified = so->tls_verified && SSL_get0_dane_authority(ssl, NULL, NULL) >= 0;
    if (so->opts.tls >= TLS_VERIFY && !so->tls_verified) {
        char why[200];
        verify_text(ssl, why, sizeof(why));
        so_fail(so, SOF_TLS, NULL, "TLS session failure: %s", why);
        return;
    }
    if (so->opts.sts_testing && !so->tls_verified) {
        char why[200];
        verify_text(ssl, why, sizeof(why));
        sts_testing_note(so, why);
    }
    tls_describe(ssl, so->tls_info, sizeof(so->tls_info));
    so_after_tls(so);
}

void so_tls_testing_clear(struct smtp_out *so, const char *what)
{
    if (so->opts.sts_testing)
        sts_testing_note(so, what);
}

void so_tls_error_text(struct smtp_out *so, char *buf, size_t sz)
{
    unsigned long e = so->bev ? bufferevent_get_openssl_error(so->bev) : 0;
    unsigned long more;
    while (so->bev && (more = bufferevent_get_openssl_error(so->bev)) != 0)
        e = more; /* the last is the most specific */
    if (so->ssl && so->opts.tls >= TLS_VERIFY && SSL_get_verify_result(so->ssl) != X509_V_OK) {
        verify_text(so->ssl, buf, sz);
    } else if (e != 0) {
        char es[200];
        ERR_error_string_n(e, es, sizeof(es));
        str_fmt(buf, sz, "TLS handshake failed: %s", es);
    } else if (EVUTIL_SOCKET_ERROR() != 0) {
        str_fmt(buf, sz, "TLS handshake failed: %s", strerror(EVUTIL_SOCKET_ERROR()));
    } else {
        str_copy(buf, "TLS handshake failed: connection closed", sz);
    }
    ERR_clear_error();
}

void so_tls_failed(struct smtp_out *so, const char *why)
{
    char host[400];
    smtp_out_log_host(so, host, sizeof(host));
    if (so->opts.tls == TLS_MAY && !so->tls_on) {
        log_main("%s TLS error on connection (%s): retrying in clear", host, why);
        so_tls_testing_clear(so, why);
        so->tls_fell_back = true;
        so->tls_skip = true;
        so_reconnect(so);
        return;
    }
    so_fail(so, SOF_TLS, NULL, "TLS session failure: %s", why);
}
