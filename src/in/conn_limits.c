/* conn_limits.c - shared connection counters.  Each worker owns one table in shared memory:
 * its total and, per client address with a connection open, that address's count.  Only open
 * connections are tracked: an address leaves the table when its last connection closes, and
 * the table grows and shrinks with the number of addresses (the pages it gives up are
 * returned).  It is bounded by smtp_accept_max, since a worker never holds more connections
 * than that; were it ever full, the connection is refused, never let in uncounted.
 *
 * Only the owner writes its table, under a sequence counter (odd while it changes); readers
 * in other workers retry while it moves.  Races between workers only make the limits
 * approximate by a connection or two, never corrupt anything. */
#include "in.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/core.h"

#define MIN_SLOTS 64        /* power of two: the table never shrinks below this */
#define READ_TRIES 1000     /* a reader gives up on a consistent view after this many */

struct host_count {
    _Atomic uint64_t addr[2];  /* the address as 16 bytes (IPv4 mapped) */
    _Atomic uint32_t count;    /* 0: the slot is free */
    uint32_t pad;
};

struct worker_table {
    _Atomic uint32_t seq;      /* odd while the owner changes the table */
    _Atomic uint32_t total;    /* connections open in this worker */
    _Atomic uint32_t cap;      /* slots in use: a power of two, MIN_SLOTS..max_slots */
    _Atomic uint32_t naddr;    /* addresses in the table */
    struct host_count slots[]; /* max_slots reserved; the pages past cap are released */
};

struct conn_limits {
    unsigned nworkers;
    uint32_t max_slots;
    size_t stride;             /* bytes per worker table, a multiple of the page size */
    unsigned char *tables;
};

/* table - worker i's table */
static struct worker_table *table(const struct conn_limits *cl, unsigned i)
{
    return (struct worker_table *)(void *)(cl->tables + (size_t)i * cl->stride);
}

/* release_past - give the pages of t beyond its first cap slots back to the system */
static void release_past(const struct conn_limits *cl, struct worker_table *t, uint32_t cap)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t used = offsetof(struct worker_table, slots) + (size_t)cap * sizeof(struct host_count);
    used = (used + page - 1) / page * page;
    if (used < cl->stride)
        (void)madvise((unsigned char *)t + used, cl->stride - used, MADV_REMOVE);
}

struct conn_limits *conn_limits_create(unsigned nworkers, unsigned max_conns)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint64_t want = 2 * ((uint64_t)max_conns + nworkers);   /* load at most one half */
    uint32_t max_slots = MIN_SLOTS;
    while (max_slots < want && max_slots < (UINT32_C(1) << 30))
        max_slots *= 2;
    size_t stride = offsetof(struct worker_table, slots) + (size_t)max_slots * sizeof(struct host_count);
    stride = (stride + page - 1) / page * page;
    /* One page for this header, then the tables, each starting on a page */
    void *p = mmap(NULL, page + stride * nworkers, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        fatal("mmap connection counters");
    struct conn_limits *cl = p;
    cl->nworkers = nworkers;
    cl->max_slots = max_slots;
    cl->stride = stride;
    cl->tables = (unsigned char *)p + page;
    for (unsigned i = 0; i < nworkers; i++)
        atomic_store(&table(cl, i)->cap, MIN_SLOTS);
    return cl;
}

void conn_limits_reset_worker(struct conn_limits *cl, unsigned worker)
{
    if (worker >= cl->nworkers)
        return;
    struct worker_table *t = table(cl, worker);
    memset(t->slots, 0, MIN_SLOTS * sizeof(struct host_count));
    release_past(cl, t, MIN_SLOTS);
    atomic_store(&t->total, 0);
    atomic_store(&t->naddr, 0);
    atomic_store(&t->cap, MIN_SLOTS);
    atomic_store(&t->seq, 0);
}

