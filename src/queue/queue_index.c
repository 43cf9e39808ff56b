/* queue_index.c - the queue's entries by id (a chained hash table that doubles as it fills)
 * and the waiting entries by due time (a binary min-heap; each entry knows its position). */
#include "queue_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "store/store.h"

#define INDEX_INITIAL 1024

/* id_hash - FNV-1a over the id */
static size_t id_hash(const char *id)
{
    uint64_t h = 1469598103934665603ull;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ull;
    return (size_t)h;
}

void index_init(struct queue *q)
{
    q->nbuckets = INDEX_INITIAL;
    q->buckets = xcalloc(q->nbuckets, sizeof(*q->buckets));
    q->nentries = 0;
}

void index_free(struct queue *q)
{
    for (size_t i = 0; i < q->nbuckets; i++) {
        struct qentry *e = q->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            free(e->waiters);
            free(e);
        }
    }
    free(q->buckets);
    free(q->heap);
    q->buckets = NULL;
    q->heap = NULL;
    q->nbuckets = q->nentries = q->heap_len = q->heap_cap = 0;
}

struct qentry *index_find(const struct queue *q, const char *id)
{
    struct qentry *e = q->buckets[id_hash(id) & (q->nbuckets - 1)];
    while (e && strcmp(e->id, id) != 0)
        e = e->next;
    return e;
}

/* grow - double the bucket array and rehash */
static void grow(struct queue *q)
{
    size_t n = q->nbuckets * 2;
    struct qentry **b = xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < q->nbuckets; i++) {
        struct qentry *e = q->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            size_t k = id_hash(e->id) & (n - 1);
            e->next = b[k];
            b[k] = e;
        }
    }
    free(q->buckets);
    q->buckets = b;
    q->nbuckets = n;
}

/* oldest_refresh - the queue's size and oldest arrival for /metrics.  Finding the oldest
 * after it left costs a walk over the index, done at most once a second */
static void oldest_refresh(struct queue *q, bool force)
{
    time_t now = time(NULL);
    if (q->nentries == 0) {
        q->oldest = 0;
        q->oldest_stale = false;
    } else if (q->oldest_stale && (force || now != q->oldest_scanned)) {
        q->oldest = UINT64_MAX;
        for (size_t i = 0; i < q->nbuckets; i++)
            for (struct qentry *e = q->buckets[i]; e; e = e->next)
                if (e->arrival < q->oldest)
                    q->oldest = e->arrival;
        q->oldest_stale = false;
        q->oldest_scanned = now;
    }
    gauge_set(G_QUEUE_MESSAGES, (int64_t)q->nentries);
    gauge_set(G_QUEUE_OLDEST, (int64_t)q->oldest);
}

void queue_metrics_refresh(struct queue *q)
{
    oldest_refresh(q, true);
}

void index_insert(struct queue *q, struct qentry *e)
{
    if (!msgid_time(e->id, &e->arrival))
        e->arrival = (uint64_t)time(NULL);
    if (q->oldest == 0 || e->arrival < q->oldest)
        q->oldest = e->arrival;
    if (q->nentries >= q->nbuckets)
        grow(q);
    size_t k = id_hash(e->id) & (q->nbuckets - 1);
    e->next = q->buckets[k];
    q->buckets[k] = e;
    q->nentries++;
    oldest_refresh(q, false);
}

void index_remove(struct queue *q, struct qentry *e)
{
    struct qentry **pp = &q->buckets[id_hash(e->id) & (q->nbuckets - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = e->next;
        q->nentries--;
        q->oldest_stale |= e->arrival <= q->oldest;
    }
    oldest_refresh(q, false);
}

/* before - heap order: earlier due first, then arrival order */
static bool before(const struct qentry *a, const struct qentry *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

/* place - put e at heap position i */
static void place(struct queue *q, size_t i, struct qentry *e)
{
    q->heap[i] = e;
    e->heap_idx = i;
}

/* sift_up - move the entry at i towards the root while it is due before its parent */
static void sift_up(struct queue *q, size_t i)
{
    struct qentry *e = q->heap[i];
    while (i > 0 && before(e, q->heap[(i - 1) / 2])) {
        place(q, i, q->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    place(q, i, e);
}

/* sift_down - move the entry at i towards the leaves while a child is due before it */
static void sift_down(struct queue *q, size_t i)
{
    struct qentry *e = q->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->heap_len)
            break;
        if (c + 1 < q->heap_len && before(q->heap[c + 1], q->heap[c]))
            c++;
        if (!before(q->heap[c], e))
            break;
        place(q, i, q->heap[c]);
        i = c;
    }
    place(q, i, e);
}

void heap_push(struct queue *q, struct qentry *e)
{
    if (q->heap_len == q->heap_cap) {
        q->heap_cap = q->heap_cap ? q->heap_cap * 2 : 256;
        q->heap = xreallocarray(q->heap, q->heap_cap, sizeof(*q->heap));
    }
    e->seq = q->seq++;
    place(q, q->heap_len++, e);
    sift_up(q, e->heap_idx);
}

struct qentry *heap_top(const struct queue *q)
{
    return q->heap_len ? q->heap[0] : NULL;
}

void heap_delete(struct queue *q, struct qentry *e)
{
    size_t i = e->heap_idx;
    if (i == HEAP_NONE || i >= q->heap_len || q->heap[i] != e)
        return;
    e->heap_idx = HEAP_NONE;
    struct qentry *last = q->heap[--q->heap_len];
    if (last == e)
        return;
    place(q, i, last);
    sift_down(q, i);
    sift_up(q, last->heap_idx);
}

struct qentry *heap_pop(struct queue *q)
{
    struct qentry *e = heap_top(q);
    if (e)
        heap_delete(q, e);
    return e;
}
