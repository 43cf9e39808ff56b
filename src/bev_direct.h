/* bev_direct.h - write a plain socket bufferevent's output without arming EV_WRITE */
#ifndef TANDEM_BEV_DIRECT_H
#define TANDEM_BEV_DIRECT_H

#include <event2/bufferevent.h>

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

#endif
