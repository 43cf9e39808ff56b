/* acl_query.c - static questions about a compiled ACL. */
#include "policy.h"

/* acl_has_cutthrough - does any statement set control = cutthrough_delivery?  (Then a
 * recipient callout in it uses the real sender and keeps its connection.) */
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
