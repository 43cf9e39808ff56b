/* smtp_in_cut_rcpt.c - cutthrough at RCPT: route the recipient, pick the link (the same set of
 * next hops shares one), mirror the RCPT (it may serve as the ACL's recipient callout), and
 * tell the client the next hop's verdict.  Every verdict feeds the callout cache.  When the
 * next hop cannot answer (down, in its retry window, at its connection limit, no reply), what
 * tandem knows answers: a local list the ACL consulted, the callout cache, then unknown=. */
#include "smtp_in_cut.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "in.h"
#include "conf/conf.h"
#include "core/core.h"
#include "policy/policy.h"
#include "route/route.h"

/* log_rcpt_refusal - Exim's wording for a recipient the next hop refused */
static void log_rcpt_refusal(struct smtp_session *s, const char *text, bool temp)
{
    struct smtp_cut *ct = cut_of(s);
    char host[160], sender[560], r[560], link_host[320] = "";
    struct txn *t = s->txn;
    const char *rcpt = t->pending_rcpt.rcpt;
    smtp_log_host(s, host, sizeof(host));
    str_sanitize_utf8(sender, sizeof(sender), t->env.sender, strlen(t->env.sender));
    str_sanitize_utf8(r, sizeof(r), rcpt, strlen(rcpt));
    if (ct->link)
        cut_link_log_host(ct->link, link_host, sizeof(link_host));
    log_reject("%s F=<%s> %s RCPT <%s>: %s%sSMTP error from remote mail server after RCPT TO:<%s>: %s",
               host, sender, temp ? "temporarily rejected" : "rejected", r, link_host,
               link_host[0] ? ": " : "", r, text);
}

/* log_known - which source answered for a recipient the next hop could not answer for:
 * refusals go to the reject log too, in Exim's wording */
static void log_known(struct smtp_session *s, const struct know_result *k, const char *outcome,
                      bool refused, bool temp)
{
    struct smtp_cut *ct = cut_of(s);
    char host[160], sender[560], r[560], why[400], src[300], out[500];
    struct txn *t = s->txn;
    smtp_log_host(s, host, sizeof(host));
    str_sanitize_utf8(sender, sizeof(sender), t->env.sender, strlen(t->env.sender));
    str_sanitize_utf8(r, sizeof(r), t->pending_rcpt.rcpt, strlen(t->pending_rcpt.rcpt));
    str_sanitize(why, sizeof(why), ct->unans_text, strlen(ct->unans_text));
    str_sanitize(src, sizeof(src), k->source, strlen(k->source));
    str_sanitize(out, sizeof(out), outcome, strlen(outcome));
    char verdict[400];
    if (k->verdict == KNOW_UNKNOWN)
        str_fmt(verdict, sizeof(verdict), "unknown (%s)", src);
    else
        str_fmt(verdict, sizeof(verdict), "%s according to %s",
                k->verdict == KNOW_VALID ? "valid" : "invalid", src);
    if (refused)
        log_reject("%s F=<%s> %s RCPT <%s>: next hop could not answer (%s): %s: %s", host, sender,
                   temp ? "temporarily rejected" : "rejected", r, why, verdict, out);
    else
        log_main("%s F=<%s> RCPT <%s>: next hop could not answer (%s): %s: %s", host, sender, r,
                 why, verdict, out);
}

/* reply_known - the client's reply from a known refusal "550 5.1.1 text" (a 550 if it has no
 * 5xx code of its own) */
static void reply_known(struct smtp_session *s, const char *line)
{
    int code = 550;
    char ecode[16] = "5.1.1";
    const char *p = line;
    if (isdigit((unsigned char)p[0]) && p[0] == '5' && isdigit((unsigned char)p[1]) &&
        isdigit((unsigned char)p[2]) && (p[3] == ' ' || p[3] == '\0')) {
        code = atoi(p);
        p += p[3] ? 4 : 3;
        size_t n = strspn(p, "0123456789.");
        if (n >= 5 && n < sizeof(ecode) && p[0] == '5' && p[1] == '.' && (p[n] == ' ' || !p[n])) {
            memcpy(ecode, p, n);
            ecode[n] = '\0';
            p += n + (p[n] == ' ');
        }
    }
    smtp_reply(s, code, ecode, "%s", p[0] ? p : "Recipient unknown");
}

