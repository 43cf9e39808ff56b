/* verify.h - address and HELO verification for ACL `verify =` conditions. */
#ifndef TANDEM_VERIFY_H
#define TANDEM_VERIFY_H

#include "policy/policy.h"

/* The acl_hooks verify function of SMTP sessions (arg is the struct smtp_session). */
void smtp_verify_start(void *arg, struct acl_run *run, enum verify_what what,
                       const struct callout_opts *opts);

#endif
