/* outbound/outbound.h - the contract of the onward side: the SMTP client engine, the connection cache,
 * opening a transaction at the first next hop that takes it, queued delivery of one message, and
 * the cutthrough link.  May include: core, smtp, conf, store, dns, route. */
#ifndef TANDEM_OUTBOUND_H
#define TANDEM_OUTBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf/conf.h"
#include "route/route.h"
#include "smtp/smtp.h"

/* ---- smtp_out: THE outbound SMTP client engine.  Queued delivery, recipient callouts and
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

struct event_base;
struct ssl_ctx_st;
struct smtp_out;
struct dns_tlsa;

enum smtp_ext {
    EXT_PIPELINING = 1 << 0, EXT_SIZE = 1 << 1, EXT_8BITMIME = 1 << 2, EXT_SMTPUTF8 = 1 << 3,
    EXT_DSN = 1 << 4, EXT_CHUNKING = 1 << 5, EXT_STARTTLS = 1 << 6, EXT_ENHANCEDSTATUSCODES = 1 << 7,
};

enum smtp_out_cmd { SOC_MAIL, SOC_RCPT, SOC_DATA, SOC_BDAT, SOC_DOT, SOC_RSET, SOC_QUIT };

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
    bool in_session;                /* it came after the session was ready (mid-transaction) */
};

struct tls_resume;
/* The authentication a connection's TLS requirement stands on (TA= in log lines). */
enum tls_auth { TLS_AUTH_NONE = 0, TLS_AUTH_DANE, TLS_AUTH_MTA_STS };

