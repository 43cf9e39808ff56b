/* lookup.c - one lookup file named in the configuration ("lsearch;/path", "cdb;/path"), shared
 * by every list item that names it, and kept fresh: at most once a second a lookup stats its
 * file, and when the file is another one or has changed (device, inode, size, mtime, ctime) it
 * is read again.  An lsearch file is parsed into a hash table; a cdb file is mapped.  A file
 * that is missing, unreadable, not a regular file or corrupt makes every lookup in it defer
 * (never match or not match by accident); that is logged once per change, as is every load.
 *
 * A changed file is read once it has been left alone for a second, so that a file still being
 * written is not read half-done (the first read, when a process starts, does not wait).
 *
 * The state is per process: each worker (and the scheduler) loads the files it uses. */
#include "lookup_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

#define CHECK_INTERVAL_NS 1000000000LL  /* how often a file is checked for a change */

/* What identifies the content of a file without reading it. */
struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
};

struct lookup {
    enum lookup_type type;
    char *path;
    int line;                      /* where the configuration first names it */
    bool tried;                    /* opened (or tried) at least once */
    bool ok;                       /* loaded; lookups answer */
    int64_t next_check;            /* monotonic ns */
    struct file_id id;             /* of the file last loaded or tried */
    struct lookup_table table;     /* lsearch */
    uint8_t *map;                  /* cdb: the mapped file */
    size_t maplen;
    char error[256];               /* why lookups defer ("" when ok) */
    char message[LOOKUP_KEY_MAX];  /* "lsearch;/path: error", for the callers' logs */
};

struct lookup_set {
    struct lookup **v;
    size_t n;
};

static const char *const type_names[] = { "lsearch", "cdb" };

/* mono_ns - a cheap monotonic clock */
static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void id_of(struct file_id *id, const struct stat *st)
{
    memset(id, 0, sizeof(*id));
    id->dev = st->st_dev;
    id->ino = st->st_ino;
    id->size = st->st_size;
    id->mtime = st->st_mtim;
    id->ctime = st->st_ctim;
}

