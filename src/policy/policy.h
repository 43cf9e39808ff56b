/* policy/policy.h - the contract of policy: ACL evaluation, recipient callouts and their cache.
 * May include: core, smtp, conf, store, dns, route, outbound. */
#ifndef TANDEM_POLICY_H
#define TANDEM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf/conf.h"
#include "core/core.h"
#include "outbound/outbound.h"
#include "route/route.h"

/* ---- acl_eval: the resumable evaluator of compiled ACLs (conf/conf.h), used at each SMTP stage. */

struct event_base;

enum acl_result { ACL_ACCEPT, ACL_DENY, ACL_DEFER, ACL_DISCARD, ACL_DROP };
enum verify_result { VERIFY_OK, VERIFY_FAIL, VERIFY_DEFER };

struct dnsl_cache;
struct rate_memo;
struct spam_scan;

/* What the policy conditions work with, owned by the session; a condition whose part is NULL
 * defers (dnslists, ratelimit) or fails as a scanner failure would (spam). */
struct acl_env {
    struct dnsl_cache *dnsl;     /* dnslists: the session's DNS list answers */
    struct rate_memo *rates;     /* ratelimit: the shared rates and the session's memory */
    struct spam_scan *spam;      /* spam: the message's scan (data ACL) */
    uint64_t message_size;       /* per_byte: the message's size, else MAIL's SIZE=, else 0 */
    unsigned nrcpts;             /* per_rcpt after RCPT: the accepted recipients */
};

/* What the ACL sees of the session; strings may be NULL when not yet known. */
struct acl_vars {
    const char *sender_host_address, *sender_helo_name, *sender_address;
    const char *local_part, *domain, *recipient; /* RCPT stage */
    const char *message_id, *primary_hostname;
    const char *sender_host_name; /* verified reverse-DNS name, for host-name patterns; NULL if none */
    const char *tls_in_cipher;    /* "TLS1.3:CIPHER:BITS" once TLS is up, else NULL */
    const struct acl_env *env;    /* NULL: no policy conditions can run */
};

struct acl_run;

/* Supplied by the SMTP session.  verify() starts a verification (possibly asynchronous) and
 * must eventually call acl_verify_done() exactly once, possibly before it returns. */
struct acl_hooks {
    void (*verify)(void *arg, struct acl_run *run, enum verify_what what,
                   const struct callout_opts *opts);
    /* Optional: acl_run_free() of a run whose verify is still outstanding calls this first;
     * the verification must then never call acl_verify_done(). */
    void (*cancel)(void *arg, struct acl_run *run);
};

/* The result of an evaluation: the verdict plus what modifiers collected. */
struct acl_outcome {
    enum acl_result result;
    char *message;       /* from `message`, expanded; NULL if none */
    char *log_message;   /* from `log_message`, expanded; NULL if none */
    char *verify_reply;  /* a failed verify's suggested reply "550 5.1.1 text" (may be multi-line
                          * with CRLF between lines); NULL if none */
    struct sbuf headers; /* add_header lines, each ending in CRLF */
    bool cutthrough;     /* control = cutthrough_delivery was reached */
    struct cutthrough_opts cut;
    bool verified_recipient_callout; /* a recipient callout ran in this evaluation */
    struct callout_opts callout;     /* ... and its options */
    char *rcpt_vouched_by;           /* a local recipients/local_parts list that has the recipient
                                        and let it through ("recipients = lsearch;/x (ACL line
                                        9)"), NULL if none: knowledge for cutthrough */
};

typedef void (*acl_done_fn)(void *arg, struct acl_run *run);

/* Start evaluating acl (NULL acl means: accept, except at RCPT where it means deny).
 * Returns true if the result is already known (done is NOT called), false if the evaluation
 * is pending on a verify or a delay, in which case done(arg, run) is called later. */
struct acl_run *acl_run_new(const struct acl *acl, enum acl_stage stage, const struct acl_vars *vars,
                            const struct acl_hooks *hooks, void *hook_arg, struct event_base *base,
                            acl_done_fn done, void *done_arg);
bool acl_run_start(struct acl_run *run);
void acl_verify_done(struct acl_run *run, enum verify_result res, const char *reply);
const struct acl_outcome *acl_run_outcome(const struct acl_run *run);
void acl_run_free(struct acl_run *run);
const char *acl_result_name(enum acl_result r);
/* Does the ACL set control = cutthrough_delivery anywhere (its options in *opts)? */
bool acl_has_cutthrough(const struct acl *acl, struct cutthrough_opts *opts);
/* Does any statement of acl (NULL: none) have an item of this kind? */
bool acl_uses(const struct acl *acl, enum acl_item_kind kind);
const char *acl_stage_name(enum acl_stage s);

