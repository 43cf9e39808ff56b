/* smtp_out.c - the outbound SMTP engine's life cycle and I/O: the object, the TCP connection
 * (non-blocking connect with a timeout), reading replies through the strict reply parser,
 * timeouts, failures (always reported from the loop, never from inside a call), and
 * destruction that is safe from inside the engine's own callbacks. */
#include "smtp_out_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/core.h"
#include "dns/dns.h"

static void on_fail_event(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);

/* Objects of this process given QUIT and not yet destroyed (see smtp_out_drain). */
static unsigned links_quitting;

/* so_copy_tlsa - the connection keeps its own copy of the TLSA records it must match */
static void so_copy_tlsa(struct smtp_out *so, const struct smtp_out_opts *opts)
{
    so->opts.tlsa = NULL;
    if (opts->ntlsa == 0 || opts->tlsa == NULL) {
        so->opts.ntlsa = 0;
        return;
    }
    so->tlsa = xcalloc(opts->ntlsa, sizeof(*so->tlsa));
    for (size_t i = 0; i < opts->ntlsa; i++)
        dns_tlsa_copy(&so->tlsa[i], &opts->tlsa[i]);
    so->opts.tlsa = so->tlsa;
}

struct smtp_out *smtp_out_new(struct event_base *base, const struct next_hop *hop,
                              const struct smtp_out_opts *opts, const struct smtp_out_cbs *cbs, void *arg)
{
    struct smtp_out *so = xcalloc(1, sizeof(*so));
    so->base = base;
    so->hop = *hop;
    so->opts = *opts;
    so->helo = xstrdup(opts->helo && opts->helo[0] ? opts->helo : "localhost");
    so->opts.helo = so->helo;
    so_copy_tlsa(so, opts);
    if (so->opts.ssl_ctx == NULL && so->opts.tls >= TLS_ENCRYPT)
        fatalx("smtp_out: TLS policy %d without a client context", (int)so->opts.tls);
    so->cbs = *cbs;
    so->arg = arg;
    so->timer = evtimer_new(base, on_timer, so);
    so->fail_ev = event_new(base, -1, 0, on_fail_event, so);
    if (so->timer == NULL || so->fail_ev == NULL)
        fatalx("smtp_out: cannot create events");
    reply_parser_init(&so->rp);
    sbuf_init(&so->held);
    sbuf_init(&so->wbuf);
    so->seq = 1;
    return so;
}

void smtp_out_set_cbs(struct smtp_out *so, const struct smtp_out_cbs *cbs, void *arg)
{
    so->cbs = *cbs;
    so->arg = arg;
}

/* so_destroy - release everything; the connection closes without QUIT */
static void so_destroy(struct smtp_out *so)
{
    if (so->quitting)
        links_quitting--;
    so_free_bev(so);
    event_free(so->timer);
    event_free(so->fail_ev);
    if (so->local_ev)
        event_free(so->local_ev);
    so_queue_free(so);
    reply_parser_free(&so->rp);
    sbuf_free(&so->held);
    sbuf_free(&so->wbuf);
    smtp_reply_free(&so->data_refusal);
    smtp_reply_free(&so->fail_reply);
    dns_tlsa_free(so->tlsa, so->opts.ntlsa);
    free(so->tlsa);
    free(so->helo);
    free(so);
}

void so_destroy_or_defer(struct smtp_out *so)
{
    so->quiet = true;
    if (so->busy > 0)
        so->zombie = true;
    else
        so_destroy(so);
}

void smtp_out_free(struct smtp_out *so)
{
    if (so)
        so_destroy_or_defer(so);
}

/* so_note_quitting - QUIT is on its way: count the object until it is destroyed */
void so_note_quitting(struct smtp_out *so)
{
    if (!so->quitting) {
        so->quitting = true;
        links_quitting++;
    }
}

/* smtp_out_drain - let every QUIT in flight finish: each has a reply or a timer coming, so
 * the loop always makes progress */
void smtp_out_drain(struct event_base *base)
{
    while (links_quitting > 0)
        if (event_base_loop(base, EVLOOP_ONCE) != 0)
            break;
}

/* leave - end of a callback section: destroy if the caller freed us meanwhile */
static void leave(struct smtp_out *so)
{
    if (--so->busy == 0 && so->zombie)
        so_destroy(so);
}

void so_write(struct smtp_out *so, const void *p, size_t n)
{
    if (so->bev && n && bufferevent_write(so->bev, p, n) != 0)
        so_fail(so, SOF_LOST, NULL, "cannot write to the connection");
}

void so_arm_timer(struct smtp_out *so, unsigned seconds, const char *waiting_for)
{
    struct timeval tv = { seconds ? (time_t)seconds : 1, 0 };
    so->waiting_for = waiting_for;
    so->armed_seq = 0;
    evtimer_add(so->timer, &tv);
}

