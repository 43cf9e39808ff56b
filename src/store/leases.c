/* leases.c - counted leases shared by every process of one spool (see store/store.h): at most
 * N holders per key, each lease marked with its holder's pid so that the leases of a process
 * that died are taken back.  The table is a file under spool_directory/db mapped by each
 * process and changed under flock(2), which the kernel drops when its holder dies: no lock can
 * be left behind. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

#define LEASE_MAGIC 0x7444534cu /* "LSDt" */
#define LEASE_VERSION 1
#define LEASE_KEYS 4096         /* keys known at once (a power of two) */
#define LEASE_PROBE 64          /* open addressing: entries tried per key */
#define LEASE_SLOTS 16384       /* leases held at once by all processes */

enum slot_state { SLOT_FREE = 0, SLOT_ACTIVE, SLOT_IDLE, SLOT_WANT };

struct lease_key {
    uint64_t hash;              /* 0: never used */
    char key[LEASE_KEY_MAX + 1];
    uint32_t held;              /* active + idle */
    uint32_t idle;
    uint32_t want;
    uint32_t unused;
};

struct lease_slot {
    int32_t pid;
    uint32_t key;               /* index into keys */
    uint32_t state;
};

struct lease_table {
    uint32_t magic, version, nkeys, nslots;
    uint32_t free_hint;         /* where the search for a free slot starts */
    uint32_t unused[3];
    struct lease_key keys[LEASE_KEYS];
    struct lease_slot slots[LEASE_SLOTS];
};

struct leases {
    int fd;
    struct lease_table *t;
    pid_t pid;
};

/* key_hash - FNV-1a, never 0 (0 marks an unused entry) */
static uint64_t key_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h ? h : 1;
}

static void lock(struct leases *ls)
{
    while (flock(ls->fd, LOCK_EX) != 0 && errno == EINTR)
        ;
}

static void unlock(struct leases *ls)
{
    flock(ls->fd, LOCK_UN);
}

/* table_init - a fresh table (the file was new, or of another version) */
static void table_init(struct lease_table *t)
{
    memset(t, 0, sizeof(*t));
    t->magic = LEASE_MAGIC;
    t->version = LEASE_VERSION;
    t->nkeys = LEASE_KEYS;
    t->nslots = LEASE_SLOTS;
}

struct leases *leases_open(const char *spooldir, char *err, size_t errsz)
{
    char path[4200];
    if (!str_fmt(path, sizeof(path), "%s/db/leases", spooldir)) {
        str_fmt(err, errsz, "leases: spool directory name too long");
        return NULL;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        str_fmt(err, errsz, "leases: %s: %s", path, strerror(errno));
        return NULL;
    }
    struct leases *ls = xcalloc(1, sizeof(*ls));
    ls->fd = fd;
    ls->pid = getpid();
    lock(ls);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
        str_fmt(err, errsz, "leases: refusing %s: not a regular file with one link", path);
        unlock(ls);
        leases_close(ls);
        return NULL;
    }
    bool fresh = (size_t)st.st_size != sizeof(struct lease_table);
    if (fresh && ftruncate(fd, (off_t)sizeof(struct lease_table)) != 0) {
        str_fmt(err, errsz, "leases: %s: %s", path, strerror(errno));
        unlock(ls);
        leases_close(ls);
        return NULL;
    }
    void *p = mmap(NULL, sizeof(struct lease_table), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        str_fmt(err, errsz, "leases: mmap %s: %s", path, strerror(errno));
        unlock(ls);
        leases_close(ls);
        return NULL;
    }
    ls->t = p;
    if (fresh || ls->t->magic != LEASE_MAGIC || ls->t->version != LEASE_VERSION ||
        ls->t->nkeys != LEASE_KEYS || ls->t->nslots != LEASE_SLOTS)
        table_init(ls->t);
    unlock(ls);
    return ls;
}

void leases_close(struct leases *ls)
{
    if (ls == NULL)
        return;
    if (ls->t)
        munmap(ls->t, sizeof(struct lease_table));
    close(ls->fd);
    free(ls);
}

/* find_key - the entry of key, created when create is set (reusing an entry nobody holds);
 * -1 when there is none (or no room) */
static int find_key(struct lease_table *t, const char *key, bool create)
{
    uint64_t h = key_hash(key);
    int reuse = -1;
    for (unsigned i = 0; i < LEASE_PROBE; i++) {
        unsigned k = (unsigned)(h + i) & (LEASE_KEYS - 1);
        struct lease_key *e = &t->keys[k];
        if (e->hash == h && strcmp(e->key, key) == 0)
            return (int)k;
        bool unused = e->held == 0 && e->want == 0;
        if (reuse < 0 && unused)
            reuse = (int)k;
        if (e->hash == 0)
            break;          /* the end of this key's chain */
    }
    if (!create || reuse < 0)
        return -1;
    struct lease_key *e = &t->keys[reuse];
    memset(e, 0, sizeof(*e));
    e->hash = h;
    str_copy(e->key, key, sizeof(e->key));
    return reuse;
}

