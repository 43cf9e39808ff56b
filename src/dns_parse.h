/* dns_parse.h - pure parsing of DNS answer packets (wire format) into MX and address lists.
 * Untrusted input: every length is checked; anything malformed is DNS_TEMPFAIL. */
#ifndef TANDEM_DNS_PARSE_H
#define TANDEM_DNS_PARSE_H

#include <stddef.h>
#include <sys/socket.h>

#include "dns.h"

#define DNS_MX_MAX 32     /* MX records kept per domain */
#define DNS_ADDR_MAX 16   /* addresses kept per name and family */

/* The status of an answer (NOERROR with records of rrtype, NODATA, NXDOMAIN, or TEMPFAIL for
 * SERVFAIL, REFUSED, truncation or a malformed packet). */
enum dns_status dns_parse_status(const unsigned char *pkt, size_t len, int rrtype);

/* MX records of an answer, at most max, in answer order: lower-cased, trailing dot removed,
 * the root "." as "". */
enum dns_status dns_parse_mx(const unsigned char *pkt, size_t len, struct dns_mx *out,
                             size_t max, size_t *n);

/* The first PTR name of an answer (lower-cased, no trailing dot). */
enum dns_status dns_parse_ptr(const unsigned char *pkt, size_t len, char *out, size_t outsz);

/* A (rrtype 1) or AAAA (rrtype 28) records of an answer, port 0. */
enum dns_status dns_parse_addr(const unsigned char *pkt, size_t len, int rrtype,
                               struct sockaddr_storage *out, size_t max, size_t *n);

/* Put mx[0..n) in the order to try them: ascending preference, equal preferences shuffled
 * with rnd (a function returning a uniform value below its argument; NULL = arc4random). */
void dns_mx_order(struct dns_mx *mx, size_t n, unsigned (*rnd)(unsigned below));

#endif
