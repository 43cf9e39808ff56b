/* smtp_in.h - the inbound SMTP session: state, transaction, and the functions the command
 * handlers (smtp_in_cmd.c), the data phase (smtp_in_data.c) and the ACL glue share. */
#ifndef TANDEM_SMTP_IN_H
#define TANDEM_SMTP_IN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "core/core.h"
#include "policy/policy.h"
#include "smtp/smtp.h"

struct bufferevent;
struct event;
struct server;
struct spool_writer;
struct smtp_cut;
struct smtp_policy;
struct route_query;
struct dns_query;

/* Where the session is in the dialogue; each command table row lists where it is allowed. */
enum smtp_phase {
    PH_CONNECT,  /* connect ACL running, no banner yet */
    PH_INIT,     /* banner sent, no EHLO/HELO yet */
    PH_READY,    /* greeted, no transaction */
    PH_MAIL,     /* MAIL accepted */
    PH_RCPT,     /* at least one RCPT accepted */
    PH_DATA,     /* receiving DATA content */
    PH_BDAT,     /* receiving BDAT chunk content */
    PH_SKIP,     /* discarding the content of a refused BDAT chunk */
    PH_CLOSING,  /* final reply queued; the connection closes when it is written */
};
const char *smtp_phase_name(enum smtp_phase p);

/* What is true of a session besides its phase. */
enum smtp_flag {
    SF_ESMTP = 1u << 0,            /* greeted with EHLO */
    SF_TLS = 1u << 1,              /* the connection is TLS */
    SF_TLS_HANDSHAKE = 1u << 2,    /* STARTTLS accepted, handshake in progress */
    SF_DRAINING_LINE = 1u << 3,    /* an overlong line is being drained */
    SF_WAITING = 1u << 4,          /* an ACL, a callout or the next hop is deciding: input waits */
    SF_QUIT_AFTER_REPLY = 1u << 5, /* close once the queued replies are written */
    SF_PEER_EOF = 1u << 6,         /* the client half-closed; finish buffered input */
    SF_OUTPUT_BLOCKED = 1u << 7,   /* input waits until the client reads our replies */
    SF_INPUT_HELD = 1u << 8,       /* reading from the client is disabled meanwhile */
    SF_FREEING = 1u << 9,          /* being freed: nothing is kept for reuse */
    SF_FLUSHING = 1u << 10,        /* closing once the TLS layer has written the last reply */
};

/* The error a transaction latches at the first problem and answers once at end of data. */
struct txn_error {
    int code;
    char ecode[12];
    char text[200];
};

struct smtp_session;

/* The client's forward-confirmed reverse-DNS name and the lookup that finds it. */
struct smtp_rdns {
    char *name;                    /* verified name, NULL if none (or not looked up) */
    struct dns_query *q;           /* the lookup in progress */
    char candidate[256];           /* the PTR name being confirmed */
    void (*then)(struct smtp_session *s);
};

/* One mail transaction: MAIL, RCPTs, DATA. */
struct txn {
    struct envelope env;
    struct mail_params mail;
    struct rcpt_params pending_rcpt; /* the RCPT whose ACL is running */
    unsigned nrcpt_attempts;      /* RCPT commands received, accepted or not */
    unsigned ndiscarded;          /* recipients accepted but discarded by the ACL */
    struct sbuf acl_headers;      /* add_header lines collected before DATA */
    struct spool_writer *spool;
    struct data_dec dec;
    struct hdr_scan hdr;
    struct sbuf decoded;          /* scratch for the decoder output */
    struct txn_error err;         /* code 0 = no error latched */
    uint64_t bdat_remaining;      /* bytes of the current BDAT chunk still to read */
    uint64_t bdat_chunk;          /* size of the current BDAT chunk */
    bool bdat_last;
    bool bdat_started;            /* a BDAT chunk was received: only BDAT may follow */
    uint64_t data_t0_ms;          /* first message byte (monotonic), for the minimum rate */
    uint64_t data_bytes;          /* message bytes used so far (DATA or BDAT) */
    bool discard;                 /* a MAIL, predata or data ACL said discard: keep nothing */
    const char *discarded_by;     /* that ACL ("MAIL", "PREDATA", "DATA"), for the log */
    char *discard_log;            /* the data ACL's log_message when it discarded */
    uint64_t eod_us;              /* the client's end of data (monotonic), 0 before it */
    /* for the transaction log (smtp_in_translog.c) */
    uint64_t start_us;            /* MAIL FROM */
    int final_code;               /* the last reply in the transaction */
    char final_text[200];
    uint64_t onward_us;           /* the next hop's verdict at the end of data, 0 if none */
    char onward_reply[300];
};