/* ip_key - the address as 16 bytes (IPv4 mapped) */
static void ip_key(const char *ip, uint64_t key[2])
{
    uint8_t b[16];
    memset(b, 0, 16);
    if (inet_pton(AF_INET6, ip, b) != 1) {
        b[10] = b[11] = 0xff;
        inet_pton(AF_INET, ip, b + 12);
    }
    memcpy(key, b, 16);
}

static uint32_t ip_hash(const uint64_t key[2])
{
    uint8_t b[16];
    uint32_t h = 2166136261u;
    memcpy(b, key, 16);
    for (int i = 0; i < 16; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

/* slot_is - the slot holds key */
static bool slot_is(struct host_count *hc, const uint64_t key[2])
{
    return atomic_load(&hc->addr[0]) == key[0] && atomic_load(&hc->addr[1]) == key[1];
}

/* probe - the slot holding key in the first cap slots of t, else the free slot that ends
 * its probe sequence (NULL if there is none: a reader saw a table being changed) */
static struct host_count *probe(struct worker_table *t, uint32_t cap, const uint64_t key[2])
{
    uint32_t h = ip_hash(key);
    for (uint32_t i = 0; i < cap; i++) {
        struct host_count *hc = &t->slots[(h + i) & (cap - 1)];
        if (atomic_load(&hc->count) == 0 || slot_is(hc, key))
            return hc;
    }
    return NULL;
}

/* table_count - connections from key open in t, read consistently (a reader's view) */
static uint32_t table_count(const struct conn_limits *cl, struct worker_table *t,
                            const uint64_t key[2])
{
    uint32_t n = 0;
    for (int tries = 0; tries < READ_TRIES; tries++) {
        uint32_t seq = atomic_load(&t->seq);
        if (seq & 1)
            continue;
        uint32_t cap = atomic_load(&t->cap);
        if (cap < MIN_SLOTS || cap > cl->max_slots)
            continue;
        struct host_count *hc = probe(t, cap, key);
        n = hc ? atomic_load(&hc->count) : 0;
        if (atomic_load(&t->seq) == seq)
            return n;
    }
    return n;   /* the owner died mid-change: the parent will reset its table */
}

/* put - store key with count n in the first cap slots (owner only; the key is absent) */
static void put(struct worker_table *t, uint32_t cap, const uint64_t key[2], uint32_t n)
{
    struct host_count *hc = probe(t, cap, key);
    atomic_store(&hc->addr[0], key[0]);
    atomic_store(&hc->addr[1], key[1]);
    atomic_store(&hc->count, n);
}

/* resize - rehash t into cap slots (owner only, inside a change) */
static void resize(const struct conn_limits *cl, struct worker_table *t, uint32_t cap)
{
    uint32_t old = atomic_load(&t->cap), naddr = atomic_load(&t->naddr), k = 0;
    struct { uint64_t key[2]; uint32_t n; } *live = xcalloc(naddr ? naddr : 1, sizeof(*live));
    for (uint32_t i = 0; i < old && k < naddr; i++) {
        struct host_count *hc = &t->slots[i];
        uint32_t n = atomic_load(&hc->count);
        if (n == 0)
            continue;
        live[k].key[0] = atomic_load(&hc->addr[0]);
        live[k].key[1] = atomic_load(&hc->addr[1]);
        live[k++].n = n;
    }
    memset(t->slots, 0, (size_t)(old > cap ? old : cap) * sizeof(struct host_count));
    atomic_store(&t->cap, cap);
    for (uint32_t i = 0; i < k; i++)
        put(t, cap, live[i].key, live[i].n);
    free(live);
    if (cap < old)
        release_past(cl, t, cap);
}

/* delete_slot - free a slot, moving later members of its cluster back (linear probing
 * without tombstones, Knuth's algorithm R; owner only, inside a change) */
static void delete_slot(struct worker_table *t, uint32_t cap, uint32_t i)
{
    uint32_t j = i;
    atomic_store(&t->slots[i].count, 0);
    for (;;) {
        j = (j + 1) & (cap - 1);
        struct host_count *hj = &t->slots[j];
        if (atomic_load(&hj->count) == 0)
            return;
        uint64_t key[2] = { atomic_load(&hj->addr[0]), atomic_load(&hj->addr[1]) };
        uint32_t home = ip_hash(key) & (cap - 1);
        /* hj may move to the hole at i unless its home lies cyclically in (i, j] */
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
            continue;
        atomic_store(&t->slots[i].addr[0], key[0]);
        atomic_store(&t->slots[i].addr[1], key[1]);
        atomic_store(&t->slots[i].count, atomic_load(&hj->count));
        atomic_store(&hj->count, 0);
        i = j;
    }
}

/* table_full - the owner's table cannot take another address */
static bool table_full(const struct conn_limits *cl, struct worker_table *t)
{
    return atomic_load(&t->naddr) + 1 > cl->max_slots / 2;
}

unsigned conn_limits_host_count(struct conn_limits *cl, const char *ip)
{
    uint64_t key[2];
    uint64_t host = 0;
    ip_key(ip, key);
    for (unsigned i = 0; i < cl->nworkers; i++)
        host += table_count(cl, table(cl, i), key);
    return host > UINT_MAX ? UINT_MAX : (unsigned)host;
}

const char *conn_limits_check(struct conn_limits *cl, unsigned worker, const char *ip,
                              unsigned max_total, unsigned max_per_host)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < cl->nworkers; i++)
        total += atomic_load(&table(cl, i)->total);
    if ((max_total && total >= max_total) ||
        (worker < cl->nworkers && table_full(cl, table(cl, worker))))
        return "Too many concurrent SMTP connections";
    if (max_per_host && conn_limits_host_count(cl, ip) >= max_per_host)
        return "Too many concurrent SMTP connections from this IP address";
    return NULL;
}

