/* in/in.h - the contract of the inbound side: the per-process server that SMTP sessions share,
 * starting and stopping sessions, connection limits.  May include every folder below proc. */
#ifndef TANDEM_IN_H
#define TANDEM_IN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

/* ---- server: what the SMTP sessions of one process share: event base, configuration,
 * connection limits, the scheduler notification channel, the list of live sessions. */

struct event_base;
struct conf;
struct conn_limits;
struct smtp_session;
struct ssl_ctx_st;
struct dns_ctx;
struct hints;
struct dialer;
struct tlsp;
struct spool_pool;
struct spam_client;

#define NOTIFY_BACKLOG_MAX 65536

struct event;
struct sockaddr;

struct server {
    struct event_base *base;
    const struct conf *conf;
    struct conn_limits *limits;  /* shared with other workers; NULL in `tandem session` */
    int worker_index;            /* slot in limits */
    int sched_fd;                /* datagram socket to the scheduler, -1 if none */
    struct ssl_ctx_st *tls_ctx;  /* inbound TLS context, NULL if not configured */
    struct ssl_ctx_st *client_tls; /* outbound TLS (callouts, cutthrough) */
    struct dns_ctx *dns;         /* asynchronous DNS for routing */
    struct hints *hints;         /* callout cache, host health (NULL if unavailable) */
    struct tlsp *tlsp;           /* outbound TLS decisions: DANE, MTA-STS (the dialer's) */
    struct dialer *dialer;       /* onward connections: health, per-host limit, pool */
    struct spool_pool *spool_pool; /* reusable temporary files for messages being received */
    struct spam_client *spam;    /* the content scanner, when the data ACL scans */
    bool uses_dnslists, uses_ratelimit; /* some stage's ACL has the condition */
    char (*notify_backlog)[24];  /* ids the scheduler's full queue could not take yet */
    size_t nnotify;
    struct event *notify_ev;
    bool interactive;            /* `tandem session`: no early-talker checks */
    bool no_deliver;             /* `tandem session --no-deliver`: nothing is spooled */
    bool shutting_down;          /* SIGTERM: idle sessions get 421, busy ones finish */
    bool retiring;               /* replaced by a reload: sessions run to their end */
    bool need_host_names;        /* host lists name hosts: look up each client's name */
    uint64_t next_conn_serial;
    LIST_HEAD(, smtp_session) sessions;
    unsigned nsessions;
};

/* Set up what sessions need for routing, callouts and cutthrough (after fork). */
void server_init_outbound(struct server *srv);
void server_free_outbound(struct server *srv);

/* Start an SMTP session on a connected socket (fd is owned by the session from now on). */
void smtp_session_start(struct server *srv, int fd, const struct sockaddr *peer, bool implicit_tls);
/* Ask a session to finish: idle sessions get 421 now, busy ones after their message. */
void smtp_session_shutdown(struct smtp_session *s);
/* The same for every session of srv (SIGTERM). */
void server_shutdown_sessions(struct server *srv);

/* Tell the scheduler that message id was committed (best effort; it also scans the spool). */
void server_notify_scheduler(struct server *srv, const char *id);

/* ---- proxy: the PROXY protocol header (HAProxy's v1 and v2) that a load balancer listed in
 * hosts_proxy sends before anything else (proxy_hdr.c, pure), and reading it off a new
 * connection before its session starts (proxy_in.c). */

#define PROXY_V1_MAX 107           /* the longest v1 line, CRLF included (the spec's bound) */
#define PROXY_V2_MAX 1024          /* a longer v2 header (addresses + TLVs) is refused */

enum proxy_result { PROXY_NEED_MORE, PROXY_OK, PROXY_BAD };

struct proxy_hdr {
    size_t len;                    /* bytes the header took */
    int version;                   /* 1 or 2 */
    bool local;                    /* v1 UNKNOWN, v2 LOCAL or UNSPEC: no client carried */
    struct sockaddr_storage src, dst; /* the client and the address it connected to */
};

/* Parse the header at the start of buf (have bytes).  PROXY_NEED_MORE: a valid prefix;
 * PROXY_BAD: *why says what is wrong.  Bytes after the header are not looked at. */
enum proxy_result proxy_parse(const uint8_t *buf, size_t have, struct proxy_hdr *h,
                              const char **why);
/* How many more bytes may belong to the header (never past its end once its length is
 * known; a v1 line ends at its LF, which the caller must stop at). */
size_t proxy_read_limit(const uint8_t *buf, size_t have);
/* Do the bytes begin like a PROXY header (v1 or v2)?  For refusing one from other hosts. */
bool proxy_looks_like_header(const uint8_t *buf, size_t have);
const char *proxy_result_name(enum proxy_result r);

/* Start serving an accepted connection: from a hosts_proxy host, read its PROXY header first
 * (then apply the connection limits to the client it names); otherwise start the session. */
void server_accept(struct server *srv, int fd, const struct sockaddr *peer, socklen_t peerlen,
                   bool implicit_tls);
/* Refuse a connection over a limit: a 421 line, close, log. */
void server_refuse(int fd, const char *ip, const char *why);

/* ---- conn_limits: connection counts shared by all workers (smtp_accept_max and
 * smtp_accept_max_per_host).  Each worker writes only its own table, so a crashed worker's
 * counts are simply zeroed when it is replaced.  Only open connections are tracked. */

struct conn_limits;

/* Shared anonymous memory for nworkers tables, each able to hold the addresses of max_conns
 * connections (smtp_accept_max); created by the parent before forking. */
struct conn_limits *conn_limits_create(unsigned nworkers, unsigned max_conns);
void conn_limits_reset_worker(struct conn_limits *cl, unsigned worker);

/* Would one more connection from ip, to be taken by worker, exceed a limit?  Returns NULL
 * if not, else the reason (also when the worker's table has no room for it). */
const char *conn_limits_check(struct conn_limits *cl, unsigned worker, const char *ip,
                              unsigned max_total, unsigned max_per_host);
/* Connections from ip open in all workers together. */
unsigned conn_limits_host_count(struct conn_limits *cl, const char *ip);
void conn_limits_add(struct conn_limits *cl, unsigned worker, const char *ip);
void conn_limits_remove(struct conn_limits *cl, unsigned worker, const char *ip);
/* How many addresses worker's table holds, and in how many slots (it grows and shrinks). */
void conn_limits_table_size(struct conn_limits *cl, unsigned worker, unsigned *naddr,
                            unsigned *slots);

#endif
