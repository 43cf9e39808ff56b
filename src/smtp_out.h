/* smtp_out.h - THE outbound SMTP client engine.  Queued delivery, recipient callouts and
 * cutthrough all drive this one object step by step: connect (greeting, EHLO or HELO,
 * STARTTLS per policy, EHLO again), then any number of transactions (MAIL, RCPT..., DATA or
 * BDAT, body, end of data; RSET), then QUIT.  Commands are queued and, when the server offers
 * PIPELINING, sent together; each reply is handed back in order with the caller's tag.
 *
 * The rules a caller can rely on:
 * - Callbacks run only from the event loop, never inside an smtp_out_*() call.  Any callback
 *   may call smtp_out_free() or smtp_out_quit() on its object.
 * - Transaction commands may be queued from `ready` on (earlier is a bug: fatalx).  After a
 *   failure not yet reported they are ignored; `failed` follows.
 * - Without PIPELINING commands go one at a time; with it, MAIL/RCPT.../DATA in one write.
 *   Nothing follows DATA before its 354, nor the final dot before its reply.
 * - A 421 reply to any command is handed to `reply` for that command; then the connection
 *   counts as closed: `failed` with SOF_LOST and the 421 attached.
 * - TLS `may`: STARTTLS is used when offered; if it is refused, the session goes on in clear;
 *   if the handshake fails, the engine itself reconnects to the same address and continues in
 *   clear without STARTTLS (logged "TLS error on connection (...): retrying in clear"), and
 *   smtp_out_tls_fell_back() is true.  `encrypt` and `verify` never continue in clear: SOF_TLS.
 *   Bytes received after the 220 to STARTTLS, before the handshake, are SOF_PROTOCOL.
 * - Body given before the 354 is held until it comes.  If DATA is refused, later body is
 *   dropped and the reply to smtp_out_dot is DATA's refusal.
 * - Timeouts: connect_timeout for the TCP connect; command_timeout for the greeting and every
 *   reply; data_timeout for the reply to the final dot or BDAT and for a stalled body write.
 *   Their texts name what was awaited: "timed out waiting for reply to RCPT". */
#ifndef TANDEM_SMTP_OUT_H
#define TANDEM_SMTP_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "envelope.h"
#include "route.h"
#include "smtp_reply.h"

struct event_base;
struct ssl_ctx_st;
struct smtp_out;

enum smtp_ext {
    EXT_PIPELINING = 1 << 0, EXT_SIZE = 1 << 1, EXT_8BITMIME = 1 << 2, EXT_SMTPUTF8 = 1 << 3,
    EXT_DSN = 1 << 4, EXT_CHUNKING = 1 << 5, EXT_STARTTLS = 1 << 6, EXT_ENHANCEDSTATUSCODES = 1 << 7,
};

enum smtp_out_cmd { SOC_MAIL, SOC_RCPT, SOC_DATA, SOC_BDAT, SOC_DOT, SOC_RSET, SOC_QUIT, SOC_NOOP };

/* Why a connection failed (the object is unusable afterwards; the caller frees it). */
enum so_fail {
    SOF_CONNECT,    /* TCP connect refused/unreachable/timed out */
    SOF_GREETING,   /* banner was not 220 (reply attached), e.g. 421 or 554 */
    SOF_EHLO,       /* EHLO and HELO both refused (reply attached) */
    SOF_TLS,        /* STARTTLS required but not offered/refused/handshake or verification failed */
    SOF_TIMEOUT,    /* no reply within the timeout */
    SOF_LOST,       /* the server closed the connection or it broke */
    SOF_PROTOCOL,   /* malformed or hostile reply, bytes where none may be (after STARTTLS 220) */
};

struct so_failure {
    enum so_fail kind;
    const struct smtp_reply *reply; /* for SOF_GREETING / SOF_EHLO / a 421, else NULL */
    char text[256];                 /* e.g. "Connection refused", "timed out after RCPT" */
    int sys_errno;                  /* the system error behind SOF_CONNECT / SOF_LOST, or 0 */
};

struct smtp_out_opts {
    const char *helo;               /* name sent in EHLO/HELO (helo_data) */
    enum tls_policy tls;            /* TLS_NONE, TLS_MAY, TLS_ENCRYPT, TLS_VERIFY */
    struct ssl_ctx_st *ssl_ctx;     /* client context (tls.h); required unless tls == TLS_NONE */
    unsigned connect_timeout;       /* seconds */
    unsigned command_timeout;       /* per reply */
    unsigned data_timeout;          /* per body write stall and for the reply to the final dot */
};

