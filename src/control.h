/* control.h - the scheduler's control socket, spool_directory/control: an AF_UNIX stream
 * socket (mode 0600, owned by the scheduler's user) through which `tandem queue` asks a
 * running daemon to act on its queue.
 *
 * Protocol: the client sends one command per line (at most CONTROL_LINE_MAX bytes, LF or
 * CRLF); the server answers with any number of information lines "* text" and one final line,
 * "ok text" or "err text".  Commands:
 *   deliver ID     attempt ID now, ignoring retry times; one "* <addr>: outcome" line per
 *                  recipient attempted, then "ok ID: N delivered, N deferred, N failed; ..."
 *                  once the attempt is over ("err ID: no such message", "err ID: locked ...")
 *   deliver-all    attempt every queued message now, ignoring retry times; per message its
 *                  recipient lines and a "* ID: ..." summary as each attempt ends, then
 *                  "ok N message(s) attempted" when all are over
 *   remove ID      remove the message ("ok ID removed"), logged `ID removed by USER`
 * Several commands may follow one another on a connection; each is answered in turn. */
#ifndef TANDEM_CONTROL_H
#define TANDEM_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#define CONTROL_NAME "control"
#define CONTROL_LINE_MAX 512      /* a command line */
#define CONTROL_REPLY_MAX 4096    /* a reply line (longer ones are cut) */
#define CONTROL_CONNS_MAX 16      /* simultaneous connections */
#define CONTROL_IDLE_TIMEOUT 60   /* seconds to send a command */

struct event_base;
struct conf;
struct queue;
struct control;

/* The socket's address; long paths go through /proc/self/fd/N (*dirfd, to be closed by the
 * caller once bound or connected; -1 when not used).  False when it cannot be built. */
bool control_addr(const char *spooldir, struct sockaddr_un *sun, socklen_t *len, int *dirfd);

/* Scheduler side: listen on the socket and serve commands against q. */
struct control *control_open(struct event_base *base, const struct conf *c, struct queue *q,
                             char *err, size_t errsz);
/* Stop listening, remove the socket, drop the connections. */
void control_close(struct control *ctl);

/* Client side: connect; -1 with errno when no daemon listens (ENOENT, ECONNREFUSED). */
int control_connect(const char *spooldir);
/* Send cmd and read the reply: each "* " line goes to line_cb without its prefix, the final
 * line's text into final.  Returns 0 for "ok", 1 for "err", -1 when the connection failed. */
int control_command(int fd, const char *cmd, void (*line_cb)(void *arg, const char *line),
                    void *arg, char *final, size_t finalsz);

#endif