void so_stop_timer(struct smtp_out *so)
{
    evtimer_del(so->timer);
    so->armed_seq = 0;
    so->waiting_for = NULL;
}

void so_fail(struct smtp_out *so, enum so_fail kind, const struct smtp_reply *r, const char *fmt, ...)
{
    if (so->state == SO_DEAD)
        return;
    if (so->state == SO_QUITTING || so->quiet) {
        so->state = SO_DEAD;
        so_destroy_or_defer(so);
        return;
    }
    so->state = SO_DEAD;
    so->fail.kind = kind;
    va_list ap;
    va_start(ap, fmt);
    str_vfmt(so->fail.text, sizeof(so->fail.text), fmt, ap);
    va_end(ap);
    if (r) {
        smtp_reply_copy(&so->fail_reply, r);
        so->has_fail_reply = true;
    }
    so->fail.reply = so->has_fail_reply ? &so->fail_reply : NULL;
    so_stop_timer(so);
    so_free_bev(so);
    event_active(so->fail_ev, EV_TIMEOUT, 0);
}

/* on_fail_event - report the failure to the caller */
static void on_fail_event(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_out *so = arg;
    (void)fd;
    (void)what;
    so->busy++;
    if (!so->quiet && so->cbs.failed)
        so->cbs.failed(so->arg, so, &so->fail);
    leave(so);
}

/* on_timer - whatever we were waiting for did not come */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_out *so = arg;
    (void)fd;
    (void)what;
    so->busy++;
    switch (so->state) {
    case SO_CONNECTING:
        so->fail.sys_errno = ETIMEDOUT;
        so_fail(so, SOF_CONNECT, NULL, "Connection timed out");
        break;
    case SO_QUITTING:
        so->state = SO_DEAD;
        so_destroy_or_defer(so);
        break;
    case SO_HANDSHAKE:
        so_tls_failed(so, "TLS handshake timed out");
        break;
    default:
        so_fail(so, SOF_TIMEOUT, NULL, "timed out waiting for %s",
                so->waiting_for ? so->waiting_for : "a reply");
        break;
    }
    leave(so);
}

/* dispatch - one complete reply: to the session phases, or to the command queue */
static void dispatch(struct smtp_out *so, const struct smtp_reply *r)
{
    if (so->state == SO_READY || so->state == SO_QUITTING)
        so_cmd_reply(so, r);
    else if (!so_session_reply(so, r))
        so_fail(so, SOF_PROTOCOL, r, "unexpected reply in state %s", so_state_name(so->state));
}

/* on_read - parse every complete reply in the input, in order */
static void on_read(struct bufferevent *bev, void *arg)
{
    struct smtp_out *so = arg;
    (void)bev;
    so->busy++;
    while (!so->zombie && so->bev && so->state != SO_DEAD && so->state != SO_HANDSHAKE) {
        struct evbuffer *in = bufferevent_get_input(so->bev);
        struct evbuffer_iovec v;
        if (evbuffer_get_length(in) == 0 || evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        enum reply_status st;
        size_t used = reply_parse(&so->rp, v.iov_base, v.iov_len, &st);
        evbuffer_drain(in, used);
        if (st == REPLY_ERROR) {
            so_fail(so, SOF_PROTOCOL, NULL, "malformed reply from remote host: %s",
                    so->rp.error ? so->rp.error : "?");
        } else if (st == REPLY_DONE) {
            dispatch(so, &so->rp.reply);
            reply_parser_next(&so->rp);
        }
    }
    leave(so);
}

/* on_write - output drained to the low-water mark: resume a paused body, extend the timer */
static void on_write(struct bufferevent *bev, void *arg)
{
    struct smtp_out *so = arg;
    (void)bev;
    so->busy++;
    so_write_progress(so);
    leave(so);
}

/* lost - the connection broke: "Connection reset by peer", "Remote host closed connection" */
static void lost(struct smtp_out *so, short what)
{
    int err = EVUTIL_SOCKET_ERROR();
    const char *when = so->state == SO_READY ? so_head_name(so) : so_state_name(so->state);
    so->fail.sys_errno = (what & BEV_EVENT_ERROR) ? err : 0;
    if ((what & BEV_EVENT_ERROR) && err != 0)
        so_fail(so, SOF_LOST, NULL, "%s (in response to %s)", strerror(err), when);
    else
        so_fail(so, SOF_LOST, NULL, "Remote host closed connection in response to %s", when);
}

/* on_event - connected, handshake done, end of file, errors, write stalls */
static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct smtp_out *so = arg;
    so->busy++;
    if (what & BEV_EVENT_CONNECTED) {
        if (so->state == SO_CONNECTING) {
            so->direct = bev_direct_new(bev);
            so_session_start(so);
        }
        else if (so->state == SO_HANDSHAKE)
            so_tls_connected(so);
    } else if (so->state == SO_QUITTING) {
        so->state = SO_DEAD;
        so_destroy_or_defer(so);
    } else if (so->state == SO_CONNECTING) {
        int err = EVUTIL_SOCKET_ERROR();
        so->fail.sys_errno = err ? err : ECONNREFUSED;
        so_fail(so, SOF_CONNECT, NULL, "%s", strerror(so->fail.sys_errno));
    } else if (so->state == SO_HANDSHAKE) {
        char why[200];
        so_tls_error_text(so, why, sizeof(why));
        so_tls_failed(so, why);
    } else if (what & BEV_EVENT_TIMEOUT) {
        so_fail(so, SOF_TIMEOUT, NULL, "timed out sending data");
    } else {
        lost(so, what);
    }
    leave(so);
}

