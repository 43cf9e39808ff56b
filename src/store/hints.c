/* hints.c - the LMDB environment under spool_directory/db and generic get/put/delete/iterate
 * on its named databases.  Errors are logged and turned into misses: hints are never worth
 * a crash. */
#include "store.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/core.h"

#define HINTS_MAXDBS 16          /* room for the databases still to come */
#define HINTS_FULL_LOG_EVERY 60  /* seconds between "database full" panics */
#define HINTS_DEL_BATCH 64       /* deletions per transaction: small ones fit a full map */

struct hints {
    MDB_env *env;
    MDB_dbi dbi[HINTS_NDB];
    char dir[4096];
    time_t full_logged;          /* when MDB_MAP_FULL was last logged */
};

/* One row per enum hints_db value. */
static const char *const db_names[HINTS_NDB] = {
    [HINTS_RETRY] = "retry",
    [HINTS_QUEUE] = "queue",
    [HINTS_RCPT] = "rcpt",
    [HINTS_CALLOUT] = "callout",
    [HINTS_MTA_STS] = "mta-sts",
    [HINTS_RATELIMIT] = "ratelimit",
};

const char *hints_db_name(enum hints_db db)
{
    return (unsigned)db < HINTS_NDB ? db_names[db] : "?";
}

/* env_open - create and open the environment; false with rc set */
static bool env_open(struct hints *h, int *rc)
{
    if ((*rc = mdb_env_create(&h->env)) != 0)
        return false;
    mdb_env_set_maxdbs(h->env, HINTS_MAXDBS);
    mdb_env_set_mapsize(h->env, HINTS_MAP_SIZE);
    *rc = mdb_env_open(h->env, h->dir, MDB_NOTLS | MDB_NOSYNC, 0600);
    if (*rc != 0) {
        mdb_env_close(h->env);
        h->env = NULL;
        return false;
    }
    int fd;
    if (mdb_env_get_fd(h->env, &fd) == 0)
        fd_cloexec(fd);     /* LMDB opens its data file without O_CLOEXEC */
    return true;
}

/* move_aside - rename an unusable data file out of the way so a fresh one can be created */
static void move_aside(const struct hints *h)
{
    char from[4200], to[4200];
    str_fmt(from, sizeof(from), "%s/data.mdb", h->dir);
    str_fmt(to, sizeof(to), "%s/data.mdb.bad", h->dir);
    if (rename(from, to) == 0)
        log_panic("hints database %s was unusable; moved to %s", from, to);
}

/* open_dbis - open (creating) every named database in one write transaction */
static int open_dbis(struct hints *h)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(h->env, NULL, 0, &txn);
    if (rc != 0)
        return rc;
    for (int i = 0; rc == 0 && i < HINTS_NDB; i++)
        rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &h->dbi[i]);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

struct hints *hints_open(const char *spooldir, char *err, size_t errsz)
{
    struct hints *h = xcalloc(1, sizeof(*h));
    int rc = 0, dead = 0;
    if (!str_fmt(h->dir, sizeof(h->dir), "%s/db", spooldir)) {
        str_fmt(err, errsz, "hints: spool directory name too long");
        free(h);
        return NULL;
    }
    if (mkdir(h->dir, 0750) != 0 && errno != EEXIST) {
        str_fmt(err, errsz, "hints: mkdir %s: %s", h->dir, strerror(errno));
        free(h);
        return NULL;
    }
    bool ok = env_open(h, &rc);
    if (!ok && (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == MDB_CORRUPTED)) {
        move_aside(h);
        ok = env_open(h, &rc);
    }
    if (ok && (rc = open_dbis(h)) != 0)
        ok = false;
    if (!ok) {
        str_fmt(err, errsz, "hints: %s: %s", h->dir, mdb_strerror(rc));
        hints_close(h);
        return NULL;
    }
    if (mdb_reader_check(h->env, &dead) == 0 && dead > 0)
        log_main("hints: cleared %d stale reader slot(s) in %s", dead, h->dir);
    return h;
}

void hints_close(struct hints *h)
{
    if (h == NULL)
        return;
    if (h->env) {
        mdb_env_sync(h->env, 1);
        mdb_env_close(h->env);
    }
    free(h);
}