struct smtp_session {
    struct server *srv;
    struct bufferevent *bev;
    struct bev_direct *direct;     /* direct writes while the connection is plain */
    LIST_ENTRY(smtp_session) entry;
    char id[24];                   /* connection identity for logs */
    char peer_ip[64];
    int peer_port;
    enum smtp_phase phase;
    unsigned flags;                /* enum smtp_flag bits */
    char *helo;
    char *tls_info;                /* "TLS1.3:CIPHER:BITS" once TLS is up */
    unsigned nerrors;
    unsigned nmessages;
    struct txn *txn;
    struct acl_run *acl;           /* the ACL evaluation in progress, if any */
    struct event *resume_ev;       /* deferred resumption of input processing */
    struct event *deadline_ev;     /* smtp_receive_timeout for a whole command line (or TLS
                                      handshake), from when tandem starts waiting for it */
    char *line;                    /* command line buffer (smtp_line_length_max + 1) */
    struct sbuf reply;             /* scratch for composing replies */
    const char *data_cmd;          /* "DATA" or "BDAT" for logs */
    uint64_t skip_remaining;       /* bytes of a refused BDAT chunk still to discard */
    struct smtp_cut *cut;          /* cutthrough state (smtp_in_cut.c), NULL until used */
    struct smtp_policy *policy;    /* DNS lists, rates, the content scan (smtp_in_policy.c) */
    void *verify_job;              /* smtp_in_verify.c's job in progress */
    struct smtp_rdns rdns;         /* the client's host name (smtp_in_rdns.c) */
    struct txn_error skip_err;     /* the reply for that chunk once it is discarded */
};

/* proxy_in.c: read the PROXY header of a hosts_proxy connection, then start its session. */
void proxy_wait_start(struct server *srv, int fd, const struct sockaddr *peer, socklen_t peerlen,
                      bool implicit_tls);

static inline bool sf_has(const struct smtp_session *s, unsigned f) { return (s->flags & f) != 0; }
static inline void sf_set(struct smtp_session *s, unsigned f) { s->flags |= f; }
static inline void sf_clear(struct smtp_session *s, unsigned f) { s->flags &= ~f; }
static inline void sf_put(struct smtp_session *s, unsigned f, bool on)
{
    if (on)
        sf_set(s, f);
    else
        sf_clear(s, f);
}

/* An implicit-TLS session's handshake is done: connect ACL, then banner. */
void smtp_session_connected(struct smtp_session *s);

/* ---- shared between smtp_in*.c ---- */

/* Queue a reply: code, enhanced code (NULL for none) and text; text may hold '\n' for
 * multi-line replies. */
void smtp_reply(struct smtp_session *s, int code, const char *ecode, const char *fmt, ...)
    PRINTF_LIKE(4, 5);
/* Count a client error; returns true (after queueing 421) if the session must end. */
bool smtp_count_error(struct smtp_session *s);
/* Queue a final reply and close once it is written. */
void smtp_close_with(struct smtp_session *s, int code, const char *ecode, const char *text);
/* Start the smtp_receive_timeout clock for what the session waits for now (a command line,
 * a TLS handshake), unless it is already running; stop it. */
void smtp_deadline_start(struct smtp_session *s);
void smtp_deadline_stop(struct smtp_session *s);
/* Resume processing of buffered input after an asynchronous step. */
void smtp_resume(struct smtp_session *s);
/* Drop the current transaction (RSET, EHLO, end of message). */
void smtp_txn_reset(struct smtp_session *s);
/* "H=(helo) [ip]" for log lines. */
const char *smtp_log_host(struct smtp_session *s, char *buf, size_t sz);

