/* smtp_in.c - inbound SMTP session: connection lifecycle, reading command lines with hard
 * limits, replies, timeouts, and the input loop that hands lines or data to the handlers. */
#include "smtp_in.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "in.h"
#include "conf/conf.h"
#include "core/core.h"
#include "store/store.h"

#define INPUT_HIGH_WATER (256 * 1024)
#define OUTPUT_HIGH_WATER (64 * 1024)   /* replies the client has not read: stop reading */

static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_write_cb(struct bufferevent *bev, void *arg);
static void session_event_cb(struct bufferevent *bev, short what, void *arg);
static void session_free(struct smtp_session *s);
static void session_process(struct smtp_session *s);
static void eof_reached(struct smtp_session *s);

const char *smtp_phase_name(enum smtp_phase p)
{
    static const char *names[] = { "connect", "init", "ready", "mail", "rcpt", "data", "bdat", "skip", "closing" };
    return (unsigned)p < ARRAY_LEN(names) ? names[p] : "?";
}

/* peer_to_text - numeric address and port of a peer (IPv4-mapped shown as IPv4) */
static void peer_to_text(const struct sockaddr *sa, char *ip, size_t ipsz, int *port)
{
    *port = 0;
    str_copy(ip, "127.0.0.1", ipsz);
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, (socklen_t)ipsz);
        *port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], ip, (socklen_t)ipsz);
        else
            inet_ntop(AF_INET6, &in6->sin6_addr, ip, (socklen_t)ipsz);
        *port = ntohs(in6->sin6_port);
    }
}

/* resume_cb - deferred continuation of input processing (avoids re-entering handlers) */
static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    session_process(arg);
}

/* log_receive_timeout - the client did not finish what it was sending in time */
static void log_receive_timeout(struct smtp_session *s)
{
    char host[160];
    if (sf_has(s, SF_TLS_HANDSHAKE))
        log_main("TLS error on connection from %s (SSL_accept): timed out after %us "
                 "(smtp_receive_timeout)", smtp_log_host(s, host, sizeof(host)),
                 s->srv->conf->smtp_receive_timeout);
    else
        log_main("SMTP command timeout on connection from %s during %s",
                 smtp_log_host(s, host, sizeof(host)), smtp_phase_name(s->phase));
}

/* tls_timeout - the TLS handshake did not finish in time: a client that has not had a byte
 * of TLS from us yet (its ClientHello still incomplete) gets the 421 in clear, as before
 * STARTTLS; one further on cannot read it.  Then the connection is closed. */
