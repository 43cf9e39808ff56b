/* callout_cache.h - callout results in the hints database, keyed per address (or domain, for
 * accept-all next hops) and per next-hop host, with the reason and an expiry time.  Only a
 * mailbox-class refusal is ever cached as "no such user". */
#ifndef TANDEM_CALLOUT_CACHE_H
#define TANDEM_CALLOUT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct hints;

enum cc_kind { CC_ADDRESS = 'R', CC_DOMAIN_ACCEPT_ALL = 'D' };
enum cc_result { CC_ACCEPTED = 'a', CC_REFUSED = 'r' };

struct cc_entry {
    enum cc_kind kind;
    char key[300];        /* address or domain (lower-cased domain part) */
    char host[256];       /* next-hop host the result came from */
    enum cc_result result;
    time_t expires;
    char reason[400];     /* the next hop's reply, one line */
};

/* Would a refusal with this reply code and enhanced code mean "no such mailbox"?
 * (5.1.x, or a bare 550 at RCPT without an enhanced code.) */
bool cc_is_mailbox_refusal(int code, const char *ecode);

bool cc_get(struct hints *h, enum cc_kind kind, const char *key, const char *host, struct cc_entry *e);
bool cc_put(struct hints *h, const struct cc_entry *e);

/* For `tandem callout-cache`: iterate every entry; purge all, or those of one domain. */
typedef void (*cc_each_fn)(void *arg, const struct cc_entry *e);
bool cc_each(struct hints *h, cc_each_fn fn, void *arg);
size_t cc_purge(struct hints *h, const char *domain);

#endif
