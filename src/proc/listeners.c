/* listeners.c - listening sockets: SO_REUSEADDR, IPv6-only for IPv6 addresses, non-blocking. */
#include "listeners.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/core.h"

#define LISTEN_BACKLOG 1024

/* listeners_open_addr - one listening socket, or -1 with errno */
int listeners_open_addr(const struct listen_addr *la)
{
    int one = 1;
    int fd = socket(la->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (la->ss.ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&la->ss, la->sslen) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

bool listeners_open(const struct conf *c, int *fds, char *err, size_t errsz)
{
    for (size_t i = 0; i < c->nlisten; i++) {
        fds[i] = listeners_open_addr(&c->listen[i]);
        if (fds[i] < 0) {
            str_fmt(err, errsz, "cannot listen on %s: %s", c->listen[i].text, strerror(errno));
            listeners_close(fds, i);
            return false;
        }
    }
    return true;
}

void listeners_close(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

void listeners_describe(const struct conf *c, char *buf, size_t sz)
{
    struct sbuf b;
    sbuf_init(&b);
    for (size_t i = 0; i < c->nlisten; i++)
        sbuf_printf(&b, "%s%s", i ? " " : "", c->listen[i].text);
    str_copy(buf, b.s ? b.s : "", sz);
    sbuf_free(&b);
}
