/* acl_int.h - what the ACL evaluator (acl.c) shares with its asynchronous conditions
 * (acl_cond.c: dnslists, ratelimit, spam). */
#ifndef TANDEM_ACL_INT_H
#define TANDEM_ACL_INT_H

#include "policy.h"

enum acl_cond_result { ACL_COND_TRUE, ACL_COND_FALSE, ACL_COND_DEFER };

/* A condition in progress: cancel(handle) withdraws it (its result must then never come). */
struct acl_pending {
    void (*cancel)(void *handle);
    void *handle;
};

/* acl_cond.c: start the run's current condition; its result comes through acl_cond_done,
 * possibly before this returns; *p is filled in if it can be cancelled meanwhile. */
void acl_cond_start(struct acl_run *r, const struct acl_item *it, struct acl_pending *p);

/* acl.c: the current condition finished (not negated yet): go on with the ACL. */
void acl_cond_done(struct acl_run *r, enum acl_cond_result res);
/* The run's variables (a copy of value is kept; NULL clears) and what the session gave it. */
void acl_run_set_var(struct acl_run *r, enum acl_var v, const char *value);
const char *acl_run_var(const struct acl_run *r, enum acl_var v);
const struct acl_env *acl_run_env(const struct acl_run *r);
enum acl_stage acl_run_stage(const struct acl_run *r);
/* The condition being evaluated. */
const struct acl_item *acl_run_current_item(const struct acl_run *r);
/* Expand text with the run's variables into out. */
void acl_run_expand(const struct acl_run *r, const struct acl_text *t, struct sbuf *out);

#endif
