/* smtp_in_verify.c - `verify =` for SMTP sessions: routability of senders and recipients.
 * Callouts are not available yet: a callout verification defers. */
#include "smtp_in.h"
#include "verify.h"

#include <string.h>

#include "conf.h"
#include "server.h"

/* verify_address - an address verifies when its domain has a route */
static enum verify_result verify_address(struct smtp_session *s, const char *addr, const char **reply)
{
    char local[ADDR_PATH_MAX + 1], domain[ADDR_DOMAIN_MAX + 1];
    if (addr[0] == '\0')
        return VERIFY_OK; /* the null sender */
    if (!addr_split(addr, local, sizeof(local), domain, sizeof(domain)) ||
        conf_route_for(s->srv->conf, domain) == NULL) {
        *reply = "550 5.1.2 Unrouteable address";
        return VERIFY_FAIL;
    }
    return VERIFY_OK;
}

void smtp_verify_start(void *arg, struct acl_run *run, enum verify_what what,
                       const struct callout_opts *opts)
{
    struct smtp_session *s = arg;
    const char *reply = NULL;
    enum verify_result res = VERIFY_OK;
    if (what == VERIFY_RECIPIENT && s->txn)
        res = verify_address(s, s->txn->pending_rcpt.rcpt, &reply);
    else if (what == VERIFY_SENDER && s->txn)
        res = verify_address(s, s->txn->env.sender, &reply);
    if (res == VERIFY_OK && opts->enabled) {
        res = VERIFY_DEFER;
        reply = "451 4.4.3 Could not complete recipient verify callout";
    }
    acl_verify_done(run, res, reply);
}
