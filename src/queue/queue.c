/* queue.c - the queue engine's life cycle and scheduling: entries become due, at most
 * remote_max_parallel run, one timer is armed for the earliest due entry, requests wait for
 * their attempt (see queue.h). */
#include "queue_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "queue.h"
#include "conf/conf.h"
#include "core/core.h"
#include "store/store.h"

static void dispatch(struct queue *q);

const char *attempt_status_name(enum attempt_status st)
{
    static const char *names[] = {
        [ATT_DONE] = "done", [ATT_LOCKED] = "locked by another process",
        [ATT_GONE] = "no such message", [ATT_CORRUPT] = "unreadable, quarantined",
        [ATT_ERROR] = "local error", [ATT_STOPPED] = "the queue is stopping",
    };
    return (unsigned)st < ARRAY_LEN(names) ? names[st] : "?";
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dispatch(arg);
}

struct queue *queue_new(const struct delivery_env *de)
{
    struct queue *q = xcalloc(1, sizeof(*q));
    q->de = de;
    q->conf = de->conf;
    index_init(q);
    q->timer = evtimer_new(de->base, timer_cb, q);
    q->kick = evtimer_new(de->base, timer_cb, q);
    if (q->timer == NULL || q->kick == NULL)
        fatalx("queue: cannot create timers");
    return q;
}

/* kick - dispatch on the next turn of the loop (never from inside an attempt's callback) */
static void kick(struct queue *q)
{
    event_active(q->kick, EV_TIMEOUT, 0);
}

/* notify - answer every request waiting on e, then forget them */
static void notify(struct qentry *e, const struct attempt_report *rep)
{
    struct waiter *w = e->waiters;
    size_t n = e->nwaiters;
    e->waiters = NULL;
    e->nwaiters = 0;
    for (size_t i = 0; i < n; i++)
        w[i].cb(w[i].arg, rep);
    free(w);
}

/* notify_status - answer e's requests with a bare status */
static void notify_status(struct qentry *e, enum attempt_status st)
{
    struct attempt_report rep;
    memset(&rep, 0, sizeof(rep));
    rep.id = e->id;
    rep.status = st;
    notify(e, &rep);
}

/* drop - forget an entry (it is neither running nor, afterwards, in the heap) */
static void drop(struct queue *q, struct qentry *e)
{
    heap_delete(q, e);
    index_remove(q, e);
    free(e->waiters);
    free(e);
}

void queue_free(struct queue *q)
{
    if (q == NULL)
        return;
    for (size_t i = 0; i < q->nbuckets; i++)
        for (struct qentry *e = q->buckets[i]; e; e = e->next)
            if (e->nwaiters)
                notify_status(e, ATT_STOPPED);
    event_free(q->timer);
    event_free(q->kick);
    index_free(q);
    free(q);
}

/* enqueue - the entry for id, created due now if it is new; NULL when the queue is full */
static struct qentry *enqueue(struct queue *q, const char *id, bool *created)
{
    struct qentry *e = index_find(q, id);
    *created = false;
    if (e)
        return e;
    if (q->nentries >= QUEUE_ENTRIES_MAX) {
        if (!q->full_logged)
            log_panic("queue: more than %u messages; the rest wait for a later scan",
                      QUEUE_ENTRIES_MAX);
        q->full_logged = true;
        return NULL;
    }
    e = xcalloc(1, sizeof(*e));
    str_copy(e->id, id, sizeof(e->id));
    e->due = time(NULL);
    e->heap_idx = HEAP_NONE;
    index_insert(q, e);
    heap_push(q, e);
    *created = true;
    return e;
}

