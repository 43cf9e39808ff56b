/* upstream.h - open an SMTP transaction at the first next hop that takes it: the common first
 * step of recipient callouts and cutthrough delivery.  Hosts are tried in route order; a host
 * that cannot be reached, greets with an error, fails TLS, or answers MAIL with 4xx is skipped
 * for the next one.  The caller gets a connection with MAIL accepted, or the reason none could
 * be had. */
#ifndef TANDEM_UPSTREAM_H
#define TANDEM_UPSTREAM_H

#include <stdbool.h>

#include "route.h"
#include "smtp_out.h"

struct event_base;
struct ssl_ctx_st;
struct upstream;

struct upstream_env {
    struct event_base *base;
    const struct conf *conf;
    struct ssl_ctx_st *client_tls;
};

enum upstream_status {
    UP_OK,         /* MAIL accepted: so is ready for RCPT */
    UP_REFUSED,    /* MAIL refused with 5xx (reply given) */
    UP_TEMPFAIL,   /* no host took the transaction: text (and the last reply, if any) */
};

struct upstream_result {
    enum upstream_status status;
    struct smtp_out *so;            /* UP_OK: the caller owns it (set its callbacks) */
    const struct next_hop *hop;     /* the host that answered last, NULL if none */
    const struct smtp_reply *reply; /* UP_REFUSED: MAIL's 5xx; UP_TEMPFAIL: the reply that came
                                       with the last failure (MAIL's 4xx, or a greeting, EHLO
                                       or STARTTLS reply of any code), NULL for connection
                                       trouble.  Only UP_REFUSED's is a verdict. */
    char text[300];                 /* for logs: "H=... [ip]:port: Connection refused",
                                       "451 4.3.0 ..." (a MAIL reply) */
};

typedef void (*upstream_cb)(void *arg, const struct upstream_result *r);

/* Start; cb runs later from the event loop.  route and mail must stay valid until then.
 * timeout: connect and per-command timeout in seconds. */
struct upstream *upstream_open(const struct upstream_env *ue, const struct route_result *route,
                               const struct mail_out *mail, unsigned timeout, upstream_cb cb, void *arg);
void upstream_cancel(struct upstream *u);

#endif
