/* lookup_table.c - the in-memory form of an lsearch file: every entry in one arena, indexed by
 * an open-addressing hash table, so that a lookup costs the same for ten keys or ten million.
 * Memory: the arena (about the file's size) plus 8 bytes per slot, slots being the power of
 * two at or above 4/3 of the keys (8 to 16 bytes per key). */
#include "lookup_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/core.h"

#define ARENA_MAX 0xfffffffeu  /* offsets are 32-bit (+1) */
#define SLOTS_MIN 16
#define HUGE_MIN (2u << 20)    /* tables this large go into (transparent) huge pages */

/* lower - ASCII lower case (keys compare without case, in the C locale as in Exim) */
static inline unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* key_hash - FNV-1a over the bytes, then a 64-bit finaliser so that every bit is mixed */
static uint64_t key_hash(const char *key, size_t klen)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < klen; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3u;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    return h;
}

/* big_alloc - n zeroed bytes; from n = 2 MiB on, a mapping the kernel may back with huge pages
 * (a random lookup in a large table then costs one TLB miss less) */
static void *big_alloc(size_t n, bool *mapped)
{
    *mapped = n >= HUGE_MIN;
    if (!*mapped)
        return xcalloc(1, n ? n : 1);
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        fatalx("lookup table: cannot map %zu bytes", n);
    (void)madvise(p, n, MADV_HUGEPAGE);
    return p;
}

static void big_free(void *p, size_t n, bool mapped)
{
    if (mapped)
        munmap(p, n);
    else
        free(p);
}

void table_init(struct lookup_table *t)
{
    memset(t, 0, sizeof(*t));
}

/* arena_reserve - room for n more bytes; false past the 32-bit limit */
static bool arena_reserve(struct lookup_table *t, size_t n)
{
    if (n > ARENA_MAX || t->len > ARENA_MAX - n)
        return false;
    if (t->len + n <= t->cap)
        return true;
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->len + n)
        cap = cap > SIZE_MAX / 2 ? t->len + n : cap * 2;
    t->arena = xrealloc(t->arena, cap);
    t->cap = cap;
    return true;
}

bool table_add(struct lookup_table *t, const char *key, size_t klen, const char *val, size_t vlen)
{
    if (klen > ARENA_MAX || vlen > ARENA_MAX - klen - 2 || !arena_reserve(t, klen + vlen + 2))
        return false;
    uint32_t off = (uint32_t)t->len;
    char *p = t->arena + t->len;
    for (size_t i = 0; i < klen; i++)
        p[i] = (char)lower((unsigned char)key[i]);
    p[klen] = '\0';
    memcpy(p + klen + 1, val, vlen);
    p[klen + 1 + vlen] = '\0';
    t->len += klen + vlen + 2;
    if ((t->nentries & (t->nentries - 1)) == 0) /* grow at 0, 1, 2, 4, 8, ... */
        t->entries = xreallocarray(t->entries, t->nentries ? t->nentries * 2 : 1, sizeof(uint32_t));
    t->entries[t->nentries++] = off;
    return true;
}

/* probe - the slot holding key, or the empty slot where it would go */
static struct lt_slot *probe(const struct lookup_table *t, const char *key, size_t klen,
                             uint64_t h)
{
    uint32_t tag = (uint32_t)(h >> 32);
    for (size_t i = (size_t)h & t->mask;; i = (i + 1) & t->mask) {
        struct lt_slot *s = &t->slots[i];
        if (s->off1 == 0)
            return s;
        const char *k = t->arena + s->off1 - 1;
        if (s->tag == tag && strncmp(k, key, klen) == 0 && k[klen] == '\0')
            return s;
    }
}

/* settle_arena - the arena at its final size: huge pages when it is large */
static void settle_arena(struct lookup_table *t)
{
    if (t->len >= HUGE_MIN) {
        bool mapped;
        char *a = big_alloc(t->len, &mapped);
        memcpy(a, t->arena, t->len);
        free(t->arena);
        t->arena = a;
        t->arena_mapped = mapped;
    } else if (t->len < t->cap) {
        t->arena = xrealloc(t->arena, t->len ? t->len : 1);
    }
    t->cap = t->len;
}

void table_build(struct lookup_table *t)
{
    size_t want = t->nentries + t->nentries / 3 + 1, n = SLOTS_MIN;
    while (n < want)
        n *= 2;
    if (t->slots != NULL)
        big_free(t->slots, (t->mask + 1) * sizeof(*t->slots), t->slots_mapped);
    settle_arena(t);
    t->slots = big_alloc(n * sizeof(*t->slots), &t->slots_mapped);
    t->mask = n - 1;
    t->nkeys = 0;
    for (size_t i = 0; i < t->nentries; i++) {
        const char *k = t->arena + t->entries[i];
        size_t klen = strlen(k);
        uint64_t h = key_hash(k, klen);
        struct lt_slot *s = probe(t, k, klen, h);
        if (s->off1 != 0)
            continue; /* a later duplicate: the first one wins */
        s->tag = (uint32_t)(h >> 32);
        s->off1 = t->entries[i] + 1;
        t->nkeys++;
    }
    free(t->entries);
    t->entries = NULL;
    t->nentries = 0;
}

const char *table_find(const struct lookup_table *t, const char *key, size_t klen)
{
    if (t->slots == NULL)
        return NULL;
    const struct lt_slot *s = probe(t, key, klen, key_hash(key, klen));
    if (s->off1 == 0)
        return NULL;
    const char *k = t->arena + s->off1 - 1;
    return k + klen + 1;
}

size_t table_bytes(const struct lookup_table *t)
{
    return t->cap + (t->slots ? (t->mask + 1) * sizeof(*t->slots) : 0);
}

void table_free(struct lookup_table *t)
{
    if (t->arena_mapped)
        big_free(t->arena, t->cap, true);
    else
        free(t->arena);
    free(t->entries);
    if (t->slots != NULL)
        big_free(t->slots, (t->mask + 1) * sizeof(*t->slots), t->slots_mapped);
    table_init(t);
}
