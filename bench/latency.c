/* latency.c - a cheap SMTP client for bench/run: times every mail transaction, or holds many
 * idle sessions open.  One thread, non-blocking sockets, epoll; no pipelining (like Postfix's
 * smtp-source), so each transaction is MAIL, RCPT x r, DATA, message, final reply.
 *
 * Load mode (default): `-s` sessions run transactions back to back until `-m` messages have
 * been started or `-t` seconds have passed; the latency of a transaction is the time from
 * writing MAIL FROM to reading the reply to the final dot.  Prints one line of key=value:
 *   mode=load sessions= messages= errors= elapsed_s= rate= p50_ms= p90_ms= p99_ms= max_ms=
 *
 * Hold mode (`-H ehlo|tls|rcpt`): opens `-s` sessions and takes each to the stage (after EHLO;
 * after STARTTLS and the second EHLO; after MAIL and the RCPTs of a transaction), prints
 *   mode=hold stage= target= held= failed=
 * then waits for a line (or EOF) on stdin, finishes (rcpt: sends the message and expects 250;
 * every stage: QUIT) and prints
 *   mode=finish ok= failed=
 * Errors are described on stderr (the first few of each kind).
 *
 * Usage: latency [-s N] [-m N] [-t SEC] [-l BYTES] [-r N] [-n] [-b IP] [-B N] [-c N]
 *                [-H STAGE] [-T] [-w SEC] [-o FILE] HOST:PORT
 *   -n      a new connection for every message (default: a session's messages share one)
 *   -b, -B  bind to B consecutive source addresses starting at IP (default: none)
 *   -c N    at most N sessions being set up (connecting or waiting for the banner) at once
 *           (default 100: fewer than the server's listen backlog, so that no connection is
 *           lost to a full accept queue)
 *   -w SEC  give up on a reply after SEC seconds (default 60)
 *   -o FILE write every latency (microseconds), one a line
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

enum stage { ST_CONNECT, ST_BANNER, ST_EHLO, ST_STARTTLS, ST_HANDSHAKE, ST_EHLO2, ST_MAIL,
             ST_RCPT, ST_DATA, ST_BODY, ST_DOT, ST_QUIT, ST_IDLE, ST_DONE };
enum hold { HOLD_NONE, HOLD_EHLO, HOLD_TLS, HOLD_RCPT };

struct conn {
    int fd;
    enum stage st;
    SSL *ssl;
    int rcpts_done;
    bool in_txn, held, failed, finishing;
    bool setup;                     /* connecting or waiting for the banner */
    uint64_t t_start, deadline;     /* transaction start; reply deadline (ns) */
    char in[4096];
    size_t inlen;
    struct iovec out[2];            /* pending output: header/command, then body */
    int nout;
    char cmd[512];
};

static struct {
    int sessions, rcpts, conc, src_count, reply_timeout;
    long messages;
    double seconds;
    size_t body_len;
    bool new_conn, tls;
    enum hold hold;
    struct sockaddr_in dst, src;
    const char *rawfile;
} opt = { .sessions = 1, .rcpts = 1, .conc = 100, .reply_timeout = 60, .messages = 100,
          .body_len = 4096 };

