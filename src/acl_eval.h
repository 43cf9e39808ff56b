/* acl_eval.h - the resumable evaluator of compiled ACLs (acl.h), used at each SMTP stage. */
#ifndef TANDEM_ACL_EVAL_H
#define TANDEM_ACL_EVAL_H

#include <stdbool.h>
#include <stddef.h>

#include "acl.h"
#include "util.h"

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

#endif