/* txn_begin - begin a transaction, recovering from a map grown by another process and from
 * reader slots left by dead processes */
static int txn_begin(struct hints *h, unsigned flags, MDB_txn **txn)
{
    int rc = mdb_txn_begin(h->env, NULL, flags, txn);
    if (rc == MDB_MAP_RESIZED) {
        mdb_env_set_mapsize(h->env, 0);
        rc = mdb_txn_begin(h->env, NULL, flags, txn);
    } else if (rc == MDB_READERS_FULL) {
        int dead = 0;
        mdb_reader_check(h->env, &dead);
        rc = mdb_txn_begin(h->env, NULL, flags, txn);
    }
    return rc;
}

/* report - log a failed operation; a full map is a panic, but at most once a minute */
static void report(struct hints *h, enum hints_db db, const char *what, int rc)
{
    if (rc == MDB_MAP_FULL) {
        time_t now = time(NULL);
        if (now - h->full_logged < HINTS_FULL_LOG_EVERY)
            return;
        h->full_logged = now;
        log_panic("hints database %s/%s is full (%u MiB): %s not stored", h->dir,
                  db_names[db], HINTS_MAP_SIZE >> 20, what);
        return;
    }
    log_main("hints: %s %s: %s", what, db_names[db], mdb_strerror(rc));
}

/* key_val - an MDB_val for a string key; false if it is empty or too long */
static bool key_val(const char *key, MDB_val *k)
{
    k->mv_size = strlen(key);
    k->mv_data = (void *)key;
    return k->mv_size > 0 && k->mv_size <= HINTS_KEY_MAX;
}

/* usable - the handle, database and key can be used */
static bool usable(const struct hints *h, enum hints_db db)
{
    return h != NULL && h->env != NULL && (unsigned)db < HINTS_NDB;
}

bool hints_get(struct hints *h, enum hints_db db, const char *key, void *val, size_t valsz,
               size_t *len)
{
    MDB_txn *txn;
    MDB_val k, v;
    if (!usable(h, db) || !key_val(key, &k))
        return false;
    int rc = txn_begin(h, MDB_RDONLY, &txn);
    if (rc != 0) {
        report(h, db, "read", rc);
        return false;
    }
    rc = mdb_get(txn, h->dbi[db], &k, &v);
    bool ok = rc == 0 && v.mv_size <= valsz;
    if (ok) {
        memcpy(val, v.mv_data, v.mv_size);
        *len = v.mv_size;
    }
    mdb_txn_abort(txn);
    if (rc != 0 && rc != MDB_NOTFOUND)
        report(h, db, "read", rc);
    return ok;
}

