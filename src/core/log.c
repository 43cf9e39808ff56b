/* log.c - main, reject and panic logs.  Every line is one write(2) on an O_APPEND file so
 * lines from several processes never interleave. */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

enum { LOG_MAINF, LOG_REJECTF, LOG_PANICF, LOG_NFILES };

static int log_fds[LOG_NFILES] = { -1, -1, -1 };
static bool log_syslog;
static bool log_stderr;
static char log_process[32] = "tandem";

/* open_one - open (creating) one log file for appending, close-on-exec.  Opened as root in
 * a directory someone else may write to (a `user`-owned log directory), it must be nothing
 * planted: not a symbolic link, nor a FIFO (which would block), nor a hard link to another
 * file (EPERM). */
static int open_one(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    if (!str_fmt(path, sizeof(path), "%s/%s", dir, name)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK |
                        O_NOCTTY, 0640);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}

bool log_open(const char *dir)
{
    static const char *names[LOG_NFILES] = { "mainlog", "rejectlog", "paniclog" };
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
