/* sched.c - the scheduler process.  Delivery is not implemented yet: it drains notifications
 * and leaves accepted messages in the spool. */
#include "sched.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"

/* notify_cb - a worker committed a message */
static void notify_cb(evutil_socket_t fd, short what, void *arg)
{
    char id[64];
    (void)what;
    (void)arg;
    while (recv(fd, id, sizeof(id), MSG_DONTWAIT) > 0)
        ;
}

static void sched_term_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

void sched_run(const struct conf *c, int notify_fd)
{
    (void)c;
    log_set_process("tandem-scheduler");
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    if (base == NULL)
        fatalx("event_base_new");
    struct event *ev = event_new(base, notify_fd, EV_READ | EV_PERSIST, notify_cb, NULL);
    struct event *term = evsignal_new(base, SIGTERM, sched_term_cb, base);
    event_add(ev, NULL);
    evsignal_add(term, NULL);
    event_base_dispatch(base);
    _exit(0);
}
