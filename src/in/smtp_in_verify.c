/* smtp_in_verify.c - `verify =` for SMTP sessions: HELO against the client's address, senders
 * and recipients by routing, and with /callout by asking the next hop.  In an ACL that sets
 * cutthrough_delivery, a recipient callout is the RCPT mirrored on the cutthrough link. */
#include "smtp_in.h"
#include "verify.h"

#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "in.h"
#include "conf/conf.h"
#include "dns/dns.h"
#include "policy/policy.h"
#include "route/route.h"

struct verify_job {
    struct smtp_session *s;
    struct acl_run *run;
    enum verify_what what;
    struct callout_opts opts;
    char address[ADDR_PATH_MAX + 1];
    struct route_query *rq;
    struct route_result *route;
    struct callout *co;
    struct dns_query *dq;
};

/* job_end - report the verdict to the ACL and forget the job */
static void job_end(struct verify_job *j, enum verify_result res, const char *reply)
{
    struct acl_run *run = j->run;
    j->s->verify_job = NULL;
    if (j->route)
        route_result_free(j->route);
    free(j);
    acl_verify_done(run, res, reply);
}

/* same_address - does a sockaddr hold the client's IP? */
static bool same_address(const struct sockaddr_storage *ss, const char *ip)
{
    char buf[64];
    const void *a = ss->ss_family == AF_INET ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                                             : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    return inet_ntop(ss->ss_family, a, buf, sizeof(buf)) && strcmp(buf, ip) == 0;
}

