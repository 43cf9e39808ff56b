/* dns/dns.h - the contract of asynchronous DNS (libunbound on the caller's event loop) and of the
 * pure parsers of its answers.  May include: core. */
#ifndef TANDEM_DNS_H
#define TANDEM_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- dns: asynchronous DNS (libunbound on the caller's libevent loop): MX and address lookups.
 * `dns_servers` in the configuration selects forwarders (tests run a DNS server on loopback). */

struct event_base;
struct dns_ctx;
struct dns_query;

enum dns_status {
    DNS_OK,
    DNS_NXDOMAIN,  /* the name does not exist */
    DNS_NODATA,    /* the name exists but has no records of the type */
    DNS_TEMPFAIL,  /* SERVFAIL, timeout, resolver trouble: always temporary */
};

struct dns_mx {
    char host[256];     /* lower-case, no trailing dot; "" for RFC 7505 null MX (".") */
    unsigned pref;
};

/* The DNSSEC status of an answer.  Validated only with a trust anchor (dns_new); without one
 * every answer is DNS_INSECURE.  A bogus answer is never given: its status is DNS_TEMPFAIL. */
enum dns_security { DNS_INSECURE = 0, DNS_SECURE, DNS_BOGUS };

/* MX and address answers come with their DNSSEC status: DNS_SECURE when every answer they are
 * made of (A and AAAA both, for addresses; NODATA and NXDOMAIN included) was validated;
 * DNS_INSECURE for IP literals. */
typedef void (*dns_mx_cb)(void *arg, enum dns_status st, enum dns_security sec,
                          const struct dns_mx *mx, size_t n);
typedef void (*dns_addr_cb)(void *arg, enum dns_status st, enum dns_security sec,
                            const struct sockaddr_storage *addrs, size_t n);

/* A resolver on base: forwarders servers ("ip[:port]", NULL-terminated; NULL = the system's
 * resolv.conf), DNSSEC validation with trust_anchor (a file; NULL = none). */
struct dns_ctx *dns_new(struct event_base *base, char *const *servers, const char *trust_anchor);
void dns_free(struct dns_ctx *d);
/* The event loop the context runs on. */
struct event_base *dns_base(const struct dns_ctx *d);
/* This machine's addresses (cached briefly); *out stays valid until the next call. */
size_t dns_local_addrs(struct dns_ctx *d, const struct sockaddr_storage **out);

/* Start a lookup; the callback runs later from the event loop (never before this returns).
 * The returned handle may be cancelled until the callback has run. */
struct dns_query *dns_lookup_mx(struct dns_ctx *d, const char *domain, dns_mx_cb cb, void *arg);
/* A and AAAA together (IPv4 first); the port of the returned addresses is 0. */
struct dns_query *dns_lookup_addr(struct dns_ctx *d, const char *host, dns_addr_cb cb, void *arg);
/* The reverse-DNS (PTR) name of an IP address (the first one given; "" if none). */
typedef void (*dns_ptr_cb)(void *arg, enum dns_status st, const char *name);
struct dns_query *dns_lookup_ptr(struct dns_ctx *d, const char *ip, dns_ptr_cb cb, void *arg);
/* Any record type (ns_t_txt, ns_t_tlsa, ...): the answer packet as it came, for the caller's
 * own parser (dns_parse_*), with its DNSSEC status.  pkt is NULL unless st is DNS_OK, and valid
 * during the callback only.  A bogus answer is never given: it is DNS_TEMPFAIL with sec
 * DNS_BOGUS. */
typedef void (*dns_raw_cb)(void *arg, enum dns_status st, enum dns_security sec,
                           const unsigned char *pkt, size_t len);
struct dns_query *dns_lookup_raw(struct dns_ctx *d, const char *name, int rrtype, dns_raw_cb cb,
                                 void *arg);
void dns_cancel(struct dns_query *q);

const char *dns_status_name(enum dns_status st);

/* ---- dns_parse: pure parsing of DNS answer packets (wire format) into MX and address lists.
 * Untrusted input: every length is checked; anything malformed is DNS_TEMPFAIL. */

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

/* ---- dns_rr: pure parsing of TLSA (RFC 6698) and TXT answers, for dns_lookup_raw's packets.
 * Untrusted input, as above: a malformed answer yields no records and DNS_TEMPFAIL. */

#define DNS_TLSA_MAX 16          /* TLSA records kept per name */
#define DNS_TLSA_DATA_MAX 8192   /* longest association data kept (a whole certificate) */

struct dns_tlsa {
    uint8_t usage, selector, mtype;
    size_t len;
    unsigned char *data;         /* len bytes, malloc'd: dns_tlsa_free */
};

/* TLSA records of an answer, at most max, in answer order.  A record shorter than its three
 * fixed fields is malformed; one whose data is longer than DNS_TLSA_DATA_MAX is skipped (so
 * DNS_OK may come with *n == 0: records exist, none kept). */
enum dns_status dns_parse_tlsa(const unsigned char *pkt, size_t len, struct dns_tlsa *out,
                               size_t max, size_t *n);
void dns_tlsa_free(struct dns_tlsa *t, size_t n);
/* A copy of src with its own data (dns_tlsa_free). */
void dns_tlsa_copy(struct dns_tlsa *dst, const struct dns_tlsa *src);

#define DNS_TXT_MAX 8            /* TXT records kept per name */
#define DNS_TXT_LEN 1024         /* bytes kept of one record (its strings joined) */

struct dns_txt {
    char text[DNS_TXT_LEN];      /* the character-strings joined (RFC 7208 3.3), NUL-terminated */
    size_t len;                  /* bytes in text (it may hold NUL bytes of its own) */
    bool truncated;              /* longer than DNS_TXT_LEN - 1: text is its beginning */
};

/* TXT records of an answer, at most max, in answer order. */
enum dns_status dns_parse_txt(const unsigned char *pkt, size_t len, struct dns_txt *out,
                              size_t max, size_t *n);

/* ---- dns_name: names built from addresses. */

/* The address reversed for a DNS lookup, without a suffix: "4.3.2.1" for 1.2.3.4, 32
 * dot-separated nibbles for IPv6 (RFC 3596).  False if ip is not an address or out too small. */
bool dns_reversed_ip(const char *ip, char *out, size_t sz);

#endif
