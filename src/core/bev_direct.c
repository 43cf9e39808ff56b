/* bev_direct.c - write a plain socket bufferevent's output without arming EV_WRITE */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "core.h"

struct bev_direct {
    struct bufferevent *bev;
    struct event *flush_ev;          /* active once output waits to be written */
    struct evbuffer_cb_entry *watch; /* on the output buffer */
    bool scheduled;
};

/* writing_armed - libevent is writing for us (the kernel refused part of the output) */
static bool writing_armed(const struct bev_direct *d)
{
    return (bufferevent_get_enabled(d->bev) & EV_WRITE) != 0;
}

/* output_changed - schedule a flush for new output; hand writing back to us once libevent
 * has emptied the buffer */
static void output_changed(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct bev_direct *d = arg;
    if (writing_armed(d)) {
        if (info->n_deleted > 0 && evbuffer_get_length(buf) == 0)
            bufferevent_disable(d->bev, EV_WRITE);
        return;
    }
    if (info->n_added > 0 && !d->scheduled) {
        d->scheduled = true;
        event_active(d->flush_ev, EV_WRITE, 1);
    }
}

/* send_some - hand the kernel as much of the output as it takes now, without SIGPIPE;
 * returns the byte count, 0 if the socket is full, -1 (errno set) if the connection failed */
static ssize_t send_some(struct evbuffer *out, int fd)
{
    struct evbuffer_iovec ev[16];
    struct iovec iov[16];
    int n = evbuffer_peek(out, -1, NULL, ev, 16);
    if (n > 16)
        n = 16;
    for (int i = 0; i < n; i++) {
        iov[i].iov_base = ev[i].iov_base;
        iov[i].iov_len = ev[i].iov_len;
    }
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
    ssize_t r = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    evbuffer_unfreeze(out, 1);               /* libevent keeps the front frozen between writes */
    evbuffer_drain(out, (size_t)r);
    evbuffer_freeze(out, 1);
    return r;
}

/* flush_cb - end of the loop iteration: write what was added, arm EV_WRITE for any rest;
 * then tell the owner what libevent would have told it (drained, or a write error) */
static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct bev_direct *d = arg;
    struct bufferevent *bev = d->bev;
    struct evbuffer *out = bufferevent_get_output(bev);
    (void)fd;
    (void)what;
    d->scheduled = false;
    if (writing_armed(d) || evbuffer_get_length(out) == 0)
        return;
    ssize_t r = send_some(out, bufferevent_getfd(bev));
    bufferevent_data_cb wcb = NULL;
    bufferevent_event_cb ecb = NULL;
    void *cbarg = NULL;
    bufferevent_getcb(bev, NULL, &wcb, &ecb, &cbarg);
    if (r < 0) {
        if (ecb)
            ecb(bev, BEV_EVENT_WRITING | BEV_EVENT_ERROR, cbarg);   /* errno tells why */
        return;
    }
    if (evbuffer_get_length(out) > 0) {
        bufferevent_enable(bev, EV_WRITE);   /* the socket is full: libevent writes the rest */
        return;
    }
    if (wcb)
        wcb(bev, cbarg);                     /* last: it may free the bufferevent and us */
}

struct bev_direct *bev_direct_new(struct bufferevent *bev)
{
    struct bev_direct *d = xcalloc(1, sizeof(*d));
    d->bev = bev;
    d->flush_ev = event_new(bufferevent_get_base(bev), -1, 0, flush_cb, d);
    d->watch = evbuffer_add_cb(bufferevent_get_output(bev), output_changed, d);
    if (d->flush_ev == NULL || d->watch == NULL)
        fatalx("bev_direct_new: out of memory");
    bufferevent_disable(bev, EV_WRITE);
    if (evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
        d->scheduled = true;
        event_active(d->flush_ev, EV_WRITE, 1);
    }
    return d;
}

void bev_direct_detach(struct bev_direct **dp)
{
    struct bev_direct *d = *dp;
    if (d == NULL)
        return;
    struct evbuffer *out = bufferevent_get_output(d->bev);
    evbuffer_remove_cb_entry(out, d->watch);
    event_free(d->flush_ev);
    if (evbuffer_get_length(out) > 0)
        bufferevent_enable(d->bev, EV_WRITE);   /* libevent writes what is still buffered */
    free(d);
    *dp = NULL;
}
