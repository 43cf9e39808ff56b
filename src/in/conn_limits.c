/* conn_limits.c - shared connection counters: per worker, a total and an open-addressed table
 * of per-address counts.  Readers sum over all workers; slight races only make the limits
 * approximate by a connection or two, never corrupt anything. */
#include "in.h"

#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "core/core.h"

#define HOST_SLOTS 8192 /* power of two */

struct host_count {
    uint8_t addr[16];
    _Atomic uint32_t used;  /* the slot holds addr (may have count 0) */
    _Atomic uint32_t count;
};

struct worker_counts {
    _Atomic uint32_t total;
    struct host_count hosts[HOST_SLOTS];
};

struct conn_limits {
    unsigned nworkers;
    struct worker_counts w[];
};

struct conn_limits *conn_limits_create(unsigned nworkers)
{
    size_t size = sizeof(struct conn_limits) + (size_t)nworkers * sizeof(struct worker_counts);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        fatal("mmap connection counters");
    struct conn_limits *cl = p;
    cl->nworkers = nworkers;
    return cl;
}

void conn_limits_reset_worker(struct conn_limits *cl, unsigned worker)
{
    if (worker < cl->nworkers)
        memset(&cl->w[worker], 0, sizeof(cl->w[worker]));
}

/* ip_key - the address as 16 bytes (IPv4 mapped) */
static void ip_key(const char *ip, uint8_t key[16])
{
    memset(key, 0, 16);
    if (inet_pton(AF_INET6, ip, key) == 1)
        return;
    key[10] = key[11] = 0xff;
    inet_pton(AF_INET, ip, key + 12);
}

static uint32_t ip_hash(const uint8_t key[16])
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    return h;
}

/* find - the slot for key in one worker's table; create it if asked and absent */
static struct host_count *find(struct worker_counts *wc, const uint8_t key[16], bool create)
{
    uint32_t h = ip_hash(key);
    for (uint32_t i = 0; i < HOST_SLOTS; i++) {
        struct host_count *hc = &wc->hosts[(h + i) & (HOST_SLOTS - 1)];
        if (!atomic_load(&hc->used)) {
            if (!create)
                return NULL;
            memcpy(hc->addr, key, 16);
            atomic_store(&hc->used, 1);
            return hc;
        }
        if (memcmp(hc->addr, key, 16) == 0)
            return hc;
    }
    return NULL; /* table full: this address is not counted */
}

const char *conn_limits_check(struct conn_limits *cl, const char *ip, unsigned max_total,
                              unsigned max_per_host)
{
    uint8_t key[16];
    uint64_t total = 0, host = 0;
    ip_key(ip, key);
    for (unsigned i = 0; i < cl->nworkers; i++) {
        total += atomic_load(&cl->w[i].total);
        struct host_count *hc = find(&cl->w[i], key, false);
        if (hc)
            host += atomic_load(&hc->count);
    }
    if (max_total && total >= max_total)
        return "Too many concurrent SMTP connections";
    if (max_per_host && host >= max_per_host)
        return "Too many concurrent SMTP connections from this IP address";
    return NULL;
}

void conn_limits_add(struct conn_limits *cl, unsigned worker, const char *ip)
{
    uint8_t key[16];
    ip_key(ip, key);
    atomic_fetch_add(&cl->w[worker].total, 1);
    struct host_count *hc = find(&cl->w[worker], key, true);
    if (hc)
        atomic_fetch_add(&hc->count, 1);
}

void conn_limits_remove(struct conn_limits *cl, unsigned worker, const char *ip)
{
    uint8_t key[16];
    ip_key(ip, key);
    atomic_fetch_sub(&cl->w[worker].total, 1);
    struct host_count *hc = find(&cl->w[worker], key, false);
    if (hc && atomic_load(&hc->count) > 0)
        atomic_fetch_sub(&hc->count, 1);
}
