/* acl_cond.c - the asynchronous policy conditions of an ACL run: dnslists, ratelimit and spam.
 * Each starts its module's work with the session's state (struct acl_env), then turns the
 * module's answer into the condition's value and the variables message and log_message see. */
#include "acl_int.h"

#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/core.h"

/* log_cond - a condition's problem in the main log, with the message id when there is one */
static void log_cond(const struct acl_run *r, const char *text)
{
    const char *id = acl_run_var(r, VAR_MESSAGE_ID);
    if (id != NULL)
        log_main("%s %s", id, text);
    else
        log_main("%s", text);
}

/* ---- dnslists */

static void dnsl_done(void *arg, const struct dnsl_result *res)
{
    struct acl_run *r = arg;
    if (res->verdict == DNSL_LISTED) {
        acl_run_set_var(r, VAR_DNSLIST_DOMAIN, res->domain);
        acl_run_set_var(r, VAR_DNSLIST_MATCHED, res->matched);
        acl_run_set_var(r, VAR_DNSLIST_VALUE, res->value);
        acl_run_set_var(r, VAR_DNSLIST_TEXT, res->text);
    }
    acl_cond_done(r, res->verdict == DNSL_LISTED ? ACL_COND_TRUE
                     : res->verdict == DNSL_DEFER ? ACL_COND_DEFER : ACL_COND_FALSE);
}

static void dnsl_cancel(void *handle)
{
    dnsl_check_cancel(handle);
}

static void dnsl_start(struct acl_run *r, const struct acl_item *it, struct acl_pending *p)
{
    const struct acl_env *env = acl_run_env(r);
    if (env == NULL || env->dnsl == NULL) {
        acl_cond_done(r, ACL_COND_DEFER);
        return;
    }
    p->cancel = dnsl_cancel;
    p->handle = dnsl_check_start(env->dnsl, &it->dnsl, acl_run_var(r, VAR_SENDER_HOST_ADDRESS),
                                 dnsl_done, r);
}

/* ---- ratelimit */

static void rate_done(void *arg, const struct rate_outcome *o)
{
    struct acl_run *r = arg;
    const struct acl_item *it = acl_run_current_item(r);
    char rate[64];
    if (!o->ok) {
        log_cond(r, "ratelimit database not available");
        acl_cond_done(r, ACL_COND_DEFER);
        return;
    }
    str_fmt(rate, sizeof(rate), "%.1f", o->rate);
    acl_run_set_var(r, VAR_SENDER_RATE, rate);
    acl_run_set_var(r, VAR_SENDER_RATE_LIMIT, it->rate.limit_text);
    acl_run_set_var(r, VAR_SENDER_RATE_PERIOD, it->rate.period_text);
    acl_cond_done(r, o->over ? ACL_COND_TRUE : ACL_COND_FALSE);
}

static void rate_start(struct acl_run *r, const struct acl_item *it)
{
    const struct acl_env *env = acl_run_env(r);
    if (env == NULL || env->rates == NULL) {
        acl_cond_done(r, ACL_COND_DEFER);
        return;
    }
    struct sbuf key;
    sbuf_init(&key);
    if (it->rate.key.n > 0)
        acl_run_expand(r, &it->rate.key, &key);
    else
        sbuf_addstr(&key, acl_run_var(r, VAR_SENDER_HOST_ADDRESS) ? acl_run_var(r, VAR_SENDER_HOST_ADDRESS) : "");
    struct rate_check_req q = { &it->rate, acl_run_stage(r), key.s ? key.s : "",
                                env->message_size, env->nrcpts };
    ratelimit_check(env->rates, &q, rate_done, r);
    sbuf_free(&key);
}

/* ---- spam */

/* spam_failed - no verdict: defer, or (defer_ok) the condition is false; logged either way */
static void spam_failed(struct acl_run *r, const struct acl_item *it, const char *why)
{
    char text[400];
    str_fmt(text, sizeof(text), "spam acl condition: %s%s", why,
            it->spam.defer_ok ? " (defer_ok: the condition is false)" : "");
    log_cond(r, text);
    acl_cond_done(r, it->spam.defer_ok ? ACL_COND_FALSE : ACL_COND_DEFER);
}

static void spam_done(void *arg, const struct spam_outcome *o)
{
    struct acl_run *r = arg;
    const struct acl_item *it = acl_run_current_item(r);
    char score[32], score_int[32], bar[64];
    if (!o->ok) {
        spam_failed(r, it, o->why);
        return;
    }
    spam_vars(&o->v, score, score_int, bar);
    acl_run_set_var(r, VAR_SPAM_SCORE, score);
    acl_run_set_var(r, VAR_SPAM_SCORE_INT, score_int);
    acl_run_set_var(r, VAR_SPAM_BAR, bar);
    acl_run_set_var(r, VAR_SPAM_ACTION, o->v.action);
    acl_run_set_var(r, VAR_SPAM_REPORT, o->v.report);
    acl_cond_done(r, it->spam.always_true || spam_is_spam(&o->v) ? ACL_COND_TRUE : ACL_COND_FALSE);
}

static void spam_cancel(void *handle)
{
    spam_scan_cancel_result(handle);
}

static void spam_start(struct acl_run *r, const struct acl_item *it, struct acl_pending *p)
{
    const struct acl_env *env = acl_run_env(r);
    if (env == NULL || env->spam == NULL) {
        spam_failed(r, it, "no scan for this message (no scanner, or nothing received)");
        return;
    }
    p->cancel = spam_cancel;
    p->handle = env->spam;
    spam_scan_result(env->spam, spam_done, r);
}

void acl_cond_start(struct acl_run *r, const struct acl_item *it, struct acl_pending *p)
{
    switch (it->kind) {
    case COND_DNSLISTS: dnsl_start(r, it, p); break;
    case COND_RATELIMIT: rate_start(r, it); break;
    case COND_SPAM: spam_start(r, it, p); break;
    default: acl_cond_done(r, ACL_COND_DEFER); break;
    }
}
