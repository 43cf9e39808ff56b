/* spool.c - the spool directory as a whole: its layout, and the operations on committed
 * messages that are about names rather than contents (remove, quarantine, lock, list). */
#include "msgid.h"
#include "spool_private.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define QUARANTINE_TRIES 100 /* corrupt/ID, corrupt/ID.1, ... */
#define SPOOL_PID_FILE "tandem.pid"

static const char *const spool_subdirs[] = { "input", "tmp", "corrupt", "db" };

/* make_dir - mkdir that accepts an existing directory (but not another kind of file) */
static bool make_dir(const char *path, char *err, size_t errsz)
{
    struct stat st;
    if (mkdir(path, SPOOL_DIR_MODE) == 0)
        return true;
    int saved = errno;
    if (saved == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return true;
    if (saved == EEXIST)
        saved = ENOTDIR;
    str_fmt(err, errsz, "mkdir %s: %s", path, strerror(saved));
    errno = saved;
    return false;
}

/* spool_init_dirs - create the spool and its subdirectories where missing */
bool spool_init_dirs(const char *spooldir, char *err, size_t errsz)
{
    char path[SPOOL_PATH_MAX];
    if (!make_dir(spooldir, err, errsz))
        return false;
    for (size_t i = 0; i < ARRAY_LEN(spool_subdirs); i++) {
        if (!spool_path(path, sizeof(path), spooldir, spool_subdirs[i], "", "")) {
            str_fmt(err, errsz, "spool directory name too long: %s", spooldir);
            return false;
        }
        if (!make_dir(path, err, errsz))
            return false;
    }
    return true;
}

/* spool_clean_tmp - remove messages whose reception never finished */
void spool_clean_tmp(const char *spooldir)
{
    char path[SPOOL_PATH_MAX];
    if (!str_fmt(path, sizeof(path), "%s/tmp", spooldir))
        return;
    /* Run by the root parent in a directory the user owns: tmp itself must not be a symbolic
     * link (no trailing slash, O_NOFOLLOW), or root would empty whatever it points at. */
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0)
            log_main("removed incomplete message %s/%s", path, de->d_name);
    }
    closedir(d);
}

/* spool_each_path - the spool's directories, then the files a privileged process opens */
bool spool_each_path(const char *spooldir, spool_path_fn fn, void *arg)
{
    static const char *const files[] = { SPOOL_PID_FILE, "db/data.mdb", "db/lock.mdb", "db/leases" };
    char path[SPOOL_PATH_MAX];
    if (!fn(arg, spooldir, true))
        return false;
    for (size_t i = 0; i < ARRAY_LEN(spool_subdirs); i++) {
        bool ok = str_fmt(path, sizeof(path), "%s/%s", spooldir, spool_subdirs[i]);
        if (!fn(arg, ok ? path : NULL, true) || !ok)
            return false;
    }
    for (size_t i = 0; i < ARRAY_LEN(files); i++) {
        bool ok = str_fmt(path, sizeof(path), "%s/%s", spooldir, files[i]);
        if (!fn(arg, ok ? path : NULL, false) || !ok)
            return false;
    }
    return true;
}

bool spool_pid_path(char *buf, size_t sz, const char *spooldir)
{
    return str_fmt(buf, sz, "%s/%s", spooldir, SPOOL_PID_FILE);
}

/* id_path - input/ID or input/ID-J, after checking the id (EINVAL) */
static bool id_path(char *buf, const char *spooldir, const char *sub, const char *id,
                    const char *suffix)
{
    if (!msgid_valid(id)) {
        errno = EINVAL;
        return false;
    }
    return spool_path(buf, SPOOL_PATH_MAX, spooldir, sub, id, suffix);
}

/* spool_remove - the message first, then its journal, then make it durable.  In that order a
 * crash in between leaves at worst a stray journal, never a message without the journal that
 * says it was delivered (which would be delivered again). */
bool spool_remove(const char *spooldir, const char *id)
{
    char jpath[SPOOL_PATH_MAX], mpath[SPOOL_PATH_MAX];
    if (!id_path(jpath, spooldir, "input", id, JOURNAL_SUFFIX) ||
        !id_path(mpath, spooldir, "input", id, ""))
        return false;
    if (unlink(mpath) < 0)
        return false;
    if (unlink(jpath) < 0 && errno != ENOENT)
        return false;
    return fs_fsync_subdir(spooldir, "input") == 0;
}

/* move_aside - rename from into corrupt/ without replacing anything: as corrupt/ID, or
 * corrupt/ID.n when that is taken; base gets the name used */
static int move_aside(const char *spooldir, const char *from, const char *id, char *base,
                      size_t basesz)
{
    char to[SPOOL_PATH_MAX];
    str_copy(base, id, basesz);
    for (int n = 1; n <= QUARANTINE_TRIES; n++) {
        if (!spool_path(to, sizeof(to), spooldir, "corrupt", base, ""))
            return -1;
        if (fs_rename_noreplace(from, to) == 0)
            return 0;
        if (errno != EEXIST)
            return -1;
        str_fmt(base, basesz, "%s.%d", id, n);
    }
    return -1;
}

/* spool_quarantine - move an unreadable message and its journal to corrupt/ */
bool spool_quarantine(const char *spooldir, const char *id)
{
    char mpath[SPOOL_PATH_MAX], jpath[SPOOL_PATH_MAX], to[SPOOL_PATH_MAX], base[MSGID_LEN + 8];
    if (!id_path(mpath, spooldir, "input", id, "") ||
        !id_path(jpath, spooldir, "input", id, JOURNAL_SUFFIX))
        return false;
    if (move_aside(spooldir, mpath, id, base, sizeof(base)) < 0)
        return false;
    /* The journal follows under the same name, so the pair stays together. */
    if (!spool_path(to, sizeof(to), spooldir, "corrupt", base, JOURNAL_SUFFIX))
        return false;
    if (fs_rename_noreplace(jpath, to) < 0 && errno != ENOENT)
        return false;
    return fs_fsync_subdir(spooldir, "input") == 0 && fs_fsync_subdir(spooldir, "corrupt") == 0;
}

/* same_file - is fd still the file named path (not removed or moved while we waited)? */
static bool same_file(int fd, const char *path)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

/* spool_lock - exclusive non-blocking flock on input/ID, refused once the name is gone */
int spool_lock(const char *spooldir, const char *id)
{
    char path[SPOOL_PATH_MAX];
    if (!id_path(path, spooldir, "input", id, ""))
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    int err = 0;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0)
        err = errno;
    else if (!same_file(fd, path))
        err = ENOENT;
    if (err) {
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* spool_unlock - release a lock from spool_lock or spool_commit_locked */
void spool_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* closing the only descriptor releases the flock */
}

/* id_order - qsort comparator: oldest id first */
static int id_order(const void *a, const void *b)
{
    return msgid_cmp(*(char *const *)a, *(char *const *)b);
}

/* spool_list - the ids in input/, oldest first */
size_t spool_list(const char *spooldir, char ***ids)
{
    char path[SPOOL_PATH_MAX];
    char **v = NULL;
    size_t n = 0, cap = 0;
    *ids = NULL;
    if (!spool_path(path, sizeof(path), spooldir, "input", "", ""))
        return 0;
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (!msgid_valid(de->d_name))
            continue; /* journals, strays */
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        v[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof(*v), id_order);
    *ids = v;
    return n;
}

/* spool_list_free - free what spool_list returned */
void spool_list_free(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}
