/* spool_write.c - writing one message file: created under tmp/ with a fresh id, filled with
 * buffered records (content in data records of up to 64 KiB, so few large writes), and
 * committed by trailer + END, fsync, rename into input/ (never replacing), fsync input/. */
#include "spool_private.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define CREATE_TRIES 64         /* fresh ids to try when a name is taken */
#define OUT_FLUSH REC_DATA_MAX  /* write pending envelope records beyond this */

struct spool_writer {
    int fd;
    char *spooldir;
    char *tmp_path, *input_path;
    struct sbuf out;     /* encoded records not yet written */
    unsigned char *data; /* content staged for the next data record */
    size_t data_len;
    uint64_t written;    /* content bytes accepted */
    int error;           /* the first write error (errno), latched */
    bool renamed;        /* the file is now input_path */
    struct spool_pool *pool; /* the file came from (and may go back to) this pool */
};

/* A process's reusable tmp/ files: a message that never needs to be kept (cutthrough to a
 * next hop that took it) is written over an old file instead of a new inode each time. */
#define POOL_MAX 64
struct spool_pool {
    char *spooldir;
    int fds[POOL_MAX];
    char *paths[POOL_MAX];
    size_t n;
    unsigned long serial;
};

/* create_tmp - open a new tmp/ID exclusively, choosing ids until one is free everywhere */
static int create_tmp(const char *spooldir, char id[MSGID_LEN + 1])
{
    char tmp[SPOOL_PATH_MAX], dst[SPOOL_PATH_MAX];
    for (int tries = 0; tries < CREATE_TRIES; tries++) {
        msgid_new(id);
        if (!spool_path(tmp, sizeof(tmp), spooldir, "tmp", id, "") ||
            !spool_path(dst, sizeof(dst), spooldir, "input", id, ""))
            return -1;
        if (fs_exists(dst))
            continue;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, SPOOL_FILE_MODE);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

/* writer_new - the in-memory state for a freshly created file */
static struct spool_writer *writer_new(const char *spooldir, int fd, const char *id)
{
    char path[SPOOL_PATH_MAX];
    struct spool_writer *w = xcalloc(1, sizeof(*w));
    w->fd = fd;
    w->spooldir = xstrdup(spooldir);
    spool_path(path, sizeof(path), spooldir, "tmp", id, "");
    w->tmp_path = xstrdup(path);
    spool_path(path, sizeof(path), spooldir, "input", id, "");
    w->input_path = xstrdup(path);
    sbuf_init(&w->out);
    w->data = xmalloc(REC_DATA_MAX);
    return w;
}

/* writer_free - release everything; the fd is closed unless handed to a caller (-1) */
static void writer_free(struct spool_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    sbuf_free(&w->out);
    free(w->data);
    free(w->tmp_path);
    free(w->input_path);
    free(w->spooldir);
    free(w);
}

/* flush - one writev: the pending records, then a data record of dlen bytes (if any), then
 * tail (if any).  Latches the first error. */
static bool flush(struct spool_writer *w, const void *data, size_t dlen, const struct sbuf *tail)
{
    char hdr[REC_HDR_MAX];
    struct iovec iov[5];
    int n = 0;
    iov[n++] = (struct iovec){ w->out.s, w->out.len };
    if (dlen) {
        iov[n++] = (struct iovec){ hdr, rec_header(hdr, REC_DATA, dlen) };
        iov[n++] = (struct iovec){ (void *)data, dlen };
        iov[n++] = (struct iovec){ "\n", 1 };
    }
    if (tail)
        iov[n++] = (struct iovec){ tail->s, tail->len };
    if (fs_writev_all(w->fd, iov, n) < 0) {
        w->error = errno;
        return false;
    }
    if (w->out.cap > OUT_FLUSH)
        sbuf_free(&w->out); /* a big envelope's buffer is not kept for the whole message */
    else
        sbuf_reset(&w->out);
    return true;
}

/* spool_create - new tmp/ID, locked, with the envelope records queued */
struct spool_writer *spool_create(const char *spooldir, struct envelope *env)
{
    if (!spool_envelope_fits(env))
        return NULL;
    int fd = create_tmp(spooldir, env->id);
    if (fd < 0)
        return NULL;
    struct spool_writer *w = writer_new(spooldir, fd, env->id);
    /* Locked from birth, so that the lock can outlive the rename (spool_commit_locked). */
    if (flock(fd, LOCK_EX | LOCK_NB) < 0)
        w->error = errno;
    sbuf_addstr(&w->out, REC_MAGIC);
    spool_envelope_encode(&w->out, env);
    if (w->error == 0 && w->out.len >= OUT_FLUSH)
        flush(w, NULL, 0, NULL);
    if (w->error) {
        errno = w->error;
        spool_abort(w);
        return NULL;
    }
    return w;
}

/* stage - copy content into the staging buffer, writing it out when a record is full */
static size_t stage(struct spool_writer *w, const unsigned char *p, size_t len)
{
    size_t n = REC_DATA_MAX - w->data_len;
    if (n > len)
        n = len;
    memcpy(w->data + w->data_len, p, n);
    w->data_len += n;
    if (w->data_len == REC_DATA_MAX && flush(w, w->data, REC_DATA_MAX, NULL))
        w->data_len = 0;
    return n;
}

/* spool_write - append content; whole 64 KiB records go out as they fill */
bool spool_write(struct spool_writer *w, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len > 0 && w->error == 0) {
        size_t n = REC_DATA_MAX;
        if (w->data_len == 0 && len >= REC_DATA_MAX)
            flush(w, p, n, NULL); /* a whole record straight from the caller's buffer */
        else
            n = stage(w, p, len);
        w->written += n;
        p += n;
        len -= n;
    }
    if (w->error == 0)
        return true;
    errno = w->error;
    return false;
}