static void helo_looked_up(void *arg, enum dns_status st, enum dns_security sec,
                           const struct sockaddr_storage *addrs, size_t n)
{
    (void)sec;
    struct verify_job *j = arg;
    j->dq = NULL;
    if (st == DNS_TEMPFAIL) {
        job_end(j, VERIFY_DEFER, "451 4.4.3 Could not verify the HELO name (DNS)");
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (same_address(&addrs[i], j->s->peer_ip)) {
            job_end(j, VERIFY_OK, NULL);
            return;
        }
    job_end(j, VERIFY_FAIL, "550 5.7.1 HELO name does not match your IP address");
}

/* verify_helo - the HELO name must resolve to the client's address (or be its literal) */
static void verify_helo(struct verify_job *j)
{
    const char *helo = j->s->helo ? j->s->helo : "";
    char lit[80];
    if (helo[0] == '[') {
        str_fmt(lit, sizeof(lit), "[%s]", j->s->peer_ip);
        bool ok = strcmp(helo, lit) == 0 || (strncmp(helo, "[IPv6:", 6) == 0 &&
                  strncasecmp(helo + 6, j->s->peer_ip, strlen(j->s->peer_ip)) == 0);
        job_end(j, ok ? VERIFY_OK : VERIFY_FAIL, ok ? NULL : "550 5.7.1 HELO address literal is not yours");
        return;
    }
    if (j->s->srv->dns == NULL) {
        job_end(j, VERIFY_DEFER, "451 4.4.3 Could not verify the HELO name");
        return;
    }
    j->dq = dns_lookup_addr(j->s->srv->dns, helo, helo_looked_up, j);
}

static void callout_done(void *arg, struct callout_outcome *out)
{
    struct verify_job *j = arg;
    j->co = NULL;
    if (out->kept)
        smtp_out_quit(out->kept);
    job_end(j, out->result, out->result == VERIFY_OK ? NULL : out->reply);
}

/* start_callout - ask the next hop about the address */
static void start_callout(struct verify_job *j)
{
    struct smtp_session *s = j->s;
    const struct conf *c = s->srv->conf;
    char postmaster[300];
    struct callout_env ce = { { s->srv->base, c, s->srv->client_tls, s->srv->tlsp }, s->srv->hints,
                              s->srv->callout_limiter };
    struct callout_req req = { j->address, "", j->opts, false };
    if (j->what == VERIFY_RECIPIENT && j->opts.use_sender && s->txn)
        req.sender = s->txn->env.sender;
    else if (j->opts.use_postmaster) {
        str_fmt(postmaster, sizeof(postmaster), "postmaster@%s", c->hostname);
        req.sender = postmaster;
    }
    j->co = callout_start(&ce, &req, j->route, callout_done, j);
}

/* routed - the address's domain was routed: it verifies, fails, or goes on to a callout */
static void routed(void *arg, struct route_result *res)
{
    struct verify_job *j = arg;
    struct smtp_session *s = j->s;
    struct cutthrough_opts cut;
    j->rq = NULL;
    if (res->status != ROUTE_OK) {
        int code;
        const char *ecode;
        char reply[400];
        route_status_reply(res->status, &code, &ecode);
        str_fmt(reply, sizeof(reply), "%d %s %s", code, ecode,
                j->what == VERIFY_SENDER ? "Sender verify failed: unrouteable address"
                : res->status == ROUTE_NULL_MX || res->status == ROUTE_TEMPFAIL ||
                          res->status == ROUTE_LOOKUP_DEFER ? res->error
                : "Unrouteable address");
        route_result_free(res);
        job_end(j, code >= 500 ? VERIFY_FAIL : VERIFY_DEFER, reply);
        return;
    }
    if (!j->opts.enabled) {
        route_result_free(res);
        job_end(j, VERIFY_OK, NULL);
        return;
    }
    if (j->what == VERIFY_RECIPIENT && smtp_cut_may_verify(s) &&
        acl_has_cutthrough(s->srv->conf->acl_for_stage[ACL_RCPT], &cut)) {
        struct acl_run *run = j->run;   /* the mirrored RCPT is the callout */
        route_result_free(res);
        s->verify_job = NULL;
        free(j);
        smtp_cut_verify(s, run, &cut);
        return;
    }
    j->route = res;
    start_callout(j);
}

/* verify_address - route the address (then maybe a callout) */
static void verify_address(struct verify_job *j, const char *addr)
{
    char local[ADDR_PATH_MAX + 1], domain[ADDR_DOMAIN_MAX + 1];
    str_copy(j->address, addr, sizeof(j->address));
    if (addr[0] == '\0') {
        job_end(j, VERIFY_OK, NULL);   /* the null sender */
        return;
    }
    if (!addr_split(addr, local, sizeof(local), domain, sizeof(domain))) {
        job_end(j, VERIFY_FAIL, "550 5.1.3 Bad address syntax");
        return;
    }
    if (j->s->srv->dns == NULL) {
        const struct route *r;
        enum list_result m = conf_route_find(j->s->srv->conf, domain, &r, NULL);
        if (m == LIST_DEFER)
            job_end(j, VERIFY_DEFER, "451 4.4.3 Temporary local problem routing the address");
        else
            job_end(j, r ? VERIFY_OK : VERIFY_FAIL, "550 5.1.2 Unrouteable address");
        return;
    }
    j->rq = route_resolve(j->s->srv->dns, j->s->srv->conf, domain, routed, j);
}

void smtp_verify_start(void *arg, struct acl_run *run, enum verify_what what,
                       const struct callout_opts *opts)
{
    struct smtp_session *s = arg;
    struct verify_job *j = xcalloc(1, sizeof(*j));
    j->s = s;
    j->run = run;
    j->what = what;
    j->opts = *opts;
    s->verify_job = j;
    if (what == VERIFY_HELO)
        verify_helo(j);
    else if (what == VERIFY_SENDER)
        verify_address(j, s->txn ? s->txn->env.sender : "");
    else
        verify_address(j, s->txn ? s->txn->pending_rcpt.rcpt : "");
}

/* smtp_verify_cancel - the ACL run is being freed with a verification outstanding */
void smtp_verify_cancel(void *arg, struct acl_run *run)
{
    struct smtp_session *s = arg;
    struct verify_job *j = s->verify_job;
    (void)run;
    smtp_cut_verify_cancel(s);
    if (j == NULL)
        return;
    if (j->rq)
        route_cancel(j->rq);
    if (j->co)
        callout_cancel(j->co);
    if (j->dq)
        dns_cancel(j->dq);
    if (j->route)
        route_result_free(j->route);
    free(j);
    s->verify_job = NULL;
}