/* ---- dnslist: the dnslists condition's lookups (policy/dnslist.c): all zones of a condition
 * at once through the process's resolver, answers kept for the session, timeouts and failures
 * logged and taken as "not listed" (unless +include_unknown / +defer_unknown). */

struct dns_ctx;
struct dnsl_check;

enum dnsl_verdict { DNSL_NOT_LISTED, DNSL_LISTED, DNSL_DEFER };
struct dnsl_result {
    enum dnsl_verdict verdict;
    const char *domain, *matched, *value, *text;  /* $dnslist_*: valid during the callback */
};
typedef void (*dnsl_cb)(void *arg, const struct dnsl_result *r);

struct dnsl_cache *dnsl_cache_new(struct dns_ctx *dns, unsigned timeout_seconds);
void dnsl_cache_free(struct dnsl_cache *c);
/* Look ip up in the zones of spec (which must stay valid until cb has run).  cb may run before
 * this returns, which then returns NULL; otherwise the check may be cancelled until cb runs. */
struct dnsl_check *dnsl_check_start(struct dnsl_cache *c, const struct dnsl_spec *spec,
                                    const char *ip, dnsl_cb cb, void *arg);
void dnsl_check_cancel(struct dnsl_check *k);

/* ---- rate_store: smoothed rates in the shared hints ("ratelimit"), read-modify-write in one
 * transaction; results through a callback (LMDB calls it at once; a networked backend later). */

struct hints;
#define HINTS_RATE_KEY_MAX 480   /* stored key: "PERIOD/per_x/KEY", shortened with a digest */

struct rate_event {
    double count, limit;
    unsigned period;
    enum rate_mode mode;         /* readonly: count nothing, store nothing */
    int64_t now_us;
};
struct rate_result {
    bool ok;                     /* false: the store is unavailable */
    bool over;                   /* rate >= limit */
    double rate;
};
typedef void (*rate_store_cb)(void *arg, const struct rate_result *r);
void rate_store_update(struct hints *h, const char *key, const struct rate_event *ev,
                       rate_store_cb cb, void *arg);
/* Exim's smoothing step (pure): the rate after an event of count, then_us being the time of
 * the stored rate (found false: none). */
double rate_next(double rate, int64_t then_us, bool found, double count, unsigned period,
                 int64_t now_us);

/* ---- ratelimit: the ratelimit condition (policy/ratelimit.c): what an event counts and the
 * session's memory of computed rates (per_conn for the connection, per_mail for the message). */

struct rate_memo *rate_memo_new(struct hints *h);
void rate_memo_free(struct rate_memo *m);
void rate_memo_new_message(struct rate_memo *m);   /* a new transaction */
void rate_memo_new_command(struct rate_memo *m);   /* a new ACL run */

struct rate_check_req {
    const struct ratelimit_spec *spec;
    enum acl_stage stage;
    const char *key;             /* the expanded KEY (the client's address by default) */
    uint64_t message_size;
    unsigned nrcpts;
};
struct rate_outcome {
    bool ok;                     /* false: the rate store is unavailable (the condition defers) */
    bool over;                   /* the condition is true */
    double rate;
};
typedef void (*rate_cb)(void *arg, const struct rate_outcome *o);
/* cb runs before this returns with the LMDB store (a Redis one will add a cancel). */
void ratelimit_check(struct rate_memo *m, const struct rate_check_req *q, rate_cb cb, void *arg);

/* ---- spam: the spam condition's scanner (rspamd's HTTP protocol, /checkv2): a per-process
 * client on the event loop (policy/spam_client.c, libcurl), one scan per message streamed as
 * the data arrives (policy/spam.c), the reply's parser (policy/spam_reply.c). */

struct spam_client;
#define SPAM_REPORT_MAX 1000
#define SPAM_RCPTS_MAX 1000      /* Rcpt headers sent at most */

struct spam_client *spam_client_new(struct event_base *base, const struct spamd_addr *addr);
void spam_client_free(struct spam_client *c);

struct spam_meta {
    const char *ip, *helo, *host_name, *sender, *queue_id, *mta_name;
    const char *const *rcpts;
    size_t nrcpts;
};
struct spam_verdict {
    double score, required;
    char action[32];
    char report[SPAM_REPORT_MAX]; /* one line: action, score, symbols */
    bool skipped;
};
struct spam_outcome {
    bool ok;                      /* a verdict came */
    bool timed_out;
    char why[200];                /* !ok: what went wrong */
    double seconds;               /* from the end of data to the verdict */
    struct spam_verdict v;
};
typedef void (*spam_cb)(void *arg, const struct spam_outcome *o);

/* Open the scan (drained(arg) is called, from the loop, when a paused session may read again). */
struct spam_scan *spam_scan_start(struct spam_client *c, const struct spam_meta *m,
                                  void (*drained)(void *arg), void *arg);