static struct {
    int ep;
    struct conn *conns;
    char *body;
    SSL_CTX *tls_ctx;
    long started, completed, errors, connecting, open_conns;
    long held, hold_failed, next_conn, quits;
    uint32_t *lat;                  /* microseconds */
    long nlat, caplat;
    uint64_t t0;
    int err_reports;
    bool finishing;
} g;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("latency: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* report - describe an error on stderr; only the first 10 */
static void report(const struct conn *c, const char *what, const char *detail)
{
    static const char *names[] = { "connect", "banner", "EHLO", "STARTTLS", "TLS handshake",
                                   "EHLO after TLS", "MAIL", "RCPT", "DATA", "message",
                                   "end of data", "QUIT", "idle", "done" };
    if (g.err_reports++ < 10)
        fprintf(stderr, "latency: session %ld (stage %s): %s: %.200s\n", (long)(c - g.conns),
                names[c->st], what, detail ? detail : strerror(errno));
}

/* make_body - the message: a few header lines, then lines of text to body_len bytes */
static char *make_body(size_t len, size_t *total)
{
    static const char hdr[] = "From: <bench@client.test>\r\nTo: <rcpt@example.test>\r\n"
                              "Subject: bench\r\nMessage-ID: <bench@client.test>\r\n\r\n";
    size_t hl = sizeof(hdr) - 1, n = hl + len + 8;
    char *b = malloc(n);
    if (!b)
        die("out of memory");
    memcpy(b, hdr, hl);
    size_t p = hl;
    while (p < hl + len) {
        size_t line = hl + len - p < 78 ? hl + len - p : 78;
        memset(b + p, 'x', line);
        p += line;
        memcpy(b + p, "\r\n", 2);
        p += 2;
    }
    memcpy(b + p, ".\r\n", 3);
    *total = p + 3;
    return b;
}

static bool more_work(void)
{
    if (g.finishing || opt.hold != HOLD_NONE)
        return false;
    if (g.started >= opt.messages)
        return false;
    return opt.seconds <= 0 || (double)(now_ns() - g.t0) / 1e9 < opt.seconds;
}

static void record_latency(uint64_t ns)
{
    if (g.nlat == g.caplat) {
        g.caplat = g.caplat ? g.caplat * 2 : 65536;
        g.lat = realloc(g.lat, (size_t)g.caplat * sizeof(*g.lat));
        if (!g.lat)
            die("out of memory");
    }
    g.lat[g.nlat++] = (uint32_t)(ns / 1000 > UINT32_MAX ? UINT32_MAX : ns / 1000);
}

/* -- I/O ------------------------------------------------------------------------------- */

static void set_events(struct conn *c, uint32_t ev)
{
    struct epoll_event e = { .events = ev, .data.ptr = c };
    if (epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &e) != 0)
        die("epoll_ctl: %s", strerror(errno));
}

/* io_write - write what we can; 1 when all is written, 0 to wait, -1 on error */
static int io_write(struct conn *c)
{
    while (c->nout > 0) {
        ssize_t n;
        if (c->ssl) {
            n = SSL_write(c->ssl, c->out[0].iov_base, (int)c->out[0].iov_len);
            if (n <= 0) {
                int e = SSL_get_error(c->ssl, (int)n);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                    set_events(c, e == SSL_ERROR_WANT_WRITE ? EPOLLIN | EPOLLOUT : EPOLLIN);
                    return 0;
                }
                return -1;
            }
        } else {
            n = writev(c->fd, c->out, c->nout);
            if (n < 0) {
                if (errno == EAGAIN) {
                    set_events(c, EPOLLIN | EPOLLOUT);
                    return 0;
                }
                return -1;
            }
        }
        size_t left = (size_t)n;
        while (c->nout > 0 && left >= c->out[0].iov_len) {
            left -= c->out[0].iov_len;
            c->out[0] = c->out[1];
            c->nout--;
        }
        if (c->nout > 0) {
            c->out[0].iov_base = (char *)c->out[0].iov_base + left;
            c->out[0].iov_len -= left;
        }
    }
    set_events(c, EPOLLIN);
    return 1;
}

static int send_cmd(struct conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->cmd, sizeof(c->cmd) - 2, fmt, ap);
    va_end(ap);
    memcpy(c->cmd + n, "\r\n", 2);
    c->out[0] = (struct iovec){ c->cmd, (size_t)n + 2 };
    c->nout = 1;
    c->deadline = now_ns() + (uint64_t)opt.reply_timeout * 1000000000u;
    return io_write(c);
}

/* read_reply - a complete reply's code (the buffer then holds its text), 0 if incomplete,
 * -1 on EOF or error */
static int read_reply(struct conn *c, char **text)
{
    for (;;) {
        /* a complete reply ends with a line "ddd " (or "ddd\r\n") */
        char *line = c->in, *end = c->in + c->inlen;
        while (line < end) {
            char *nl = memchr(line, '\n', (size_t)(end - line));
            if (!nl)
                break;
            if (nl - line >= 3 && (nl - line == 3 || line[3] != '-')) {
                static char reply[sizeof(c->in) + 1];
                int code = atoi(line);
                size_t used = (size_t)(nl + 1 - c->in);
                memcpy(reply, c->in, used);
                reply[used] = '\0';
                memmove(c->in, nl + 1, c->inlen - used);
                c->inlen -= used;
                *text = reply;
                return code > 0 ? code : -1;
            }
            line = nl + 1;
        }
        if (c->inlen == sizeof(c->in))
            return -1;
        ssize_t n;
        if (c->ssl) {
            n = SSL_read(c->ssl, c->in + c->inlen, (int)(sizeof(c->in) - c->inlen));
            if (n <= 0) {
                int e = SSL_get_error(c->ssl, (int)n);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                    return 0;
                return -1;
            }
        } else {
            n = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
            if (n < 0 && errno == EAGAIN)
                return 0;
            if (n <= 0)
                return -1;
        }
        c->inlen += (size_t)n;
    }
}

