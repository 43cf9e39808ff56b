/* knowledge.c - what tandem knows of a recipient when its next hop cannot answer (see
 * policy/policy.h): a local list the ACL consulted that has it (a lookup, a literal list), then
 * the callout cache, fed by every callout and every verdict on a cutthrough link.  Nothing
 * here asks the network. */
#include "policy.h"

#include <string.h>

#include "core/core.h"
#include "store/store.h"

/* from_cache - the callout cache's entry for the address, or its domain's accept-all entry */
static bool from_cache(struct hints *h, const struct know_query *q, struct know_result *r)
{
    struct cc_entry e;
    const char *at = strrchr(q->address, '@');
    bool found = cc_get(h, CC_ADDRESS, q->address, q->host, &e);
    if (!found && at && cc_get(h, CC_DOMAIN_ACCEPT_ALL, at + 1, q->host, &e) && e.result == CC_ACCEPTED)
        found = true;
    if (!found)
        return false;
    r->verdict = e.result == CC_ACCEPTED ? KNOW_VALID : KNOW_INVALID;
    str_fmt(r->source, sizeof(r->source), "callout cache%s",
            e.kind == CC_DOMAIN_ACCEPT_ALL ? " (the domain accepts any local part)" : "");
    str_copy(r->reply, e.reason, sizeof(r->reply));
    return true;
}

void knowledge_ask(struct hints *h, const struct know_query *q, know_cb cb, void *arg)
{
    struct know_result r;
    memset(&r, 0, sizeof(r));
    r.verdict = KNOW_UNKNOWN;
    if (q->vouched_by) {
        r.verdict = KNOW_VALID;
        str_copy(r.source, q->vouched_by, sizeof(r.source));
    } else if (h == NULL || q->no_cache || !from_cache(h, q, &r)) {
        str_copy(r.source, "no local list, no cached callout", sizeof(r.source));
    }
    cb(arg, &r);
}
