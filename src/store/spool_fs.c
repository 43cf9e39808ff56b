/* spool_fs.c - file-system primitives for the spool: names, complete writes, directory
 * fsync, and renames that never replace a message. */
#include "spool_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

bool spool_path(char *buf, size_t sz, const char *spooldir, const char *sub, const char *id,
                const char *suffix)
{
    if (!str_fmt(buf, sz, "%s/%s/%s%s", spooldir, sub, id, suffix)) {
        errno = ENAMETOOLONG;
        return false;
    }
    return true;
}

/* iov_advance - drop n written bytes from the front of *iov; returns the new count */
static int iov_advance(struct iovec **iov, int iovcnt, size_t n)
{
    while (iovcnt > 0 && n >= (*iov)->iov_len) {
        n -= (*iov)->iov_len;
        (*iov)++;
        iovcnt--;
    }
    if (iovcnt > 0) {
        (*iov)->iov_base = (char *)(*iov)->iov_base + n;
        (*iov)->iov_len -= n;
    }
    return iovcnt;
}

/* fs_writev_all - writev until everything is written or a real error occurs */
int fs_writev_all(int fd, struct iovec *iov, int iovcnt)
{
    iovcnt = iov_advance(&iov, iovcnt, 0); /* skip leading empty vectors */
    while (iovcnt > 0) {
        ssize_t w = writev(fd, iov, iovcnt);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        if (w == 0) {
            errno = EIO; /* no progress on a regular file: do not spin */
            return -1;
        }
        iovcnt = iov_advance(&iov, iovcnt, (size_t)w);
    }
    return 0;
}

/* fs_fsync_subdir - make the names in <spooldir>/<sub> durable */
int fs_fsync_subdir(const char *spooldir, const char *sub)
{
    char path[SPOOL_PATH_MAX];
    if (!spool_path(path, sizeof(path), spooldir, sub, "", ""))
        return -1;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return r;
}

/* fs_rename_noreplace - rename that fails with EEXIST rather than replace */
int fs_rename_noreplace(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    if (link(from, to) < 0) /* link(2) never replaces either */
        return -1;
    if (unlink(from) < 0) {
        int saved = errno;
        unlink(to);
        errno = saved;
        return -1;
    }
    return 0;
}

/* fs_exists - true also when we cannot tell (errors other than ENOENT) */
bool fs_exists(const char *path)
{
    struct stat st;
    return fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT;
}
