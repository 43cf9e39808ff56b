/* core/core.h - the contract of the ground floor: allocation, bounded strings and buffers, logs,
 * direct socket writes, privileges, TLS contexts.  Includes nothing of tandem. */
#ifndef TANDEM_CORE_H
#define TANDEM_CORE_H

#include <event2/bufferevent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- util: allocation that aborts on failure, bounded strings, growable buffers, panics. */

#define TANDEM_VERSION "0.1.0"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN __attribute__((noreturn))

/* Allocation: failure is a broken environment we cannot serve in; abort loudly. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);

/* Panics (defined in log.c): log to the panic log and exit; the parent restarts workers.
 * fatal() appends strerror(errno). */
NORETURN void fatal(const char *fmt, ...) PRINTF_LIKE(1, 2);
NORETURN void fatalx(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* End a forked child (worker, scheduler) once it has released what it owns: _exit(), which
 * runs none of the parent's atexit handlers; in the sanitizer build (-DTANDEM_LEAK_CHECK)
 * exit(), so that LeakSanitizer checks the long-lived processes too. */
NORETURN void child_exit(int status);

/* Bounded strings.  str_copy has strlcpy semantics (returns strlen(src)); str_fmt returns
 * false when the output was truncated (the buffer still holds a terminated prefix). */
size_t str_copy(char *dst, const char *src, size_t size);
bool str_fmt(char *dst, size_t size, const char *fmt, ...) PRINTF_LIKE(3, 4);
bool str_vfmt(char *dst, size_t size, const char *fmt, va_list ap) PRINTF_LIKE(3, 0);
bool str_ieq(const char *a, const char *b);
bool str_iprefix(const char *s, const char *prefix);
void str_lower(char *s);

/* Replace anything that is not printable ASCII (or is a backslash or double quote) with a
 * \xNN escape, so peer-supplied text is safe to log or echo.  Output is always terminated;
 * returns the number of input bytes consumed (less than inlen when out was too small). */
size_t str_sanitize(char *out, size_t outsz, const char *in, size_t inlen);

/* As str_sanitize, but valid UTF-8 sequences are kept as they are (SMTPUTF8 addresses),
 * except those that could break or disguise a log line: C1 controls (U+0080-U+009F),
 * U+2028, U+2029 and the bidirectional controls are escaped byte by byte. */
size_t str_sanitize_utf8(char *out, size_t outsz, const char *in, size_t inlen);

/* Growable byte buffer, always NUL-terminated for convenience (len excludes the NUL). */
struct sbuf {
    char *s;
    size_t len, cap;
};
void sbuf_init(struct sbuf *b);
void sbuf_free(struct sbuf *b);
void sbuf_reset(struct sbuf *b);
void sbuf_add(struct sbuf *b, const void *p, size_t n);
void sbuf_addstr(struct sbuf *b, const char *s);
void sbuf_addch(struct sbuf *b, char c);
void sbuf_printf(struct sbuf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
char *sbuf_steal(struct sbuf *b);

/* Parse a size ("50M", "4096", K/M/G = 1024 powers) or a time ("1h30m", s/m/h/d/w; a bare
 * number is seconds).  Return false on syntax error or overflow. */
bool parse_size(const char *s, uint64_t *out);
bool parse_time(const char *s, unsigned *out_seconds);

/* Format an age or time span compactly ("45s", "5m", "2h", "3d"), and a size ("812", "4.2K", "1.1M"). */
void fmt_age(char *buf, size_t sz, long seconds);
void fmt_size(char *buf, size_t sz, uint64_t bytes);

/* A monotonic clock in milliseconds. */
uint64_t now_mono_ms(void);
uint64_t now_mono_us(void);

/* Set O_NONBLOCK / FD_CLOEXEC; return -1 on error. */
int fd_nonblock(int fd);
int fd_cloexec(int fd);
struct sockaddr;
/* The numeric address of sa ("192.0.2.1", "2001:db8::1"; IPv4-mapped shown as IPv4). */
void sockaddr_ip(const struct sockaddr *sa, char *ip, size_t sz);

/* ---- log: main, reject and panic logs in Exim's line format (or syslog). */

/* Open the logs under dir (mainlog, rejectlog, paniclog), or syslog when dir is "syslog".
 * Returns false with errno on failure.  Before log_open, lines go to stderr. */
bool log_open(const char *dir);
/* Also copy every line to stderr (foreground / test-session debugging). */
void log_set_stderr(bool on);
/* Name used as syslog ident and in stderr copies. */
void log_set_process(const char *name);

/* Each call writes one whole line with one write(2), prefixed "YYYY-MM-DD HH:MM:SS ". */
void log_main(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* Rejections go to the reject log and the main log. */
void log_reject(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* Panics go to the panic log and the main log. */
void log_panic(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* Reopen the log files on the next line logged after SIGUSR1 (for logrotate): installs the
 * handler in this process.  log_reopen() reopens at once (the parent, before it signals its
 * children, so the files exist when they reopen). */
void log_reopen_on_signal(int sig);
bool log_reopen(void);
/* Files the parent opens: root's, but group-writable by the unprivileged children's group, so
 * that they can reopen them (mode 0660). */
void log_set_group(gid_t gid);

/* The transaction log (transaction_log = FILE): one JSON object a line.  Opened by the parent
 * (children inherit it), reopened like the other logs.  Without one, log_transaction does
 * nothing and log_transactions_on() is false. */
bool log_open_transactions(const char *path);
bool log_transactions_on(void);
void log_transaction(const char *json, size_t len);

/* ---- metrics: counters, gauges and latency histograms in shared memory, one slot per
 * process, summed by the metrics process (Prometheus text at /metrics).  Every name and what
 * it counts is in doc/metrics.md. */

enum metric {
    M_CONNECTIONS, M_CONNECTIONS_REFUSED,
    M_PROXY_OK, M_PROXY_LOCAL, M_PROXY_BAD,
    M_MSG_RECEIVED, M_MSG_CUTTHROUGH, M_MSG_QUEUED,
    M_DLV_QUEUE, M_DLV_CUTTHROUGH, M_DLV_DEFERRED, M_DLV_FAILED, M_BOUNCES,
    M_NH_RCPT_2XX, M_NH_RCPT_4XX, M_NH_RCPT_5XX,
    M_NH_DOT_2XX, M_NH_DOT_4XX, M_NH_DOT_5XX, M_NH_DOT_TIMEOUT, M_NH_DOT_LOST,
    M_ONWARD_OPENED, M_ONWARD_REUSED,
    M_CALLOUT_CACHE_HIT, M_CALLOUT_CACHE_MISS,
    M_TLS_IN, M_TLS_OUT,
    M_NCOUNTERS
};
enum gauge { G_SESSIONS_OPEN, G_ONWARD_OPEN, G_QUEUE_MESSAGES, G_QUEUE_OLDEST, G_NGAUGES };
enum hist { H_EOD_CLIENT, H_EOD_NEXTHOP, H_NHISTS };

struct metrics;
/* Shared anonymous memory for nslots processes; created by the parent before forking. */
struct metrics *metrics_create(unsigned nslots);
/* In a child: count into slot from now on.  Until then (and in tools) nothing is counted. */
void metrics_attach(struct metrics *m, unsigned slot);
/* The process of a slot is gone: what it had open is no longer open. */
void metrics_reset_gauges(struct metrics *m, unsigned slot);
void metric_inc(enum metric c);
void metric_add(enum metric c, uint64_t n);
void gauge_add(enum gauge g, int64_t delta);
void gauge_set(enum gauge g, int64_t value);   /* G_QUEUE_OLDEST: a Unix time, 0 = none */
void metric_observe_us(enum hist h, uint64_t microseconds);
/* The Prometheus text exposition (version 0.0.4) of every slot summed. */
void metrics_format(const struct metrics *m, struct sbuf *out);

/* ---- bev_direct: write a plain socket bufferevent's output without arming EV_WRITE */

/*
 * libevent writes a bufferevent's output only from its EV_WRITE callback: every reply costs an
 * epoll_ctl to arm the event, a loop iteration, and another epoll_ctl to disarm it once the
 * buffer is empty.  With bev_direct attached, output added during a loop iteration is written
 * to the socket at the end of that iteration (replies made together still leave together, in one
 * writev, as RFC 2920 wants), and EV_WRITE is armed only when the kernel does not take it all;
 * libevent then writes the rest, reports errors and applies the write timeout as usual.  The
 * owner's write callback runs as libevent would run it, once the output has drained.
 *
 * Only for a socket bufferevent at the top (not under a TLS filter): detach before layering a
 * filter on it (which arms EV_WRITE below itself) or freeing it.
 */
struct bev_direct;

struct bev_direct *bev_direct_new(struct bufferevent *bev);
/* Stop (output still buffered is left to libevent) and set *dp to NULL; NULL is fine. */
void bev_direct_detach(struct bev_direct **dp);

/* ---- privs: the unprivileged identity children run as. */

struct privs {
    bool drop;   /* started as root with `user` set */
    uid_t uid;
    gid_t gid;
    char name[64];
};

/* Resolve `user` (NULL = none).  False with a message if the user does not exist. */
bool privs_lookup(const char *user, struct privs *p, char *err, size_t errsz);
/* Become p's user (no-op unless p->drop); aborts on failure. */
void privs_drop(const struct privs *p);

/* ---- tls: OpenSSL contexts (server and client) and descriptions of TLS sessions for logs. */

struct ssl_ctx_st;
struct ssl_st;

#define TLS_PAIRS_MAX 4     /* certificate/key pairs (one per key type: RSA, ECDSA, ...) */
#define TLS_FILE_MAX 1024   /* longest file name in tls_certificate / tls_privatekey */
/* Split a colon-separated list of files into files[0..max); returns the count, or more than
 * max when the list is longer or a name too long. */
size_t tls_file_list(const char *list, char files[][TLS_FILE_MAX], size_t max);
/* Server context from PEM files: certs and keys are colon-separated lists paired in order
 * (tls_certificate, tls_privatekey), e.g. an RSA and an ECDSA certificate; the handshake picks
 * one by the client's signature algorithms.  keys NULL: each key is in its certificate's file.  Stateless session tickets for resumption.  NULL on
 * error, with a message in err.  TLS 1.2 and 1.3 only. */
struct ssl_ctx_st *tls_server_ctx(const char *certs, const char *keys, char *err, size_t errsz);
/* Client context: CA from ca_file (tls_outbound_ca), else the system store (NULL).  TLS 1.2+. */
struct ssl_ctx_st *tls_client_ctx(const char *ca_file, char *err, size_t errsz);
/* "TLS1.3:TLS_AES_256_GCM_SHA384:256" */
void tls_describe(struct ssl_st *ssl, char *buf, size_t sz);

#endif