/* so_free_bev - close the connection (the TLS filter frees its socket layer and SSL) */
void so_free_bev(struct smtp_out *so)
{
    if (so->counted_open)
        gauge_add(G_ONWARD_OPEN, -1);
    so->counted_open = false;
    bev_direct_detach(&so->direct);
    if (so->bev)
        bufferevent_free(so->bev);
    so->bev = NULL;
    so->ssl = NULL;
}

void so_install_bev(struct smtp_out *so, struct bufferevent *bev)
{
    so->bev = bev;
    bufferevent_setcb(bev, on_read, on_write, on_event, so);
    bufferevent_setwatermark(bev, EV_WRITE, SO_BODY_LOW, 0);
    struct timeval wtv = { so->opts.data_timeout ? (time_t)so->opts.data_timeout : 300, 0 };
    bufferevent_set_timeouts(bev, NULL, &wtv);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* start_connect - a non-blocking connect to the hop's address */
static void start_connect(struct smtp_out *so)
{
    so->state = SO_CONNECTING;
    so_arm_timer(so, so->opts.connect_timeout, "connection");
    int fd = socket(so->hop.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        so->fail.sys_errno = errno;
        so_fail(so, SOF_CONNECT, NULL, "%s", strerror(errno));
        return;
    }
    metric_inc(M_ONWARD_OPENED);
    if (!so->counted_open)
        gauge_add(G_ONWARD_OPEN, 1);
    so->counted_open = true;
    int one = 1;   /* commands are written whole: Nagle would only add delayed-ACK stalls */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct bufferevent *bev = bufferevent_socket_new(so->base, fd,
                                                     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (bev == NULL) {
        close(fd);
        so_fail(so, SOF_CONNECT, NULL, "cannot create a connection buffer");
        return;
    }
    so_install_bev(so, bev);
    if (bufferevent_socket_connect(bev, (struct sockaddr *)&so->hop.addr, (int)so->hop.addrlen) < 0) {
        so->fail.sys_errno = errno ? errno : ECONNREFUSED;
        so_fail(so, SOF_CONNECT, NULL, "%s", strerror(so->fail.sys_errno));
    }
}

void smtp_out_connect(struct smtp_out *so)
{
    if (so->state != SO_NEW)
        fatalx("smtp_out_connect: already connected (%s)", so_state_name(so->state));
    start_connect(so);
}

void so_reconnect(struct smtp_out *so)
{
    so_free_bev(so);
    reply_parser_free(&so->rp);
    reply_parser_init(&so->rp);
    so->exts = 0;
    so->size_limit = 0;
    so->tls_on = so->tls_verified = false;
    so->tls_info[0] = '\0';
    start_connect(so);
}

bool smtp_out_is_ready(const struct smtp_out *so)
{
    return so->state == SO_READY && so->qhead == so->qlen && !so->in_txn &&
           so->dphase == DP_NONE && !so->body_open;
}

unsigned smtp_out_exts(const struct smtp_out *so)
{
    return so->exts;
}

uint64_t smtp_out_size_limit(const struct smtp_out *so)
{
    return so->size_limit;
}

const struct next_hop *smtp_out_hop(const struct smtp_out *so)
{
    return &so->hop;
}

const char *smtp_out_tls_info(const struct smtp_out *so)
{
    return so->tls_on ? so->tls_info : NULL;
}

bool smtp_out_tls_verified(const struct smtp_out *so)
{
    return so->tls_on && so->tls_verified;
}

bool smtp_out_tls_fell_back(const struct smtp_out *so)
{
    return so->tls_fell_back;
}

void smtp_out_set_auth(struct smtp_out *so, enum tls_auth auth, bool show_auth)
{
    so->opts.auth = auth;
    so->opts.show_auth = show_auth;
}

void smtp_out_log_auth(const struct smtp_out *so, char *buf, size_t sz)
{
    if (so->opts.show_auth)
        str_fmt(buf, sz, " TA=%s", tls_auth_name(so->opts.auth));
    else if (sz)
        buf[0] = '\0';
}

void smtp_out_log_host(const struct smtp_out *so, char *buf, size_t sz)
{
    char h[400];
    hop_log_text(&so->hop, h, sizeof(h));
    str_fmt(buf, sz, "H=%s", h);
}
