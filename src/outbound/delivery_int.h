/* delivery_int.h - private state of queued delivery: delivery.c (routing, grouping, results),
 * delivery_txn.c (one group of recipients over its next hops), delivery_body.c (the message
 * content from the spool), delivery_log.c (Exim's => -> == ** lines, results). */
#ifndef TANDEM_DELIVERY_INT_H
#define TANDEM_DELIVERY_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "outbound.h"
#include "route/route.h"
#include "smtp/smtp.h"

struct event;
struct spool_reader;

#define DLV_PARALLEL 8          /* transactions (connections) of one message at once */
#define DLV_BATCH_MAX 100       /* recipients per SMTP transaction (RFC 5321 4.5.3.1.8) */
#define DLV_COMMAND_TIMEOUT 300 /* seconds per reply, at most (data_timeout if shorter) */
#define DLV_READ_CHUNK 65536

/* Exim's errno values for deferrals that are not system errors. */
enum {
    DLV_ERRNO_SMTPCLOSED = -18,
    DLV_ERRNO_DNSDEFER = -36,
    DLV_ERRNO_TLSFAILURE = -37,
    DLV_ERRNO_TLSREQUIRED = -38,
    DLV_ERRNO_RCPT4XX = -44,
    DLV_ERRNO_MAIL4XX = -45,
    DLV_ERRNO_DATA4XX = -46,
    DLV_ERRNO_UTF8 = -49,
    DLV_ERRNO_HRETRY = -53,
};

/* A recipient domain being routed. */
struct dlv_domain {
    struct dlv *d;
    char name[256];
    struct route_query *rq;
    struct route_result *res;
    char key[1024];
    bool grouped;
};

struct dlv {
    const struct delivery_env *de;
    const struct envelope *env;
    bool ignore_retry;
    delivery_final_cb final_cb;
    delivery_done_cb cb;
    void *arg;
    struct dlv_result *results;   /* env->nrcpts */
    size_t *rcpt_domain;          /* per recipient: index into domains, or SIZE_MAX */
    struct dlv_domain *domains;
    size_t ndomains, routes_pending;
    struct dlv_txn **txns;
    size_t ntxns, next_txn, txns_running;
    bool delivered_one;           /* "=>" logged: further deliveries are "->" */
    struct event *done_ev;
};

enum txn_phase { TP_IDLE, TP_CONNECT, TP_RESET, TP_MAIL, TP_DATA, TP_BODY, TP_DOT, TP_CLEANUP };

/* One group of recipients with the same next hops, tried host after host. */
struct dlv_txn {
    struct dlv *d;
    const struct route_result *res;
    size_t *rcpts;                /* recipient indices */
    size_t nrcpts;
    size_t hop;                   /* the hop being tried */
    size_t tried, skipped;        /* hosts tried / skipped for their retry time */
    struct tlsp_query *tq;        /* deciding the hop's TLS requirement */
    struct tls_req *req;          /* the hop's TLS requirement, once decided */
    struct next_hop dial;         /* the hop as dialled (its tls from req) */
    struct smtp_out *so;
    bool reused;
    enum txn_phase phase;
    /* the current SMTP transaction */
    size_t *batch;                /* recipient indices in it */
    size_t nbatch, rcpt_replies, accepted;
    bool *batch_ok;               /* RCPT accepted */
    bool mail_ok, data_sent, dot_sent, ignore_dot;
    struct spool_reader *rd;
    /* the last host-level failure, for "all hosts failed" */
    char last_err[512];
    int last_errno;
    char last_host[300];
};

/* delivery.c */
void dlv_txn_finished(struct dlv_txn *t);

/* delivery_txn.c */
void dlv_txn_start(struct dlv_txn *t);

/* delivery_body.c */
void dlv_body_start(struct dlv_txn *t);
void dlv_body_pump(struct dlv_txn *t);
void dlv_body_close(struct dlv_txn *t);

/* delivery_log.c: decide recipient i (logs the Exim line, fills results[i]) */
struct dlv_verdict {
    enum dlv_outcome outcome;
    const struct smtp_reply *reply;   /* the deciding reply, or NULL */
    int code;                         /* when there is no reply: local code, ecode, text */
    const char *ecode;
    const char *text;
    int errnum;                       /* Exim's "defer (N)" value */
    const char *after;                /* "RCPT TO:<x>", "MAIL FROM:<s>", "end of data", ... */
    const struct smtp_out *so;        /* the connection (H=, X=, CV=), or NULL */
    const char *host;                 /* "name [ip]:port" when there is no connection */
    bool routing;                     /* decided by routing: no transport in the log line */
};
void dlv_decide(struct dlv *d, size_t i, const struct dlv_verdict *v);
bool dlv_decided(const struct dlv *d, size_t i);
const char *dlv_route_name(const struct dlv *d, size_t i);
void dlv_reply_text(const struct smtp_reply *r, char *buf, size_t sz);

#endif