void queue_add(struct queue *q, const char *id)
{
    bool created;
    if (!msgid_valid(id))
        return;
    struct qentry *e = enqueue(q, id, &created);
    if (e && !created && !e->running && e->due > time(NULL)) {
        heap_delete(q, e);
        e->due = time(NULL);
        heap_push(q, e);
    }
    kick(q);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t queue_scan(struct queue *q)
{
    char **ids;
    size_t n = spool_list(q->conf->spool_directory, &ids), added = 0;
    bool created;
    q->full_logged = false;
    for (size_t i = 0; i < n; i++)
        if (enqueue(q, ids[i], &created) && created)
            added++;
    if (n)
        qsort(ids, n, sizeof(*ids), cmp_str);
    qstate_sweep(q->de->hints, ids, n);
    spool_list_free(ids, n);
    queue_metrics_refresh(q);
    if (added)
        kick(q);
    return added;
}

/* add_waiter - remember a request on e; false if too many are waiting already */
static bool add_waiter(struct qentry *e, queue_report_cb cb, void *arg)
{
    if (cb == NULL)
        return true;
    if (e->nwaiters >= QUEUE_WAITERS_MAX)
        return false;
    e->waiters = xreallocarray(e->waiters, e->nwaiters + 1, sizeof(*e->waiters));
    e->waiters[e->nwaiters++] = (struct waiter){ cb, arg };
    return true;
}

/* request_entry - make e's next attempt a forced one, as soon as possible */
static void request_entry(struct queue *q, struct qentry *e)
{
    if (e->running) {
        e->force_again = true;
        return;
    }
    e->force = true;
    heap_delete(q, e);
    e->due = 0;
    heap_push(q, e);
}

/* refuse - answer a request that cannot wait on an entry */
static void refuse(const char *id, enum attempt_status st, queue_report_cb cb, void *arg)
{
    struct attempt_report rep;
    memset(&rep, 0, sizeof(rep));
    rep.id = id;
    rep.status = st;
    if (cb)
        cb(arg, &rep);
}

void queue_request(struct queue *q, const char *id, queue_report_cb cb, void *arg)
{
    bool created;
    struct qentry *e = NULL;
    if (q->stopping)
        refuse(id, ATT_STOPPED, cb, arg);
    else if (!msgid_valid(id))
        refuse(id, ATT_GONE, cb, arg);
    else if ((e = enqueue(q, id, &created)) == NULL || !add_waiter(e, cb, arg))
        refuse(id, ATT_ERROR, cb, arg);
    else {
        request_entry(q, e);
        kick(q);
    }
}

size_t queue_request_all(struct queue *q, queue_report_cb cb, void *arg)
{
    size_t n = 0;
    struct qentry **all = xcalloc(q->nentries ? q->nentries : 1, sizeof(*all));
    for (size_t i = 0; i < q->nbuckets; i++)
        for (struct qentry *e = q->buckets[i]; e; e = e->next)
            all[n++] = e;
    for (size_t i = 0; i < n; i++)
        queue_request(q, all[i]->id, cb, arg);
    free(all);
    return n;
}

bool queue_remove(struct queue *q, const char *id, const char *who, char *err, size_t errsz)
{
    struct qentry *e = msgid_valid(id) ? index_find(q, id) : NULL;
    if (e && e->running) {
        str_fmt(err, errsz, "%s: being delivered; try again when the attempt is over", id);
        return false;
    }
    if (!queue_remove_message(q->conf, q->de->hints, id, who, err, errsz))
        return false;
    if (e) {
        notify_status(e, ATT_GONE);
        drop(q, e);
    }
    kick(q);
    return true;
}

void queue_attempt_over(struct queue *q, struct qentry *e, const struct attempt_report *rep,
                        time_t next_due)
{
    q->running--;
    e->running = false;
    kick(q);
    if (e->force_again && next_due && rep->status == ATT_DONE && !q->stopping) {
        e->force_again = false;   /* its requests wait for the forced attempt */
        e->force = true;
        e->due = 0;
        heap_push(q, e);
        return;
    }
    e->force_again = false;
    notify(e, rep);
    if (next_due == 0) {
        drop(q, e);
        return;
    }
    e->due = next_due;
    heap_push(q, e);
}

/* max_parallel - remote_max_parallel, at least one */
static size_t max_parallel(const struct queue *q)
{
    return q->conf->remote_max_parallel ? q->conf->remote_max_parallel : 1;
}

/* arm - one timer, for the earliest due entry, when a slot is free to start it */
static void arm(struct queue *q, time_t now)
{
    struct qentry *top = heap_top(q);
    if (q->stopping || top == NULL || q->running >= max_parallel(q)) {
        evtimer_del(q->timer);
        return;
    }
    struct timeval tv = { top->due > now ? top->due - now : 0, 0 };
    evtimer_add(q->timer, &tv);
}

/* idle - tell the owner when nothing runs and nothing is due */
static void idle(struct queue *q, time_t now)
{
    struct qentry *top = heap_top(q);
    if (q->idle_cb && q->running == 0 && (top == NULL || top->due > now || q->stopping))
        q->idle_cb(q->idle_arg);
}

/* dispatch - start the due entries while delivery slots are free */
static void dispatch(struct queue *q)
{
    time_t now = time(NULL);
    struct qentry *top;
    while (!q->stopping && q->running < max_parallel(q) && (top = heap_top(q)) != NULL &&
           top->due <= now) {
        heap_pop(q);
        top->running = true;
        q->running++;
        attempt_start(q, top);
    }
    arm(q, now);
    idle(q, now);
}

void queue_stop(struct queue *q)
{
    q->stopping = true;
    for (size_t i = 0; i < q->nbuckets; i++)
        for (struct qentry *e = q->buckets[i]; e; e = e->next)
            if (!e->running && e->nwaiters)
                notify_status(e, ATT_STOPPED);
    kick(q);
}

size_t queue_running(const struct queue *q)
{
    return q->running;
}

size_t queue_length(const struct queue *q)
{
    return q->nentries;
}

void queue_set_idle_cb(struct queue *q, void (*cb)(void *arg), void *arg)
{
    q->idle_cb = cb;
    q->idle_arg = arg;
}
