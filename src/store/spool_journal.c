/* spool_journal.c - the per-message delivery journal input/ID-J: append-only lines
 * "d<index>\n" (delivered) or "f<index>\n" (failed), each fsync'd before it is believed.
 * A crash can leave a torn last line; readers ignore it and the next append cuts it off. */
#include "spool_private.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOURNAL_LINE_MAX 8 /* bytes before the newline: a state letter and an index */

/* journal_line - apply one complete line to env; -1 (EBADMSG) if it is not well formed */
static int journal_line(struct envelope *env, const char *line, size_t len)
{
    size_t idx = 0;
    if (len < 2 || (line[0] != 'd' && line[0] != 'f') || (len > 2 && line[1] == '0')) {
        errno = EBADMSG;
        return -1;
    }
    for (size_t i = 1; i < len; i++) {
        if (line[i] < '0' || line[i] > '9') {
            errno = EBADMSG;
            return -1;
        }
        idx = idx * 10 + (size_t)(line[i] - '0');
    }
    if (idx >= env->nrcpts) {
        errno = EBADMSG;
        return -1;
    }
    env->rcpts[idx].state = line[0] == 'd' ? RCPT_DELIVERED : RCPT_FAILED;
    return 0;
}

/* journal_feed - run a block of journal bytes through the line splitter */
static int journal_feed(struct envelope *env, const char *p, size_t n, char *line, size_t *ll)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            if (journal_line(env, line, *ll) < 0)
                return -1;
            *ll = 0;
        } else if (*ll == JOURNAL_LINE_MAX) {
            errno = EBADMSG;
            return -1;
        } else {
            line[(*ll)++] = p[i];
        }
    }
    return 0;
}

/* spool_journal_apply - set recipient states from input/ID-J (absent: all pending) */
int spool_journal_apply(const char *spooldir, const char *id, struct envelope *env)
{
    char path[SPOOL_PATH_MAX], buf[4096], line[JOURNAL_LINE_MAX];
    size_t ll = 0;
    if (!spool_path(path, sizeof(path), spooldir, "input", id, JOURNAL_SUFFIX))
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    int r = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = n < 0 ? -1 : 0; /* a torn last line (ll > 0) is ignored */
            break;
        }
        if ((r = journal_feed(env, buf, (size_t)n, line, &ll)) < 0)
            break;
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return r;
}

/* journal_open - open input/ID-J for appending, creating it only if the message exists */
static int journal_open(const char *spooldir, const char *id, bool *created)
{
    char jpath[SPOOL_PATH_MAX], mpath[SPOOL_PATH_MAX];
    const int flags = O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW;
    if (!spool_path(jpath, sizeof(jpath), spooldir, "input", id, JOURNAL_SUFFIX) ||
        !spool_path(mpath, sizeof(mpath), spooldir, "input", id, ""))
        return -1;
    *created = false;
    int fd = open(jpath, flags);
    if (fd >= 0 || errno != ENOENT)
        return fd;
    if (!fs_exists(mpath)) {
        errno = ENOENT;
        return -1;
    }
    fd = open(jpath, flags | O_CREAT | O_EXCL, SPOOL_FILE_MODE);
    *created = fd >= 0;
    return fd >= 0 || errno != EEXIST ? fd : open(jpath, flags);
}

/* journal_trim - cut off a torn last line left by a crash, so the next line starts clean */
static int journal_trim(int fd)
{
    char tail[JOURNAL_LINE_MAX + 1];
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -1;
    size_t n = (uint64_t)st.st_size < sizeof(tail) ? (size_t)st.st_size : sizeof(tail);
    if (n == 0)
        return 0;
    if (pread(fd, tail, n, st.st_size - (off_t)n) != (ssize_t)n) {
        errno = errno ? errno : EIO;
        return -1;
    }
    if (tail[n - 1] == '\n')
        return 0;
    const char *nl = memrchr(tail, '\n', n);
    if (nl == NULL && (size_t)st.st_size > JOURNAL_LINE_MAX) {
        errno = EBADMSG; /* longer than any line: not a torn one */
        return -1;
    }
    off_t keep = nl ? st.st_size - (off_t)n + (nl - tail) + 1 : 0;
    return ftruncate(fd, keep);
}

/* journal_append - one line, durable on return */
static int journal_append(int fd, size_t idx, enum rcpt_state st)
{
    char line[32];
    str_fmt(line, sizeof(line), "%c%zu\n", st == RCPT_DELIVERED ? 'd' : 'f', idx);
    struct iovec iov = { line, strlen(line) };
    if (journal_trim(fd) < 0 || fs_writev_all(fd, &iov, 1) < 0)
        return -1;
    return fsync(fd);
}

/* spool_journal - append one recipient's final state, durably (caller holds the lock) */
bool spool_journal(const char *spooldir, const char *id, size_t rcpt_index, enum rcpt_state st)
{
    bool created;
    if (!msgid_valid(id) || rcpt_index >= SPOOL_RCPTS_MAX ||
        (st != RCPT_DELIVERED && st != RCPT_FAILED)) {
        errno = EINVAL;
        return false;
    }
    int fd = journal_open(spooldir, id, &created);
    if (fd < 0)
        return false;
    int r = journal_append(fd, rcpt_index, st);
    if (r == 0 && created)
        r = fs_fsync_subdir(spooldir, "input");
    int saved = errno;
    close(fd);
    errno = saved;
    return r == 0;
}
