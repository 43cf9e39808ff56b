/* notify.c - systemd's notification protocol (sd_notify(3)): one datagram such as "READY=1"
 * to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or "@name" for the abstract
 * namespace).  The protocol is documented and stable; this is all of it tandem needs, so
 * there is no dependency on libsystemd.  Without $NOTIFY_SOCKET nothing is sent. */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/core.h"

static struct sockaddr_un notify_addr;
static socklen_t notify_len;     /* 0 = not under systemd (or not Type=notify) */

void notify_init(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    size_t n = path ? strlen(path) : 0;
    notify_len = 0;
    if (n < 2 || n >= sizeof(notify_addr.sun_path) || (path[0] != '/' && path[0] != '@'))
        goto out;
    memset(&notify_addr, 0, sizeof(notify_addr));
    notify_addr.sun_family = AF_UNIX;
    memcpy(notify_addr.sun_path, path, n);
    if (path[0] == '@')
        notify_addr.sun_path[0] = '\0';      /* abstract: the length says where it ends */
    notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
out:
    unsetenv("NOTIFY_SOCKET");
}

void notify_systemd(const char *state)
{
    if (notify_len == 0)
        return;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&notify_addr,
               notify_len) < 0)
        log_main("sd_notify %s: %s", state, strerror(errno));
    close(fd);
}