static void tls_timeout(struct smtp_session *s)
{
    static const char line[] = "421 4.4.2 Timeout, closing connection\r\n";
    SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
    if (ssl && SSL_get_state(ssl) == TLS_ST_BEFORE)   /* no ClientHello yet: nothing sent */
        (void)!send(bufferevent_getfd(s->bev), line, sizeof(line) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    session_free(s);
}

/* receive_timeout - 421 to a client that took longer than smtp_receive_timeout over one
 * command line or handshake (or sent nothing at all), then close */
static void receive_timeout(struct smtp_session *s)
{
    log_receive_timeout(s);
    if (sf_has(s, SF_TLS_HANDSHAKE)) {
        tls_timeout(s);
        return;
    }
    smtp_close_with(s, 421, "4.4.2", "Timeout, closing connection");
    struct timeval tv = { 10, 0 };
    bufferevent_set_timeouts(s->bev, NULL, &tv);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    receive_timeout(arg);
}

void smtp_deadline_start(struct smtp_session *s)
{
    struct timeval tv = { (time_t)s->srv->conf->smtp_receive_timeout, 0 };
    if (!evtimer_pending(s->deadline_ev, NULL))
        evtimer_add(s->deadline_ev, &tv);
}

void smtp_deadline_stop(struct smtp_session *s)
{
    evtimer_del(s->deadline_ev);
}

/* connect_acl_done - the connect ACL decided: refuse, or send the banner */
static void connect_acl_done(struct smtp_session *s, const struct acl_outcome *o)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    char peek[16];
    const struct conf *c = s->srv->conf;
    if (o->result != ACL_ACCEPT && o->result != ACL_DISCARD) {
        smtp_acl_log_reject(s, o, "connection");
        smtp_acl_reply(s, o, 554, "5.7.1", "Administrative prohibition");
        s->phase = PH_CLOSING;
        smtp_close_with(s, 0, NULL, NULL);
        return;
    }
    ssize_t early = evbuffer_copyout(in, peek, sizeof(peek));
    if (early <= 0 && !sf_has(s, SF_TLS))
        early = recv(bufferevent_getfd(s->bev), peek, sizeof(peek), MSG_PEEK | MSG_DONTWAIT);
    if (!s->srv->interactive && early > 0) {
        char host[160];
        /* A load balancer's PROXY header from a host not in hosts_proxy is early talking
         * too (as in Exim); the log says what it was. */
        log_reject("%s rejected connection: SMTP protocol synchronization error (input sent "
                   "before banner%s)", smtp_log_host(s, host, sizeof(host)),
                   proxy_looks_like_header((const uint8_t *)peek, (size_t)early)
                       ? ": a PROXY protocol header, and the host is not in hosts_proxy" : "");
        smtp_close_with(s, 554, "5.5.0", "SMTP synchronization error");
        return;
    }
    s->phase = PH_INIT;
    smtp_reply(s, 220, NULL, "%s ESMTP tandem", c->hostname);
    smtp_resume(s);
}

/* session_setup_bev - callbacks, back-pressure and timeouts of the session's bufferevent */
static void session_setup_bev(struct smtp_session *s)
{
    struct timeval tv = { (time_t)s->srv->conf->smtp_receive_timeout, 0 };
    bufferevent_setcb(s->bev, session_read_cb, session_write_cb, session_event_cb, s);
    bufferevent_setwatermark(s->bev, EV_READ, 0, INPUT_HIGH_WATER);
    bufferevent_setwatermark(s->bev, EV_WRITE, OUTPUT_HIGH_WATER / 2, 0);
    bufferevent_set_timeouts(s->bev, &tv, &tv);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

void smtp_session_swap_bev(struct smtp_session *s, struct bufferevent *bev)
{
    s->bev = bev;
    session_setup_bev(s);
}

/* smtp_session_start - set up a session on an accepted connection and run the connect ACL */
void smtp_session_start(struct server *srv, int fd, const struct sockaddr *peer, bool implicit_tls)
{
    struct smtp_session *s = xcalloc(1, sizeof(*s));
    const struct conf *c = srv->conf;
    int one = 1;

    s->srv = srv;
    peer_to_text(peer, s->peer_ip, sizeof(s->peer_ip), &s->peer_port);
    str_fmt(s->id, sizeof(s->id), "%d.%llu", (int)getpid(),
            (unsigned long long)++srv->next_conn_serial);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fd_nonblock(fd);
    if (implicit_tls && srv->tls_ctx)
        s->bev = smtp_tls_accept_bev(s, fd);    /* the banner waits for the handshake */
    else
        s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (s->bev == NULL)
        fatalx("bufferevent_socket_new");
    s->line = xmalloc(c->smtp_line_length_max + 1);
    s->resume_ev = event_new(srv->base, -1, 0, resume_cb, s);
    s->deadline_ev = evtimer_new(srv->base, deadline_cb, s);
    sbuf_init(&s->reply);
    session_setup_bev(s);
    if (!sf_has(s, SF_TLS_HANDSHAKE))
        s->direct = bev_direct_new(s->bev);
    LIST_INSERT_HEAD(&srv->sessions, s, entry);
    srv->nsessions++;
    metric_inc(M_CONNECTIONS);
    gauge_add(G_SESSIONS_OPEN, 1);
    if (srv->limits)
        conn_limits_add(srv->limits, srv->worker_index, s->peer_ip);
    s->phase = PH_CONNECT;
    if (sf_has(s, SF_TLS_HANDSHAKE))
        smtp_deadline_start(s);
    else
        smtp_session_connected(s);
}

/* run_connect_acl - the client is known (name looked up if needed): connect ACL, banner */
static void run_connect_acl(struct smtp_session *s)
{
    smtp_acl_run(s, ACL_CONNECT, NULL, connect_acl_done);
}

/* smtp_session_connected - the connection is ready (an implicit-TLS one after its
 * handshake): find the client's host name if host lists need it, then the connect ACL */
void smtp_session_connected(struct smtp_session *s)
{
    if (s->srv->need_host_names)
        smtp_rdns_start(s, run_connect_acl);
    else
        run_connect_acl(s);
}

/* smtp_reply - queue a reply; '\n' in the text separates lines of a multi-line reply */
void smtp_reply(struct smtp_session *s, int code, const char *ecode, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    str_vfmt(text, sizeof(text), fmt, ap);
    va_end(ap);

    struct evbuffer *out = bufferevent_get_output(s->bev);
    const char *p = text;
    if (s->txn) {                 /* the transaction log wants its final reply */
        s->txn->final_code = code;
        str_fmt(s->txn->final_text, sizeof(s->txn->final_text), "%s%s%s", ecode ? ecode : "",
                ecode ? " " : "", text);
    }
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (ecode)
            evbuffer_add_printf(out, "%d%c%s %.*s\r\n", code, nl ? '-' : ' ', ecode, (int)n, p);
        else
            evbuffer_add_printf(out, "%d%c%.*s\r\n", code, nl ? '-' : ' ', (int)n, p);
        if (!nl)
            break;
        p = nl + 1;
    }
}

