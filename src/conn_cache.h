/* conn_cache.h - idle outbound SMTP connections kept for the next message to the same next
 * hop (address, port, TLS policy and name), for a short idle time.  A connection is put here
 * only between transactions (smtp_out_is_ready); whoever takes one sends RSET first and treats
 * a failure of that RSET as a stale connection, not as the host's fault. */
#ifndef TANDEM_CONN_CACHE_H
#define TANDEM_CONN_CACHE_H

#include <stddef.h>

struct event_base;
struct next_hop;
struct smtp_out;
struct conn_cache;

#define CONN_CACHE_IDLE 10  /* seconds an idle connection is kept */
#define CONN_CACHE_MAX 32   /* connections kept at most (the oldest is closed first) */

struct conn_cache *conn_cache_new(struct event_base *base, unsigned idle_seconds, size_t max);
/* Close every cached connection (QUIT) and free the cache. */
void conn_cache_free(struct conn_cache *cc);

/* Keep so (ready, idle) for reuse; the cache owns it from now on and QUITs it after the idle
 * time or when full.  A connection that is not ready is QUIT instead. */
void conn_cache_put(struct conn_cache *cc, struct smtp_out *so);
/* A cached connection to hop (same address, port, TLS policy and name), or NULL.  The caller
 * owns it and must install its callbacks (smtp_out_set_cbs) before anything else. */
struct smtp_out *conn_cache_take(struct conn_cache *cc, const struct next_hop *hop);
size_t conn_cache_count(const struct conn_cache *cc);

#endif