struct smtp_out_opts {
    const char *helo;               /* name sent in EHLO/HELO (helo_data) */
    enum tls_policy tls;            /* TLS_NONE, TLS_MAY, TLS_ENCRYPT, TLS_VERIFY, TLS_DANE */
    struct ssl_ctx_st *ssl_ctx;     /* client context (core/core.h); required unless tls == TLS_NONE */
    struct tls_resume *resume;      /* sessions to resume (the dialer's), or NULL */
    unsigned connect_timeout;       /* seconds */
    unsigned command_timeout;       /* per reply */
    unsigned data_timeout;          /* per body write stall and for the reply to the final dot */
    /* Set from a tls_policy decision (tlsp_apply), zero otherwise: */
    const struct dns_tlsa *tlsa;    /* TLS_DANE: the TLSA records to match (copied); the
                                     * certificate must match one (RFC 7672), SNI is the name */
    size_t ntlsa;
    enum tls_auth auth;             /* what the requirement stands on */
    bool show_auth;                 /* log lines carry TA= (the route asked for tls=dane) */
    bool sts_testing;               /* MTA-STS `testing`: log what enforce would refuse */
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
/* Re-point callbacks (a connection handed from the dialer to its user, or to the pool). */
void smtp_out_set_cbs(struct smtp_out *so, const struct smtp_out_cbs *cbs, void *arg);
/* A watcher sees every outcome of a connection whoever drives it, and its end: the dialer
 * records host health and gives the connection's lease back with it.  outcome runs inside the
 * engine (it must not call smtp_out_*): f NULL when the session is ready, else the failure
 * (not after smtp_out_quit).  closed runs when the object is destroyed. */
struct smtp_out_watch {
    void (*outcome)(void *arg, struct smtp_out *so, const struct so_failure *f);
    void (*closed)(void *arg, struct smtp_out *so);
};
void smtp_out_watch(struct smtp_out *so, const struct smtp_out_watch *w, void *arg);
void *smtp_out_watcher(const struct smtp_out *so);   /* the watcher's arg, NULL if none */
/* Change the per-reply and data timeouts (a pooled connection taken for another use); 0 keeps. */
void smtp_out_set_timeouts(struct smtp_out *so, unsigned command_timeout, unsigned data_timeout);
void smtp_out_connect(struct smtp_out *so);
/* Abrupt close (no QUIT): the next hop keeps nothing of an unfinished transaction. */
void smtp_out_free(struct smtp_out *so);

/* State and capabilities. */
bool smtp_out_is_ready(const struct smtp_out *so);   /* connected, idle, no transaction */
bool smtp_out_can_reset(const struct smtp_out *so);  /* greeted, not in a data phase: RSET may go */
unsigned smtp_out_exts(const struct smtp_out *so);   /* enum smtp_ext bits */
uint64_t smtp_out_size_limit(const struct smtp_out *so); /* SIZE value, 0 = none given */
const struct next_hop *smtp_out_hop(const struct smtp_out *so);
const char *smtp_out_tls_info(const struct smtp_out *so); /* "TLS1.3:CIPHER:BITS" or NULL */
bool smtp_out_tls_verified(const struct smtp_out *so);
bool smtp_out_tls_fell_back(const struct smtp_out *so); /* `may`: handshake failed, went on in clear */
/* " TA=dane" / " TA=mta-sts" / " TA=none" when the connection's options ask for it, else "". */
void smtp_out_log_auth(const struct smtp_out *so, char *buf, size_t sz);
/* A reused connection (same TLS requirement) takes the new user's view of it for log lines. */
void smtp_out_set_auth(struct smtp_out *so, enum tls_auth auth, bool show_auth);

/* Transaction commands.  Parameters are added only when the server offers the extension;
 * the caller checks smtp_out_exts() first when the message needs one (8BITMIME, SMTPUTF8). */
struct mail_out {
    const char *sender;    /* "" for <> */
    uint64_t size;         /* 0 = do not send SIZE */
    bool body_8bit, smtputf8;
    enum dsn_ret ret;      /* DSN: sent only with EXT_DSN */
    const char *envid;     /* xtext, sent only with EXT_DSN */
};
/* The MAIL of a message with envelope env (sender, BODY, SMTPUTF8, RET, ENVID) and SIZE size
 * (0: none): the one place a sender side is built, for queued delivery and cutthrough alike.
 * m points into env. */
void mail_out_from_envelope(struct mail_out *m, const struct envelope *env, uint64_t size);
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
/* QUIT; the object frees itself once the reply (or a short timeout) arrives, and calls no
 * callbacks after this. */
void smtp_out_quit(struct smtp_out *so);
/* Run base until every object given smtp_out_quit() in this process has had its reply or its
 * timeout (a few seconds at most): a process about to end calls it, so that no link is
 * abandoned halfway through its QUIT and none is left allocated. */
void smtp_out_drain(struct event_base *base);

/* "H=name [ip]:port" for log lines (name omitted when it is the IP literal). */
void smtp_out_log_host(const struct smtp_out *so, char *buf, size_t sz);
bool smtp_out_tls_resumed(const struct smtp_out *so);   /* the TLS session was resumed */

/* ---- tls_policy: THE place where the TLS requirement of a next hop is decided, for queued
 * delivery, callouts and cutthrough alike: call tlsp_decide before dialling a hop, then
 * tlsp_apply to the hop and the engine options.  For hops whose route says tls=dane:
 * - DANE (RFC 7672) when the hop's MX and address answers were DNSSEC-validated and the TLSA
 *   records at _PORT._tcp.HOST are secure: DANE-EE(3) and DANE-TA(2) records with selectors
 *   0/1 and matching types 0/1/2 are matched by OpenSSL (TLS_DANE); PKIX-TA/EE records are
 *   unusable; a secure RRset with no usable record still means TLS, unauthenticated
 *   (TLS_ENCRYPT, RFC 7672 2.2); a failed (or bogus) TLSA lookup refuses the hop;
 * - else, for MX hosts, the recipient domain's MTA-STS policy (RFC 8461): `enforce` means a
 *   PKIX-valid certificate for an MX host matching the policy (TLS_VERIFY), and refuses the
 *   hop when it does not match; `testing` and `none` mean `may` (testing logs what enforce
 *   would refuse);
 * - else `may`.
 * Other policies are passed through as they are.  A refused hop is not dialled: the caller
 * moves on to the next hop, or defers with req->why. */

struct dns_ctx;
struct hints;
struct tlsp;            /* per process: DNS, the policy cache, HTTPS fetches */
struct tlsp_query;

struct tls_req {
    enum tls_policy tls;            /* for the engine: NONE, MAY, ENCRYPT, VERIFY or DANE */
    enum tls_auth auth;
    bool show_auth;                 /* the route's policy is dane: log lines carry TA= */
    bool sts_testing;               /* an MTA-STS testing policy applies */
    bool refuse;                    /* do not dial this hop (why says why) */
    const struct dns_tlsa *tlsa;    /* TLS_DANE: the usable records (valid during the call) */
    size_t ntlsa;
    char why[512];                  /* one line: what applies and why */
};

typedef void (*tlsp_cb)(void *arg, const struct tls_req *req);

/* A context on base for c, using dns and hints (NULL: no policy cache). */
struct tlsp *tlsp_new(struct event_base *base, const struct conf *c, struct dns_ctx *dns,
                      struct hints *hints);
void tlsp_free(struct tlsp *t);
/* Decide for hop, reached for recipient domain; cb runs later from the loop (never inside
 * this call). */
struct tlsp_query *tlsp_decide(struct tlsp *t, const char *domain, const struct next_hop *hop,
                               tlsp_cb cb, void *arg);
void tlsp_cancel(struct tlsp_query *q);
/* Put the decision into the hop to dial (its tls, which keys the connection cache) and into
 * the engine options (tls, TLSA records, what the log lines say). */
void tlsp_apply(const struct tls_req *req, struct next_hop *hop, struct smtp_out_opts *o);
/* A decision kept beyond its callback (its TLSA records copied), and its release. */
struct tls_req *tls_req_dup(const struct tls_req *req);
void tls_req_free(struct tls_req *req);
const char *tls_auth_name(enum tls_auth a);     /* "none", "dane", "mta-sts" */

/* ---- tls_resume: outbound TLS session resumption.  The last session each next hop gave this
 * process (address, port, name and TLS policy: the key) is offered on the next connection to
 * it, so that a new onward connection costs an abbreviated handshake. */

/* Install on the process's client context (NULL ctx: NULL). */
struct tls_resume *tls_resume_new(struct ssl_ctx_st *ctx);
void tls_resume_free(struct tls_resume *r);
/* Before a handshake: offer key's session on ssl, and keep the tickets it gets under key. */
void tls_resume_prepare(struct tls_resume *r, struct ssl_st *ssl, const char *key);

/* ---- host_health: one health record per next hop (address:port) in the hints that every
 * process shares.  Every outcome of a connection the dialer made updates it: refused, timed
 * out (at any stage), 421 or another refusal at the banner or EHLO, TLS failure, dropped before
 * the session was ready: down, with a retry time from retry_intervals; greeted: up; dropped (or
 * 421) after the session was ready: noted as the last error, the host stays usable (one bad
 * session of a working host must not stop all mail to it).  So a dead host costs one attempt
 * per retry interval for the whole daemon.  A host that is down and due is claimed by the process
 * that probes it: the others keep skipping it until the probe is over.  Reads report through a
 * callback so that a backend that answers later can replace LMDB (issue 15). */

struct hints;

struct host_health {
    bool down;                /* the last connection failed */
    time_t next_try;          /* down: no attempt before this (also: a probe in progress) */
    time_t last_try;          /* the last change */
    time_t first_failure;
    unsigned failures;        /* in a row */
    char last_error[200];
};

typedef void (*health_cb)(void *arg, bool may_try, const struct host_health *h);
/* May this process connect to hop now?  ignore_retry: yes, always.  A down host whose time has
 * come is claimed for claim_seconds.  cb may run before health_check returns. */
void health_check(struct hints *h, const struct next_hop *hop, bool ignore_retry,
                  unsigned claim_seconds, health_cb cb, void *arg);
void health_failed(struct hints *h, const struct conf *c, const struct next_hop *hop, const char *why);
/* A failure that does not make the host unusable (a session dropped after it opened fine):
 * noted as the host's last error, its state and retry time unchanged. */
void health_noted(struct hints *h, const struct next_hop *hop, const char *why);
void health_ok(struct hints *h, const struct next_hop *hop);
/* Every host with a record ("ip:port" or "[ip6]:port"), for `tandem hosts list`. */
typedef void (*health_each_fn)(void *arg, const char *hostport, const struct host_health *h);
bool health_each(struct hints *h, health_each_fn fn, void *arg);

/* ---- host_limit: the per-host connection limit (callout_max_per_host) of the whole daemon,
 * covering callouts, cutthrough links, queued deliveries and pooled connections: a lease in
 * the lease table every process maps (store/store.h) per open connection. */

struct event_base;
struct leases;
struct host_limit;
struct limit_wait;

struct host_limit *host_limit_new(struct event_base *base, struct leases *leases, unsigned max);
void host_limit_free(struct host_limit *hl);
/* A lease on key ("ip:port") now: >= 0, LEASE_NONE (not tracked: go on) or LEASE_FULL. */
int host_limit_try(struct host_limit *hl, const char *key);
/* Wait up to seconds for one; cb gets it (or LEASE_FULL at the end), always from the loop. */
typedef void (*limit_cb)(void *arg, int lease);
struct limit_wait *host_limit_wait(struct host_limit *hl, const char *key, unsigned seconds,
                                   limit_cb cb, void *arg);
void host_limit_cancel(struct limit_wait *w);     /* NULL is fine */
void host_limit_release(struct host_limit *hl, int lease);
void host_limit_set_idle(struct host_limit *hl, int lease, bool idle);
/* Does another process wait for the host of this lease? */
bool host_limit_wanted(struct host_limit *hl, int lease);

/* ---- conn_pool: idle onward connections of one process, kept for the next transaction to
 * the same next hop (address, port, TLS policy and name: the key).  A connection is put here
 * only between transactions (smtp_out_is_ready); the dialer checks one with RSET before
 * reuse.  Each is QUIT after the idle time, or when the pool is full (oldest first), or when
 * ops.reclaim says another process needs its host. */

struct conn_pool;
struct conn_pool_ops {
    bool (*reclaim)(void *arg, struct smtp_out *so);
};

struct conn_pool *conn_pool_new(struct event_base *base, unsigned idle_seconds, size_t max,
                                const struct conn_pool_ops *ops, void *arg);
void conn_pool_free(struct conn_pool *p);   /* QUITs every connection */
void conn_pool_clear(struct conn_pool *p);  /* QUITs every connection, keeps the pool */
/* Keep so under key; the pool owns it when this returns true (false: not ready, or no pool). */
bool conn_pool_put(struct conn_pool *p, struct smtp_out *so, const char *key);
/* A pooled connection under key, or NULL; the caller owns it and sets its callbacks first. */
struct smtp_out *conn_pool_take(struct conn_pool *p, const char *key);
size_t conn_pool_count(const struct conn_pool *p, const char *key);   /* key NULL: all */

/* ---- dialer: THE way to an onward connection, one per process (a worker, the scheduler, a
 * command-line tool).  For a route it walks the hosts in order: a host in its retry window is
 * skipped (host_health), an idle pooled connection to it is reused after an RSET (conn_pool),
 * else a lease is taken under the per-host limit (host_limit) and a connection opened with the
 * options derived from the configuration (dialer_opts: the one place a hop's smtp_out_opts are
 * made).  Callouts, cutthrough links and queued deliveries all dial here. */

struct dialer;
struct ssl_ctx_st;

struct tlsp;
/* tlsp (may be NULL: each hop's policy as written) decides every host's TLS requirement. */
struct dialer *dialer_new(struct event_base *base, const struct conf *c, struct ssl_ctx_st *client_tls,
                          struct hints *hints, struct tlsp *tlsp);
void dialer_free(struct dialer *dr);   /* pooled connections are QUIT (run the loop a little) */
/* QUIT every pooled connection now (a process about to end: then smtp_out_drain). */
void dialer_close_pool(struct dialer *dr);
struct event_base *dialer_base(const struct dialer *dr);
const struct conf *dialer_conf(const struct dialer *dr);
struct hints *dialer_hints(const struct dialer *dr);
size_t dialer_pooled(const struct dialer *dr);

enum dial_use { DIAL_CALLOUT, DIAL_CUTTHROUGH, DIAL_DELIVERY };

#define DIAL_COMMAND_TIMEOUT 300 /* queued delivery: seconds per reply at most (data_timeout if shorter) */

struct dial_req {
    enum dial_use use;        /* timeouts; how long to wait at the per-host limit (cutthrough:
                                 5 s at most, a client is waiting) */
    unsigned timeout;         /* callout/cutthrough: connect and per-reply seconds (0: callout_timeout) */
    bool ignore_retry;        /* try hosts in their retry window too (`tandem queue deliver`) */
};

enum dial_status {
    DIAL_OK,          /* so is ready */
    DIAL_FAILED,      /* every host tried failed (text: the last failure) */
    DIAL_RETRY_WAIT,  /* every host is in its retry window */
    DIAL_LIMIT,       /* every usable host is at its connection limit */
};

struct dial_result {
    enum dial_status status;
    struct smtp_out *so;             /* DIAL_OK: ready and the caller's (set its callbacks) */
    const struct next_hop *hop;      /* so's hop, else the last host that failed (or NULL) */
    bool reused;                     /* so came from the pool */
    const struct smtp_reply *reply;  /* the reply that came with the last failure, or NULL */
    enum so_fail fail_kind;          /* the last failure's kind */
    int sys_errno;
    char text[700];                  /* "H=name [ip]:port: Connection refused", "retry time ..." */
    char host[300];                  /* "name [ip]:port" of the last failure, "" if none */
    char why[512];                   /* the last failure alone: "Connection refused" */
    bool tls_refused;                /* the last failure: tls_policy ruled the host out */
    size_t tried, skipped, busy;     /* hosts tried (connected to, or ruled out by tls_policy),
                                        in their retry window, at the limit */
};

typedef void (*dial_cb)(void *arg, const struct dial_result *r);
/* Dial; cb runs from the loop.  route must stay valid until dial_free. */
struct dial *dial_start(struct dialer *dr, const struct route_result *route,
                        const struct dial_req *req, dial_cb cb, void *arg);
/* The connection cb got did not do (the caller has released or freed it): try the next host;
 * cb runs again. */
void dial_next(struct dial *d);
void dial_free(struct dial *d);       /* cancels what is in progress; NULL is fine */
/* Done with a connection: pooled when it is between transactions and the pool has room for
 * its host (onward_pool_size for the whole daemon), else QUIT. */
void dialer_release(struct dialer *dr, struct smtp_out *so);
/* The same after a transaction that is still open (a callout's MAIL and RCPT): RSET first. */
void dialer_recycle(struct dialer *dr, struct smtp_out *so);
/* THE place a hop's engine options are made: helo, the use's timeouts, the client context and
 * sessions to resume, and the hop's TLS requirement as tls_policy decided it (treq NULL: the
 * hop's policy as written); *dial is the hop as dialled (its tls from the decision). */
void dialer_opts(const struct dialer *dr, const struct next_hop *hop, const struct dial_req *req,
                 const struct tls_req *treq, struct next_hop *dial, struct smtp_out_opts *o);

/* ---- upstream: open an SMTP transaction at the first next hop that takes it: the common first
 * step of recipient callouts and cutthrough delivery.  The dialer walks the hosts (skipping
 * those in their retry window or at their limit); a host that answers MAIL with 4xx is passed
 * over for the next one.  A message that needs SMTPUTF8 gets 553 5.6.7 from a next hop that
 * does not offer it (UP_REFUSED).  The caller gets a connection with MAIL accepted, or the
 * reason none could be had. */

struct upstream;

enum upstream_status {
    UP_OK,         /* MAIL accepted: so is ready for RCPT */
    UP_REFUSED,    /* MAIL refused with 5xx (reply given), or 553 5.6.7 for SMTPUTF8 */
    UP_TEMPFAIL,   /* no host took the transaction: why, text (and the last reply, if any) */
};

struct upstream_result {
    enum upstream_status status;
    struct smtp_out *so;            /* UP_OK: the caller owns it (set its callbacks) */
    const struct next_hop *hop;     /* the host that answered last, NULL if none */
    bool reused;                    /* UP_OK: a pooled connection */
    enum dial_status why;           /* UP_TEMPFAIL: DIAL_FAILED (connection trouble or a 4xx to
                                       MAIL), DIAL_RETRY_WAIT, DIAL_LIMIT */
    const struct smtp_reply *reply; /* UP_REFUSED: MAIL's 5xx; UP_TEMPFAIL: the reply that came
                                       with the last failure (MAIL's 4xx, or a greeting, EHLO
                                       or STARTTLS reply of any code), NULL for connection
                                       trouble.  Only UP_REFUSED's is a verdict. */
    char text[600];                 /* for logs: "H=... [ip]:port: Connection refused",
                                       "451 4.3.0 ..." (a MAIL reply) */
};

typedef void (*upstream_cb)(void *arg, const struct upstream_result *r);

/* Start; cb runs later from the event loop.  route and mail must stay valid until then. */
struct upstream *upstream_open(struct dialer *dr, const struct route_result *route,
                               const struct mail_out *mail, const struct dial_req *req,
                               upstream_cb cb, void *arg);
void upstream_cancel(struct upstream *u);   /* NULL is fine */

/* ---- delivery: deliver one message's pending recipients to their next hops: route them,
 * group recipients with the same next hops into one transaction, try the hops in order,
 * stream the content from the spool, and report a result per recipient.  Logs the Exim
 * delivery lines (=> -> == **) itself; the scheduler logs Completed and sends bounces. */

struct event_base;
struct conf;
struct dns_ctx;
struct ssl_ctx_st;
struct hints;

/* What deliveries share inside one process (the scheduler, or `tandem queue` run directly). */
struct delivery_env {
    struct event_base *base;
    const struct conf *conf;
    struct dns_ctx *dns;
    struct ssl_ctx_st *client_tls;
    struct hints *hints;          /* host health, the queue's notes */
    struct dialer *dialer;        /* connections: hosts, health, limit, pool */
    struct tlsp *tlsp;            /* TLS requirements (tlsp_new): the dialer decides with it */
};

enum dlv_outcome { DLV_NOT_TRIED = 0, DLV_DELIVERED, DLV_DEFERRED, DLV_FAILED };

struct dlv_result {
    enum dlv_outcome outcome;
    int code;                 /* the deciding SMTP reply code, 0 if none (connection trouble) */
    char ecode[16];
    char text[512];           /* sanitized, one line: the reply or what went wrong */
    char host[300];           /* "name [ip]:port" of the next hop that answered, "" if none */
    bool relayed_without_dsn; /* delivered to a next hop that does not offer DSN */
};

/* results has env->nrcpts entries; only the attempted ones are filled.  They are valid during
 * the callback only (copy what you keep).  The callback always runs from the event loop. */
typedef void (*delivery_done_cb)(void *arg, struct dlv_result *results);

/* Called as soon as recipient i is delivered or failed, before its log line and while the
 * attempt goes on (other hosts, later batches), so that the caller can journal it at once:
 * a crash later in the attempt must not deliver it a second time.  result is valid during
 * the call only.  Deferrals are reported by delivery_done_cb alone. */
typedef void (*delivery_final_cb)(void *arg, size_t i, const struct dlv_result *result);

/* Attempt the recipients with attempt[i] set (pending ones).  ignore_retry: try hosts even if
 * their retry time has not come (`queue deliver`).  The spool content is read as needed.
 * env must stay valid until cb runs.  final_cb (may be NULL) and cb get arg. */
void delivery_start(const struct delivery_env *de, const struct envelope *env, const bool *attempt,
                    bool ignore_retry, delivery_final_cb final_cb, delivery_done_cb cb,
                    void *arg);

/* ---- cutthrough: the cutthrough link: one onward SMTP transaction owned by an inbound
 * transaction.  Recipients are mirrored one at a time, DATA is sent when the client sends it,
 * body content is streamed as it arrives, and the final dot's reply is the next hop's verdict.
 * The link knows nothing of the inbound session: each step reports to a callback, and the
 * session (smtp_in_cut.c) decides what the client is told. */

struct cut_link;

enum cut_step { CUT_STEP_RCPT, CUT_STEP_DATA, CUT_STEP_DOT };

/* The outcome of one step: a reply from the next hop, or the link died (reply NULL). */
struct cut_result {
    enum cut_step step;
    const struct smtp_reply *reply;  /* NULL: connection trouble (text says what) */
    char text[600];                  /* one line for logs: the reply, or the failure */
    bool timed_out;                  /* the failure was a timeout */
    bool after_dot;                  /* the link died after the final dot was written: the next
                                        hop may have taken the message */
    bool unavailable;                /* RCPT: no next hop could be had at all (every host down,
                                        in its retry window or at its limit) */
    bool not_rcpt;                   /* RCPT: the reply answered MAIL (a refused sender, or 553
                                        5.6.7 for SMTPUTF8), not the recipient */
};

typedef void (*cut_cb)(void *arg, struct cut_link *l, const struct cut_result *r);
typedef void (*cut_drained_cb)(void *arg, struct cut_link *l);

/* A new link for the next hops in route (taken over: freed with the link).  The connection is
 * opened on the first cut_link_rcpt. */
struct cut_link *cut_link_new(struct dialer *dr, struct route_result *route,
                              const struct mail_out *mail, const struct cutthrough_opts *opts,
                              unsigned timeout, cut_cb cb, cut_drained_cb drained, void *arg);
/* Reuse a finished link's idle connection for a new transaction (MAIL is sent anew). */
bool cut_link_restart(struct cut_link *l, const struct mail_out *mail);

const char *cut_link_key(const struct cut_link *l);    /* route_hops_key of its route */
bool cut_link_alive(const struct cut_link *l);
/* Whether rcpt was already accepted on this link (its recipient callout was the RCPT). */
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
