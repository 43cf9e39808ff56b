/* acl_query.c - static questions about a compiled ACL. */
#include "policy.h"

/* acl_uses - does any statement of acl have an item of this kind? */
bool acl_uses(const struct acl *acl, enum acl_item_kind kind)
{
    for (size_t i = 0; acl != NULL && i < acl->n; i++)
        for (size_t j = 0; j < acl->stmts[i].n; j++)
            if (acl->stmts[i].items[j].kind == kind)
                return true;
    return false;
}

/* acl_has_cutthrough - does any statement set control = cutthrough_delivery?  (Then a
 * recipient callout in it is the RCPT mirrored on the cutthrough link, with the real sender.) */
bool acl_has_cutthrough(const struct acl *acl, struct cutthrough_opts *opts)
{
    if (acl == NULL)
        return false;
    for (size_t i = 0; i < acl->n; i++)
        for (size_t j = 0; j < acl->stmts[i].n; j++)
            if (acl->stmts[i].items[j].kind == MOD_CONTROL) {
                if (opts)
                    *opts = acl->stmts[i].items[j].cut;
                return true;
            }
    return false;
}
