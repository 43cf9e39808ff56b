/* proxy_in.c - a connection from a hosts_proxy host (a load balancer) begins with a PROXY
 * protocol header naming the real client.  It is read here, before any session exists, without
 * ever reading a byte past it (what follows may be a TLS handshake); then the connection limits
 * are applied to the client it names and the session starts as if the client had connected
 * directly.  No valid header within smtp_receive_timeout: the connection is closed and logged. */
#include "smtp_in.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "in.h"
#include "conf/conf.h"
#include "core/core.h"

struct proxy_wait {
    struct server *srv;
    int fd;
    bool implicit_tls;
    char proxy_ip[64];             /* the balancer, for logs */
    struct sockaddr_storage peer;  /* the balancer's connection */
    struct event *ev;
    uint64_t deadline_ms;          /* the whole header must arrive by then */
    size_t have;
    uint8_t buf[PROXY_V2_MAX];
};

/* wait_free - give up the connection (closing it unless handed on: fd < 0) */
static void wait_free(struct proxy_wait *w)
{
    if (w->fd >= 0)
        close(w->fd);
    event_free(w->ev);
    free(w);
}

/* wait_done - a valid header: the session starts for the client it names */
static void wait_done(struct proxy_wait *w, const struct proxy_hdr *h)
{
    struct server *srv = w->srv;
    const struct conf *c = srv->conf;
    const struct sockaddr *client = h->local ? (const struct sockaddr *)&w->peer
                                             : (const struct sockaddr *)&h->src;
    char ip[64];
    metric_inc(h->local ? M_PROXY_LOCAL : M_PROXY_OK);
    sockaddr_ip(client, ip, sizeof(ip));
    const char *why = srv->limits ? conn_limits_check(srv->limits, (unsigned)srv->worker_index,
                                                      ip, c->smtp_accept_max,
                                                      c->smtp_accept_max_per_host)
                                  : NULL;
    int fd = w->fd;
    w->fd = -1;
    if (why)
        server_refuse(fd, ip, why);
    else if (srv->shutting_down || srv->retiring)
        close(fd);
    else
        smtp_session_start(srv, fd, client, w->implicit_tls);
    wait_free(w);
}

/* wait_fail - no usable header: log why and close, sending nothing (the peer is a balancer) */
static void wait_fail(struct proxy_wait *w, const char *why)
{
    metric_inc(M_PROXY_BAD);
    log_reject("H=[%s] rejected connection: PROXY protocol: %s", w->proxy_ip, why);
    wait_free(w);
}

/* take_bytes - move the next header bytes from the socket into buf, never past the header's
 * end: peek, keep at most the header's remaining length (a v1 line up to its LF), consume
 * exactly that.  Returns false when the connection failed or closed (after logging). */
static bool take_bytes(struct proxy_wait *w)
{
    size_t room = proxy_read_limit(w->buf, w->have);
    if (room > sizeof(w->buf) - w->have)
        room = sizeof(w->buf) - w->have;
    if (room == 0) {
        wait_fail(w, "header too long");
        return false;
    }
    ssize_t n = recv(w->fd, w->buf + w->have, room, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return true;
    if (n <= 0) {
        log_reject("H=[%s] rejected connection: PROXY protocol: %s before a complete header",
                   w->proxy_ip, n == 0 ? "connection closed" : strerror(errno));
        metric_inc(M_PROXY_BAD);
        wait_free(w);
        return false;
    }
    size_t take = (size_t)n;
    if (w->buf[0] == 'P') {
        const uint8_t *lf = memchr(w->buf + w->have, '\n', take);
        if (lf)
            take = (size_t)(lf - (w->buf + w->have)) + 1;
    }
    if (recv(w->fd, w->buf + w->have, take, 0) != (ssize_t)take)
        fatal("recv of peeked PROXY header bytes");
    w->have += take;
    return true;
}

/* wait_cb - header bytes arrived, or the receive timeout passed */
static void wait_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_wait *w = arg;
    struct proxy_hdr h;
    const char *why;
    (void)fd;
    if (what & EV_TIMEOUT) {
        metric_inc(M_PROXY_BAD);
        log_reject("H=[%s] rejected connection: PROXY protocol: no complete header within %us",
                   w->proxy_ip, w->srv->conf->smtp_receive_timeout);
        wait_free(w);
        return;
    }
    if (!take_bytes(w))
        return;
    switch (proxy_parse(w->buf, w->have, &h, &why)) {
    case PROXY_OK:
        wait_done(w, &h);
        return;
    case PROXY_BAD:
        wait_fail(w, why);
        return;
    case PROXY_NEED_MORE:
        break;
    }
    uint64_t now = now_mono_ms();
    uint64_t left = w->deadline_ms > now ? w->deadline_ms - now : 0;
    struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000 };
    event_add(w->ev, &tv);   /* the timeout counts from the connection, not from each read */
}

/* proxy_wait_start - read a PROXY header from fd before its session starts */
void proxy_wait_start(struct server *srv, int fd, const struct sockaddr *peer, socklen_t peerlen,
                      bool implicit_tls)
{
    struct proxy_wait *w = xcalloc(1, sizeof(*w));
    struct timeval tv = { (time_t)srv->conf->smtp_receive_timeout, 0 };
    w->srv = srv;
    w->fd = fd;
    w->implicit_tls = implicit_tls;
    memcpy(&w->peer, peer, peerlen < sizeof(w->peer) ? peerlen : sizeof(w->peer));
    sockaddr_ip(peer, w->proxy_ip, sizeof(w->proxy_ip));
    fd_nonblock(fd);
    w->deadline_ms = now_mono_ms() + (uint64_t)srv->conf->smtp_receive_timeout * 1000;
    w->ev = event_new(srv->base, fd, EV_READ, wait_cb, w);
    if (w->ev == NULL)
        fatalx("event_new");
    event_add(w->ev, &tv);
}