/* rcpt_done - the pending RCPT is answered: the session goes on */
static void rcpt_done(struct smtp_session *s)
{
    sf_clear(s, SF_WAITING);
    smtp_resume(s);
}

/* pass_temporary - defer=pass: the client gets the next hop's 4xx, or ours */
static void pass_temporary(struct smtp_session *s)
{
    struct smtp_cut *ct = cut_of(s);
    if (ct->have_unans_reply && ct->unans_reply.code >= 400 && ct->unans_reply.code < 500)
        cut_reply_upstream(s, &ct->unans_reply, 0, NULL);
    else
        smtp_reply(s, 451, ct->unans_timeout ? "4.4.2" : "4.4.1", "Next hop %s; try again later",
                   ct->unans_timeout ? "timed out" : "not reachable");
}

/* known_for_control - what tandem knows decides the RCPT the next hop could not answer */
static void known_for_control(struct smtp_session *s, const struct know_result *k)
{
    struct smtp_cut *ct = cut_of(s);
    if (k->verdict == KNOW_INVALID) {
        log_known(s, k, k->reply, true, false);
        reply_known(s, k->reply);
        smtp_count_error(s);
    } else if (ct->req_opts.defer == CUT_DEFER_PASS) {
        log_known(s, k, "deferred (defer=pass)", true, true);
        pass_temporary(s);
    } else if (k->verdict == KNOW_VALID || ct->req_opts.unknown == CUT_UNKNOWN_ACCEPT) {
        log_known(s, k, k->verdict == KNOW_VALID ? "accepted, queued for delivery"
                                                  : "accepted (unknown=accept), queued for delivery",
                  false, false);
        cut_add_rcpt(s, false);
    } else {
        log_known(s, k, "deferred (unknown=defer)", true, true);
        smtp_reply(s, 451, "4.4.1", "Next hop not available and the recipient is not known here; "
                   "try again later");
    }
}

/* known_for_verify - what tandem knows is the recipient callout's verdict */
static void known_for_verify(struct smtp_session *s, struct acl_run *run, const struct know_result *k)
{
    struct smtp_cut *ct = cut_of(s);
    if (k->verdict == KNOW_VALID) {
        log_known(s, k, "verified", false, false);
        str_copy(ct->known_rcpt, s->txn->pending_rcpt.rcpt, sizeof(ct->known_rcpt));
        acl_verify_done(run, VERIFY_OK, NULL);
    } else if (k->verdict == KNOW_INVALID) {
        log_known(s, k, k->reply, false, false);
        acl_verify_done(run, VERIFY_FAIL, k->reply);
    } else {
        const struct smtp_reply *r = ct->have_unans_reply ? &ct->unans_reply : NULL;
        char reply[700] = "451 4.4.3 Could not complete recipient verify callout";
        if (r && r->code >= 400 && r->code < 500)   /* the next hop's own 4xx (its 421 as 451) */
            str_fmt(reply, sizeof(reply), "%d %s %s", cut_client_code(r),
                    r->ecode[0] ? r->ecode : "4.0.0", r->text.s ? r->text.s : "");
        log_known(s, k, "callout deferred", false, false);
        acl_verify_done(run, VERIFY_DEFER, reply);
    }
}

/* on_known - what tandem knows of the pending recipient has come */
static void on_known(void *arg, const struct know_result *k)
{
    struct smtp_session *s = arg;
    struct smtp_cut *ct = cut_of(s);
    struct acl_run *run = ct->verify_run;
    bool async = !ct->asking;
    ct->ask_done = true;
    ct->verify_run = NULL;
    if (run) {
        known_for_verify(s, run, k);
        return;
    }
    known_for_control(s, k);
    if (async)
        rcpt_done(s);
}

/* unanswered - the next hop could not say yes or no: ask what tandem knows.  Returns true when
 * the answer came at once (the caller finishes the RCPT), false when it comes later. */
