/* acl.h - access control lists: the compiled form (built by the config parser) and the
 * resumable evaluator used at each SMTP stage. */
#ifndef TANDEM_ACL_H
#define TANDEM_ACL_H

#include <stdbool.h>
#include <stddef.h>

#include "list.h"
#include "util.h"

struct event_base;

enum acl_stage { ACL_CONNECT, ACL_HELO, ACL_MAIL, ACL_RCPT, ACL_PREDATA, ACL_DATA, ACL_NSTAGES };
enum acl_verb { VERB_ACCEPT, VERB_DENY, VERB_DEFER, VERB_DISCARD, VERB_DROP, VERB_REQUIRE, VERB_WARN };

/* The variables text may use; nothing else is ever evaluated. */
enum acl_var {
    VAR_LOCAL_PART, VAR_DOMAIN, VAR_SENDER_ADDRESS, VAR_SENDER_HOST_ADDRESS,
    VAR_SENDER_HELO_NAME, VAR_PRIMARY_HOSTNAME, VAR_MESSAGE_ID, VAR_ACL_VERIFY_MESSAGE, VAR_NVARS
};

/* Text with $variables, split at load time into literal and variable segments. */
struct acl_text_seg {
    bool is_var;
    enum acl_var var;
    char *literal;
};
struct acl_text {
    struct acl_text_seg *segs;
    size_t n;
};

enum verify_what { VERIFY_HELO, VERIFY_SENDER, VERIFY_RECIPIENT };

struct callout_opts {
    bool enabled;
    unsigned timeout;  /* seconds, 0 = callout_timeout */
    bool defer_ok, use_sender, use_postmaster, random, no_cache;
};

enum cut_defer { CUT_DEFER_SPOOL = 0, CUT_DEFER_PASS };
enum cut_split { CUT_SPLIT_DEFER = 0, CUT_SPLIT_SPOOL };
struct cutthrough_opts {
    enum cut_defer defer;
    enum cut_split split;
};

enum acl_item_kind {
    COND_HOSTS, COND_DOMAINS, COND_LOCAL_PARTS, COND_SENDERS, COND_RECIPIENTS, COND_VERIFY,
    MOD_MESSAGE, MOD_LOG_MESSAGE, MOD_LOGWRITE, MOD_ADD_HEADER, MOD_DELAY, MOD_CONTROL,
};

struct acl_item {
    enum acl_item_kind kind;
    bool negate;                 /* conditions only: "!domains = ..." */
    struct list list;            /* COND_HOSTS .. COND_RECIPIENTS */
    enum verify_what verify;     /* COND_VERIFY */
    struct callout_opts callout; /* COND_VERIFY */
    struct acl_text text;        /* MOD_MESSAGE, MOD_LOG_MESSAGE, MOD_LOGWRITE, MOD_ADD_HEADER */
    unsigned delay;              /* MOD_DELAY, seconds */
    struct cutthrough_opts cut;  /* MOD_CONTROL (control = cutthrough_delivery/...) */
    int line;
};

struct acl_stmt {
    enum acl_verb verb;
    struct acl_item *items;
    size_t n;
    int line;
};

struct acl {
    char *name;
    struct acl_stmt *stmts;
    size_t n;
    int line;
};

/* Free what acl holds (its name, statements, lists, texts), not acl itself. */
void acl_free(struct acl *acl);

/* ---- evaluation ---- */

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