static bool ts_eq(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static bool id_eq(const struct file_id *a, const struct file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           ts_eq(a->mtime, b->mtime) && ts_eq(a->ctime, b->ctime);
}

/* drop_data - forget the loaded table or mapping */
static void drop_data(struct lookup *lk)
{
    table_free(&lk->table);
    if (lk->map != NULL)
        munmap(lk->map, lk->maplen);
    lk->map = NULL;
    lk->maplen = 0;
    lk->ok = false;
}

/* fail - lookups defer from now on; the reason is logged when it is news */
static void fail(struct lookup *lk, const char *why)
{
    drop_data(lk);
    if (strcmp(lk->error, why) == 0)
        return;
    str_copy(lk->error, why, sizeof(lk->error));
    str_fmt(lk->message, sizeof(lk->message), "%s;%s: %s", type_names[lk->type], lk->path, why);
    log_main("lookup %s;%s failed: %s (conditions using it defer)", type_names[lk->type],
             lk->path, why);
}

/* read_all - up to size bytes of fd (fewer if the file shrank meanwhile) */
static char *read_all(int fd, size_t size, size_t *got, int *err)
{
    char *buf = xmalloc(size ? size : 1);
    size_t n = 0;
    while (n < size) {
        ssize_t r = read(fd, buf + n, size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *err = errno;
            free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *got = n;
    return buf;
}

/* load_lsearch - read and index the whole file */
static bool load_lsearch(struct lookup *lk, int fd, const struct stat *st, char *why, size_t wsz)
{
    if ((uint64_t)st->st_size > LSEARCH_FILE_MAX) {
        str_fmt(why, wsz, "larger than %u MiB (use cdb)", LSEARCH_FILE_MAX >> 20);
        return false;
    }
    size_t got = 0;
    int err = 0;
    char *text = read_all(fd, (size_t)st->st_size, &got, &err);
    if (text == NULL) {
        str_fmt(why, wsz, "read error: %s", strerror(err));
        return false;
    }
    struct lookup_table t;
    table_init(&t);
    bool ok = lsearch_parse(text, got, &t, why, wsz);
    free(text);
    if (!ok) {
        table_free(&t);
        return false;
    }
    table_build(&t);
    lk->table = t;
    return true;
}

/* load_cdb - map the file and check its header */
static bool load_cdb(struct lookup *lk, int fd, const struct stat *st, char *why, size_t wsz)
{
    if (st->st_size < CDB_HEADER_SIZE || (uint64_t)st->st_size > UINT32_MAX) {
        str_fmt(why, wsz, "not a cdb file (%lld bytes)", (long long)st->st_size);
        return false;
    }
    void *p = mmap(NULL, (size_t)st->st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        str_fmt(why, wsz, "cannot map: %s", strerror(errno));
        return false;
    }
    if (!cdb_header_ok(p, (size_t)st->st_size)) {
        munmap(p, (size_t)st->st_size);
        str_fmt(why, wsz, "not a cdb file (its header points outside the file)");
        return false;
    }
    lk->map = p;
    lk->maplen = (size_t)st->st_size;
    return true;
}

/* describe - "N keys, M KiB" for the load log line */
static void describe(const struct lookup *lk, char *buf, size_t sz)
{
    if (lk->type == LOOKUP_LSEARCH)
        str_fmt(buf, sz, "%zu keys, %zu KiB", lk->table.nkeys, table_bytes(&lk->table) / 1024);
    else
        str_fmt(buf, sz, "%zu KiB mapped", lk->maplen / 1024);
}

/* load - (re)open the file and read it; the id recorded is that of what was read */
static void load(struct lookup *lk)
{
    char why[256];
    struct stat st;
    drop_data(lk);
    int fd = open(lk->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) != 0) {
        str_fmt(why, sizeof(why), "cannot open: %s", strerror(errno));
        memset(&lk->id, 0, sizeof(lk->id));
        if (fd >= 0)
            close(fd);
        fail(lk, why);
        return;
    }
    id_of(&lk->id, &st);
    bool ok = false;
    if (!S_ISREG(st.st_mode))
        str_copy(why, "not a regular file", sizeof(why));
    else if (lk->type == LOOKUP_LSEARCH)
        ok = load_lsearch(lk, fd, &st, why, sizeof(why));
    else
        ok = load_cdb(lk, fd, &st, why, sizeof(why));
    close(fd);
    if (!ok) {
        fail(lk, why);
        return;
    }
    lk->ok = true;
    lk->error[0] = '\0';
    describe(lk, why, sizeof(why));
    log_main("lookup %s;%s loaded: %s", type_names[lk->type], lk->path, why);
}

/* being_written - a file modified less than a second ago may still be being written (in place,
 * or created anew before it is complete): it is read once it has been left alone for a second;
 * until then the copy in hand answers, or lookups keep deferring when there is none */
static bool being_written(const struct stat *st)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t age = ((int64_t)now.tv_sec - st->st_mtim.tv_sec) * 1000000000LL +
                  (now.tv_nsec - st->st_mtim.tv_nsec);
    return age >= 0 && age < CHECK_INTERVAL_NS;   /* a clock gone backwards: no waiting */
}

/* refresh - the once-a-second check: reload when the file is not the one last read */
static void refresh(struct lookup *lk)
{
    int64_t now = mono_ns();
    if (lk->tried && now < lk->next_check)
        return;
    bool first = !lk->tried;
    lk->tried = true;
    lk->next_check = now + CHECK_INTERVAL_NS;
    struct stat st;
    if (stat(lk->path, &st) != 0) {
        char why[256];
        str_fmt(why, sizeof(why), "cannot open: %s", strerror(errno));
        memset(&lk->id, 0, sizeof(lk->id));
        fail(lk, why);
        return;
    }
    struct file_id id;
    id_of(&id, &st);
    if (first || (!id_eq(&id, &lk->id) && !being_written(&st)))
        load(lk);
}

enum lookup_status lookup_find(struct lookup *lk, const char *key, size_t klen)
{
    refresh(lk);
    if (!lk->ok)
        return LOOKUP_DEFER;
    if (lk->type == LOOKUP_LSEARCH)
        return table_find(&lk->table, key, klen) ? LOOKUP_FOUND : LOOKUP_NOT_FOUND;
    const uint8_t *val;
    uint32_t vlen;
    int r = cdb_get(lk->map, lk->maplen, key, klen, &val, &vlen);
    if (r < 0) {
        fail(lk, "corrupt cdb file (a record lies outside the file)");
        return LOOKUP_DEFER;   /* the id is kept: not read again until it changes */
    }
    return r ? LOOKUP_FOUND : LOOKUP_NOT_FOUND;
}

const char *lookup_error(const struct lookup *lk)
{
    return lk->message;
}

/* lookup_new - a handle that has not looked at its file yet */
static struct lookup *lookup_new(enum lookup_type type, const char *path, int line)
{
    struct lookup *lk = xcalloc(1, sizeof(*lk));
    lk->type = type;
    lk->path = xstrdup(path);
    lk->line = line;
    table_init(&lk->table);
    return lk;
}

struct lookup *lookup_get(struct lookup_set *set, enum lookup_type type, const char *path,
                          int line)
{
    if (set == NULL)
        return lookup_new(type, path, line);
    for (size_t i = 0; i < set->n; i++)
        if (set->v[i]->type == type && strcmp(set->v[i]->path, path) == 0)
            return set->v[i];
    set->v = xreallocarray(set->v, set->n + 1, sizeof(*set->v));
    return set->v[set->n++] = lookup_new(type, path, line);
}

void lookup_free(struct lookup *lk)
{
    if (lk == NULL)
        return;
    drop_data(lk);
    free(lk->path);
    free(lk);
}

struct lookup_set *lookup_set_new(void)
{
    return xcalloc(1, sizeof(struct lookup_set));
}

void lookup_set_free(struct lookup_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++)
        lookup_free(set->v[i]);
    free(set->v);
    free(set);
}

void lookup_set_open(struct lookup_set *set)
{
    for (size_t i = 0; set != NULL && i < set->n; i++)
        refresh(set->v[i]);
}

/* lookup_set_check - for check-config: "FILE:LINE: warning: ..." for each file that would defer
 * now; read into a scratch handle, so nothing is logged and what is loaded stays as it is */
void lookup_set_check(struct lookup_set *set, const char *conf_path, struct sbuf *out)
{
    for (size_t i = 0; set != NULL && i < set->n; i++) {
        const struct lookup *lk = set->v[i];
        struct lookup scratch = { .type = lk->type };
        char why[256] = "";
        struct stat st;
        int fd = open(lk->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        bool ok = false;
        table_init(&scratch.table);
        if (fd < 0 || fstat(fd, &st) != 0)
            str_fmt(why, sizeof(why), "cannot open: %s", strerror(errno));
        else if (!S_ISREG(st.st_mode))
            str_copy(why, "not a regular file", sizeof(why));
        else if (lk->type == LOOKUP_LSEARCH)
            ok = load_lsearch(&scratch, fd, &st, why, sizeof(why));
        else
            ok = load_cdb(&scratch, fd, &st, why, sizeof(why));
        if (fd >= 0)
            close(fd);
        drop_data(&scratch);
        if (!ok)
            sbuf_printf(out, "%s:%d: warning: lookup %s;%s: %s (conditions using it would defer)\n",
                        conf_path, lk->line, type_names[lk->type], lk->path, why);
    }
}