struct smtp_out_cbs {
    /* Connected, greeted, EHLO done (and TLS when used): transactions may start. */
    void (*ready)(void *arg, struct smtp_out *so);
    /* The reply to a queued command, in order; tag is what the caller passed when queueing. */
    void (*reply)(void *arg, struct smtp_out *so, enum smtp_out_cmd cmd, void *tag,
                  const struct smtp_reply *r);
    /* The connection is dead (at any stage).  Commands still queued get no reply. */
    void (*failed)(void *arg, struct smtp_out *so, const struct so_failure *f);
    /* Body output fell back under the low-water mark after smtp_out_body_pending was high. */
    void (*drained)(void *arg, struct smtp_out *so);
};

struct smtp_out *smtp_out_new(struct event_base *base, const struct next_hop *hop,
                              const struct smtp_out_opts *opts, const struct smtp_out_cbs *cbs, void *arg);
/* Re-point callbacks (a connection handed from a callout to cutthrough, or to a cache). */
void smtp_out_set_cbs(struct smtp_out *so, const struct smtp_out_cbs *cbs, void *arg);
void smtp_out_connect(struct smtp_out *so);
/* Abrupt close (no QUIT): the next hop keeps nothing of an unfinished transaction. */
void smtp_out_free(struct smtp_out *so);

/* State and capabilities. */
bool smtp_out_is_ready(const struct smtp_out *so);   /* connected, idle, no transaction */
unsigned smtp_out_exts(const struct smtp_out *so);   /* enum smtp_ext bits */
uint64_t smtp_out_size_limit(const struct smtp_out *so); /* SIZE value, 0 = none given */
const struct next_hop *smtp_out_hop(const struct smtp_out *so);
const char *smtp_out_tls_info(const struct smtp_out *so); /* "TLS1.3:CIPHER:BITS" or NULL */
bool smtp_out_tls_verified(const struct smtp_out *so);
bool smtp_out_tls_fell_back(const struct smtp_out *so); /* `may`: handshake failed, went on in clear */

/* Transaction commands.  Parameters are added only when the server offers the extension;
 * the caller checks smtp_out_exts() first when the message needs one (8BITMIME, SMTPUTF8). */
struct mail_out {
    const char *sender;    /* "" for <> */
    uint64_t size;         /* 0 = do not send SIZE */
    bool body_8bit, smtputf8;
    enum dsn_ret ret;      /* DSN: sent only with EXT_DSN */
    const char *envid;     /* xtext, sent only with EXT_DSN */
};
void smtp_out_mail(struct smtp_out *so, const struct mail_out *m, void *tag);
void smtp_out_rcpt(struct smtp_out *so, const char *rcpt, unsigned notify, const char *orcpt, void *tag);
void smtp_out_data(struct smtp_out *so, void *tag);            /* expects 354 */
/* Body content (decoded CRLF lines, as stored in the spool): dot-stuffed on the way out.
 * Back-pressure: pause while smtp_out_body_pending() >= SMTP_OUT_BODY_HIGH; `drained` is called
 * once it is back under SMTP_OUT_BODY_LOW.  Body given before the 354 is held until it comes;
 * after a refused DATA, body is dropped and smtp_out_dot's reply is DATA's refusal. */
#define SMTP_OUT_BODY_HIGH (256 * 1024)
#define SMTP_OUT_BODY_LOW (64 * 1024)
void smtp_out_body(struct smtp_out *so, const char *p, size_t n);
size_t smtp_out_body_pending(const struct smtp_out *so);      /* bytes not yet written */
void smtp_out_dot(struct smtp_out *so, void *tag);             /* final dot; data_timeout */
/* BDAT with the server's CHUNKING: one chunk (raw bytes, no dot-stuffing). */
void smtp_out_bdat(struct smtp_out *so, const char *p, size_t n, bool last, void *tag);
void smtp_out_rset(struct smtp_out *so, void *tag);
void smtp_out_noop(struct smtp_out *so, void *tag);
/* QUIT; the object frees itself once the reply (or a short timeout) arrives, and calls no
 * callbacks after this. */
void smtp_out_quit(struct smtp_out *so);
/* Run base until every object given smtp_out_quit() in this process has had its reply or its
 * timeout (a few seconds at most): a process about to end calls it, so that no link is
 * abandoned halfway through its QUIT and none is left allocated. */
void smtp_out_drain(struct event_base *base);

/* "H=name [ip]:port" for log lines (name omitted when it is the IP literal). */
void smtp_out_log_host(const struct smtp_out *so, char *buf, size_t sz);

#endif