static bool unanswered(struct smtp_session *s, const struct cut_result *r)
{
    struct smtp_cut *ct = cut_of(s);
    if (ct->have_unans_reply)
        smtp_reply_free(&ct->unans_reply);
    ct->have_unans_reply = r->reply != NULL;
    if (r->reply)
        smtp_reply_copy(&ct->unans_reply, r->reply);
    str_copy(ct->unans_text, r->text, sizeof(ct->unans_text));
    ct->unans_timeout = r->timed_out;
    struct know_query q = { s->txn->pending_rcpt.rcpt, ct->hops_name,
                            ct->vouched_by[0] ? ct->vouched_by : NULL, ct->callout.no_cache };
    ct->asking = true;
    ct->ask_done = false;
    knowledge_ask(s->srv->hints, &q, on_known, s);
    ct->asking = false;
    return ct->ask_done;
}

/* learn - every verdict seen on the link feeds the callout cache ("knows why" rule) */
static void learn(struct smtp_session *s, const struct cut_result *r)
{
    struct smtp_cut *ct = cut_of(s);
    if (r->reply && !r->not_rcpt && !ct->callout.no_cache && ct->hops_name[0])
        cc_learn(s->srv->hints, s->srv->conf, CC_ADDRESS, s->txn->pending_rcpt.rcpt, ct->hops_name,
                 r->reply);
}

/* rcpt_result - the next hop answered the mirrored RCPT (or could not) */
static void rcpt_result(struct smtp_session *s, const struct cut_result *r)
{
    learn(s, r);
    if (r->reply && r->reply->code >= 200 && r->reply->code < 300) {
        cut_add_rcpt(s, true);
    } else if (r->reply && r->reply->code >= 500) {
        log_rcpt_refusal(s, r->text, false);
        cut_reply_upstream(s, r->reply, 0, NULL);
        smtp_count_error(s);
    } else if (!unanswered(s, r)) {
        return;                   /* on_known finishes the RCPT */
    }
    rcpt_done(s);
}

/* verify_result - the mirrored RCPT served as the recipient's callout */
static void verify_result(struct smtp_session *s, const struct cut_result *r)
{
    struct smtp_cut *ct = cut_of(s);
    char reply[700];
    learn(s, r);
    if (r->reply && r->reply->code >= 200 && r->reply->code < 300) {
        struct acl_run *run = ct->verify_run;
        ct->verify_run = NULL;
        acl_verify_done(run, VERIFY_OK, NULL);
    } else if (r->reply && r->reply->code >= 500) {
        struct acl_run *run = ct->verify_run;
        ct->verify_run = NULL;
        str_fmt(reply, sizeof(reply), "%d %s %s", r->reply->code,
                r->reply->ecode[0] ? r->reply->ecode : "5.0.0", r->reply->text.s ? r->reply->text.s : "");
        log_rcpt_refusal(s, r->text, false);
        acl_verify_done(run, VERIFY_FAIL, reply);
    } else {
        unanswered(s, r);         /* on_known gives the verdict */
    }
}

void cut_rcpt_event(struct smtp_session *s, const struct cut_result *r)
{
    if (cut_of(s)->verify_run)
        verify_result(s, r);
    else
        rcpt_result(s, r);
}

/* link_for - the link for a route: a reusable idle one with the same next hops, or a new one
 * (route is taken over or freed) */
static struct cut_link *link_for(struct smtp_session *s, struct route_result *route)
{
    struct smtp_cut *ct = cut_of(s);
    struct txn *t = s->txn;
    struct mail_out m;
    char key[1024];
    mail_out_from_envelope(&m, &t->env, t->mail.size_given ? t->mail.size : 0);
    route_hops_key(route, key, sizeof(key));
    ct->opts = ct->req_opts;
    ct->timeout = ct->callout.enabled ? ct->callout.timeout : 0;
    if (ct->idle && strcmp(cut_link_key(ct->idle), key) == 0 && cut_link_restart(ct->idle, &m)) {
        ct->link = ct->idle;
        ct->idle = NULL;
        metric_inc(M_ONWARD_REUSED);
        route_result_free(route);
    } else {
        ct->link = cut_link_new(s->srv->dialer, route, &m, &ct->opts, ct->timeout, cut_event,
                                cut_drained, s);
    }
    return ct->link;
}