/* -- sessions -------------------------------------------------------------------------- */

/* setup_done - the session has its banner (or failed before): one less being set up */
static void setup_done(struct conn *c)
{
    if (c->setup) {
        c->setup = false;
        g.connecting--;
    }
}

static void close_conn(struct conn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
        g.open_conns--;
    }
    setup_done(c);
    c->st = ST_DONE;
}

static void fail(struct conn *c, const char *what, const char *detail)
{
    report(c, what, detail);
    if (c->in_txn) {
        g.errors++;
        c->in_txn = false;
    }
    if (opt.hold != HOLD_NONE && !c->failed) {
        c->failed = true;
        g.hold_failed++;
    }
    close_conn(c);
}

static void open_conn(struct conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        c->st = ST_DONE;
        fail(c, "socket", NULL);
        return;
    }
    g.open_conns++;
    c->st = ST_CONNECT;
    c->setup = true;
    g.connecting++;
    c->inlen = 0;
    c->nout = 0;
    c->rcpts_done = 0;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (opt.src_count > 0) {
        struct sockaddr_in s = opt.src;
        long i = c - g.conns;
        s.sin_addr.s_addr = htonl(ntohl(s.sin_addr.s_addr) + (uint32_t)(i % opt.src_count));
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(c->fd, (struct sockaddr *)&s, sizeof(s)) != 0) {
            fail(c, "bind", NULL);
            return;
        }
    }
    struct epoll_event e = { .events = EPOLLOUT, .data.ptr = c };
    if (epoll_ctl(g.ep, EPOLL_CTL_ADD, c->fd, &e) != 0)
        die("epoll_ctl add: %s", strerror(errno));
    c->deadline = now_ns() + (uint64_t)opt.reply_timeout * 1000000000u;
    if (connect(c->fd, (struct sockaddr *)&opt.dst, sizeof(opt.dst)) != 0 &&
        errno != EINPROGRESS)
        fail(c, "connect", NULL);
}

static void start_txn(struct conn *c)
{
    g.started++;
    c->in_txn = true;
    c->rcpts_done = 0;
    c->st = ST_MAIL;
    c->t_start = now_ns();
    if (send_cmd(c, "MAIL FROM:<bench@client.test>") < 0)
        fail(c, "write MAIL", NULL);
}

/* park - in hold mode, stop a session that reached the stage being held */
static bool park(struct conn *c, enum hold h)
{
    if (opt.hold != h)
        return false;
    c->held = true;
    c->st = ST_IDLE;
    c->deadline = 0;
    g.held++;
    return true;
}

/* ready - after EHLO (and TLS): start a transaction, park, or say goodbye */
static void ready(struct conn *c)
{
    if (park(c, HOLD_EHLO) || (c->ssl && park(c, HOLD_TLS)))
        return;
    if (opt.hold == HOLD_RCPT || more_work()) {
        if (opt.hold == HOLD_RCPT) {
            c->in_txn = false;
            c->st = ST_MAIL;
            if (send_cmd(c, "MAIL FROM:<bench@client.test>") < 0)
                fail(c, "write MAIL", NULL);
        } else {
            start_txn(c);
        }
        return;
    }
    c->st = ST_QUIT;
    if (send_cmd(c, "QUIT") < 0)
        fail(c, "write QUIT", NULL);
}

static void send_message(struct conn *c)
{
    c->st = ST_BODY;
    c->out[0] = (struct iovec){ g.body, opt.body_len };
    c->nout = 1;
    c->deadline = now_ns() + (uint64_t)opt.reply_timeout * 1000000000u;
    int r = io_write(c);
    if (r < 0)
        fail(c, "write message", NULL);
    else if (r == 1)
        c->st = ST_DOT;
}

static void start_tls(struct conn *c)
{
    c->ssl = SSL_new(g.tls_ctx);
    if (!c->ssl)
        die("SSL_new failed");
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_connect_state(c->ssl);
    c->st = ST_HANDSHAKE;
}