/* spool_written - content bytes accepted so far */
uint64_t spool_written(const struct spool_writer *w)
{
    return w->written;
}

/* finish_file - the last data, size, message id and end records, then fsync */
static bool finish_file(struct spool_writer *w, const struct envelope *env, bool do_sync)
{
    struct sbuf tail;
    sbuf_init(&tail);
    rec_put_num(&tail, REC_SIZE, w->written);
    if (env->message_id)
        rec_put(&tail, REC_MSGID, env->message_id, strnlen(env->message_id, SPOOL_FIELD_MAX));
    if (env->added_headers && env->added_headers[0])
        rec_put(&tail, REC_HEADERS, env->added_headers, strnlen(env->added_headers, SPOOL_FIELD_MAX));
    rec_put(&tail, REC_END, "", 0);
    bool ok = w->error == 0 && flush(w, w->data, w->data_len, &tail);
    sbuf_free(&tail);
    if (ok && w->pool) {            /* a reused file may be longer than this message */
        off_t end = lseek(w->fd, 0, SEEK_CUR);
        ok = end >= 0 && ftruncate(w->fd, end) == 0;
        if (!ok)
            w->error = errno;
    }
    if (!ok) {
        errno = w->error;
        return false;
    }
    return !do_sync || fsync(w->fd) == 0;
}

/* publish - rename into input/ without replacing anything, then make the name durable */
static bool publish(struct spool_writer *w, bool do_sync)
{
    if (fs_rename_noreplace(w->tmp_path, w->input_path) < 0)
        return false;
    w->renamed = true;
    return !do_sync || fs_fsync_subdir(w->spooldir, "input") == 0;
}

/* commit - finish and publish; on failure nothing is left behind and errno is kept */
static bool commit(struct spool_writer *w, const struct envelope *env, bool do_sync)
{
    if (finish_file(w, env, do_sync) && publish(w, do_sync))
        return true;
    int saved = errno;
    /* Once renamed but not durable, the name goes too: the caller will answer 4xx. */
    unlink(w->renamed ? w->input_path : w->tmp_path);
    errno = saved;
    return false;
}

/* spool_commit - finish, fsync, rename into input/, fsync input/; frees w */
bool spool_commit(struct spool_writer *w, const struct envelope *env, bool do_sync)
{
    bool ok = commit(w, env, do_sync);
    int saved = errno;
    writer_free(w);
    errno = saved;
    return ok;
}

/* spool_commit_locked - spool_commit, handing the still-locked fd to the caller */
bool spool_commit_locked(struct spool_writer *w, const struct envelope *env, bool do_sync,
                         int *lock_fd)
{
    bool ok = commit(w, env, do_sync);
    int saved = errno;
    *lock_fd = -1;
    if (ok) {
        *lock_fd = w->fd;
        w->fd = -1;
    }
    writer_free(w);
    errno = saved;
    return ok;
}

