/* smtp_in_policy.c - the session's side of the policy conditions (policy/policy.h): its DNS list
 * answers and its memory of rates (made on first use, kept for the connection), the message's
 * content scan (opened when the data phase starts if the data ACL scans, fed with the content
 * as it is received, ended with it), and the acl_env each ACL run gets. */
#include "smtp_in.h"

#include <stdlib.h>
#include <string.h>

#include "in.h"
#include "conf/conf.h"
#include "core/core.h"

/* The session's policy state; no other file sees inside it. */
struct smtp_policy {
    struct dnsl_cache *dnsl;
    struct rate_memo *rates;
    struct spam_scan *scan;     /* the current message's */
    bool paused;                /* input waits for the scanner to catch up */
};

static struct smtp_policy *policy_of(struct smtp_session *s)
{
    if (s->policy == NULL)
        s->policy = xcalloc(1, sizeof(*s->policy));
    return s->policy;
}

/* smtp_policy_env - what this ACL run's conditions work with (the DNS list answers and the
 * rates are made for sessions of a configuration that uses them, on the first ACL run) */
void smtp_policy_env(struct smtp_session *s, enum acl_stage stage, struct acl_env *env)
{
    const struct server *srv = s->srv;
    const struct txn *t = s->txn;
    memset(env, 0, sizeof(*env));
    if (!srv->uses_dnslists && !srv->uses_ratelimit && srv->spam == NULL)
        return;
    struct smtp_policy *p = policy_of(s);
    if (p->dnsl == NULL && srv->uses_dnslists && srv->dns != NULL)
        p->dnsl = dnsl_cache_new(srv->dns, srv->conf->dnslist_timeout);
    if (p->rates == NULL && srv->uses_ratelimit)
        p->rates = rate_memo_new(srv->hints);
    env->dnsl = p->dnsl;
    env->rates = p->rates;
    env->spam = stage == ACL_DATA ? p->scan : NULL;
    if (t != NULL) {
        env->nrcpts = (unsigned)t->env.nrcpts;
        env->message_size = stage == ACL_DATA ? t->dec.out_len
                            : t->mail.size_given ? t->mail.size : 0;
    }
}

/* scan_drained - the scanner caught up: read from the client again */
static void scan_drained(void *arg)
{
    struct smtp_session *s = arg;
    struct smtp_policy *p = policy_of(s);
    if (!p->paused)
        return;
    p->paused = false;
    sf_clear(s, SF_WAITING);
    smtp_resume(s);
}

/* smtp_policy_data_begin - the content starts: open the scan if the data ACL will want it */
void smtp_policy_data_begin(struct smtp_session *s)
{
    struct smtp_policy *p = policy_of(s);
    struct txn *t = s->txn;
    if (s->srv->spam == NULL || t->discard || t->env.nrcpts == 0 || p->scan != NULL)
        return;
    const char **rcpts = xcalloc(t->env.nrcpts + 1, sizeof(*rcpts));
    for (size_t i = 0; i < t->env.nrcpts; i++)
        rcpts[i] = t->env.rcpts[i].addr;
    struct spam_meta m = { s->peer_ip, s->helo, s->rdns.name, t->env.sender, t->env.id,
                           s->srv->conf->hostname, rcpts, t->env.nrcpts };
    p->scan = spam_scan_start(s->srv->spam, &m, scan_drained, s);
    free(rcpts);
}

/* smtp_policy_body - content on its way to the spool goes to the scanner too */
void smtp_policy_body(struct smtp_session *s, const char *p, size_t n)
{
    if (s->policy != NULL && s->policy->scan != NULL)
        spam_scan_feed(s->policy->scan, p, n);
}

/* smtp_policy_pause_if_behind - stop reading the client while the scanner is behind */
bool smtp_policy_pause_if_behind(struct smtp_session *s)
{
    struct smtp_policy *p = s->policy;
    if (p == NULL || p->scan == NULL || !spam_scan_behind(p->scan))
        return false;
    p->paused = true;
    sf_set(s, SF_WAITING);
    return true;
}

/* smtp_policy_data_end - the client finished sending: the scanner gets the end of the message */
void smtp_policy_data_end(struct smtp_session *s)
{
    if (s->policy != NULL && s->policy->scan != NULL)
        spam_scan_end(s->policy->scan);
}

/* smtp_policy_txn_reset - the transaction is over: its scan goes, per-message rates too */
void smtp_policy_txn_reset(struct smtp_session *s)
{
    struct smtp_policy *p = s->policy;
    if (p == NULL)
        return;
    spam_scan_free(p->scan);
    p->scan = NULL;
    p->paused = false;
    rate_memo_new_message(p->rates);
}

void smtp_policy_session_end(struct smtp_session *s)
{
    struct smtp_policy *p = s->policy;
    if (p == NULL)
        return;
    spam_scan_free(p->scan);
    dnsl_cache_free(p->dnsl);
    rate_memo_free(p->rates);
    free(p);
    s->policy = NULL;
}
