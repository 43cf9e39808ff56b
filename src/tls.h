/* tls.h - OpenSSL contexts (server and client) and descriptions of TLS sessions for logs. */
#ifndef TANDEM_TLS_H
#define TANDEM_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct ssl_ctx_st;
struct ssl_st;

/* Server context from PEM files cert and key (tls_certificate, tls_privatekey); NULL if either
 * is NULL or on error, with a message in err.  TLS 1.2 and 1.3 only. */
struct ssl_ctx_st *tls_server_ctx(const char *cert, const char *key, char *err, size_t errsz);
/* Client context: CA from ca_file (tls_outbound_ca), else the system store (NULL).  TLS 1.2+. */
struct ssl_ctx_st *tls_client_ctx(const char *ca_file, char *err, size_t errsz);
/* "TLS1.3:TLS_AES_256_GCM_SHA384:256" */
void tls_describe(struct ssl_st *ssl, char *buf, size_t sz);

#endif
