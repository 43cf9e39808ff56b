/* control_client.c - the control socket's address, and the client side of its protocol
 * (`tandem queue` talking to a running scheduler; see queue/queue.h). */
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

bool control_addr(const char *spooldir, struct sockaddr_un *sun, socklen_t *len, int *dirfd)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    *dirfd = -1;
    if (!str_fmt(sun->sun_path, sizeof(sun->sun_path), "%s/%s", spooldir, CONTROL_NAME)) {
        /* Too long for sun_path: name it relative to an open descriptor of the directory. */
        *dirfd = open(spooldir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (*dirfd < 0 || !str_fmt(sun->sun_path, sizeof(sun->sun_path), "/proc/self/fd/%d/%s",
                                    *dirfd, CONTROL_NAME)) {
            if (*dirfd >= 0)
                close(*dirfd);
            *dirfd = -1;
            errno = ENAMETOOLONG;
            return false;
        }
    }
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(sun->sun_path) + 1);
    return true;
}

int control_connect(const char *spooldir)
{
    struct sockaddr_un sun;
    socklen_t len;
    int dirfd;
    if (!control_addr(spooldir, &sun, &len, &dirfd))
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int err = 0;
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, len) != 0) {
        err = errno;
        close(fd);
        fd = -1;
    }
    if (dirfd >= 0)
        close(dirfd);
    if (err)
        errno = err;
    return fd;
}

/* read_line - one reply line without its line end (long lines are cut); false at EOF */
static bool read_line(FILE *f, char *buf, size_t sz)
{
    if (fgets(buf, (int)sz, f) == NULL)
        return false;
    size_t n = strlen(buf);
    if (n && buf[n - 1] != '\n') {
        int ch;
        while ((ch = fgetc(f)) != EOF && ch != '\n')
            ;
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    return true;
}

int control_command(int fd, const char *cmd, void (*line_cb)(void *arg, const char *line),
                    void *arg, char *final, size_t finalsz)
{
    char line[CONTROL_REPLY_MAX];
    size_t n = strlen(cmd);
    str_copy(final, "connection to the scheduler lost", finalsz);
    if (n >= CONTROL_LINE_MAX || write(fd, cmd, n) != (ssize_t)n || write(fd, "\n", 1) != 1)
        return -1;
    int rfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    FILE *f = rfd >= 0 ? fdopen(rfd, "r") : NULL;
    if (f == NULL) {
        if (rfd >= 0)
            close(rfd);
        return -1;
    }
    int rc = -1;
    while (rc < 0 && read_line(f, line, sizeof(line))) {
        if (strncmp(line, "* ", 2) == 0) {
            if (line_cb)
                line_cb(arg, line + 2);
        } else if (strncmp(line, "ok", 2) == 0 || strncmp(line, "err", 3) == 0) {
            rc = line[0] == 'o' ? 0 : 1;
            str_copy(final, line + (rc ? 3 : 2) + (line[rc ? 3 : 2] == ' '), finalsz);
        }
    }
    fclose(f);
    return rc;
}