void spam_scan_feed(struct spam_scan *s, const char *p, size_t n);
/* Too much is waiting for the scanner: the caller stops reading until drained() is called. */
bool spam_scan_behind(struct spam_scan *s);
void spam_scan_end(struct spam_scan *s);
/* The verdict, through cb from the loop (the data is taken as ended). */
void spam_scan_result(struct spam_scan *s, spam_cb cb, void *arg);
void spam_scan_cancel_result(struct spam_scan *s);
void spam_scan_free(struct spam_scan *s);

/* Parse rspamd's JSON reply (pure; err says why not). */
bool spam_reply_parse(const char *body, size_t len, struct spam_verdict *v, char *err,
                      size_t errsz);
bool spam_is_spam(const struct spam_verdict *v);
void spam_vars(const struct spam_verdict *v, char score[32], char score_int[32], char bar[64]);

/* ---- callout: recipient (and sender) verification by asking the next hop: a connection from
 * the dialer (which bounds the connections to one host for the whole daemon), MAIL, RCPT, then
 * RSET and back to the pool.  Results are cached in the hints database with the reason. */

struct hints;
struct callout;

struct callout_env {
    struct dialer *dialer;             /* connections, the per-host limit, health */
    struct hints *hints;               /* the callout cache; NULL = no cache */
};

struct callout_req {
    const char *address;       /* the address to verify */
    const char *sender;        /* MAIL FROM of the callout ("" = <>) */
    struct callout_opts opts;  /* timeout, random, no_cache, ... */
};

struct callout_outcome {
    enum verify_result result;
    char reply[700];           /* for the client on failure/deferral: "550 5.1.1 text" (lines
                                * separated by '\n'), sanitised */
    char log[700];             /* one line for logs */
    bool from_cache;
    bool accept_all;           /* the domain accepts any local part (random callout) */
    int rcpt_code;             /* the next hop's RCPT reply code, 0 if none */
};

typedef void (*callout_cb)(void *arg, struct callout_outcome *out);

/* Verify req->address against the hops of route (which must stay valid until cb runs).
 * cb always runs from the event loop, never inside callout_start. */
struct callout *callout_start(const struct callout_env *ce, const struct callout_req *req,
                              const struct route_result *route, callout_cb cb, void *arg);
void callout_cancel(struct callout *c);
/* What the cache knows of address for these next hops (random: an accept-all domain counts),
 * as a callout's outcome; false if nothing. */
bool callout_cached(struct hints *h, const char *address, const struct route_result *route,
                    bool random, struct callout_outcome *out);


/* ---- callout_cache: callout results in the hints database, keyed per address (or domain, for
 * accept-all next hops) and per next-hop host, with the reason and an expiry time.  Only a
 * mailbox-class refusal is ever cached as "no such user". */

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

/* Remember what a next hop answered for key (an address, or a domain for accept-all) under
 * the "knows why" rule: a 2xx as accepted, a mailbox-class refusal (cc_is_mailbox_refusal) as
 * refused, anything else not at all.  True if something was stored. */
bool cc_learn(struct hints *h, const struct conf *c, enum cc_kind kind, const char *key,
              const char *host, const struct smtp_reply *r);

/* For `tandem callout-cache`: iterate every entry; purge all, or those of one domain. */
typedef void (*cc_each_fn)(void *arg, const struct cc_entry *e);
bool cc_each(struct hints *h, cc_each_fn fn, void *arg);
size_t cc_purge(struct hints *h, const char *domain);

/* ---- knowledge: what tandem knows of a recipient when its next hop cannot answer (every host
 * down, in its retry window or at its connection limit, no reply to RCPT): a local list the
 * RCPT ACL consulted that has the recipient (acl_outcome.rcpt_vouched_by: a lookup or a literal
 * list), else the callout cache (its entry for the address, or an accept-all domain).  The
 * answer comes through a callback: with LMDB before knowledge_ask returns, with a backend that
 * answers later (issue 15), later. */

enum know_verdict { KNOW_UNKNOWN, KNOW_VALID, KNOW_INVALID };

struct know_query {
    const char *address;
    const char *host;          /* route_hops_name of its next hops: the cache's host */
    const char *vouched_by;    /* acl_outcome.rcpt_vouched_by, or NULL */
    bool no_cache;             /* the recipient callout said no_cache */
};

struct know_result {
    enum know_verdict verdict;
    char source[200];          /* for the log: "callout cache", "recipients = lsearch;/x (ACL
                                  line 9)", "no local list, no cached callout" */
    char reply[400];           /* KNOW_INVALID: the known refusal, one line "550 5.1.1 ..." */
};

typedef void (*know_cb)(void *arg, const struct know_result *r);
void knowledge_ask(struct hints *h, const struct know_query *q, know_cb cb, void *arg);

#endif