/* output_pending - bytes not yet handed to the kernel (a TLS filter has two buffers) */
static size_t output_pending(struct smtp_session *s)
{
    struct bufferevent *under = bufferevent_get_underlying(s->bev);
    return evbuffer_get_length(bufferevent_get_output(s->bev)) +
           (under ? evbuffer_get_length(bufferevent_get_output(under)) : 0);
}

/* under_drained - the TLS records of the last reply left the underlying buffer */
static void under_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct smtp_session *s = arg;
    (void)info;
    if (evbuffer_get_length(buf) == 0)
        event_active(s->resume_ev, 0, 0);
}

/* close_when_written - the final reply has left the session's buffer: free the session once
 * it has also left the TLS layer's */
static void close_when_written(struct bufferevent *bev, void *arg)
{
    struct smtp_session *s = arg;
    struct bufferevent *under = bufferevent_get_underlying(bev);
    if (under && evbuffer_get_length(bufferevent_get_output(under)) > 0 && !sf_has(s, SF_FLUSHING)) {
        sf_set(s, SF_FLUSHING);
        evbuffer_add_cb(bufferevent_get_output(under), under_drained, s);
        return;
    }
    if (output_pending(s) == 0)
        session_free(s);
}

/* smtp_close_with - send a last reply (if code != 0) and close once the output drains */
void smtp_close_with(struct smtp_session *s, int code, const char *ecode, const char *text)
{
    if (code)
        smtp_reply(s, code, ecode, "%s", text);
    s->phase = PH_CLOSING;
    smtp_deadline_stop(s);
    bufferevent_disable(s->bev, EV_READ);
    bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
    bufferevent_setcb(s->bev, NULL, close_when_written, session_event_cb, s);
    if (output_pending(s) == 0)
        event_active(s->resume_ev, 0, 0);
    else if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
        close_when_written(s->bev, s);   /* a TLS filter passed it on already: wait below it */
}

bool smtp_count_error(struct smtp_session *s)
{
    if (++s->nerrors <= s->srv->conf->smtp_max_errors)
        return false;
    char host[160];
    log_reject("%s too many syntax or protocol errors (last command ignored)",
               smtp_log_host(s, host, sizeof(host)));
    smtp_close_with(s, 421, "4.7.0", "Too many errors, closing connection");
    return true;
}