/* handshake - drive the TLS handshake; then EHLO again */
static void handshake(struct conn *c)
{
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->st = ST_EHLO2;
        if (send_cmd(c, "EHLO client.test") < 0)
            fail(c, "write EHLO", NULL);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        set_events(c, EPOLLIN);
    else if (e == SSL_ERROR_WANT_WRITE)
        set_events(c, EPOLLIN | EPOLLOUT);
    else
        fail(c, "TLS handshake", ERR_error_string(ERR_get_error(), NULL));
}

/* on_reply - one complete reply in the current stage */
static void on_reply(struct conn *c, int code, const char *text)
{
    switch (c->st) {
    case ST_BANNER:
        setup_done(c);
        if (code != 220)
            return fail(c, "banner", text);
        c->st = ST_EHLO;
        if (send_cmd(c, "EHLO client.test") < 0)
            fail(c, "write EHLO", NULL);
        return;
    case ST_EHLO:
        if (code != 250)
            return fail(c, "EHLO", text);
        if (opt.tls) {
            c->st = ST_STARTTLS;
            if (send_cmd(c, "STARTTLS") < 0)
                fail(c, "write STARTTLS", NULL);
            return;
        }
        return ready(c);
    case ST_STARTTLS:
        if (code != 220)
            return fail(c, "STARTTLS", text);
        start_tls(c);
        return handshake(c);
    case ST_EHLO2:
        if (code != 250)
            return fail(c, "EHLO after STARTTLS", text);
        return ready(c);
    case ST_MAIL:
        if (code != 250)
            return fail(c, "MAIL", text);
        c->st = ST_RCPT;
        if (send_cmd(c, "RCPT TO:<r%d@example.test>", c->rcpts_done) < 0)
            fail(c, "write RCPT", NULL);
        return;
    case ST_RCPT:
        if (code != 250)
            return fail(c, "RCPT", text);
        if (++c->rcpts_done < opt.rcpts) {
            if (send_cmd(c, "RCPT TO:<r%d@example.test>", c->rcpts_done) < 0)
                fail(c, "write RCPT", NULL);
            return;
        }
        if (park(c, HOLD_RCPT))
            return;
        c->st = ST_DATA;
        if (send_cmd(c, "DATA") < 0)
            fail(c, "write DATA", NULL);
        return;
    case ST_DATA:
        if (code != 354)
            return fail(c, "DATA", text);
        return send_message(c);
    case ST_DOT:
        if (code != 250)
            return fail(c, "end of data", text);
        if (c->in_txn) {
            record_latency(now_ns() - c->t_start);
            g.completed++;
            c->in_txn = false;
        }
        if (c->finishing) {
            c->st = ST_QUIT;
            if (send_cmd(c, "QUIT") < 0)
                fail(c, "write QUIT", NULL);
        } else if (!opt.new_conn && more_work()) {
            start_txn(c);
        } else {
            c->st = ST_QUIT;
            if (send_cmd(c, "QUIT") < 0)
                fail(c, "write QUIT", NULL);
        }
        return;
    case ST_QUIT:
        if (code == 221)
            g.quits++;
        close_conn(c);       /* 221 or not: the session is over */
        return;
    default:
        return fail(c, "unexpected reply", text);
    }
}

static void on_event(struct conn *c, uint32_t ev)
{
    if (c->st == ST_CONNECT) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            errno = err;
            c->st = ST_BANNER;
            return fail(c, "connect", NULL);
        }
        c->st = ST_BANNER;
        c->deadline = now_ns() + (uint64_t)opt.reply_timeout * 1000000000u;
        set_events(c, EPOLLIN);
        return;
    }
    if (c->st == ST_HANDSHAKE)
        return handshake(c);
    if ((ev & EPOLLOUT) && c->nout > 0) {
        int r = io_write(c);
        if (r < 0)
            return fail(c, "write", NULL);
        if (r == 1 && c->st == ST_BODY)
            c->st = ST_DOT;
    }
    if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !(c->ssl && SSL_pending(c->ssl)))
        return;
    while (c->st != ST_DONE) {
        char *text = NULL;
        int code = read_reply(c, &text);
        if (code == 0)
            return;
        if (code < 0) {
            if (c->st == ST_QUIT)
                return close_conn(c);
            return fail(c, c->st == ST_IDLE ? "connection closed while idle" : "read",
                        "connection closed or unreadable");
        }
        if (c->st == ST_IDLE)
            return fail(c, "reply while idle", text);
        on_reply(c, code, text);
        if (c->st == ST_HANDSHAKE || c->st == ST_IDLE)
            return;
    }
}

