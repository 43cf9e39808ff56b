/* tls_resume.c - outbound TLS session resumption (see outbound/outbound.h): the last session
 * each next hop gave this process (its tickets, TLS 1.3 and 1.2 alike) is offered on the next
 * connection to that hop, so a new onward connection costs an abbreviated handshake.  A session
 * is kept per hop key (address, port, name and TLS policy), so one made under `may` is never
 * offered where `verify` is required, and the verification it passed stays that of the same
 * name. */
#include "outbound.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "core/core.h"

#define RESUME_MAX 256       /* next hops whose session is kept */

struct resume_entry {
    char *key;
    SSL_SESSION *sess;
    unsigned long used;      /* for least-recently-used eviction */
};

struct tls_resume {
    SSL_CTX *ctx;
    struct resume_entry e[RESUME_MAX];
    size_t n;
    unsigned long clock;
};

static int key_index = -1, owner_index = -1;   /* SSL and SSL_CTX ex_data slots */

static void free_key(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    free(ptr);
}

/* find - the entry of key, or NULL */
static struct resume_entry *find(struct tls_resume *r, const char *key)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->e[i].key, key) == 0)
            return &r->e[i];
    return NULL;
}

/* slot - the entry for key, made (evicting the least recently used) when new */
static struct resume_entry *slot(struct tls_resume *r, const char *key)
{
    struct resume_entry *e = find(r, key);
    if (e)
        return e;
    if (r->n < RESUME_MAX) {
        e = &r->e[r->n++];
    } else {
        e = &r->e[0];
        for (size_t i = 1; i < r->n; i++)
            if (r->e[i].used < e->used)
                e = &r->e[i];
        free(e->key);
        SSL_SESSION_free(e->sess);
    }
    e->key = xstrdup(key);
    e->sess = NULL;
    return e;
}

/* new_session - OpenSSL has a session (a TLS 1.3 ticket may come after the handshake): keep
 * it for the connection's hop; returning 1 keeps our reference */
static int new_session(SSL *ssl, SSL_SESSION *sess)
{
    const char *key = SSL_get_ex_data(ssl, key_index);
    struct tls_resume *r = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), owner_index);
    if (key == NULL || r == NULL || !SSL_SESSION_is_resumable(sess))
        return 0;
    struct resume_entry *e = slot(r, key);
    SSL_SESSION_free(e->sess);
    e->sess = sess;
    e->used = ++r->clock;
    return 1;
}

struct tls_resume *tls_resume_new(struct ssl_ctx_st *ctx)
{
    if (ctx == NULL)
        return NULL;
    if (key_index < 0) {
        key_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, free_key);
        owner_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    }
    struct tls_resume *r = xcalloc(1, sizeof(*r));
    r->ctx = ctx;
    SSL_CTX_set_ex_data(ctx, owner_index, r);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session);
    return r;
}

void tls_resume_free(struct tls_resume *r)
{
    if (r == NULL)
        return;
    SSL_CTX_sess_set_new_cb(r->ctx, NULL);
    SSL_CTX_set_ex_data(r->ctx, owner_index, NULL);
    SSL_CTX_set_session_cache_mode(r->ctx, SSL_SESS_CACHE_OFF);
    for (size_t i = 0; i < r->n; i++) {
        free(r->e[i].key);
        SSL_SESSION_free(r->e[i].sess);
    }
    free(r);
}

void tls_resume_prepare(struct tls_resume *r, struct ssl_st *ssl, const char *key)
{
    if (r == NULL)
        return;
    SSL_set_ex_data(ssl, key_index, xstrdup(key));
    struct resume_entry *e = find(r, key);
    if (e && e->sess) {
        SSL_set_session(ssl, e->sess);   /* takes its own reference */
        e->used = ++r->clock;
    }
}
