/* session_stdio.c - `tandem session`: the session runs on one end of a socketpair exactly as
 * on a TCP connection; a small pump process copies stdin to the other end and replies to
 * stdout. */
#include "cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "core/core.h"
#include "in/in.h"
#include "outbound/outbound.h"
#include "store/store.h"

/* write_all - blocking write of a whole buffer */
static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* pump - copy stdin to sock and sock to stdout until the session closes */
static NORETURN void pump(int sock)
{
    struct pollfd pf[2] = { { STDIN_FILENO, POLLIN, 0 }, { sock, POLLIN, 0 } };
    char buf[16384];
    bool in_open = true;
    for (;;) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            _exit(1);
        }
        if (in_open && (pf[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
            if (n <= 0 || !write_all(sock, buf, (size_t)n)) {
                in_open = false;
                pf[0].fd = -1;
                shutdown(sock, SHUT_WR);
            }
        }
        if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(sock, buf, sizeof(buf));
            if (n <= 0)
                _exit(0);
            if (!write_all(STDOUT_FILENO, buf, (size_t)n))
                _exit(1);
        }
    }
}

/* client_sockaddr - the address the session pretends the client has */
static bool client_sockaddr(const char *ip, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        return true;
    }
    return false;
}

int session_stdio_run(const struct conf *c, const char *client_ip, bool no_deliver)
{
    struct sockaddr_storage ss;
    char err[256];
    int sv[2];
    if (!client_sockaddr(client_ip ? client_ip : "127.0.0.1", &ss)) {
        fprintf(stderr, "tandem: --client: not an IP address: %s\n", client_ip);
        return 64;
    }
    /* The logs are opened as invoked (root's, like the daemon's parent); everything else,
     * the spool and the hints above all, as `user`: the message then belongs to the daemon
     * that delivers it, and nothing the user planted in the spool is opened as root. */
    if (strcmp(c->log_directory, "syslog") != 0 && !log_open(c->log_directory))
        log_set_stderr(false); /* logs then go to stderr */
    if (!cli_become_user(c))
        return 1;
    if (!no_deliver && !spool_init_dirs(c->spool_directory, err, sizeof(err))) {
        fprintf(stderr, "tandem: spool directory %s: %s\n", c->spool_directory, err);
        return 1;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        perror("tandem: socketpair");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        pump(sv[1]);
    }
    close(sv[1]);
    struct server srv;
    memset(&srv, 0, sizeof(srv));
    srv.base = event_base_new();
    srv.conf = c;
    srv.sched_fd = -1;
    srv.interactive = true;
    srv.no_deliver = no_deliver;
    LIST_INIT(&srv.sessions);
    server_init_outbound(&srv);
    smtp_session_start(&srv, sv[0], (struct sockaddr *)&ss, false);
    event_base_dispatch(srv.base);
    dialer_close_pool(srv.dialer);   /* the pooled onward link QUITs... */
    smtp_out_drain(srv.base);        /* ...answered, and the link freed */
    server_free_outbound(&srv);
    event_base_free(srv.base);
    int status;
    waitpid(pid, &status, 0);
    return 0;
}