/* pool_keep - give a message's file back to its pool; false if it cannot be.  empty: truncate
 * it first (a refused or abandoned message leaves nothing on disk); a delivered message's
 * bytes are simply written over by the next one (truncating costs a journal commit). */
static bool pool_keep(struct spool_writer *w, bool empty)
{
    struct spool_pool *pool = w->pool;
    if (pool == NULL || w->renamed || w->error || pool->n >= POOL_MAX ||
        (empty && ftruncate(w->fd, 0) != 0) || lseek(w->fd, 0, SEEK_SET) != 0)
        return false;
    pool->fds[pool->n] = w->fd;
    pool->paths[pool->n++] = w->tmp_path;
    w->fd = -1;
    w->tmp_path = NULL;
    return true;
}

/* spool_recycle - the message need not be kept (its next hop has it): drop it cheaply */
void spool_recycle(struct spool_writer *w)
{
    int saved = errno;
    if (pool_keep(w, false)) {
        writer_free(w);
        errno = saved;
        return;
    }
    spool_abort(w);
}

/* spool_abort - drop a message being written; frees w */
void spool_abort(struct spool_writer *w)
{
    int saved = errno;
    if (pool_keep(w, true)) {
        writer_free(w);
        errno = saved;
        return;
    }
    if (!w->renamed)
        unlink(w->tmp_path);
    writer_free(w);
    errno = saved;
}

struct spool_pool *spool_pool_new(const char *spooldir)
{
    struct spool_pool *pool = xcalloc(1, sizeof(*pool));
    pool->spooldir = xstrdup(spooldir);
    return pool;
}

/* spool_pool_free - remove the pooled files */
void spool_pool_free(struct spool_pool *pool)
{
    if (pool == NULL)
        return;
    for (size_t i = 0; i < pool->n; i++) {
        unlink(pool->paths[i]);
        close(pool->fds[i]);
        free(pool->paths[i]);
    }
    free(pool->spooldir);
    free(pool);
}

/* pool_file - a pooled file (rewound), or a new tmp/pool-PID-N; its path in *path */
static int pool_file(struct spool_pool *pool, char **path)
{
    char p[SPOOL_PATH_MAX], name[64];
    if (pool->n > 0) {
        pool->n--;
        *path = pool->paths[pool->n];
        return pool->fds[pool->n];
    }
    for (int tries = 0; tries < CREATE_TRIES; tries++) {
        str_fmt(name, sizeof(name), "pool-%ld-%lu", (long)getpid(), ++pool->serial);
        if (!spool_path(p, sizeof(p), pool->spooldir, "tmp", name, ""))
            return -1;
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, SPOOL_FILE_MODE);
        if (fd >= 0) {
            if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int e = errno;
                unlink(p);
                close(fd);
                errno = e;
                return -1;
            }
            *path = xstrdup(p);
            return fd;
        }
        if (errno != EEXIST)
            return -1;
    }
    errno = EEXIST;
    return -1;
}

/* spool_create_pooled - spool_create on a reusable file from pool */
struct spool_writer *spool_create_pooled(struct spool_pool *pool, struct envelope *env)
{
    char dst[SPOOL_PATH_MAX], *path = NULL;
    if (!spool_envelope_fits(env))
        return NULL;
    int tries = 0;
    do {
        msgid_new(env->id);
        if (!spool_path(dst, sizeof(dst), pool->spooldir, "input", env->id, ""))
            return NULL;
    } while (fs_exists(dst) && ++tries < CREATE_TRIES);
    int fd = pool_file(pool, &path);
    if (fd < 0)
        return NULL;
    struct spool_writer *w = writer_new(pool->spooldir, fd, env->id);
    free(w->tmp_path);
    w->tmp_path = path;
    w->pool = pool;
    sbuf_addstr(&w->out, REC_MAGIC);
    spool_envelope_encode(&w->out, env);
    if (w->out.len >= OUT_FLUSH)
        flush(w, NULL, 0, NULL);
    if (w->error) {
        errno = w->error;
        spool_abort(w);
        return NULL;
    }
    return w;
}
