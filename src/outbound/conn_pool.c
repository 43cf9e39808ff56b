/* conn_pool.c - idle onward connections of this process, kept for the next transaction to the
 * same next hop (see outbound/outbound.h).  Each has its idle timer; while pooled, its
 * callbacks point here, so a connection the next hop closes (or answers 421 on) leaves the
 * pool at once.  While the pool holds anything, a short tick asks the owner whether another
 * process waits for one of these hosts (the per-host limit); such a connection is given up. */
#include "outbound.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define POOL_TICK_MS 200  /* how often idle connections are offered back to waiting processes */

struct pool_entry {
    struct conn_pool *p;
    struct smtp_out *so;
    struct event *timer;
    char key[400];
    struct pool_entry *next, *prev;  /* newest first */
};

struct conn_pool {
    struct event_base *base;
    unsigned idle;
    size_t max, n;
    struct conn_pool_ops ops;
    void *arg;
    struct pool_entry *head, *tail;
    struct event *tick;
};

struct conn_pool *conn_pool_new(struct event_base *base, unsigned idle_seconds, size_t max,
                                const struct conn_pool_ops *ops, void *arg)
{
    struct conn_pool *p = xcalloc(1, sizeof(*p));
    p->base = base;
    p->idle = idle_seconds ? idle_seconds : 1;
    p->max = max;
    if (ops)
        p->ops = *ops;
    p->arg = arg;
    return p;
}

/* unlink_entry - take e out of the list and free it (not its connection) */
static struct smtp_out *unlink_entry(struct pool_entry *e)
{
    struct conn_pool *p = e->p;
    struct smtp_out *so = e->so;
    if (e->prev)
        e->prev->next = e->next;
    else
        p->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        p->tail = e->prev;
    p->n--;
    event_free(e->timer);
    free(e);
    return so;
}

static void on_idle(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    smtp_out_quit(unlink_entry(arg));
}

/* on_failed - the next hop closed a pooled connection: not its fault, just gone */
static void on_failed(void *arg, struct smtp_out *so, const struct so_failure *f)
{
    (void)f;
    unlink_entry(arg);
    smtp_out_free(so);
}

/* on_tick - give up connections another process waits for; tick again while any are left */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct conn_pool *p = arg;
    (void)fd;
    (void)what;
    for (struct pool_entry *e = p->head, *next; e; e = next) {
        next = e->next;
        if (p->ops.reclaim && p->ops.reclaim(p->arg, e->so))
            smtp_out_quit(unlink_entry(e));
    }
    if (p->n > 0) {
        struct timeval tv = { 0, POOL_TICK_MS * 1000 };
        evtimer_add(p->tick, &tv);
    }
}

/* arm_tick - the reclaim tick runs while the pool holds something */
static void arm_tick(struct conn_pool *p)
{
    if (p->ops.reclaim == NULL)
        return;
    if (p->tick == NULL && (p->tick = evtimer_new(p->base, on_tick, p)) == NULL)
        fatalx("conn_pool: cannot create a timer");
    if (!evtimer_pending(p->tick, NULL)) {
        struct timeval tv = { 0, POOL_TICK_MS * 1000 };
        evtimer_add(p->tick, &tv);
    }
}

bool conn_pool_put(struct conn_pool *p, struct smtp_out *so, const char *key)
{
    static const struct smtp_out_cbs cbs = { NULL, NULL, on_failed, NULL };
    if (p == NULL || p->max == 0 || !smtp_out_is_ready(so))
        return false;
    if (p->n >= p->max && p->tail)
        smtp_out_quit(unlink_entry(p->tail));
    struct pool_entry *e = xcalloc(1, sizeof(*e));
    e->p = p;
    e->so = so;
    str_copy(e->key, key, sizeof(e->key));
    e->timer = evtimer_new(p->base, on_idle, e);
    if (e->timer == NULL)
        fatalx("conn_pool: cannot create a timer");
    struct timeval tv = { (time_t)p->idle, 0 };
    evtimer_add(e->timer, &tv);
    smtp_out_set_cbs(so, &cbs, e);
    e->next = p->head;
    if (p->head)
        p->head->prev = e;
    else
        p->tail = e;
    p->head = e;
    p->n++;
    arm_tick(p);
    return true;
}

struct smtp_out *conn_pool_take(struct conn_pool *p, const char *key)
{
    if (p == NULL)
        return NULL;
    for (struct pool_entry *e = p->head; e; e = e->next)
        if (strcmp(e->key, key) == 0 && smtp_out_is_ready(e->so))
            return unlink_entry(e);
    return NULL;
}

size_t conn_pool_count(const struct conn_pool *p, const char *key)
{
    size_t n = 0;
    if (p == NULL)
        return 0;
    for (const struct pool_entry *e = p->head; e; e = e->next)
        n += key == NULL || strcmp(e->key, key) == 0;
    return n;
}

void conn_pool_clear(struct conn_pool *p)
{
    while (p && p->head)
        smtp_out_quit(unlink_entry(p->head));
}

void conn_pool_free(struct conn_pool *p)
{
    if (p == NULL)
        return;
    conn_pool_clear(p);
    if (p->tick)
        event_free(p->tick);
    free(p);
}
