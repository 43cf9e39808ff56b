/* host_limit.c - the per-host connection limit (callout_max_per_host) of the whole daemon (see
 * outbound/outbound.h), on the lease table every process shares (store/store.h): a lease is
 * taken before connecting and given back when the connection is gone.  A caller that may wait
 * polls for a lease, since a connection of another process may end at any time, and registers
 * a want, which makes the other processes give up their idle pooled connections to the host. */
#include "outbound.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>

#include "core/core.h"
#include "store/store.h"

#define LIMIT_POLL_MS 50      /* how often a waiter looks for a free lease */

struct limit_wait {
    struct host_limit *hl;
    char key[LEASE_KEY_MAX + 1];
    int want;                 /* the want registered in the table */
    struct timespec deadline;
    struct event *timer;
    limit_cb cb;
    void *arg;
    TAILQ_ENTRY(limit_wait) entry;
};

struct host_limit {
    struct event_base *base;
    struct leases *leases;
    unsigned max;
    TAILQ_HEAD(, limit_wait) waiting;
};

struct host_limit *host_limit_new(struct event_base *base, struct leases *leases, unsigned max)
{
    struct host_limit *hl = xcalloc(1, sizeof(*hl));
    hl->base = base;
    hl->leases = leases;
    hl->max = max ? max : 1;
    TAILQ_INIT(&hl->waiting);
    return hl;
}

void host_limit_free(struct host_limit *hl)
{
    if (hl == NULL)
        return;
    while (!TAILQ_EMPTY(&hl->waiting))
        host_limit_cancel(TAILQ_FIRST(&hl->waiting));
    free(hl);
}

int host_limit_try(struct host_limit *hl, const char *key)
{
    return leases_take(hl->leases, key, hl->max);
}

/* expired - has the waiter's deadline passed? */
static bool expired(const struct limit_wait *w)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > w->deadline.tv_sec ||
           (now.tv_sec == w->deadline.tv_sec && now.tv_nsec >= w->deadline.tv_nsec);
}

/* end_wait - report lease to the waiter and forget it */
static void end_wait(struct limit_wait *w, int lease)
{
    limit_cb cb = w->cb;
    void *arg = w->arg;
    TAILQ_REMOVE(&w->hl->waiting, w, entry);
    leases_give(w->hl->leases, w->want);
    event_free(w->timer);
    free(w);
    cb(arg, lease);
}

/* poll_cb - look again for a free lease */
static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
    struct limit_wait *w = arg;
    (void)fd;
    (void)what;
    int lease = host_limit_try(w->hl, w->key);
    if (lease != LEASE_FULL || expired(w)) {
        end_wait(w, lease);
        return;
    }
    struct timeval tv = { 0, LIMIT_POLL_MS * 1000 };
    evtimer_add(w->timer, &tv);
}

struct limit_wait *host_limit_wait(struct host_limit *hl, const char *key, unsigned seconds,
                                   limit_cb cb, void *arg)
{
    struct limit_wait *w = xcalloc(1, sizeof(*w));
    w->hl = hl;
    str_copy(w->key, key, sizeof(w->key));
    w->cb = cb;
    w->arg = arg;
    clock_gettime(CLOCK_MONOTONIC, &w->deadline);
    w->deadline.tv_sec += seconds ? seconds : 1;
    w->want = leases_want(hl->leases, key);
    w->timer = evtimer_new(hl->base, poll_cb, w);
    if (w->timer == NULL)
        fatalx("host_limit: cannot create a timer");
    TAILQ_INSERT_TAIL(&hl->waiting, w, entry);
    struct timeval tv = { 0, LIMIT_POLL_MS * 1000 };
    evtimer_add(w->timer, &tv);
    return w;
}

void host_limit_cancel(struct limit_wait *w)
{
    if (w == NULL)
        return;
    TAILQ_REMOVE(&w->hl->waiting, w, entry);
    leases_give(w->hl->leases, w->want);
    event_free(w->timer);
    free(w);
}

void host_limit_release(struct host_limit *hl, int lease)
{
    if (lease < 0)
        return;
    leases_give(hl->leases, lease);
    struct limit_wait *w;
    TAILQ_FOREACH(w, &hl->waiting, entry)   /* a waiter here need not wait for its next poll */
        event_active(w->timer, EV_TIMEOUT, 0);
}

void host_limit_set_idle(struct host_limit *hl, int lease, bool idle)
{
    leases_set_idle(hl->leases, lease, idle);
}

bool host_limit_wanted(struct host_limit *hl, int lease)
{
    return leases_wanted(hl->leases, lease);
}