/* smtp_in_cmd.c: dispatch one command line. */
void smtp_dispatch(struct smtp_session *s, const char *line, size_t len);
/* smtp_in_cmd.c: add the pending RCPT to the transaction and say 250; returns its index */
size_t smtp_accept_rcpt(struct smtp_session *s);
/* smtp_in_data.c */
void smtp_data_begin(struct smtp_session *s);
size_t smtp_data_feed(struct smtp_session *s, const char *in, size_t len);
void smtp_bdat_begin(struct smtp_session *s, uint64_t size, bool last);
/* A BDAT out of sequence: its chunk must still be read and thrown away (RFC 3030). */
void smtp_bdat_reject(struct smtp_session *s, const struct smtp_cmd *c);
/* DATA with more input already buffered (before our 354): refuse and close. */
bool smtp_early_data(struct smtp_session *s);
size_t smtp_bdat_feed(struct smtp_session *s, const char *in, size_t len);
void smtp_txn_latch(struct txn *t, int code, const char *ecode, const char *text);
/* smtp_in_tls.c */
bool smtp_starttls_offered(struct smtp_session *s);
void smtp_starttls(struct smtp_session *s, const struct smtp_cmd *c);
void smtp_tls_established(struct smtp_session *s);
struct bufferevent *smtp_tls_accept_bev(struct smtp_session *s, int fd);
void smtp_tls_error_text(struct bufferevent *bev, char *buf, size_t sz);
/* smtp_in.c: continue the session on a new bufferevent (a TLS filter over the old one). */
void smtp_session_swap_bev(struct smtp_session *s, struct bufferevent *bev);
void smtp_data_accept(struct smtp_session *s, const char *note, const char *cut_reply);
void smtp_data_refused(struct smtp_session *s);
/* smtp_in_cut.c */
/* smtp_in_cut_rcpt.c */
void smtp_cut_rcpt(struct smtp_session *s, const struct acl_outcome *o);
void smtp_cut_accept_rcpt(struct smtp_session *s);
bool smtp_cut_may_verify(struct smtp_session *s, const struct callout_opts *opts);
void smtp_cut_verify(struct smtp_session *s, struct acl_run *run, const struct cutthrough_opts *opts,
                     const struct callout_opts *callout);
void smtp_cut_verify_cancel(struct smtp_session *s);
bool smtp_cut_active(struct smtp_session *s);
void smtp_cut_data(struct smtp_session *s);
void smtp_cut_data_async(struct smtp_session *s);
void smtp_cut_body(struct smtp_session *s, const char *p, size_t n);
bool smtp_cut_pause_if_behind(struct smtp_session *s);
void smtp_cut_abort(struct smtp_session *s);
void smtp_cut_end(struct smtp_session *s);
void smtp_cut_log_deliveries(struct smtp_session *s, const char *reply_text);
void smtp_cut_txn_reset(struct smtp_session *s);
void smtp_cut_session_end(struct smtp_session *s);
const struct cut_link *smtp_cut_link(const struct smtp_session *s);
/* smtp_in_translog.c: the transaction's record (client and onward legs), if transaction_log */
void smtp_translog_write(struct smtp_session *s);
/* smtp_in_policy.c */
void smtp_policy_env(struct smtp_session *s, enum acl_stage stage, struct acl_env *env);
void smtp_policy_data_begin(struct smtp_session *s);
void smtp_policy_body(struct smtp_session *s, const char *p, size_t n);
bool smtp_policy_pause_if_behind(struct smtp_session *s);
void smtp_policy_data_end(struct smtp_session *s);
void smtp_policy_txn_reset(struct smtp_session *s);
void smtp_policy_session_end(struct smtp_session *s);
/* smtp_in_rdns.c */
void smtp_rdns_start(struct smtp_session *s, void (*then)(struct smtp_session *s));
void smtp_rdns_cancel(struct smtp_session *s);
/* smtp_in_verify.c */
void smtp_verify_cancel(void *arg, struct acl_run *run);
/* smtp_in_acl.c: run the ACL for stage; done(s, outcome) is called when it has a verdict
 * (possibly before this returns). */
typedef void (*smtp_acl_done)(struct smtp_session *s, const struct acl_outcome *o);
void smtp_acl_run(struct smtp_session *s, enum acl_stage stage, const char *rcpt, smtp_acl_done done);
/* Reply for an ACL refusal: message from the ACL, else the verify reply, else the default. */
void smtp_acl_reply(struct smtp_session *s, const struct acl_outcome *o, int def_code,
                    const char *def_ecode, const char *def_text);
void smtp_acl_log_reject(struct smtp_session *s, const struct acl_outcome *o, const char *what);
/* Append to out the add_header lines of h (CRLF-terminated) that are neither in have nor
 * already in out: a line is added to a message once (out may be have). */
void smtp_acl_headers_merge(const struct sbuf *have, const struct sbuf *h, struct sbuf *out);

#endif
