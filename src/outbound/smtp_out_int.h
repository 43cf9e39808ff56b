/* smtp_out_int.h - private state of the outbound SMTP engine, shared by its files:
 * smtp_out.c (life cycle, I/O, failures), smtp_out_session.c (greeting, EHLO/HELO, STARTTLS),
 * smtp_out_tls.c (the TLS layer), smtp_out_cmd.c (command queue, body, dot, BDAT) and
 * smtp_out_fmt.c (pure: EHLO keywords, command lines). */
#ifndef TANDEM_SMTP_OUT_INT_H
#define TANDEM_SMTP_OUT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outbound.h"
#include "core/core.h"
#include "smtp/smtp.h"

struct bufferevent;
struct event;

#define SO_BODY_HIGH SMTP_OUT_BODY_HIGH
#define SO_BODY_LOW SMTP_OUT_BODY_LOW
#define SO_QUIT_TIMEOUT 5         /* seconds to wait for the reply to QUIT */
#define SO_QUEUE_MAX 4096         /* commands queued at once (a caller bug beyond this) */

enum so_state {
    SO_NEW,
    SO_CONNECTING,
    SO_GREETING,
    SO_EHLO,
    SO_HELO,
    SO_STARTTLS,
    SO_HANDSHAKE,
    SO_READY,      /* greeted (and TLS done): transaction commands flow */
    SO_QUITTING,   /* QUIT queued: no callbacks any more, frees itself */
    SO_DEAD,       /* failed: the failure is being reported */
};

/* Where the data phase is (DATA, body, final dot). */
enum so_dphase {
    DP_NONE,       /* no DATA outstanding */
    DP_WAIT,       /* DATA sent or queued, 354 not yet received: body is held */
    DP_OPEN,       /* 354 received: body goes out */
    DP_REFUSED,    /* DATA was refused: body is dropped, the dot gets the refusal */
};

struct so_cmd {
    enum smtp_out_cmd cmd;
    void *tag;
    uint32_t seq;
    bool sent;
    bool last;                /* BDAT LAST */
    bool local;               /* answered locally with `reply` (a dot after refused DATA) */
    uint64_t sent_us;         /* when it was written (the dot: for the latency histogram) */
    struct sbuf out;          /* the line(s) to write, CRLF included; BDAT: and the chunk */
    struct smtp_reply reply;  /* local reply */
};

struct smtp_out {
    bool counted_open;        /* counted in the open-connections gauge */
    struct event_base *base;
    struct next_hop hop;
    struct smtp_out_opts opts;
    char *helo;
    struct dns_tlsa *tlsa;    /* opts.tlsa, copied */
    struct smtp_out_cbs cbs;
    void *arg;

    enum so_state state;
    struct bufferevent *bev;  /* the top layer: the socket, or the TLS filter on it */
    struct bev_direct *direct; /* direct writes while the connection is plain */
    struct ssl_st *ssl;
    struct event *timer;      /* connect, per-reply and QUIT timeouts */
    struct event *fail_ev;    /* reports a failure from the loop */
    struct event *local_ev;   /* delivers local replies in order */
    struct reply_parser rp;
    const char *waiting_for;  /* "greeting", "EHLO", ... for timeout texts */

    unsigned exts;
    uint64_t size_limit;
    bool tls_on, tls_verified, tls_fell_back, tls_skip;
    char tls_info[128];

    struct so_cmd *q;         /* q[qhead..qlen): in order; sent ones first */
    size_t qhead, qlen, qcap;
    uint32_t seq, armed_seq;
    size_t unsent_bytes;

    enum so_dphase dphase;
    bool body_open;           /* between smtp_out_data and smtp_out_dot */
    bool in_txn;              /* MAIL given and not yet finished or reset */
    bool body_high;           /* pending went above SO_BODY_HIGH: `drained` is owed */
    struct data_enc enc;
    struct sbuf held;         /* encoded body waiting for the 354 */
    struct sbuf wbuf;         /* scratch for encoding */
    struct smtp_reply data_refusal;

    struct so_failure fail;
    struct smtp_reply fail_reply;
    bool has_fail_reply;

    int busy;                 /* callbacks running: defer destruction */
    bool zombie;              /* freed by the caller while busy */
    bool quiet;               /* no more callbacks (QUIT given) */
    bool quitting;            /* counted in the process's links waiting for QUIT's reply */
};

/* smtp_out.c */
void so_write(struct smtp_out *so, const void *p, size_t n);
void so_fail(struct smtp_out *so, enum so_fail kind, const struct smtp_reply *r, const char *fmt, ...)
    PRINTF_LIKE(4, 5);
void so_arm_timer(struct smtp_out *so, unsigned seconds, const char *waiting_for);
void so_stop_timer(struct smtp_out *so);
void so_install_bev(struct smtp_out *so, struct bufferevent *bev);
void so_free_bev(struct smtp_out *so);
void so_destroy_or_defer(struct smtp_out *so);
void so_note_quitting(struct smtp_out *so);
void so_reconnect(struct smtp_out *so);

/* smtp_out_session.c */
void so_session_start(struct smtp_out *so);
bool so_session_reply(struct smtp_out *so, const struct smtp_reply *r);
void so_after_tls(struct smtp_out *so);

/* smtp_out_tls.c */
bool so_tls_start(struct smtp_out *so);
void so_tls_connected(struct smtp_out *so);
void so_tls_failed(struct smtp_out *so, const char *why);
void so_tls_error_text(struct smtp_out *so, char *buf, size_t sz);
/* Under an MTA-STS testing policy, log that the session goes on without (verified) TLS. */
void so_tls_testing_clear(struct smtp_out *so, const char *what);

/* smtp_out_cmd.c */
void so_cmd_reply(struct smtp_out *so, const struct smtp_reply *r);
void so_flush(struct smtp_out *so);
void so_queue_free(struct smtp_out *so);
const char *so_cmd_name(enum smtp_out_cmd cmd);
const char *so_head_name(const struct smtp_out *so);
void so_write_progress(struct smtp_out *so);

/* smtp_out_fmt.c (pure) */
void so_parse_ehlo(const char *text, size_t len, unsigned *exts, uint64_t *size);
bool so_fmt_mail(struct sbuf *out, const struct mail_out *m, unsigned exts);
bool so_fmt_rcpt(struct sbuf *out, const char *rcpt, unsigned notify, const char *orcpt,
                 unsigned exts);
const char *so_state_name(enum so_state st);

#endif
