/* cutthrough.h - the cutthrough link: one onward SMTP transaction owned by an inbound
 * transaction.  Recipients are mirrored one at a time, DATA is sent when the client sends it,
 * body content is streamed as it arrives, and the final dot's reply is the next hop's verdict.
 * The link knows nothing of the inbound session: each step reports to a callback, and the
 * session (smtp_in_cut.c) decides what the client is told. */
#ifndef TANDEM_CUTTHROUGH_H
#define TANDEM_CUTTHROUGH_H

#include <stdbool.h>
#include <stddef.h>

#include "acl.h"
#include "route.h"
#include "smtp_out.h"
#include "smtp_reply.h"
#include "upstream.h"

struct cut_link;

enum cut_step { CUT_STEP_RCPT, CUT_STEP_DATA, CUT_STEP_DOT };

/* The outcome of one step: a reply from the next hop, or the link died (reply NULL). */
struct cut_result {
    enum cut_step step;
    const struct smtp_reply *reply;  /* NULL: connection trouble (text says what) */
    char text[300];                  /* one line for logs: the reply, or the failure */
    bool timed_out;                  /* the failure was a timeout */
};

typedef void (*cut_cb)(void *arg, struct cut_link *l, const struct cut_result *r);
typedef void (*cut_drained_cb)(void *arg, struct cut_link *l);

/* The sender side of the onward transaction (copied). */
struct cut_mail {
    const char *sender;
    uint64_t size;           /* client SIZE=, 0 if none */
    bool body_8bit, smtputf8;
    enum dsn_ret ret;
    const char *envid;
};

/* A new link for the next hops in route (taken over: freed with the link).  The connection is
 * opened on the first cut_link_rcpt.  kept, if not NULL, is a connection a callout left open
 * with MAIL done and kept_rcpt already accepted. */
struct cut_link *cut_link_new(const struct upstream_env *ue, struct route_result *route,
                              const struct cut_mail *mail, const struct cutthrough_opts *opts,
                              cut_cb cb, cut_drained_cb drained, void *arg);
void cut_link_adopt(struct cut_link *l, struct smtp_out *kept, const char *kept_rcpt);
/* Reuse a finished link's idle connection for a new transaction (MAIL is sent anew). */
bool cut_link_restart(struct cut_link *l, const struct cut_mail *mail);

const char *cut_link_key(const struct cut_link *l);    /* route_hops_key of its route */
const struct cutthrough_opts *cut_link_opts(const struct cut_link *l);
bool cut_link_alive(const struct cut_link *l);
bool cut_link_idle(const struct cut_link *l);          /* transaction over, connection ready */
/* Whether rcpt was already accepted on this link (a callout kept its connection). */
bool cut_link_has_rcpt(const struct cut_link *l, const char *rcpt);
size_t cut_link_naccepted(const struct cut_link *l);

/* Steps; each reports once through the callback (never from inside the call). */
void cut_link_rcpt(struct cut_link *l, const char *rcpt, unsigned notify, const char *orcpt);
void cut_link_data(struct cut_link *l);
void cut_link_body(struct cut_link *l, const char *p, size_t n);
/* While on, body bytes are held; once off, they go out ahead of the next body bytes or the
 * dot: the headers written at the 354 then share a packet with the client's first data. */
void cut_link_cork(struct cut_link *l, bool on);
bool cut_link_blocked(const struct cut_link *l);     /* too much body unwritten: pause input */
void cut_link_dot(struct cut_link *l);
/* Forget the current transaction: RSET if the connection is fine and no DATA was sent,
 * else close it abruptly (the next hop then keeps nothing). */
void cut_link_cancel_txn(struct cut_link *l);

/* Log fields of the connection: "H=name [ip]:port", TLS "X=... CV=yes|no" or "". */
void cut_link_log_host(const struct cut_link *l, char *buf, size_t sz);
void cut_link_log_tls(const struct cut_link *l, char *buf, size_t sz);
const char *cut_link_route_name(const struct cut_link *l);

/* Close (QUIT when idle, abrupt otherwise) and free. */
void cut_link_free(struct cut_link *l);

#endif