/* mirror_over - the RCPT was answered without the link: the session goes on */
static void mirror_over(struct smtp_session *s, bool verifying)
{
    if (!verifying)               /* else the ACL goes on, and resumes the session when done */
        rcpt_done(s);
}

/* verify_answer - the recipient callout's verdict without the link */
static void verify_answer(struct smtp_session *s, enum verify_result res, const char *reply)
{
    struct smtp_cut *ct = cut_of(s);
    struct acl_run *run = ct->verify_run;
    ct->verify_run = NULL;
    acl_verify_done(run, res, reply);
}

/* route_failed - the recipient cannot be routed now or at all */
static void route_failed(struct smtp_session *s, struct route_result *res)
{
    struct smtp_cut *ct = cut_of(s);
    bool verifying = ct->verify_run != NULL;
    int code;
    const char *ecode;
    char reply[400];
    route_status_reply(res->status, &code, &ecode);
    struct cut_result r = { .step = CUT_STEP_RCPT, .unavailable = true };
    str_copy(r.text, res->error, sizeof(r.text));
    route_result_free(res);
    if (code >= 500 && verifying) {
        str_fmt(reply, sizeof(reply), "%d %s %s", code, ecode, r.text);
        verify_answer(s, VERIFY_FAIL, reply);
    } else if (code >= 500) {
        smtp_reply(s, code, ecode, "%s", r.text);
    } else if (!unanswered(s, &r)) {
        return;                   /* on_known goes on */
    }
    mirror_over(s, verifying);
}

/* other_hops - the recipient's next hops are not the link's: split=defer or split=spool */
static void other_hops(struct smtp_session *s)
{
    struct smtp_cut *ct = cut_of(s);
    bool verifying = ct->verify_run != NULL;
    const char *text = "Recipient goes to a different next hop; send it in a new transaction";
    char reply[200];
    if (ct->opts.split == CUT_SPLIT_DEFER) {
        str_fmt(reply, sizeof(reply), "452 4.5.3 %s", text);
        if (verifying)
            verify_answer(s, VERIFY_DEFER, reply);
        else
            smtp_reply(s, 452, "4.5.3", "%s", text);
    } else {
        cut_abandon(s);                                   /* split=spool */
        if (verifying)
            verify_answer(s, VERIFY_OK, NULL);            /* the queue will deliver it */
        else
            cut_add_rcpt(s, false);
    }
    mirror_over(s, verifying);
}

/* routed - the recipient's next hops are known: mirror the RCPT on the right link */
static void routed(struct smtp_session *s, struct route_result *res)
{
    struct smtp_cut *ct = cut_of(s);
    const struct rcpt_params *rp = &s->txn->pending_rcpt;
    char key[1024];
    if (res->status != ROUTE_OK) {
        route_failed(s, res);
        return;
    }
    route_hops_name(res, ct->hops_name, sizeof(ct->hops_name));
    route_hops_key(res, key, sizeof(key));
    if (ct->link && cut_link_alive(ct->link) && strcmp(cut_link_key(ct->link), key) != 0) {
        route_result_free(res);
        other_hops(s);
        return;
    }
    if (ct->link == NULL || !cut_link_alive(ct->link)) {
        if (ct->link)
            cut_link_free(ct->link);
        ct->link = NULL;
        link_for(s, res);
    } else {
        route_result_free(res);
    }
    cut_link_rcpt(ct->link, rp->rcpt, rp->notify, rp->orcpt[0] ? rp->orcpt : NULL);
}

static void cut_routed_cb(void *arg, struct route_result *res)
{
    struct smtp_session *s = arg;
    cut_of(s)->rq = NULL;
    routed(s, res);
}

/* start_mirror - route the pending recipient, then mirror it on the link */
static void start_mirror(struct smtp_session *s, const struct cutthrough_opts *opts,
                         const char *vouched_by)
{
    struct smtp_cut *ct = cut_of(s);
    char local[ADDR_PATH_MAX + 1], domain[ADDR_DOMAIN_MAX + 1];
    ct->req_opts = *opts;
    str_copy(ct->vouched_by, vouched_by ? vouched_by : "", sizeof(ct->vouched_by));
    ct->hops_name[0] = '\0';
    addr_split(s->txn->pending_rcpt.rcpt, local, sizeof(local), domain, sizeof(domain));
    sf_set(s, SF_WAITING);
    ct->rq = route_resolve(s->srv->dns, s->srv->conf, domain, cut_routed_cb, s);
}