void smtp_resume(struct smtp_session *s)
{
    if (s->phase != PH_CLOSING)
        event_active(s->resume_ev, 0, 0);
}

const char *smtp_log_host(struct smtp_session *s, char *buf, size_t sz)
{
    char helo[100];
    const char *name = s->rdns.name ? s->rdns.name : "";
    if (s->helo && (s->rdns.name == NULL || strcasecmp(s->helo, s->rdns.name) != 0)) {
        str_sanitize(helo, sizeof(helo), s->helo, strlen(s->helo));
        str_fmt(buf, sz, "H=%s%s(%s) [%s]", name, name[0] ? " " : "", helo, s->peer_ip);
    } else {
        str_fmt(buf, sz, "H=%s%s[%s]", name, name[0] ? " " : "", s->peer_ip);
    }
    return buf;
}

/* read_command_line - take one line from input into s->line, enforcing the length limit.
 * Returns the length, or -1 if no complete line is buffered yet. */
static long read_command_line(struct smtp_session *s, struct evbuffer *in)
{
    size_t max = s->srv->conf->smtp_line_length_max;
    size_t eol_len = 0;
    struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
    if (p.pos < 0) {
        if (evbuffer_get_length(in) > max) {     /* overlong: drain, answer once at its end */
            sf_set(s, SF_DRAINING_LINE);
            evbuffer_drain(in, evbuffer_get_length(in));
        }
        return -1;
    }
    size_t len = (size_t)p.pos;
    if (sf_has(s, SF_DRAINING_LINE) || len + eol_len > max) {
        evbuffer_drain(in, len + eol_len);
        sf_clear(s, SF_DRAINING_LINE);
        return -2;
    }
    evbuffer_remove(in, s->line, len + eol_len);
    if (len > 0 && s->line[len - 1] == '\r')
        len--;
    s->line[len] = '\0';
    return (long)len;
}

/* process_line_input - read and dispatch commands while not paused */
static bool process_line_input(struct smtp_session *s, struct evbuffer *in)
{
    long len = read_command_line(s, in);
    if (len == -1)
        return false;
    smtp_deadline_stop(s);            /* the line is complete: the next one gets its own time */
    if (len == -2) {
        smtp_reply(s, 500, "5.5.2", "Line too long");
        if (!smtp_count_error(s))
            return true;
        return false;
    }
    smtp_dispatch(s, s->line, (size_t)len);
    return true;
}

/* data_too_slow - true once the message has taken longer than smtp_receive_timeout and its
 * bytes (used so far, plus `pending` not yet used) average less than smtp_data_min_rate: a
 * client trickling bytes just inside the per-read timeout would otherwise hold its slot for days */
static bool data_too_slow(struct smtp_session *s, size_t pending)
{
    struct txn *t = s->txn;
    const struct conf *c = s->srv->conf;
    if (t == NULL || c->smtp_data_min_rate == 0)
        return false;
    uint64_t now = now_mono_ms();
    if (t->data_t0_ms == 0)
        t->data_t0_ms = now;
    uint64_t elapsed = now - t->data_t0_ms;
    return elapsed > (uint64_t)c->smtp_receive_timeout * 1000 &&
           (t->data_bytes + pending) * 1000 / elapsed < c->smtp_data_min_rate;
}

/* drop_slow_client - the minimum data rate was not met: 421, the message is abandoned */
static void drop_slow_client(struct smtp_session *s)
{
    char host[160];
    const struct txn *t = s->txn;
    log_main("SMTP data too slow (message abandoned) on connection from %s during %s: "
             "%llu bytes in %llus, below smtp_data_min_rate %llu bytes/s",
             smtp_log_host(s, host, sizeof(host)), smtp_phase_name(s->phase),
             (unsigned long long)t->data_bytes,
             (unsigned long long)((now_mono_ms() - t->data_t0_ms) / 1000),
             (unsigned long long)s->srv->conf->smtp_data_min_rate);
    smtp_close_with(s, 421, "4.4.2", "Data rate too low, closing connection");
}

