/* route_hops.h - the pure parts of routing: building next hops from addresses, loops to self,
 * de-duplication, keys and names.  No I/O except route_local_addrs. */
#ifndef TANDEM_ROUTE_HOPS_H
#define TANDEM_ROUTE_HOPS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "route.h"

#define ROUTE_HOPS_MAX 64   /* next hops kept per result */

/* Fill h for address addr (port ignored) reached as name on port. */
void hop_fill(struct next_hop *h, const char *name, const struct sockaddr_storage *addr,
              uint16_t port, unsigned pref, bool literal, enum tls_policy tls);

/* Parse an IP literal ("192.0.2.7", "::1", optionally in brackets) into addr (port 0). */
bool route_parse_ip(const char *text, struct sockaddr_storage *addr);

/* Whether addr:port is one of tandem's own listeners: the same address and port, or a wildcard
 * listener (0.0.0.0, ::) on that port when addr is 127.0.0.1, ::1 or one of locals. */
bool route_is_self(const struct conf *c, const struct sockaddr_storage *addr, uint16_t port,
                   const struct sockaddr_storage *locals, size_t nlocals);

/* Drop hops that are ourselves and repeats of an earlier address:port; returns how many hops
 * were dropped as self (the array is compacted, *n updated). */
size_t route_filter_hops(const struct conf *c, struct next_hop *hops, size_t *n,
                         const struct sockaddr_storage *locals, size_t nlocals);

/* The policy a route gives its hops: tls=, else tls_outbound, else may. */
enum tls_policy route_tls_policy(const struct conf *c, const struct route *r);

/* The port for a hop spec: its own, else the route's port=, else remote_port (else 25). */
uint16_t route_hop_port(const struct conf *c, const struct route *r, uint16_t spec_port);

/* "ip:port", IPv6 as "[ip]:port" (the hints key of a next hop). */
void hop_addr_key(const struct next_hop *h, char *buf, size_t sz);

#endif