/* write_one - one put (val != NULL) or delete in its own write transaction */
static bool write_one(struct hints *h, enum hints_db db, const char *key, const void *val,
                      size_t len)
{
    MDB_txn *txn;
    MDB_val k, v = { len, (void *)val };
    if (!usable(h, db) || !key_val(key, &k) || len > HINTS_VALUE_MAX)
        return false;
    int rc = txn_begin(h, 0, &txn);
    if (rc == 0) {
        rc = val ? mdb_put(txn, h->dbi[db], &k, &v, 0) : mdb_del(txn, h->dbi[db], &k, NULL);
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        report(h, db, val ? "write" : "delete", rc);
    return rc == 0 || (val == NULL && rc == MDB_NOTFOUND);
}

bool hints_put(struct hints *h, enum hints_db db, const char *key, const void *val, size_t len)
{
    return val != NULL && write_one(h, db, key, val, len);
}

bool hints_del(struct hints *h, enum hints_db db, const char *key)
{
    return write_one(h, db, key, NULL, 0);
}

/* update_in_txn - fn on the current value; put its result unless it declines */
static int update_in_txn(struct hints *h, MDB_txn *txn, enum hints_db db, MDB_val *k,
                         hints_update_fn fn, void *arg)
{
    MDB_val v;
    unsigned char out[HINTS_VALUE_MAX];
    size_t outlen = 0;
    int rc = mdb_get(txn, h->dbi[db], k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    bool found = rc == 0;
    if (!fn(arg, found ? v.mv_data : NULL, found ? v.mv_size : 0, out, &outlen))
        return MDB_NOTFOUND;           /* nothing to write: not an error */
    if (outlen > sizeof(out))
        return EINVAL;
    MDB_val nv = { outlen, out };
    return mdb_put(txn, h->dbi[db], k, &nv, 0);
}

bool hints_update(struct hints *h, enum hints_db db, const char *key, hints_update_fn fn,
                  void *arg)
{
    MDB_txn *txn;
    MDB_val k;
    if (!usable(h, db) || !key_val(key, &k))
        return false;
    int rc = txn_begin(h, 0, &txn);
    if (rc == 0) {
        rc = update_in_txn(h, txn, db, &k, fn, arg);
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        report(h, db, "update", rc);
    return rc == 0 || rc == MDB_NOTFOUND;
}

/* cursor_walk - position a cursor at the first key >= prefix and visit the matching entries;
 * visit returns false to stop.  Returns an LMDB error code (0 at the end of the range). */
static int cursor_walk(MDB_cursor *cur, const char *prefix,
                       bool (*visit)(void *, MDB_cursor *, MDB_val *, MDB_val *), void *arg)
{
    size_t plen = strlen(prefix);
    MDB_val k = { plen, (void *)prefix }, v;
    int rc = mdb_cursor_get(cur, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0) {
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
            return 0;
        if (!visit(arg, cur, &k, &v))
            return 0;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

struct each_ctx {
    hints_each_cb cb;
    void *arg;
};

/* each_visit - hand one entry to the caller with a terminated copy of its key */
static bool each_visit(void *arg, MDB_cursor *cur, MDB_val *k, MDB_val *v)
{
    struct each_ctx *c = arg;
    char key[HINTS_KEY_MAX + 1];
    (void)cur;
    if (k->mv_size > HINTS_KEY_MAX)
        return true;
    memcpy(key, k->mv_data, k->mv_size);
    key[k->mv_size] = '\0';
    return c->cb(c->arg, key, v->mv_data, v->mv_size);
}

bool hints_each(struct hints *h, enum hints_db db, const char *prefix, hints_each_cb cb,
                void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    struct each_ctx c = { cb, arg };
    if (!usable(h, db))
        return false;
    int rc = txn_begin(h, MDB_RDONLY, &txn);
    if (rc == 0) {
        if ((rc = mdb_cursor_open(txn, h->dbi[db], &cur)) == 0) {
            rc = cursor_walk(cur, prefix, each_visit, &c);
            mdb_cursor_close(cur);
        }
        mdb_txn_abort(txn);
    }
    if (rc != 0)
        report(h, db, "iterate", rc);
    return rc == 0;
}

struct del_ctx {
    size_t n, batch;
    int rc;
};

/* del_visit - delete the entry under the cursor and count it; stop when the batch is full */
static bool del_visit(void *arg, MDB_cursor *cur, MDB_val *k, MDB_val *v)
{
    struct del_ctx *d = arg;
    (void)k;
    (void)v;
    if ((d->rc = mdb_cursor_del(cur, 0)) != 0)
        return false;
    d->n++;
    return ++d->batch < HINTS_DEL_BATCH;
}

/* del_batch - delete up to HINTS_DEL_BATCH matching entries in one transaction */
static int del_batch(struct hints *h, enum hints_db db, const char *prefix, struct del_ctx *d)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = txn_begin(h, 0, &txn);
    if (rc != 0)
        return rc;
    d->batch = 0;
    d->rc = 0;
    if ((rc = mdb_cursor_open(txn, h->dbi[db], &cur)) == 0) {
        rc = cursor_walk(cur, prefix, del_visit, d);
        mdb_cursor_close(cur);
    }
    rc = rc ? rc : d->rc;
    if (rc == 0)
        return mdb_txn_commit(txn);
    mdb_txn_abort(txn);
    return rc;
}

size_t hints_del_prefix(struct hints *h, enum hints_db db, const char *prefix)
{
    struct del_ctx d = { 0, 0, 0 };
    if (!usable(h, db))
        return 0;
    for (;;) {
        size_t before = d.n;
        int rc = del_batch(h, db, prefix, &d);
        if (rc != 0) {
            d.n = before;   /* the failed batch was rolled back */
            report(h, db, "delete", rc);
            return d.n;
        }
        if (d.batch < HINTS_DEL_BATCH)
            return d.n;
    }
}
