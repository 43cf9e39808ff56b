/* log.c - main, reject and panic logs.  Every line is one write(2) on an O_APPEND file so
 * lines from several processes never interleave. */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

enum { LOG_MAINF, LOG_REJECTF, LOG_PANICF, LOG_NFILES };

static int log_fds[LOG_NFILES] = { -1, -1, -1 };
static bool log_syslog;
static bool log_stderr;
static char log_process[32] = "tandem";
static char log_dir[4096];              /* for reopening; "" before log_open */
static char trans_path[4096];           /* the transaction log, "" if none */
static int trans_fd = -1;
static gid_t owner_gid = (gid_t)-1;     /* the children's group may reopen them (SIGUSR1) */
static volatile sig_atomic_t reopen_pending;

/* open_path - open (creating) a log file for appending; when the parent drops privileges the
 * file stays root's but is writable by the children's group, so that they can reopen it
 * after a rotation (they cannot create, rename or remove it).  Opened as root in a directory
 * someone else may write to, it must be nothing planted: not a symbolic link, nor a FIFO
 * (O_NONBLOCK: the open does not wait for a reader; then refused), nor a hard link. */
static int open_path(const char *path)
{
    struct stat st;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY |
                        O_NONBLOCK, 0640);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink > 1) {
        close(fd);              /* a planted hard link must not be written, nor chowned */
        errno = EPERM;
        return -1;
    }
    if (owner_gid != (gid_t)-1 && (st.st_gid != owner_gid || (st.st_mode & 0777) != 0660)) {
        (void)!fchown(fd, (uid_t)-1, owner_gid);
        (void)!fchmod(fd, 0660);
    }
    return fd;
}

/* open_one - open (creating) one log file for appending, close-on-exec */
static int open_one(const char *dir, const char *name)
{
    char path[4096];
    if (!str_fmt(path, sizeof(path), "%s/%s", dir, name)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return open_path(path);
}

bool log_open(const char *dir)
{
    static const char *names[LOG_NFILES] = { "mainlog", "rejectlog", "paniclog" };
    if (dir != log_dir)
        str_copy(log_dir, dir, sizeof(log_dir));
    if (strcmp(dir, "syslog") == 0) {
        openlog(log_process, LOG_PID | LOG_NDELAY, LOG_MAIL);
        log_syslog = true;
        return true;
    }
    for (int i = 0; i < LOG_NFILES; i++) {
        int fd = open_one(dir, names[i]);
        if (fd < 0)
            return false;
        if (log_fds[i] >= 0)
            close(log_fds[i]);
        log_fds[i] = fd;
    }
    return true;
}

void log_set_group(gid_t gid)
{
    owner_gid = gid;
}

bool log_open_transactions(const char *path)
{
    int fd = open_path(path);
    if (fd < 0)
        return false;
    if (path != trans_path)
        str_copy(trans_path, path, sizeof(trans_path));
    if (trans_fd >= 0)
        close(trans_fd);
    trans_fd = fd;
    return true;
}

bool log_transactions_on(void)
{
    return trans_fd >= 0;
}

/* log_reopen - open the files again by name (after a rotation); a file that cannot be
 * opened keeps its old descriptor, so nothing is lost */
bool log_reopen(void)
{
    bool ok = true;
    reopen_pending = 0;
    if (log_dir[0] && strcmp(log_dir, "syslog") != 0 && !log_open(log_dir))
        ok = false;
    if (trans_path[0] && !log_open_transactions(trans_path))
        ok = false;
    return ok;
}

static void reopen_handler(int sig)
{
    (void)sig;
    reopen_pending = 1;
}

void log_reopen_on_signal(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = reopen_handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

void log_transaction(const char *json, size_t len)
{
    if (reopen_pending)
        log_reopen();
    if (trans_fd >= 0)
        (void)!write(trans_fd, json, len);
}

void log_set_stderr(bool on)
{
    log_stderr = on;
}

void log_set_process(const char *name)
{
    str_copy(log_process, name, sizeof(log_process));
}

/* log_emit - format one line with a timestamp and write it to each file in mask */
static void log_emit(unsigned mask, int prio, const char *fmt, va_list ap)
{
    char line[8192];
    if (reopen_pending)
        log_reopen();
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    size_t n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S ", &tm);
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    n += (size_t)m < sizeof(line) - n - 1 ? (size_t)m : sizeof(line) - n - 2;
    /* A newline inside a line would forge another line: flatten it. */
    for (size_t i = 20; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    if (log_syslog) {
        line[n - 1] = '\0';
        syslog(prio, "%s", line + 20);
    }
    for (int i = 0; i < LOG_NFILES; i++)
        if ((mask & (1u << i)) && log_fds[i] >= 0)
            (void)!write(log_fds[i], line, n);
    if (log_stderr || (!log_syslog && log_fds[LOG_MAINF] < 0))
        (void)!write(STDERR_FILENO, line, n);
}

void log_main(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(1u << LOG_MAINF, LOG_INFO, fmt, ap);
    va_end(ap);
}

void log_reject(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit((1u << LOG_MAINF) | (1u << LOG_REJECTF), LOG_NOTICE, fmt, ap);
    va_end(ap);
}

void log_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit((1u << LOG_MAINF) | (1u << LOG_PANICF), LOG_ALERT, fmt, ap);
    va_end(ap);
}

/* fatal - panic with strerror(errno) appended, then exit so the parent restarts us */
void fatal(const char *fmt, ...)
{
    char msg[1024];
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    str_vfmt(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_panic("%s[%d]: fatal: %s: %s", log_process, (int)getpid(), msg, strerror(saved));
    abort();
}

void fatalx(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    str_vfmt(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_panic("%s[%d]: fatal: %s", log_process, (int)getpid(), msg);
    abort();
}
