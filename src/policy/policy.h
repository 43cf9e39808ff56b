/* policy/policy.h - the contract of policy: ACL evaluation, recipient callouts and their cache.
 * May include: core, smtp, conf, store, dns, route, outbound. */
#ifndef TANDEM_POLICY_H
#define TANDEM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "conf/conf.h"
#include "core/core.h"
#include "outbound/outbound.h"
#include "route/route.h"

/* ---- acl_eval: the resumable evaluator of compiled ACLs (conf/conf.h), used at each SMTP stage. */

struct event_base;

enum acl_result { ACL_ACCEPT, ACL_DENY, ACL_DEFER, ACL_DISCARD, ACL_DROP };
enum verify_result { VERIFY_OK, VERIFY_FAIL, VERIFY_DEFER };

/* What the ACL sees of the session; strings may be NULL when not yet known. */
struct acl_vars {
    const char *sender_host_address, *sender_helo_name, *sender_address;
    const char *local_part, *domain, *recipient; /* RCPT stage */
    const char *message_id, *primary_hostname;
    const char *sender_host_name; /* verified reverse-DNS name, for host-name patterns; NULL if none */
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
    bool verified_recipient_callout; /* a recipient callout ran (connection may be kept) */
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
const char *acl_stage_name(enum acl_stage s);

/* ---- callout: recipient (and sender) verification by asking the next hop: connect, EHLO,
 * MAIL, RCPT, then QUIT — or keep the connection for cutthrough.  Results are cached in the
 * hints database (policy/policy.h) with the reason, and the number of callouts in flight to
 * one next hop is bounded. */

struct hints;
struct callout;
struct callout_limiter;

struct callout_env {
    struct upstream_env up;
    struct hints *hints;               /* the callout cache; NULL = no cache */
    struct callout_limiter *limiter;   /* per-destination concurrency */
};

struct callout_req {
    const char *address;       /* the address to verify */
    const char *sender;        /* MAIL FROM of the callout ("" = <>) */
    struct callout_opts opts;  /* timeout, random, no_cache, ... */
    bool keep;                 /* keep the connection after an accepted RCPT (cutthrough) */
};

struct callout_outcome {
    enum verify_result result;
    char reply[700];           /* for the client on failure/deferral: "550 5.1.1 text" (lines
                                * separated by '\n'), sanitised */
    char log[700];             /* one line for logs */
    bool from_cache;
    bool accept_all;           /* the domain accepts any local part (random callout) */
    struct smtp_out *kept;     /* keep && OK: open connection, MAIL+RCPT done; caller owns */
    int rcpt_code;             /* the next hop's RCPT reply code, 0 if none */
};

typedef void (*callout_cb)(void *arg, struct callout_outcome *out);

/* Verify req->address against the hops of route (which must stay valid until cb runs).
 * cb always runs from the event loop, never inside callout_start. */
struct callout *callout_start(const struct callout_env *ce, const struct callout_req *req,
                              const struct route_result *route, callout_cb cb, void *arg);
void callout_cancel(struct callout *c);

struct callout_limiter *callout_limiter_new(unsigned max_per_host);
void callout_limiter_free(struct callout_limiter *l);

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

/* For `tandem callout-cache`: iterate every entry; purge all, or those of one domain. */
typedef void (*cc_each_fn)(void *arg, const struct cc_entry *e);
bool cc_each(struct hints *h, cc_each_fn fn, void *arg);
size_t cc_purge(struct hints *h, const char *domain);

#endif
