/* acl.h - access control lists in their compiled form, built by the config parser
 * (evaluation: acl_eval.h). */
#ifndef TANDEM_ACL_H
#define TANDEM_ACL_H

#include <stdbool.h>
#include <stddef.h>

#include "list.h"
#include "util.h"


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

#endif
