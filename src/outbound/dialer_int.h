/* dialer_int.h - private state of the dialer: dialer.c (the per-process object, the options
 * of a hop, the watcher of every connection it made, giving connections back) and dial.c (one
 * dial: the walk over a route's hosts). */
#ifndef TANDEM_DIALER_INT_H
#define TANDEM_DIALER_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "outbound.h"

#define DIAL_CUT_LIMIT_WAIT 5  /* seconds a cutthrough dial waits for a connection slot (a client
                                  is waiting at RCPT; then what tandem knows answers) */
#define DIAL_POOL_MAX 1024     /* idle connections one process keeps at most */

struct dialer {
    struct event_base *base;
    const struct conf *conf;
    struct ssl_ctx_st *client_tls;
    struct hints *hints;
    struct tlsp *tlsp;              /* TLS requirements; NULL: each hop's policy as written */
    struct leases *leases;
    struct host_limit *limit;
    struct conn_pool *pool;
    struct tls_resume *resume;
    struct dconn *conns;            /* every live connection it made */
};

/* What the dialer knows of a connection it made (the engine's watcher). */struct dconn {
    struct dialer *dr;  /* NULL once the dialer is gone (a QUIT may outlive it) */
    struct next_hop hop;
    int lease;
    bool idle;        /* pooled: its failures are not the host's */
    bool checking;    /* the RSET before reuse: a failure means a stale connection */
    struct dconn *next, *prev;
};
/* dialer.c */
void dialer_pool_key(const struct next_hop *h, char *buf, size_t sz);
/* Watch a new connection: its outcomes update the host's health, its end gives lease back. */
void dialer_watch(struct dialer *dr, struct smtp_out *so, const struct next_hop *hop, int lease);

#endif