void conn_limits_add(struct conn_limits *cl, unsigned worker, const char *ip)
{
    uint64_t key[2];
    struct worker_table *t = table(cl, worker);
    ip_key(ip, key);
    atomic_fetch_add(&t->seq, 1);
    atomic_fetch_add(&t->total, 1);
    uint32_t cap = atomic_load(&t->cap);
    struct host_count *hc = probe(t, cap, key);
    if (hc && atomic_load(&hc->count) > 0) {
        atomic_fetch_add(&hc->count, 1);
    } else if (hc) {              /* (conn_limits_check made sure there is room) */
        uint32_t naddr = atomic_load(&t->naddr) + 1;
        atomic_store(&t->naddr, naddr);
        if (naddr * 2 > cap && cap < cl->max_slots)
            resize(cl, t, cap *= 2);
        put(t, cap, key, 1);
    }
    atomic_fetch_add(&t->seq, 1);
}

void conn_limits_remove(struct conn_limits *cl, unsigned worker, const char *ip)
{
    uint64_t key[2];
    struct worker_table *t = table(cl, worker);
    ip_key(ip, key);
    atomic_fetch_add(&t->seq, 1);
    if (atomic_load(&t->total) > 0)
        atomic_fetch_sub(&t->total, 1);
    uint32_t cap = atomic_load(&t->cap);
    struct host_count *hc = probe(t, cap, key);
    if (hc && atomic_load(&hc->count) > 1) {
        atomic_fetch_sub(&hc->count, 1);
    } else if (hc && atomic_load(&hc->count) == 1) {
        delete_slot(t, cap, (uint32_t)(hc - t->slots));
        uint32_t naddr = atomic_load(&t->naddr) - 1;
        atomic_store(&t->naddr, naddr);
        if (cap > MIN_SLOTS && naddr * 8 < cap)
            resize(cl, t, cap / 2);
    }
    atomic_fetch_add(&t->seq, 1);
}

void conn_limits_table_size(struct conn_limits *cl, unsigned worker, unsigned *naddr,
                            unsigned *slots)
{
    *naddr = *slots = 0;
    if (worker < cl->nworkers) {
        *naddr = atomic_load(&table(cl, worker)->naddr);
        *slots = atomic_load(&table(cl, worker)->cap);
    }
}