/* log_cut_skipped - cutthrough not attempted because nothing may connect (--no-deliver) */
static void log_cut_skipped(struct smtp_session *s)
{
    char host[160], r[560];
    const char *rcpt = s->txn->pending_rcpt.rcpt;
    smtp_log_host(s, host, sizeof(host));
    str_sanitize_utf8(r, sizeof(r), rcpt, strlen(rcpt));
    log_main("%s RCPT <%s>: cutthrough skipped (--no-deliver)", host, r);
}

/* smtp_cut_rcpt - an accepted RCPT with cutthrough: the client's reply waits for the next hop */
void smtp_cut_rcpt(struct smtp_session *s, const struct acl_outcome *o)
{
    struct smtp_cut *ct = cut_of(s);
    struct txn *t = s->txn;
    bool known = strcmp(ct->known_rcpt, t->pending_rcpt.rcpt) == 0;
    ct->known_rcpt[0] = '\0';
    if (o->verified_recipient_callout)
        ct->callout = o->callout;     /* its timeout and no_cache apply to the link too */
    else
        memset(&ct->callout, 0, sizeof(ct->callout));
    if (s->srv->no_deliver) {     /* `tandem session --no-deliver` connects nowhere */
        log_cut_skipped(s);
        cut_add_rcpt(s, false);
        return;
    }
    if (ct->abandoned || s->srv->dns == NULL || known) {
        cut_add_rcpt(s, false);   /* known = its callout was answered from what tandem knows */
        return;
    }
    if (ct->link && cut_link_alive(ct->link) && cut_link_has_rcpt(ct->link, t->pending_rcpt.rcpt)) {
        cut_add_rcpt(s, true);    /* a callout on this link already has it */
        return;
    }
    start_mirror(s, &o->cut, o->rcpt_vouched_by);
}

/* smtp_cut_accept_rcpt - an RCPT accepted without the cutthrough control: the link carries it
 * when its callout ran there */
void smtp_cut_accept_rcpt(struct smtp_session *s)
{
    struct smtp_cut *ct = s->cut;
    bool carried = ct && ct->link && !ct->abandoned &&
                   cut_link_has_rcpt(ct->link, s->txn->pending_rcpt.rcpt);
    if (ct)
        ct->known_rcpt[0] = '\0';
    if (carried || ct)
        cut_add_rcpt(s, carried);
    else
        smtp_accept_rcpt(s);
}

/* smtp_cut_may_verify - may this recipient callout be the RCPT mirrored on the link?  Not when
 * the message is headed for the queue, nor for a callout that must not carry the message:
 * one from postmaster, or one that first tries a random local part */
bool smtp_cut_may_verify(struct smtp_session *s, const struct callout_opts *opts)
{
    return s->txn && !s->srv->no_deliver && !(s->cut && s->cut->abandoned) && !opts->random &&
           !opts->use_postmaster;
}

/* smtp_cut_verify - verify = recipient/callout in a cutthrough ACL: the RCPT on the link is
 * the callout, with its options (timeout, no_cache) */
void smtp_cut_verify(struct smtp_session *s, struct acl_run *run, const struct cutthrough_opts *opts,
                     const struct callout_opts *callout)
{
    struct smtp_cut *ct = cut_of(s);
    ct->verify_run = run;
    ct->callout = *callout;
    ct->known_rcpt[0] = '\0';
    start_mirror(s, opts, acl_run_outcome(run)->rcpt_vouched_by);
}

void smtp_cut_verify_cancel(struct smtp_session *s)
{
    struct smtp_cut *ct = s->cut;
    if (ct == NULL)
        return;
    ct->verify_run = NULL;
    if (ct->rq) {
        route_cancel(ct->rq);
        ct->rq = NULL;
    }
}
