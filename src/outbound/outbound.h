/* outbound/outbound.h - the contract of the onward side: the SMTP client engine, the connection cache,
 * opening a transaction at the first next hop that takes it, queued delivery of one message, and
 * the cutthrough link.  May include: core, smtp, conf, store, dns, route. */
#ifndef TANDEM_OUTBOUND_H
#define TANDEM_OUTBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
};

/* The authentication a connection's TLS requirement stands on (TA= in log lines). */
enum tls_auth { TLS_AUTH_NONE = 0, TLS_AUTH_DANE, TLS_AUTH_MTA_STS };

struct smtp_out_opts {
    const char *helo;               /* name sent in EHLO/HELO (helo_data) */
    enum tls_policy tls;            /* TLS_NONE, TLS_MAY, TLS_ENCRYPT, TLS_VERIFY, TLS_DANE */
    struct ssl_ctx_st *ssl_ctx;     /* client context (core/core.h); required unless tls == TLS_NONE */
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

/* ---- conn_cache: idle outbound SMTP connections kept for the next message to the same next
 * hop (address, port, TLS policy and name), for a short idle time.  A connection is put here
 * only between transactions (smtp_out_is_ready); whoever takes one sends RSET first and treats
 * a failure of that RSET as a stale connection, not as the host's fault. */

struct event_base;
struct next_hop;
struct smtp_out;
struct conn_cache;

#define CONN_CACHE_IDLE 10  /* seconds an idle connection is kept */
#define CONN_CACHE_MAX 32   /* connections kept at most (the oldest is closed first) */

struct conn_cache *conn_cache_new(struct event_base *base, unsigned idle_seconds, size_t max);
/* Close every cached connection (QUIT) and free the cache. */
void conn_cache_free(struct conn_cache *cc);

/* Keep so (ready, idle) for reuse; the cache owns it from now on and QUITs it after the idle
 * time or when full.  A connection that is not ready is QUIT instead. */
void conn_cache_put(struct conn_cache *cc, struct smtp_out *so);
/* A cached connection to hop (same address, port, TLS policy and name), or NULL.  The caller
 * owns it and must install its callbacks (smtp_out_set_cbs) before anything else. */
struct smtp_out *conn_cache_take(struct conn_cache *cc, const struct next_hop *hop);
size_t conn_cache_count(const struct conn_cache *cc);

/* ---- upstream: open an SMTP transaction at the first next hop that takes it: the common first
 * step of recipient callouts and cutthrough delivery.  Hosts are tried in route order; a host
 * that cannot be reached, greets with an error, fails TLS, or answers MAIL with 4xx is skipped
 * for the next one.  The caller gets a connection with MAIL accepted, or the reason none could
 * be had. */

struct event_base;
struct ssl_ctx_st;
struct upstream;

struct upstream_env {
    struct event_base *base;
    const struct conf *conf;
    struct ssl_ctx_st *client_tls;
    struct tlsp *tlsp;              /* where TLS requirements are decided (tlsp_new) */
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
    char text[600];                 /* for logs: "H=... [ip]:port: Connection refused",
                                       "451 4.3.0 ..." (a MAIL reply) */
};

typedef void (*upstream_cb)(void *arg, const struct upstream_result *r);

/* Start; cb runs later from the event loop.  route and mail must stay valid until then.
 * timeout: connect and per-command timeout in seconds. */
struct upstream *upstream_open(const struct upstream_env *ue, const struct route_result *route,
                               const struct mail_out *mail, unsigned timeout, upstream_cb cb, void *arg);
void upstream_cancel(struct upstream *u);

/* ---- delivery: deliver one message's pending recipients to their next hops: route them,
 * group recipients with the same next hops into one transaction, try the hops in order,
 * stream the content from the spool, and report a result per recipient.  Logs the Exim
 * delivery lines (=> -> == **) itself; the scheduler logs Completed and sends bounces. */

struct event_base;
struct conf;
struct dns_ctx;
struct ssl_ctx_st;
struct hints;
struct conn_cache;

/* What deliveries share inside one process (the scheduler, or `tandem queue` run directly). */
struct delivery_env {
    struct event_base *base;
    const struct conf *conf;
    struct dns_ctx *dns;
    struct ssl_ctx_st *client_tls;
    struct hints *hints;          /* per-host retry state */
    struct conn_cache *cache;     /* idle connections kept for reuse (may be NULL) */
    struct tlsp *tlsp;            /* where TLS requirements are decided (tlsp_new) */
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
};

typedef void (*cut_cb)(void *arg, struct cut_link *l, const struct cut_result *r);
typedef void (*cut_drained_cb)(void *arg, struct cut_link *l);

/* A new link for the next hops in route (taken over: freed with the link).  The connection is
 * opened on the first cut_link_rcpt.  kept, if not NULL, is a connection a callout left open
 * with MAIL done and kept_rcpt already accepted. */
struct cut_link *cut_link_new(const struct upstream_env *ue, struct route_result *route,
                              const struct mail_out *mail, const struct cutthrough_opts *opts,
                              cut_cb cb, cut_drained_cb drained, void *arg);
void cut_link_adopt(struct cut_link *l, struct smtp_out *kept, const char *kept_rcpt);
/* Reuse a finished link's idle connection for a new transaction (MAIL is sent anew). */
bool cut_link_restart(struct cut_link *l, const struct mail_out *mail);

const char *cut_link_key(const struct cut_link *l);    /* route_hops_key of its route */
bool cut_link_alive(const struct cut_link *l);
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
