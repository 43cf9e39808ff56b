/* worker.c - a worker process: accepts connections on the shared listeners, applies the
 * connection limits, runs SMTP sessions on its own event loop, stops gracefully on SIGTERM. */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "conf/conf.h"
#include "core/core.h"
#include "in/in.h"
#include "outbound/outbound.h"
#include "store/store.h"

struct worker;

/* One listening socket as the worker sees it. */
struct worker_listener {
    struct worker *w;
    bool implicit_tls;
};

struct worker {
    struct server srv;
    struct worker_listener *wl;
    struct evconnlistener **listeners;
    size_t nlisteners;
    struct event *sigterm, *sigretire, *stop_timer;
};

/* accept_cb - a new connection: the server applies the limits and starts its session */
static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    struct worker_listener *wl = arg;
    (void)l;
    fd_cloexec(fd);
    server_accept(&wl->w->srv, fd, sa, (socklen_t)salen, wl->implicit_tls);
}

/* stop_timer_cb - sessions did not finish within shutdown_timeout: leave anyway */
static void stop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    log_main("worker %d: %u session(s) still open at shutdown timeout", (int)getpid(), w->srv.nsessions);
    event_base_loopbreak(w->srv.base);
}

/* sigterm_cb - graceful stop: no new connections, idle sessions get 421, others finish */
static void sigterm_cb(evutil_socket_t sig, short what, void *arg)
{
    struct worker *w = arg;
    (void)sig;
    (void)what;
    if (w->srv.shutting_down)
        return;
    w->srv.shutting_down = true;
    for (size_t i = 0; i < w->nlisteners; i++)
        evconnlistener_disable(w->listeners[i]);
    server_shutdown_sessions(&w->srv);
    struct timeval tv = { (time_t)w->srv.conf->shutdown_timeout, 0 };
    evtimer_add(w->stop_timer, &tv);
    if (w->srv.nsessions == 0)
        event_base_loopexit(w->srv.base, NULL);
}

/* retire_cb - a reload replaced this worker: accept nothing new, let every session run to
 * its natural end (no 421), then exit */
static void retire_cb(evutil_socket_t sig, short what, void *arg)
{
    struct worker *w = arg;
    (void)sig;
    (void)what;
    if (w->srv.retiring || w->srv.shutting_down)
        return;
    w->srv.retiring = true;
    for (size_t i = 0; i < w->nlisteners; i++)
        evconnlistener_disable(w->listeners[i]);
    if (w->srv.nsessions == 0)
        event_base_loopexit(w->srv.base, NULL);
}

/* worker_free - release what the worker owns.  Links closing with QUIT get their reply (or
 * time out) first, while SIGTERM is still handled.  Sessions still open at the shutdown
 * timeout are left as they are (the process ends); so is what they use: loop and outbound. */
static void worker_free(struct worker *w)
{
    if (w->srv.nsessions == 0)
        smtp_out_drain(w->srv.base);
    for (size_t i = 0; i < w->nlisteners; i++)
        evconnlistener_free(w->listeners[i]);
    free(w->listeners);
    free(w->wl);
    event_free(w->sigterm);
    event_free(w->sigretire);
    event_free(w->stop_timer);
    if (w->srv.nsessions > 0) {
        spool_pool_free(w->srv.spool_pool);   /* its files would otherwise linger in tmp/ */
        w->srv.spool_pool = NULL;
        return;
    }
    server_free_outbound(&w->srv);
    event_base_free(w->srv.base);
}

void worker_run(const struct worker_args *a)
{
    struct worker w;
    memset(&w, 0, sizeof(w));
    log_set_process("tandem-worker");
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    w.srv.base = event_base_new();
    if (w.srv.base == NULL)
        fatalx("event_base_new");
    w.srv.conf = a->conf;
    w.srv.limits = a->limits;
    w.srv.worker_index = (int)a->slot;
    w.srv.sched_fd = a->sched_fd;
    w.srv.tls_ctx = a->tls_ctx;
    LIST_INIT(&w.srv.sessions);
    server_init_outbound(&w.srv);
    w.listeners = xcalloc(a->nlisten, sizeof(*w.listeners));
    w.wl = xcalloc(a->nlisten, sizeof(*w.wl));
    for (size_t i = 0; i < a->nlisten; i++) {
        w.wl[i].w = &w;
        w.wl[i].implicit_tls = a->conf->listen[i].implicit_tls;
        /* backlog 0: the parent already listens (with 1024); -1 would re-listen with 128 */
        w.listeners[i] = evconnlistener_new(w.srv.base, accept_cb, &w.wl[i], LEV_OPT_CLOSE_ON_EXEC, 0,
                                            a->listen_fds[i]);
        if (w.listeners[i] == NULL)
            fatal("evconnlistener_new");
        w.nlisteners++;
    }
    w.sigterm = evsignal_new(w.srv.base, SIGTERM, sigterm_cb, &w);
    w.sigretire = evsignal_new(w.srv.base, SIGUSR2, retire_cb, &w);
    evsignal_add(w.sigretire, NULL);
    w.stop_timer = evtimer_new(w.srv.base, stop_timer_cb, &w);
    evsignal_add(w.sigterm, NULL);
    if (getppid() == 1)
        raise(SIGTERM); /* the parent died before we got here */
    event_base_dispatch(w.srv.base);
    worker_free(&w);
    child_exit(0);
}