/* process_data_input - feed buffered bytes to the DATA or BDAT handler */
static bool process_data_input(struct smtp_session *s, struct evbuffer *in)
{
    size_t avail = evbuffer_get_length(in);
    if (avail == 0)
        return false;
    struct evbuffer_iovec v;
    if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
        return false;
    if (data_too_slow(s, avail)) {
        drop_slow_client(s);
        return false;
    }
    size_t used = s->phase == PH_DATA ? smtp_data_feed(s, v.iov_base, v.iov_len)
                                      : smtp_bdat_feed(s, v.iov_base, v.iov_len);
    evbuffer_drain(in, used);
    if (s->txn)                       /* bytes held back (back-pressure) count once, when used */
        s->txn->data_bytes += used;
    return used > 0;
}

/* hold_input - stop reading from a client whose input is not being taken (an ACL is pending,
 * or its replies are unread) once the input buffer is full: while the buffer is over its
 * high-water mark and reading is enabled, libevent calls the read callback again and again,
 * and the worker would spin.  session_process enables reading again. */
static void hold_input(struct smtp_session *s)
{
    if (sf_has(s, SF_PEER_EOF) || evbuffer_get_length(bufferevent_get_input(s->bev)) < INPUT_HIGH_WATER)
        return;
    bufferevent_disable(s->bev, EV_READ);
    sf_set(s, SF_INPUT_HELD);
}

/* session_process - the input loop: one command (or data block) at a time, until input runs
 * out or a handler pauses the session for an asynchronous step */
static void session_process(struct smtp_session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    if (s->phase == PH_CLOSING) {
        if (output_pending(s) == 0)
            session_free(s);
        return;
    }
    if (sf_has(s, SF_INPUT_HELD)) {
        sf_clear(s, SF_INPUT_HELD);
        if (!sf_has(s, SF_PEER_EOF))
            bufferevent_enable(s->bev, EV_READ);
    }
    while (!sf_has(s, SF_WAITING) && s->phase != PH_CLOSING && s->phase != PH_CONNECT) {
        bool progressed;
        /* A client that pipelines without reading the replies must not make them pile up
         * here: wait until it has read some (session_write_cb). */
        if (evbuffer_get_length(bufferevent_get_output(s->bev)) >= OUTPUT_HIGH_WATER) {
            sf_set(s, SF_OUTPUT_BLOCKED);
            hold_input(s);
            return;
        }
        if (s->phase == PH_DATA || s->phase == PH_BDAT || s->phase == PH_SKIP)
            progressed = process_data_input(s, in);
        else
            progressed = process_line_input(s, in);
        if (!progressed)
            break;
    }
    if (sf_has(s, SF_WAITING) || s->phase == PH_CONNECT)
        hold_input(s);
    if (sf_has(s, SF_WAITING) || s->phase == PH_CLOSING || s->phase == PH_CONNECT)
        return;
    if (s->phase < PH_DATA)
        smtp_deadline_start(s);       /* waiting for a command line: it has until then */
    if (sf_has(s, SF_PEER_EOF))
        eof_reached(s);
    else if (s->srv->shutting_down && s->phase >= PH_INIT && s->phase <= PH_READY &&
             evbuffer_get_length(in) == 0)
        smtp_close_with(s, 421, "4.3.2", "Service shutting down, closing connection");
}

static void session_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    session_process(arg);
}

/* session_write_cb - the client has read enough replies to go on with its input */
static void session_write_cb(struct bufferevent *bev, void *arg)
{
    struct smtp_session *s = arg;
    (void)bev;
    if (sf_has(s, SF_OUTPUT_BLOCKED)) {
        sf_clear(s, SF_OUTPUT_BLOCKED);
        session_process(s);
    }
}