/* count - a slot's state changes its key's counters by delta */
static void count(struct lease_table *t, const struct lease_slot *s, int delta)
{
    struct lease_key *e = &t->keys[s->key];
    if (s->state == SLOT_WANT) {
        e->want += (uint32_t)delta;
        return;
    }
    e->held += (uint32_t)delta;
    if (s->state == SLOT_IDLE)
        e->idle += (uint32_t)delta;
}

/* alive - is pid a running process? */
static bool alive(int32_t pid)
{
    return pid > 0 && (kill(pid, 0) == 0 || errno != ESRCH);
}

/* reap - free the slots of key k held by processes that are gone; returns how many */
static unsigned reap(struct lease_table *t, int k)
{
    unsigned n = 0;
    for (unsigned i = 0; i < LEASE_SLOTS; i++) {
        struct lease_slot *s = &t->slots[i];
        if (s->state == SLOT_FREE || (k >= 0 && s->key != (uint32_t)k) || alive(s->pid))
            continue;
        count(t, s, -1);
        memset(s, 0, sizeof(*s));
        n++;
    }
    return n;
}

/* new_slot - a free slot for key k in the given state, or -1 */
static int new_slot(struct leases *ls, int k, enum slot_state st)
{
    struct lease_table *t = ls->t;
    for (unsigned n = 0; n < LEASE_SLOTS; n++) {
        unsigned i = (t->free_hint + n) % LEASE_SLOTS;
        struct lease_slot *s = &t->slots[i];
        if (s->state != SLOT_FREE)
            continue;
        s->pid = (int32_t)ls->pid;
        s->key = (uint32_t)k;
        s->state = st;
        count(t, s, +1);
        t->free_hint = (i + 1) % LEASE_SLOTS;
        return (int)i;
    }
    return -1;
}

int leases_take(struct leases *ls, const char *key, unsigned max)
{
    if (ls == NULL || strlen(key) > LEASE_KEY_MAX)
        return LEASE_NONE;
    lock(ls);
    int k = find_key(ls->t, key, true), id = LEASE_NONE;
    if (k >= 0) {
        if (ls->t->keys[k].held >= max)
            reap(ls->t, k);
        if (ls->t->keys[k].held >= max)
            id = LEASE_FULL;
        else if ((id = new_slot(ls, k, SLOT_ACTIVE)) < 0)
            id = LEASE_NONE;           /* no free slot at all: do not enforce */
    }
    unlock(ls);
    return id;
}

/* valid - a slot id this process holds */
static bool valid(const struct leases *ls, int id)
{
    return ls && id >= 0 && id < LEASE_SLOTS && ls->t->slots[id].pid == (int32_t)ls->pid &&
           ls->t->slots[id].state != SLOT_FREE;
}

void leases_give(struct leases *ls, int id)
{
    if (!valid(ls, id))
        return;
    lock(ls);
    struct lease_slot *s = &ls->t->slots[id];
    count(ls->t, s, -1);
    memset(s, 0, sizeof(*s));
    unlock(ls);
}

void leases_set_idle(struct leases *ls, int id, bool idle)
{
    if (!valid(ls, id) || ls->t->slots[id].state == SLOT_WANT)
        return;
    lock(ls);
    struct lease_slot *s = &ls->t->slots[id];
    count(ls->t, s, -1);
    s->state = idle ? SLOT_IDLE : SLOT_ACTIVE;
    count(ls->t, s, +1);
    unlock(ls);
}

int leases_want(struct leases *ls, const char *key)
{
    if (ls == NULL || strlen(key) > LEASE_KEY_MAX)
        return LEASE_NONE;
    lock(ls);
    int k = find_key(ls->t, key, true);
    int id = k >= 0 ? new_slot(ls, k, SLOT_WANT) : -1;
    unlock(ls);
    return id >= 0 ? id : LEASE_NONE;
}

bool leases_wanted(struct leases *ls, int id)
{
    if (!valid(ls, id))
        return false;
    const struct lease_key *e = &ls->t->keys[ls->t->slots[id].key];
    return __atomic_load_n(&e->want, __ATOMIC_RELAXED) > 0;
}

bool leases_count(struct leases *ls, const char *key, struct lease_count *c)
{
    memset(c, 0, sizeof(*c));
    if (ls == NULL)
        return false;
    lock(ls);
    int k = find_key(ls->t, key, false);
    if (k >= 0) {
        c->held = ls->t->keys[k].held;
        c->idle = ls->t->keys[k].idle;
        c->want = ls->t->keys[k].want;
    }
    unlock(ls);
    return k >= 0;
}
