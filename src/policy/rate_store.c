/* rate_store.c - the stored state of the ratelimit condition: per key, a smoothed rate and the
 * time it was last updated, in the "ratelimit" hints database, which every process shares.  One
 * update is one write transaction (read, compute, write), so two workers counting the same
 * client never lose an event.  Results are reported through a callback: the LMDB backend calls
 * it at once, a networked backend (issue 15: Redis) will call it later. */
#include "policy.h"

#include <math.h>
#include <string.h>

#include "core/core.h"
#include "store/store.h"

#define RATE_REC_VERSION 1

/* rate_next - Exim's exponentially weighted moving average for a variable sampling interval:
 * the rate is events per period; an event of size `count` after `interval` seconds gives
 *     rate' = (1 - a) * count / (interval / period) + a * rate,   a = exp(-interval / period)
 * so that a burst of N events reaches about N per period, and an isolated event after a long
 * silence counts as `count` per period (never less).  With no earlier record the rate is count. */
double rate_next(double rate, int64_t then_us, bool found, double count, unsigned period,
                 int64_t now_us)
{
    if (!found)
        return count;
    double interval = (double)(now_us - then_us) / 1e6;
    if (interval <= 0)
        interval = 1e-9;            /* the clock went backwards, or no time passed */
    double i_over_p = interval / (double)period;
    double a = exp(-i_over_p);
    double next = -expm1(-i_over_p) * count / i_over_p + a * rate;   /* 1 - a, without
                                                                        cancellation */
    return next < count ? count : next;
}

struct update {
    const struct rate_event *ev;
    struct rate_result res;
};

/* decode - a stored record; false if there is none or it is not ours */
static bool decode(const void *val, size_t len, double *rate, int64_t *then_us)
{
    struct hrec_r r;
    if (val == NULL || !hrec_r_init(&r, val, len, RATE_REC_VERSION))
        return false;
    *then_us = hrec_get_i64(&r);
    int64_t bits = hrec_get_i64(&r);
    memcpy(rate, &bits, sizeof(*rate));
    return !r.bad && isfinite(*rate) && *rate >= 0;
}

/* step - inside the write transaction: the new rate, stored unless leaky and over the limit
 * (Exim: a leaky client's refused attempts do not count) or read-only */
static bool step(void *arg, const void *old, size_t oldlen, void *out, size_t *outlen)
{
    struct update *u = arg;
    const struct rate_event *ev = u->ev;
    double rate = 0;
    int64_t then_us = 0;
    bool found = decode(old, oldlen, &rate, &then_us);
    double count = ev->mode == RATE_READONLY ? 0 : ev->count;
    u->res.rate = rate_next(rate, then_us, found, count, ev->period, ev->now_us);
    u->res.over = u->res.rate >= ev->limit;    /* at the limit is over it (a limit of 0 blocks) */
    bool store = ev->mode == RATE_STRICT || (ev->mode == RATE_LEAKY && !u->res.over);
    if (!store)
        return false;
    struct hrec_w w;
    int64_t bits;
    memcpy(&bits, &u->res.rate, sizeof(bits));
    hrec_w_init(&w, RATE_REC_VERSION);
    hrec_put_i64(&w, ev->now_us);
    hrec_put_i64(&w, bits);
    memcpy(out, w.buf, w.len);
    *outlen = w.len;
    return !w.bad;
}

void rate_store_update(struct hints *h, const char *key, const struct rate_event *ev,
                       rate_store_cb cb, void *arg)
{
    struct update u = { ev, { false, false, 0 } };
    u.res.ok = hints_update(h, HINTS_RATELIMIT, key, step, &u);
    cb(arg, &u.res);
}