/* log_lost - the client went away without QUIT */
static void log_lost(struct smtp_session *s)
{
    char host[160];
    if (s->phase == PH_DATA || s->phase == PH_BDAT || (s->txn && s->txn->bdat_started))
        log_main("unexpected disconnection while reading SMTP %s from %s (message lost)",
                 s->data_cmd ? s->data_cmd : "DATA", smtp_log_host(s, host, sizeof(host)));
    else if (s->phase != PH_CLOSING && s->phase != PH_INIT && s->phase != PH_CONNECT)
        log_main("SMTP connection from %s lost", smtp_log_host(s, host, sizeof(host)));
}

/* session_event_cb - EOF, errors and timeouts */
static void session_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct smtp_session *s = arg;
    char host[160];
    (void)bev;
    if (what & BEV_EVENT_TIMEOUT) {
        if (s->phase == PH_CLOSING) {
            session_free(s);
            return;
        }
        if (what & BEV_EVENT_WRITING) {
            /* The client reads nothing: no 421 can reach it (and libevent has stopped
             * writing), so end the session now rather than keep it and its slot forever. */
            log_main("SMTP timeout while sending to %s during %s (client not reading)",
                     smtp_log_host(s, host, sizeof(host)), smtp_phase_name(s->phase));
            session_free(s);
            return;
        }
        receive_timeout(s);
        return;
    }
    if (what & BEV_EVENT_CONNECTED) {
        smtp_tls_established(s);
        return;
    }
    if (sf_has(s, SF_TLS_HANDSHAKE)) {
        char err[256];
        smtp_tls_error_text(s->bev, err, sizeof(err));
        log_main("TLS error on connection from %s (SSL_accept): %s",
                 smtp_log_host(s, host, sizeof(host)), err);
        session_free(s);
        return;
    }
    if ((what & BEV_EVENT_EOF) && s->phase != PH_CLOSING) {
        /* Half-close: answer what is already buffered (e.g. a pipelined QUIT) first. */
        sf_set(s, SF_PEER_EOF);
        bufferevent_disable(s->bev, EV_READ);
        session_process(s);
        return;
    }
    if (s->phase != PH_CLOSING)
        log_lost(s);
    session_free(s);
}

/* eof_reached - after the client's EOF, nothing more can arrive: end the session once the
 * buffered input is used up */
static void eof_reached(struct smtp_session *s)
{
    log_lost(s);
    if (output_pending(s) == 0) {
        session_free(s);
        return;
    }
    smtp_close_with(s, 0, NULL, NULL);
}

/* smtp_session_shutdown - graceful stop: close idle sessions now, others after their message */
void smtp_session_shutdown(struct smtp_session *s)
{
    if (!sf_has(s, SF_WAITING) && s->phase >= PH_INIT && s->phase <= PH_READY)
        smtp_close_with(s, 421, "4.3.2", "Service shutting down, closing connection");
}

/* session_free - release everything the session owns, including an unfinished message */
static void session_free(struct smtp_session *s)
{
    struct server *srv = s->srv;
    sf_set(s, SF_FREEING);
    smtp_rdns_cancel(s);
    if (s->acl)
        acl_run_free(s->acl);
    smtp_txn_reset(s);
    smtp_cut_session_end(s);
    smtp_policy_session_end(s);
    if (srv->limits)
        conn_limits_remove(srv->limits, srv->worker_index, s->peer_ip);
    LIST_REMOVE(s, entry);
    srv->nsessions--;
    gauge_add(G_SESSIONS_OPEN, -1);
    bev_direct_detach(&s->direct);
    bufferevent_free(s->bev);
    event_free(s->resume_ev);
    event_free(s->deadline_ev);
    sbuf_free(&s->reply);
    free(s->line);
    free(s->helo);
    free(s->tls_info);
    free(s->rdns.name);
    free(s);
    if ((srv->shutting_down || srv->retiring || srv->interactive) && srv->nsessions == 0)
        event_base_loopexit(srv->base, NULL);
}
