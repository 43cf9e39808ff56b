/* conn_cache.c - a small list of idle outbound connections, each with its idle timer.  While
 * cached, a connection's callbacks point here: if the server closes it (or says 421), it is
 * dropped from the list. */
#include "outbound.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "route/route.h"

struct cc_entry {
    struct conn_cache *cc;
    struct smtp_out *so;
    struct event *timer;
    char key[400];
    struct cc_entry *next, *prev;  /* newest first */
};

struct conn_cache {
    struct event_base *base;
    unsigned idle;
    size_t max, n;
    struct cc_entry *head, *tail;
};

/* hop_key - what makes two next hops interchangeable connections */
static void hop_key(const struct next_hop *h, char *buf, size_t sz)
{
    char a[80];
    hop_addr_key(h, a, sizeof(a));
    str_fmt(buf, sz, "%s/%d/%s", a, (int)h->tls, h->name);
}

struct conn_cache *conn_cache_new(struct event_base *base, unsigned idle_seconds, size_t max)
{
    struct conn_cache *cc = xcalloc(1, sizeof(*cc));
    cc->base = base;
    cc->idle = idle_seconds ? idle_seconds : CONN_CACHE_IDLE;
    cc->max = max ? max : CONN_CACHE_MAX;
    return cc;
}

/* unlink_entry - take e out of the list and free it (not its connection) */
static struct smtp_out *unlink_entry(struct cc_entry *e)
{
    struct conn_cache *cc = e->cc;
    struct smtp_out *so = e->so;
    if (e->prev)
        e->prev->next = e->next;
    else
        cc->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        cc->tail = e->prev;
    cc->n--;
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

/* on_failed - the server closed a cached connection */
static void on_failed(void *arg, struct smtp_out *so, const struct so_failure *f)
{
    (void)f;
    unlink_entry(arg);
    smtp_out_free(so);
}

void conn_cache_put(struct conn_cache *cc, struct smtp_out *so)
{
    static const struct smtp_out_cbs cbs = { NULL, NULL, on_failed, NULL };
    if (cc == NULL || !smtp_out_is_ready(so)) {
        smtp_out_quit(so);
        return;
    }
    if (cc->n >= cc->max && cc->tail)
        smtp_out_quit(unlink_entry(cc->tail));
    struct cc_entry *e = xcalloc(1, sizeof(*e));
    e->cc = cc;
    e->so = so;
    hop_key(smtp_out_hop(so), e->key, sizeof(e->key));
    e->timer = evtimer_new(cc->base, on_idle, e);
    if (e->timer == NULL)
        fatalx("conn_cache: cannot create a timer");
    struct timeval tv = { (time_t)cc->idle, 0 };
    evtimer_add(e->timer, &tv);
    smtp_out_set_cbs(so, &cbs, e);
    e->next = cc->head;
    if (cc->head)
        cc->head->prev = e;
    else
        cc->tail = e;
    cc->head = e;
    cc->n++;
}

struct smtp_out *conn_cache_take(struct conn_cache *cc, const struct next_hop *hop)
{
    char key[400];
    if (cc == NULL)
        return NULL;
    hop_key(hop, key, sizeof(key));
    for (struct cc_entry *e = cc->head; e; e = e->next)
        if (strcmp(e->key, key) == 0 && smtp_out_is_ready(e->so)) {
            metric_inc(M_ONWARD_REUSED);
            return unlink_entry(e);
        }
    return NULL;
}

size_t conn_cache_count(const struct conn_cache *cc)
{
    return cc ? cc->n : 0;
}

void conn_cache_free(struct conn_cache *cc)
{
    if (cc == NULL)
        return;
    while (cc->head)
        smtp_out_quit(unlink_entry(cc->head));
    free(cc);
}
