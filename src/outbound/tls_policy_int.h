/* tls_policy_int.h - private state of the outbound TLS decision (outbound/outbound.h:
 * tls_policy): tls_policy.c (per next hop: DANE, else MTA-STS, else the route's policy),
 * mta_sts.c (a domain's MTA-STS policy: TXT record, cache, fetch), mta_sts_fetch.c (HTTPS
 * with libcurl's multi interface on the event loop), mta_sts_cache.c (the policy cache in the
 * hints) and mta_sts_parse.c (pure: the TXT record, the policy file, MX patterns). */
#ifndef TANDEM_TLS_POLICY_INT_H
#define TANDEM_TLS_POLICY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "outbound.h"

struct event_base;
struct dns_ctx;
struct hints;

#define STS_ID_MAX 32                 /* RFC 8461 3.1: 1*32(ALPHA / DIGIT) */
#define STS_MX_MAX 16                 /* mx patterns kept of one policy */
#define STS_MAX_AGE_MAX 31557600u     /* RFC 8461 3.2: about a year */
#define STS_BODY_MAX 65536            /* bytes of a policy file read at most */
#define STS_REFRESH 86400             /* a cached policy older than this is fetched again even
                                       * when the TXT id is unchanged (RFC 8461 5.1: refresh
                                       * before expiry, about once a day) */
#define STS_FETCH_TIMEOUT 60          /* seconds for the whole HTTPS fetch, at most */

enum sts_mode { STS_NONE = 0, STS_TESTING, STS_ENFORCE };

struct sts_policy {
    char id[STS_ID_MAX + 1];          /* the TXT record's id when it was fetched */
    enum sts_mode mode;
    uint32_t max_age;                 /* seconds, at most STS_MAX_AGE_MAX */
    char mx[STS_MX_MAX][254];         /* patterns, lower case: "mx.example", "*.example.net" */
    size_t nmx;
    int64_t fetched;                  /* when (seconds since the epoch) */
};

/* The per-process context (outbound.h: tlsp_new). */
struct tlsp {
    struct event_base *base;
    const struct conf *conf;
    struct dns_ctx *dns;
    struct hints *hints;
    struct sts_fetcher *fetcher;      /* made on the first fetch */
    struct sts_job *jobs;             /* policy fetches under way, one per domain */
};

/* ---- mta_sts_parse.c (pure) */

const char *sts_mode_name(enum sts_mode m);
/* The record begins with "v=STSv1" (records that do not are not MTA-STS's: RFC 8461 3.1). */
bool sts_txt_is_sts(const char *text, size_t len);
/* "v=STSv1; id=ID[; ext=value]...": the id (its first one); false if not of the grammar. */
bool sts_parse_txt(const char *text, size_t len, char id[STS_ID_MAX + 1]);
/* The policy file: mode, max_age, mx patterns into p (id and fetched left 0); false with a
 * reason in why if it is not a valid STSv1 policy. */
bool sts_parse_policy(const char *body, size_t len, struct sts_policy *p, char *why, size_t whysz);
/* Whether MX host name host matches one of p's patterns (RFC 8461 4.1). */
bool sts_mx_match(const struct sts_policy *p, const char *host);
/* The patterns as "a.example, *.example.net" for logs. */
void sts_mx_list(const struct sts_policy *p, char *buf, size_t sz);

/* ---- mta_sts_cache.c: policies in the hints ("mta-sts", key: the domain in lower case).
 * Lookups answer at once; a backend that answers later (Redis) turns them into callbacks
 * without changing the callers, which already continue from a callback (mta_sts.c). */

/* The cached policy of domain, expired or not; false if none (or unreadable). */
bool sts_cache_get(struct hints *h, const char *domain, struct sts_policy *p);
void sts_cache_put(struct hints *h, const char *domain, const struct sts_policy *p);
/* Whether p is still valid at now (fetched + max_age). */
bool sts_policy_fresh(const struct sts_policy *p, int64_t now);

/* ---- mta_sts_fetch.c: one HTTPS GET at a time per fetch, many at once per fetcher, on the
 * event loop (libcurl's multi interface driven by libevent): the name is resolved by the
 * caller (tandem's own resolver) and handed to curl; the certificate must be valid for the
 * name (PKIX, CA from tls_outbound_ca or the system store); no redirects, no proxies; the
 * answer must be 200 with text/plain of at most STS_BODY_MAX bytes. */

struct sts_fetcher;
struct sts_fetch;

/* body (len bytes, valid during the call) on success; else body NULL and err says why. */
typedef void (*sts_fetch_cb)(void *arg, const char *body, size_t len, const char *err);

struct sts_fetcher *sts_fetcher_new(struct event_base *base, const char *ca_file, unsigned timeout);
void sts_fetcher_free(struct sts_fetcher *f);
/* GET https://host/path from one of addrs (port 443); cb runs later from the loop. */
struct sts_fetch *sts_fetch_start(struct sts_fetcher *f, const char *host, const char *path,
                                  const struct sockaddr_storage *addrs, size_t naddrs,
                                  sts_fetch_cb cb, void *arg);
void sts_fetch_cancel(struct sts_fetch *x);

/* ---- mta_sts.c: the MTA-STS policy of a recipient domain (RFC 8461 3 and 5): the
 * `_mta-sts` TXT record, then the cached policy when its id is current, else a fetch (one per
 * domain at a time, shared by everyone waiting); a failed fetch or lookup falls back on the
 * cached policy while it is valid, else there is no policy. */

struct sts_lookup;

/* p NULL: no policy applies.  note: what happened, for logs and `tandem route` ("" if
 * nothing worth saying).  Both valid during the call only. */
typedef void (*sts_cb)(void *arg, const struct sts_policy *p, const char *note);

struct sts_lookup *sts_lookup_start(struct tlsp *t, const char *domain, sts_cb cb, void *arg);
void sts_lookup_cancel(struct sts_lookup *l);
/* Stop every fetch under way (tlsp_free). */
void sts_jobs_free(struct tlsp *t);

#endif