/* check_deadlines - fail sessions whose reply is overdue (called about once a second) */
static void check_deadlines(void)
{
    uint64_t t = now_ns();
    for (int i = 0; i < opt.sessions; i++) {
        struct conn *c = &g.conns[i];
        if (c->st != ST_DONE && c->st != ST_IDLE && c->deadline && t > c->deadline)
            fail(c, "timeout", "no reply in time");
    }
}

/* launch - open connections for idle session slots, at most opt.conc being set up */
static void launch(void)
{
    while (g.next_conn < opt.sessions && g.connecting < opt.conc) {
        struct conn *c = &g.conns[g.next_conn++];
        open_conn(c);
    }
    if (opt.new_conn && opt.hold == HOLD_NONE) {
        for (int i = 0; i < opt.sessions && g.connecting < opt.conc; i++) {
            struct conn *c = &g.conns[i];
            if (c->st == ST_DONE && c->fd < 0 && (long)i < g.next_conn && more_work())
                open_conn(c);
        }
    }
}

static void run_loop(bool (*done)(void))
{
    struct epoll_event evs[256];
    uint64_t last_check = now_ns();
    while (!done()) {
        launch();
        int n = epoll_wait(g.ep, evs, 256, 200);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                g.finishing = true;        /* stdin: time to finish holding */
                continue;
            }
            on_event(evs[i].data.ptr, evs[i].events);
        }
        if (now_ns() - last_check > 1000000000u) {
            check_deadlines();
            last_check = now_ns();
        }
    }
}

static bool load_done(void)
{
    return g.open_conns == 0 && !(g.next_conn < opt.sessions) &&
           !(opt.new_conn && more_work());
}

static bool hold_done(void)
{
    return g.next_conn == opt.sessions && g.held + g.hold_failed >= opt.sessions;
}

static bool stdin_seen(void)
{
    return g.finishing;
}

static bool finish_done(void)
{
    return g.open_conns == 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p)
{
    if (g.nlat == 0)
        return 0;
    long i = (long)(p * (double)(g.nlat - 1) + 0.5);
    return g.lat[i] / 1000.0;
}

static void print_load_results(double elapsed)
{
    qsort(g.lat, (size_t)g.nlat, sizeof(*g.lat), cmp_u32);
    double sum = 0;
    for (long i = 0; i < g.nlat; i++)
        sum += g.lat[i];
    printf("mode=load sessions=%d messages=%ld errors=%ld elapsed_s=%.3f rate=%.1f "
           "mean_ms=%.3f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
           opt.sessions, g.completed, g.errors, elapsed,
           elapsed > 0 ? (double)g.completed / elapsed : 0.0,
           g.nlat ? sum / (double)g.nlat / 1000.0 : 0.0, pct(0.5), pct(0.9), pct(0.99),
           g.nlat ? g.lat[g.nlat - 1] / 1000.0 : 0.0);
    if (opt.rawfile) {
        FILE *f = fopen(opt.rawfile, "w");
        if (!f)
            die("%s: %s", opt.rawfile, strerror(errno));
        for (long i = 0; i < g.nlat; i++)
            fprintf(f, "%u\n", g.lat[i]);
        fclose(f);
    }
}

/* finish_held - after stdin says so: complete each held session and QUIT; prints
 * mode=finish lost_while_idle= ok= failed= */
static void finish_held(long failed_at_hold)
{
    long completed0 = g.completed, quits0 = g.quits, failed0 = g.hold_failed;
    for (int i = 0; i < opt.sessions; i++) {
        struct conn *c = &g.conns[i];
        if (c->st != ST_IDLE)
            continue;
        c->finishing = true;
        if (opt.hold == HOLD_RCPT) {
            c->st = ST_DATA;
            c->in_txn = true;
            c->t_start = now_ns();
            if (send_cmd(c, "DATA") < 0)
                fail(c, "write DATA", NULL);
        } else {
            c->st = ST_QUIT;
            if (send_cmd(c, "QUIT") < 0)
                fail(c, "write QUIT", NULL);
        }
    }
    run_loop(finish_done);
    long ok = opt.hold == HOLD_RCPT ? g.completed - completed0 : g.quits - quits0;
    printf("mode=finish lost_while_idle=%ld ok=%ld failed=%ld\n", failed0 - failed_at_hold, ok,
           g.hold_failed - failed0);
}

