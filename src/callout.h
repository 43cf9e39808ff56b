/* callout.h - recipient (and sender) verification by asking the next hop: connect, EHLO,
 * MAIL, RCPT, then QUIT — or keep the connection for cutthrough.  Results are cached in the
 * hints database (callout_cache.h) with the reason, and the number of callouts in flight to
 * one next hop is bounded. */
#ifndef TANDEM_CALLOUT_H
#define TANDEM_CALLOUT_H

#include <stdbool.h>

#include "acl_eval.h"
#include "route.h"
#include "upstream.h"

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

#endif
