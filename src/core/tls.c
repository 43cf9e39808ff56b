/* tls.c - OpenSSL 3 contexts for inbound and outbound STARTTLS, and session descriptions in
 * Exim's X= form.  Per-connection policy (SNI, name checks, verify mode) is set by the callers
 * on their SSL objects; the contexts hold what is shared. */
#include "core.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <string.h>


/* ssl_error - the latest OpenSSL error as text (or fallback), clearing the queue */
static void ssl_error(char *err, size_t errsz, const char *what, const char *file)
{
    char buf[256] = "";
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    if (err && errsz)
        str_fmt(err, errsz, "%s%s%s: %s", what, file ? " " : "", file ? file : "",
                buf[0] ? buf : "unknown error");
}

/* ctx_common - TLS 1.2 minimum, no compression or renegotiation */
static SSL_CTX *ctx_common(const SSL_METHOD *m)
{
    SSL_CTX *ctx = SSL_CTX_new(m);
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                             SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* RELEASE_BUFFERS: an idle TLS session holds no 16 KiB record buffers */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

/* load_pair - add one certificate chain and its key; OpenSSL keeps one per key type (RSA,
 * ECDSA, ...) and picks by the client's signature algorithms */
static bool load_pair(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errsz)
{
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        ssl_error(err, errsz, "cannot load certificate", cert);
    else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        ssl_error(err, errsz, "cannot load private key", key);
    else if (SSL_CTX_check_private_key(ctx) != 1)
        ssl_error(err, errsz, "private key does not match certificate", key);
    else
        return true;
    return false;
}

size_t tls_file_list(const char *list, char files[][TLS_FILE_MAX], size_t max)
{
    size_t n = 0;
    while (list && *list && n < max) {
        list += strspn(list, " \t");                 /* "a.pem : b.pem", as Exim's lists */
        size_t len = strcspn(list, ":"), next = len + (list[len] == ':');
        while (len > 0 && (list[len - 1] == ' ' || list[len - 1] == '\t'))
            len--;
        if (len >= TLS_FILE_MAX)
            return max + 1;
        if (len > 0) {
            memcpy(files[n], list, len);
            files[n++][len] = '\0';
        }
        list += next;
    }
    return list && *list ? max + 1 : n;
}

struct ssl_ctx_st *tls_server_ctx(const char *certs, const char *keys, char *err, size_t errsz)
{
    char cert[TLS_PAIRS_MAX][TLS_FILE_MAX], key[TLS_PAIRS_MAX][TLS_FILE_MAX];
    size_t ncert = tls_file_list(certs, cert, TLS_PAIRS_MAX);
    size_t nkey = tls_file_list(keys ? keys : certs, key, TLS_PAIRS_MAX);
    if (ncert == 0 || ncert != nkey || ncert > TLS_PAIRS_MAX) {
        str_fmt(err, errsz, "tls_certificate and tls_privatekey must name 1 to %d files each, "
                "paired in order", TLS_PAIRS_MAX);
        return NULL;
    }
    SSL_CTX *ctx = ctx_common(TLS_server_method());
    if (ctx == NULL) {
        ssl_error(err, errsz, "cannot create a TLS context", NULL);
        return NULL;
    }
    for (size_t i = 0; i < ncert; i++)
        if (!load_pair(ctx, cert[i], key[i], err, errsz)) {
            SSL_CTX_free(ctx);
            return NULL;
        }
    /* Resumption without server state: one stateless ticket per handshake.  The parent makes
     * the context before forking, so every worker shares its ticket keys. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 1);
    return ctx;
}

struct ssl_ctx_st *tls_client_ctx(const char *ca_file, char *err, size_t errsz)
{
    SSL_CTX *ctx = ctx_common(TLS_client_method());
    if (ctx == NULL) {
        ssl_error(err, errsz, "cannot create a TLS context", NULL);
        return NULL;
    }
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        ssl_error(err, errsz, "cannot load CA certificates",
                  ca_file ? ca_file : "(system store)");
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* Verification always runs (for CV=yes/no); failing the handshake on it is per SSL. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* DANE (RFC 7672) is switched on per SSL for next hops with TLSA records */
    if (SSL_CTX_dane_enable(ctx) <= 0) {
        ssl_error(err, errsz, "cannot enable DANE", NULL);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return ctx;
}

void tls_describe(struct ssl_st *ssl, char *buf, size_t sz)
{
    const char *ver = SSL_get_version(ssl);
    const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
    char v[32];
    if (ver == NULL || cipher == NULL) {
        str_copy(buf, "TLS", sz);
        return;
    }
    /* "TLSv1.3" -> "TLS1.3", as Exim logs it */
    if (strncmp(ver, "TLSv", 4) == 0)
        str_fmt(v, sizeof(v), "TLS%s", ver + 4);
    else
        str_copy(v, ver, sizeof(v));
    str_fmt(buf, sz, "%s:%s:%d", v, SSL_CIPHER_get_name(cipher), SSL_CIPHER_get_bits(cipher, NULL));
}