static void parse_hostport(const char *s, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof(host))
        die("bad address %s (want IP:PORT)", s);
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        die("bad IPv4 address %s", host);
}

static enum hold parse_hold(const char *s)
{
    if (strcmp(s, "ehlo") == 0)
        return HOLD_EHLO;
    if (strcmp(s, "tls") == 0)
        return HOLD_TLS;
    if (strcmp(s, "rcpt") == 0)
        return HOLD_RCPT;
    die("-H takes ehlo, tls or rcpt");
    return HOLD_NONE;
}

static void usage(void)
{
    fprintf(stderr, "usage: latency [-s N] [-m N] [-t SEC] [-l BYTES] [-r N] [-n] [-b IP] [-B N] "
                    "[-c N] [-H ehlo|tls|rcpt] [-T] [-w SEC] [-o FILE] HOST:PORT\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int ch;
    while ((ch = getopt(argc, argv, "s:m:t:l:r:nb:B:c:H:Tw:o:")) != -1) {
        switch (ch) {
        case 's': opt.sessions = atoi(optarg); break;
        case 'm': opt.messages = atol(optarg); break;
        case 't': opt.seconds = atof(optarg); break;
        case 'l': opt.body_len = (size_t)atol(optarg); break;
        case 'r': opt.rcpts = atoi(optarg); break;
        case 'n': opt.new_conn = true; break;
        case 'b':
            if (inet_pton(AF_INET, optarg, &opt.src.sin_addr) != 1)
                die("bad source address %s", optarg);
            opt.src.sin_family = AF_INET;
            if (opt.src_count == 0)
                opt.src_count = 1;
            break;
        case 'B': opt.src_count = atoi(optarg); break;
        case 'c': opt.conc = atoi(optarg); break;
        case 'H': opt.hold = parse_hold(optarg); break;
        case 'T': opt.tls = true; break;
        case 'w': opt.reply_timeout = atoi(optarg); break;
        case 'o': opt.rawfile = optarg; break;
        default: usage();
        }
    }
    if (optind != argc - 1 || opt.sessions < 1 || opt.rcpts < 1 || opt.conc < 1)
        usage();
    if (opt.hold == HOLD_TLS)
        opt.tls = true;
    parse_hostport(argv[optind], &opt.dst);
    signal(SIGPIPE, SIG_IGN);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (opt.tls) {
        g.tls_ctx = SSL_CTX_new(TLS_client_method());
        if (!g.tls_ctx)
            die("SSL_CTX_new failed");
        SSL_CTX_set_verify(g.tls_ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_mode(g.tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    }
    size_t total;
    g.body = make_body(opt.body_len, &total);
    opt.body_len = total;
    g.conns = calloc((size_t)opt.sessions, sizeof(*g.conns));
    if (!g.conns)
        die("out of memory");
    for (int i = 0; i < opt.sessions; i++) {
        g.conns[i].fd = -1;
        g.conns[i].st = ST_DONE;
    }
    g.ep = epoll_create1(EPOLL_CLOEXEC);
    if (g.ep < 0)
        die("epoll_create1: %s", strerror(errno));

    g.t0 = now_ns();
    if (opt.hold == HOLD_NONE) {
        run_loop(load_done);
        print_load_results((double)(now_ns() - g.t0) / 1e9);
        return g.errors ? 1 : 0;
    }
    static const char *names[] = { "", "ehlo", "tls", "rcpt" };
    run_loop(hold_done);
    printf("mode=hold stage=%s target=%d held=%ld failed=%ld elapsed_s=%.3f\n", names[opt.hold],
           opt.sessions, g.held, g.hold_failed, (double)(now_ns() - g.t0) / 1e9);
    fflush(stdout);
    /* wait for stdin (a line or EOF), keeping the held sessions serviced */
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = NULL };
    if (epoll_ctl(g.ep, EPOLL_CTL_ADD, 0, &e) != 0)
        die("epoll_ctl stdin: %s", strerror(errno));
    long failed_at_hold = g.hold_failed;
    run_loop(stdin_seen);
    epoll_ctl(g.ep, EPOLL_CTL_DEL, 0, NULL);
    finish_held(failed_at_hold);
    return 0;
}
