/* route_print.c - a routing result as text, one next hop a line (tandem route, tests). */
#include "route.h"

#include <string.h>

#include "core/core.h"

static const char *policy_name(enum tls_policy p)
{
    static const char *const names[] = { "unset", "none", "may", "encrypt", "verify", "dane" };
    return (size_t)p < ARRAY_LEN(names) ? names[p] : "?";
}

void route_result_print(FILE *f, const struct route_result *res)
{
    char err[600];
    if (res->status != ROUTE_OK) {
        int code;
        const char *ecode;
        route_status_reply(res->status, &code, &ecode);
        str_sanitize(err, sizeof(err), res->error, strlen(res->error));
        fprintf(f, "  status: %s (%d %s %s)\n", route_status_name(res->status), code, ecode, err);
        return;
    }
    fprintf(f, "  status: ok, %zu next hop%s\n", res->nhops, res->nhops == 1 ? "" : "s");
    for (size_t i = 0; i < res->nhops; i++) {
        const struct next_hop *h = &res->hops[i];
        char name[600];
        str_sanitize(name, sizeof(name), h->name, strlen(h->name));
        fprintf(f, "  host %s [%s] port=%u pref=%u tls=%s%s%s\n", name, h->ip, (unsigned)h->port,
                h->pref, policy_name(h->tls), h->is_literal ? " literal" : "",
                h->dnssec ? " dnssec" : "");
    }
}
