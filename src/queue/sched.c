/* sched.c - the scheduler process: owns the queue.  At start it scans the spool and attempts
 * everything; messages the workers commit arrive as datagrams and are attempted at once; a
 * rescan now and then catches any notification that was lost; the control socket serves
 * `tandem queue`.  SIGTERM: no new attempts, running ones may finish within shutdown_timeout. */
#include "queue.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "core/core.h"
#include "store/store.h"

#define SCHED_RESCAN_INTERVAL 300   /* seconds between spool scans */
#define SCHED_NOTIFY_BURST 256      /* notifications read per wake-up */

/* The scheduler process's one object. */
struct sched {
    const struct conf *conf;
    struct event_base *base;
    struct delivery_env de;
    struct queue *q;
    struct control *ctl;
    struct event *notify_ev, *term_ev, *int_ev, *rescan_ev, *deadline_ev;
    bool stopping;
};

/* notify_cb - workers committed messages: attempt them now */
static void notify_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sched *s = arg;
    char id[64];
    (void)what;
    for (int i = 0; i < SCHED_NOTIFY_BURST; i++) {
        ssize_t n = recv(fd, id, sizeof(id) - 1, MSG_DONTWAIT);
        if (n < 0)
            return;
        id[n] = '\0';
        if (msgid_valid(id))
            queue_add(s->q, id);
    }
}

/* rescan_cb - pick up messages whose notification was lost (or that `tandem session` left) */
static void rescan_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sched *s = arg;
    (void)fd;
    (void)what;
    size_t n = queue_scan(s->q);
    if (n)
        log_main("scheduler: %zu message(s) found in the spool by a scan", n);
}

/* deadline_cb - shutdown_timeout passed with deliveries still running: leave them */
static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sched *s = arg;
    (void)fd;
    (void)what;
    log_main("scheduler: shutdown timeout, abandoning %zu running deliveries",
             queue_running(s->q));
    event_base_loopexit(s->base, NULL);
}

/* idle_cb - nothing running: when stopping, that is the end */
static void idle_cb(void *arg)
{
    struct sched *s = arg;
    struct timeval flush = { 0, 100000 };   /* let replies to queue commands go out */
    if (s->stopping)
        event_base_loopexit(s->base, &flush);
}

/* term_cb - SIGTERM (or SIGINT in the foreground): finish what runs, start nothing new */
static void term_cb(evutil_socket_t sig, short what, void *arg)
{
    struct sched *s = arg;
    struct timeval tv = { (time_t)s->conf->shutdown_timeout, 0 };
    (void)what;
    if (s->stopping)
        return;
    s->stopping = true;
    log_main("scheduler stopping on signal %d: %zu deliveries running", (int)sig,
             queue_running(s->q));
    event_del(s->notify_ev);
    event_del(s->rescan_ev);
    evtimer_add(s->deadline_ev, &tv);
    queue_stop(s->q);
}

/* start - the event loop, the delivery environment, the queue and the control socket */
static void start(struct sched *s, int notify_fd)
{
    char err[512];
    struct timeval rescan = { SCHED_RESCAN_INTERVAL, 0 };
    if ((s->base = event_base_new()) == NULL)
        fatalx("scheduler: event_base_new failed");
    if (!queue_env_open(&s->de, s->base, s->conf, err, sizeof(err)))
        fatalx("scheduler: %s", err);
    s->q = queue_new(&s->de);
    queue_set_idle_cb(s->q, idle_cb, s);
    if ((s->ctl = control_open(s->base, s->conf, s->q, err, sizeof(err))) == NULL)
        log_panic("scheduler: %s; `tandem queue` will act on the spool directly", err);
    s->notify_ev = event_new(s->base, notify_fd, EV_READ | EV_PERSIST, notify_cb, s);
    s->term_ev = evsignal_new(s->base, SIGTERM, term_cb, s);
    s->int_ev = evsignal_new(s->base, SIGINT, term_cb, s);
    s->rescan_ev = event_new(s->base, -1, EV_PERSIST, rescan_cb, s);
    s->deadline_ev = evtimer_new(s->base, deadline_cb, s);
    event_add(s->notify_ev, NULL);
    evsignal_add(s->term_ev, NULL);
    evsignal_add(s->int_ev, NULL);
    event_add(s->rescan_ev, &rescan);
}

/* finish - release everything (deliveries abandoned at the deadline die with the process) */
static void finish(struct sched *s)
{
    control_close(s->ctl);
    struct event *evs[] = { s->notify_ev, s->term_ev, s->int_ev, s->rescan_ev, s->deadline_ev };
    for (size_t i = 0; i < ARRAY_LEN(evs); i++)
        event_free(evs[i]);
    if (queue_running(s->q) == 0) {
        queue_free(s->q);
        queue_env_close(&s->de);
        event_base_free(s->base);
    }
}

void sched_run(const struct conf *c, int notify_fd)
{
    struct sched s;
    memset(&s, 0, sizeof(s));
    s.conf = c;
    log_set_process("tandem-scheduler");
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGHUP, SIG_IGN);     /* the parent replaces its children on reload */
    signal(SIGPIPE, SIG_IGN);
    start(&s, notify_fd);
    size_t n = queue_scan(s.q);
    log_main("scheduler started: pid=%d, %zu message(s) in the queue", (int)getpid(), n);
    event_base_dispatch(s.base);
    finish(&s);
    log_main("scheduler stopped (pid=%d)", (int)getpid());
    child_exit(0);
}
