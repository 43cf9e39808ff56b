/* host_health.c - one health record per next hop (address:port) in the hints every process
 * shares (see outbound/outbound.h): a host found dead is skipped by every process until its
 * retry time, and then probed by one process only.  Each change is one hints_update, so two
 * processes cannot both claim a probe. */
#include "outbound.h"

#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "core/core.h"
#include "store/store.h"

#define HEALTH_DEFAULT_RETRY 300 /* without retry_intervals */

/* retry_interval - the wait after the n-th failure in a row (the last interval repeats) */
static time_t retry_interval(const struct conf *c, unsigned failures)
{
    if (c == NULL || c->nretry_intervals == 0)
        return HEALTH_DEFAULT_RETRY;
    size_t i = failures > 0 ? failures - 1 : 0;
    return (time_t)c->retry_intervals[i < c->nretry_intervals ? i : c->nretry_intervals - 1];
}

static void from_rec(const struct retry_rec *r, struct host_health *h)
{
    memset(h, 0, sizeof(*h));
    h->down = r->failures > 0;
    h->next_try = r->next_try;
    h->last_try = r->last_try;
    h->first_failure = r->first_failure;
    h->failures = r->failures;
    str_copy(h->last_error, r->last_error, sizeof(h->last_error));
}

struct check {
    bool ignore_retry;
    unsigned claim;
    time_t now;
    bool may_try;
    struct host_health h;
};

/* check_fn - may we try?  A down host whose time has come is claimed for the probe (true:
 * store the claim) */
static bool check_fn(void *arg, const void *val, size_t len, void *out, size_t *outlen)
{
    struct check *x = arg;
    struct retry_rec r;
    x->may_try = true;
    if (val == NULL || !retry_rec_decode(val, len, &r))
        return false;               /* never failed: up */
    from_rec(&r, &x->h);
    if (r.failures == 0 || x->ignore_retry)
        return false;
    if (r.next_try > x->now) {
        x->may_try = false;         /* in its retry window, or being probed by another process */
        return false;
    }
    r.next_try = x->now + (time_t)x->claim;
    *outlen = retry_rec_encode(&r, out, HINTS_VALUE_MAX);
    return *outlen > 0;
}

void health_check(struct hints *h, const struct next_hop *hop, bool ignore_retry,
                  unsigned claim_seconds, health_cb cb, void *arg)
{
    char key[80];
    struct check x = { ignore_retry, claim_seconds ? claim_seconds : 60, time(NULL), true, { 0 } };
    hop_addr_key(hop, key, sizeof(key));
    struct retry_rec r;
    if (h != NULL && hints_retry_get(h, key, &r)) {
        /* the read first: an up host (the common case) costs no write transaction */
        if (r.failures > 0)
            hints_update(h, HINTS_RETRY, key, check_fn, &x);
        else
            from_rec(&r, &x.h);
    }
    cb(arg, x.may_try, &x.h);
}

struct change {
    const struct conf *c;
    const char *why;   /* NULL: the host answered */
    time_t now;
    bool note_only;    /* a session failed, the host did not: only the last error changes */
};

/* change_fn - record a failure (grow the retry wait) or a recovery (true: store it) */
static bool change_fn(void *arg, const void *val, size_t len, void *out, size_t *outlen)
{
    struct change *x = arg;
    struct retry_rec r;
    bool found = val != NULL && retry_rec_decode(val, len, &r);
    if (!found)
        memset(&r, 0, sizeof(r));
    if (x->note_only) {
        str_copy(r.last_error, x->why, sizeof(r.last_error));
    } else if (x->why == NULL) {
        if (!found || r.failures == 0)
            return false;
        r.failures = 0;
        r.next_try = 0;
        r.last_error[0] = '\0';
    } else {
        if (r.failures == 0)
            r.first_failure = x->now;
        r.failures++;
        r.next_try = x->now + retry_interval(x->c, r.failures);
        str_copy(r.last_error, x->why, sizeof(r.last_error));
    }
    r.last_try = x->now;
    *outlen = retry_rec_encode(&r, out, HINTS_VALUE_MAX);
    return *outlen > 0;
}

void health_failed(struct hints *h, const struct conf *c, const struct next_hop *hop, const char *why)
{
    char key[80];
    struct change x = { c, why && why[0] ? why : "failed", time(NULL), false };
    hop_addr_key(hop, key, sizeof(key));
    hints_update(h, HINTS_RETRY, key, change_fn, &x);
}

void health_ok(struct hints *h, const struct next_hop *hop)
{
    char key[80];
    struct retry_rec r;
    struct change x = { NULL, NULL, time(NULL), false };
    hop_addr_key(hop, key, sizeof(key));
    if (hints_retry_get(h, key, &r) && r.failures > 0)   /* only a change costs a write */
        hints_update(h, HINTS_RETRY, key, change_fn, &x);
}

void health_noted(struct hints *h, const struct next_hop *hop, const char *why)
{
    char key[80];
    struct change x = { NULL, why && why[0] ? why : "failed", time(NULL), true };
    hop_addr_key(hop, key, sizeof(key));
    hints_update(h, HINTS_RETRY, key, change_fn, &x);
}

struct each {
    health_each_fn fn;
    void *arg;
};

static bool each_cb(void *arg, const char *key, const void *val, size_t len)
{
    struct each *e = arg;
    struct retry_rec r;
    struct host_health hh;
    if (retry_rec_decode(val, len, &r)) {
        from_rec(&r, &hh);
        e->fn(e->arg, key, &hh);
    }
    return true;
}

bool health_each(struct hints *h, health_each_fn fn, void *arg)
{
    struct each e = { fn, arg };
    return hints_each(h, HINTS_RETRY, "", each_cb, &e);
}
