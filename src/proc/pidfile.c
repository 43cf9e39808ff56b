/* pidfile.c - the pid file under a lock, and `tandem stop` (see pidfile.h). */
#include "pidfile.h"
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/core.h"
#include "store/store.h"

#define STOP_WAIT_MS 60000

/* lock_holder - the pid holding a lock on fd's file that conflicts with a write lock, 0 if
 * none, -1 on error */
static pid_t lock_holder(int fd)
{
    struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    if (fcntl(fd, F_GETLK, &lk) != 0)
        return -1;
    return lk.l_type == F_UNLCK ? 0 : lk.l_pid;
}

/* plain_file - fd is a regular file with no other hard link */
static bool plain_file(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1;
}

int pidfile_take(const char *path, char *err, size_t errsz)
{
    struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    char buf[32];
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0644);
    if (fd < 0) {
        str_fmt(err, errsz, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (!plain_file(fd)) {
        str_fmt(err, errsz, "refusing %s: not a plain file of its own", path);
        close(fd);
        return -1;
    }
    if (fcntl(fd, F_SETLK, &lk) != 0) {
        pid_t holder = lock_holder(fd);
        str_fmt(err, errsz, "%s is held by pid %d: a daemon already runs on this spool", path,
                (int)holder);
        close(fd);
        return -1;
    }
    str_fmt(buf, sizeof(buf), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, strlen(buf), 0) != (ssize_t)strlen(buf)) {
        str_fmt(err, errsz, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* read_pid - the number in the pid file, 0 if none */
static pid_t read_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    long v = strtol(buf, NULL, 10);
    return v > 1 && v < 1 << 30 ? (pid_t)v : 0;
}

/* proc_uid - the effective uid pid runs as (the owner of /proc/PID), (uid_t)-1 if unknown */
static uid_t proc_uid(pid_t pid)
{
    char path[64];
    struct stat st;
    str_fmt(path, sizeof(path), "/proc/%d", (int)pid);
    return stat(path, &st) == 0 ? st.st_uid : (uid_t)-1;
}

/* verified_daemon - a pidfd for the daemon named in the pid file fd, once the kernel confirms
 * it: the process holds the file's lock and runs as we do; -1 with the reason printed */
static int verified_daemon(int fd, const char *path)
{
    pid_t pid = read_pid(fd);
    if (pid == 0) {
        fprintf(stderr, "tandem: no running daemon (pid file %s holds no pid)\n", path);
        return -1;
    }
    int pidfd = pidfd_open(pid, 0);              /* before the checks: no pid reuse after */
    pid_t holder = lock_holder(fd);
    const char *why = NULL;
    char what[64];
    if (pidfd < 0)
        why = "no such process";
    else if (holder <= 0)
        why = "no process holds the pid file's lock (no tandem daemon owns it)";
    else if (holder != pid)
        why = str_fmt(what, sizeof(what), "the pid file's lock is held by pid %d", (int)holder)
                  ? what : "the lock is held by another process";
    else if (proc_uid(pid) != geteuid())
        why = "that process runs as another user";
    if (why == NULL)
        return pidfd;
    fprintf(stderr, "tandem: pid file %s names pid %d, but %s: not signalling it\n", path,
            (int)pid, why);
    if (pidfd >= 0)
        close(pidfd);
    return -1;
}

int parent_stop(const char *conf_path)
{
    char path[4096];
    struct conf *c = conf_load_or_report(conf_path);
    if (c == NULL)
        return 1;
    bool named = spool_pid_path(path, sizeof(path), c->spool_directory);
    conf_free(c);
    int fd = named ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY) : -1;
    if (fd < 0 || !plain_file(fd)) {
        fprintf(stderr, "tandem: no running daemon (pid file %s: %s)\n", path,
                fd < 0 ? strerror(errno) : "not a plain file");
        if (fd >= 0)
            close(fd);
        return 1;
    }
    int pidfd = verified_daemon(fd, path);
    pid_t pid = read_pid(fd);
    close(fd);
    if (pidfd < 0)
        return 1;
    struct pollfd pf = { pidfd, POLLIN, 0 };
    if (pidfd_send_signal(pidfd, SIGTERM, NULL, 0) != 0 || poll(&pf, 1, STOP_WAIT_MS) != 1) {
        fprintf(stderr, "tandem: pid %d did not stop\n", (int)pid);
        close(pidfd);
        return 1;
    }
    close(pidfd);
    printf("tandem: stopped (pid %d)\n", (int)pid);
    return 0;
}
