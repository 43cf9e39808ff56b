/* parent.c - the supervisor: loads the configuration, binds, forks unprivileged workers (and
 * the scheduler), restarts crashed children, reloads on SIGHUP, stops everything on SIGTERM. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "listeners.h"
#include "metrics_proc.h"
#include "notify.h"
#include "pidfile.h"
#include "worker.h"
#include "conf/conf.h"
#include "core/core.h"
#include "in/in.h"
#include "queue/queue.h"
#include "store/store.h"

#define MAX_CHILDREN 256
#define RESTART_BURST 10     /* more crashes than this within RESTART_WINDOW slows restarts */
#define RESTART_WINDOW 60

enum child_kind { CHILD_WORKER, CHILD_SCHEDULER, CHILD_METRICS };

struct child {
    pid_t pid;
    enum child_kind kind;
    unsigned slot;
    bool retiring;   /* told to stop (reload or shutdown); its exit is expected */
};

struct parent {
    const char *conf_path;
    struct conf *conf;
    struct event_base *base;
    int *listen_fds;
    size_t nlisten;
    struct privs privs;
    struct conn_limits *limits;
    unsigned accept_max_sized; /* the smtp_accept_max the connection tables were sized for */
    struct metrics *metrics;   /* a counter slot per worker slot, then the scheduler's */
    int metrics_fd;            /* metrics_listen, bound here; -1 if not configured */
    SSL_CTX *tls_ctx;          /* inbound TLS; children inherit it */
    unsigned nslots;
    bool slot_busy[MAX_CHILDREN];
    struct child children[MAX_CHILDREN];
    size_t nchildren;
    int sched_sock[2];        /* [0] workers write, [1] the scheduler reads */
    bool stopping;
    time_t crash_times[RESTART_BURST];
    unsigned ncrash;
    struct event *restart_timer, *kill_timer;
    char pidfile[4096];
    int pidfd;                 /* the pid file, locked while we run (pidfile.h) */
};

static void start_children(struct parent *p);

/* The signals the parent's loop handles (supervise). */
static const int parent_signals[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1 };

/* worker_count - `workers`, or one per core */
static unsigned worker_count(const struct conf *c)
{
    if (c->workers)
        return c->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* alloc_slot - a free connection-counter slot for a new worker */
static unsigned alloc_slot(struct parent *p)
{
    for (unsigned i = 0; i < p->nslots; i++)
        if (!p->slot_busy[i]) {
            p->slot_busy[i] = true;
            conn_limits_reset_worker(p->limits, i);
            metrics_reset_gauges(p->metrics, i);
            return i;
        }
    return UINT_MAX;   /* every slot is held by a live or retiring worker */
}

/* spawn - fork one child of the given kind; the child drops privileges and never returns */
static void spawn(struct parent *p, enum child_kind kind)
{
    struct child ch = { 0, kind, 0, false };
    sigset_t block, saved;
    if (kind == CHILD_WORKER && (ch.slot = alloc_slot(p)) == UINT_MAX) {
        log_panic("no free worker slot (too many retiring workers); worker not started");
        return;
    }
    /* Until the child has its own handlers, a signal sent to it would reach the handler it
     * inherited from the parent's event base, which writes to the parent's loop: it would be
     * lost, and a SIGTERM in that window left the child running forever.  Hold the signals
     * over the fork; the child resets them before unblocking. */
    sigemptyset(&block);
    for (size_t i = 0; i < ARRAY_LEN(parent_signals); i++)
        sigaddset(&block, parent_signals[i]);
    sigprocmask(SIG_BLOCK, &block, &saved);
    pid_t pid = fork();
    if (pid != 0)
        sigprocmask(SIG_SETMASK, &saved, NULL);
    if (pid < 0) {
        log_panic("fork failed: %s", strerror(errno));
        if (kind == CHILD_WORKER)
            p->slot_busy[ch.slot] = false;
        return;
    }
    if (pid == 0) {
        /* The child builds its own loop.  The parent's base shares its epoll instance with us:
         * re-initialise it first so freeing it cannot unregister the parent's events. */
        event_reinit(p->base);
        event_base_free(p->base);
        signal(SIGCHLD, SIG_DFL);
        signal(SIGTERM, SIG_DFL);  /* until the child's own loop takes it */
        signal(SIGINT, SIG_IGN);   /* ^C reaches the whole group; the parent stops children */
        signal(SIGHUP, SIG_IGN);
        log_reopen_on_signal(SIGUSR1);
        sigprocmask(SIG_SETMASK, &saved, NULL);
        if (p->pidfd >= 0)
            close(p->pidfd);         /* the children have no business with it */
        privs_drop(&p->privs);
        if (p->metrics_fd >= 0 && kind != CHILD_METRICS)
            close(p->metrics_fd);
        if (kind == CHILD_METRICS) {
            listeners_close(p->listen_fds, p->nlisten);
            close(p->sched_sock[0]);
            close(p->sched_sock[1]);
            metrics_proc_run(p->metrics_fd, p->metrics);
        }
        metrics_attach(p->metrics, kind == CHILD_WORKER ? ch.slot : p->nslots);
        if (kind == CHILD_WORKER) {
            conf_lookups_open(p->conf);   /* as the user that reads them; failures logged */
            close(p->sched_sock[1]);
            struct worker_args a = { p->conf, p->listen_fds, p->nlisten, p->limits, ch.slot,
                                     p->sched_sock[0], p->tls_ctx };
            worker_run(&a);
        }
        listeners_close(p->listen_fds, p->nlisten);
        close(p->sched_sock[0]);
        sched_run(p->conf, p->sched_sock[1]);
    }
    ch.pid = pid;
    p->children[p->nchildren++] = ch;
}

/* start_children - bring the number of live workers and schedulers up to the configuration */
static void start_children(struct parent *p)
{
    unsigned workers = 0, scheds = 0, metrics = 0;
    for (size_t i = 0; i < p->nchildren; i++) {
        if (p->children[i].retiring)
            continue;
        if (p->children[i].kind == CHILD_WORKER)
            workers++;
        else if (p->children[i].kind == CHILD_SCHEDULER)
            scheds++;
        else
            metrics++;
    }
    for (; workers < worker_count(p->conf) && p->nchildren < MAX_CHILDREN; workers++)
        spawn(p, CHILD_WORKER);
    if (scheds == 0 && p->nchildren < MAX_CHILDREN)
        spawn(p, CHILD_SCHEDULER);
    if (metrics == 0 && p->metrics_fd >= 0 && p->nchildren < MAX_CHILDREN)
        spawn(p, CHILD_METRICS);
}

/* note_crash - remember a crash; true if children are crashing too fast to restart at once */
static bool note_crash(struct parent *p)
{
    time_t now = time(NULL);
    unsigned recent = 0;
    p->crash_times[p->ncrash++ % RESTART_BURST] = now;
    for (unsigned i = 0; i < RESTART_BURST; i++)
        if (p->crash_times[i] && now - p->crash_times[i] < RESTART_WINDOW)
            recent++;
    return recent >= RESTART_BURST;
}

/* note_unclean_stop - a child told to stop crashed or failed on its way out: a panic, not
 * silence.  Expected: the shutdown timer's SIGKILL, and the default action of SIGTERM or of
 * SIGUSR2 (retire) on a child forked so recently that it had no handler yet (nor sessions) */
static void note_unclean_stop(const char *what, pid_t pid, int status)
{
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    if (sig && sig != SIGTERM && sig != SIGKILL && sig != SIGUSR2)
        log_panic("%s process %d killed by signal %d while stopping", what, (int)pid, sig);
    else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        log_panic("%s process %d exited with status %d while stopping", what, (int)pid,
                  WEXITSTATUS(status));
}

/* child_exited - account for one reaped child: log abnormal exits to the panic log */
static bool child_exited(struct parent *p, pid_t pid, int status)
{
    for (size_t i = 0; i < p->nchildren; i++) {
        struct child ch = p->children[i];
        if (ch.pid != pid)
            continue;
        p->children[i] = p->children[--p->nchildren];
        if (ch.kind == CHILD_WORKER) {
            p->slot_busy[ch.slot] = false;
            conn_limits_reset_worker(p->limits, ch.slot);
            metrics_reset_gauges(p->metrics, ch.slot);
        } else if (ch.kind == CHILD_SCHEDULER && !ch.retiring) {
            metrics_reset_gauges(p->metrics, p->nslots);   /* its connections died with it */
        }
        static const char *const kinds[] = { "worker", "scheduler", "metrics" };
        const char *what = kinds[ch.kind];
        if (ch.retiring || p->stopping) {
            note_unclean_stop(what, pid, status);
            return false;
        }
        if (WIFSIGNALED(status))
            log_panic("%s process %d killed by signal %d; restarting", what, (int)pid, WTERMSIG(status));
        else
            log_panic("%s process %d exited with status %d; restarting", what, (int)pid,
                      WEXITSTATUS(status));
        return note_crash(p);
    }
    return false;
}

static void restart_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_children(arg);
}

/* sigchld_cb - reap children; restart the ones that died unexpectedly */
static void sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
    struct parent *p = arg;
    int status;
    pid_t pid;
    bool slow = false;
    (void)sig;
    (void)what;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        slow |= child_exited(p, pid, status);
    if (p->stopping) {
        if (p->nchildren == 0)
            event_base_loopexit(p->base, NULL);
        return;
    }
    if (slow) {
        struct timeval tv = { 5, 0 };
        log_panic("children are crashing repeatedly; waiting 5s before restarting");
        evtimer_add(p->restart_timer, &tv);
    } else {
        start_children(p);
    }
}

/* signal_children - send sig to every child, marking them as retiring */
static void signal_children(struct parent *p, int sig)
{
    for (size_t i = 0; i < p->nchildren; i++) {
        p->children[i].retiring = true;
        kill(p->children[i].pid, sig);
    }
}

/* retire_children - a reload: workers finish their sessions undisturbed (SIGUSR2), the
 * scheduler finishes its deliveries (SIGTERM); new children take over at once */
static void retire_children(struct parent *p)
{
    for (size_t i = 0; i < p->nchildren; i++) {
        p->children[i].retiring = true;
        kill(p->children[i].pid, p->children[i].kind == CHILD_WORKER ? SIGUSR2 : SIGTERM);
    }
}

static void kill_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct parent *p = arg;
    (void)fd;
    (void)what;
    log_main("children still running after shutdown timeout: killing them");
    signal_children(p, SIGKILL);
}

/* sigterm_cb - stop: workers finish their sessions, then everything exits */
static void sigterm_cb(evutil_socket_t sig, short what, void *arg)
{
    struct parent *p = arg;
    (void)what;
    if (p->stopping)
        return;
    p->stopping = true;
    notify_systemd("STOPPING=1");
    log_main("tandem daemon stopping on signal %d (pid=%d)", (int)sig, (int)getpid());
    signal_children(p, SIGTERM);
    struct timeval tv = { (time_t)p->conf->shutdown_timeout + 5, 0 };
    evtimer_add(p->kill_timer, &tv);
    if (p->nchildren == 0)
        event_base_loopexit(p->base, NULL);
}

/* load_tls - the inbound TLS context (certificate and key read while still root) */
static bool load_tls(const struct conf *c, SSL_CTX **out, char *err, size_t errsz)
{
    *out = NULL;
    if (c->tls_certificate == NULL)
        return true;
    *out = tls_server_ctx(c->tls_certificate, c->tls_privatekey, err, errsz);
    return *out != NULL;
}

/* metrics_text - metrics_listen as written, "" if none */
static const char *metrics_text(const struct conf *c)
{
    return c->metrics_listen ? c->metrics_listen->text : "";
}

/* reload - take a new configuration if it can be applied without a restart (takes c) */
static bool reload(struct parent *p, struct conf *c)
{
    char oldl[1024], newl[1024];
    listeners_describe(p->conf, oldl, sizeof(oldl));
    listeners_describe(c, newl, sizeof(newl));
    if (strcmp(oldl, newl) != 0 || strcmp(metrics_text(p->conf), metrics_text(c)) != 0) {
        log_main("configuration reload: listen or metrics_listen changed (%s); restart tandem "
                 "to apply; not reloaded", newl);
        conf_free(c);
        return false;
    }
    char err[512];
    SSL_CTX *ctx;
    if (!load_tls(c, &ctx, err, sizeof(err))) {
        log_main("configuration reload failed (TLS: %s), keeping the old one", err);
        conf_free(c);
        return false;
    }
    if (c->transaction_log && !log_open_transactions(c->transaction_log))
        log_main("configuration reload: cannot open transaction_log %s: %s",
                 c->transaction_log, strerror(errno));
    if (p->tls_ctx)
        SSL_CTX_free(p->tls_ctx);
    p->tls_ctx = ctx;
    if (c->smtp_accept_max > p->accept_max_sized)
        log_main("configuration reload: smtp_accept_max %u is above the %u the connection "
                 "tables were sized for; a worker takes at most that many client addresses "
                 "until tandem is restarted", c->smtp_accept_max, p->accept_max_sized);
    conf_free(p->conf);
    p->conf = c;
    retire_children(p);
    start_children(p);
    return true;
}

/* sighup_cb - reload: a valid new configuration replaces the workers gracefully */
static void sighup_cb(evutil_socket_t sig, short what, void *arg)
{
    struct parent *p = arg;
    struct sbuf errs;
    (void)sig;
    (void)what;
    sbuf_init(&errs);
    notify_systemd("RELOADING=1");
    struct conf *c = conf_load(p->conf_path, &errs);
    if (c == NULL)
        log_main("configuration reload failed, keeping the old one:\n%s", errs.s ? errs.s : "");
    sbuf_free(&errs);
    if (c != NULL && reload(p, c))
        log_main("configuration reloaded from %s; workers replaced", p->conf_path);
    notify_systemd("READY=1");
}

/* sigusr1_cb - logrotate moved the logs: reopen ours (creating the files), then have every
 * child reopen its own */
static void sigusr1_cb(evutil_socket_t sig, short what, void *arg)
{
    struct parent *p = arg;
    (void)what;
    if (!log_reopen())
        log_panic("reopening log files failed: %s (the old ones stay in use)", strerror(errno));
    for (size_t i = 0; i < p->nchildren; i++)
        kill(p->children[i].pid, (int)sig);
    log_main("log files reopened (signal %d)", (int)sig);
}


/* mkdir_p - create a directory and its parents (mode 0750) */
static bool mkdir_p(const char *dir)
{
    char path[4096];
    if (str_copy(path, dir, sizeof(path)) >= sizeof(path))
        return false;
    for (char *q = path + 1; *q; q++) {
        if (*q != '/')
            continue;
        *q = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return false;
        *q = '/';
    }
    return mkdir(path, 0750) == 0 || errno == EEXIST;
}

/* What safe_spool_path needs: the parent and where to put the reason. */
struct path_check {
    const struct parent *p;
    char *err;
    size_t errsz;
};

/* safe_path - refuse a spool or log path that someone else could have planted for the root
 * parent to write through or chown: a symbolic link, the wrong kind of file, a file with other
 * hard links, or one owned by anybody but root, us or the configured user.  A missing file
 * is fine (it will be created); a missing directory is not (it was just created). */
static bool safe_path(const struct parent *p, const char *path, bool dir, char *err, size_t errsz)
{
    struct stat st;
    const char *why = NULL;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT && !dir)
            return true;
        str_fmt(err, errsz, "%s: %s", path, strerror(errno));
        return false;
    }
    if (S_ISLNK(st.st_mode))
        why = "it is a symbolic link";
    else if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
        why = dir ? "it is not a directory" : "it is not a regular file";
    else if (!dir && st.st_nlink > 1)
        why = "it has other hard links";
    else if (st.st_uid != 0 && st.st_uid != geteuid() && !(p->privs.drop && st.st_uid == p->privs.uid))
        why = "it is owned by another user";
    if (why == NULL)
        return true;
    str_fmt(err, errsz, "refusing %s: %s (uid %u)", path, why, (unsigned)st.st_uid);
    return false;
}

/* safe_spool_path - spool_each_path callback: stop at the first unsafe path */
static bool safe_spool_path(void *arg, const char *path, bool is_dir)
{
    struct path_check *pc = arg;
    if (path == NULL) {
        str_copy(pc->err, "spool directory name too long", pc->errsz);
        return false;
    }
    return safe_path(pc->p, path, is_dir, pc->err, pc->errsz);
}

/* safe_paths - the spool's directories and the files the parent opens there and in the log
 * directory (log.c's three logs) pass safe_path */
static bool safe_paths(const struct parent *p, char *err, size_t errsz)
{
    static const char *const logs[] = { "/mainlog", "/rejectlog", "/paniclog" };
    const struct conf *c = p->conf;
    struct path_check pc = { p, err, errsz };
    char path[4096];
    if (!spool_each_path(c->spool_directory, safe_spool_path, &pc))
        return false;
    if (strcmp(c->log_directory, "syslog") == 0)
        return true;
    if (!safe_path(p, c->log_directory, true, err, errsz))
        return false;
    for (size_t i = 0; i < ARRAY_LEN(logs); i++)
        if (!str_fmt(path, sizeof(path), "%s%s", c->log_directory, logs[i]) ||
            !safe_path(p, path, false, err, errsz))
            return false;
    return true;
}

/* chown_spool_dir - spool_each_path callback: the unprivileged children own the spool's
 * directories */
static bool chown_spool_dir(void *arg, const char *path, bool is_dir)
{
    const struct parent *p = arg;
    if (path && is_dir && lchown(path, p->privs.uid, p->privs.gid) != 0)
        fprintf(stderr, "tandem: chown %s: %s\n", path, strerror(errno));
    return path != NULL;
}

/* prepare - directories, listeners and identity; errors go to stderr before daemonizing */
static bool prepare(struct parent *p)
{
    char err[512] = "";
    const struct conf *c = p->conf;
    if (!privs_lookup(c->user, &p->privs, err, sizeof(err))) {
        fprintf(stderr, "tandem: %s\n", err);
        return false;
    }
    if (!mkdir_p(c->spool_directory)) {
        fprintf(stderr, "tandem: spool directory %s: %s\n", c->spool_directory, strerror(errno));
        return false;
    }
    if (!safe_path(p, c->spool_directory, true, err, sizeof(err)) ||   /* before making */
        !spool_init_dirs(c->spool_directory, err, sizeof(err))) {      /* anything in it */
        fprintf(stderr, "tandem: spool directory %s: %s\n", c->spool_directory, err);
        return false;
    }
    if (strcmp(c->log_directory, "syslog") != 0 && !mkdir_p(c->log_directory)) {
        fprintf(stderr, "tandem: log directory %s: %s\n", c->log_directory, strerror(errno));
        return false;
    }
    if (!safe_paths(p, err, sizeof(err))) {
        fprintf(stderr, "tandem: %s\n", err);
        return false;
    }
    if (p->privs.drop)
        spool_each_path(c->spool_directory, chown_spool_dir, p);
    /* The children reopen the logs by name after a rotation (SIGUSR1): they may enter the
     * log directory (its group, mode 0750) but not create or remove anything there. */
    if (p->privs.drop && strcmp(c->log_directory, "syslog") != 0 &&
        (lchown(c->log_directory, (uid_t)-1, p->privs.gid) != 0 || chmod(c->log_directory, 0750) != 0))
        fprintf(stderr, "tandem: log directory %s: %s\n", c->log_directory, strerror(errno));
    if (!load_tls(c, &p->tls_ctx, err, sizeof(err))) {
        fprintf(stderr, "tandem: TLS: %s\n", err);
        return false;
    }
    p->nlisten = c->nlisten;
    p->listen_fds = xcalloc(c->nlisten ? c->nlisten : 1, sizeof(int));
    if (!listeners_open(c, p->listen_fds, err, sizeof(err))) {
        fprintf(stderr, "tandem: %s\n", err);
        p->nlisten = 0;               /* listeners_open closed the ones it opened */
        return false;
    }
    if (c->metrics_listen && (p->metrics_fd = listeners_open_addr(c->metrics_listen)) < 0) {
        fprintf(stderr, "tandem: metrics_listen: cannot listen on %s: %s\n",
                c->metrics_listen->text, strerror(errno));
        return false;
    }
    if (p->privs.drop)
        log_set_group(p->privs.gid);   /* children reopen them after rotation */
    if (!log_open(c->log_directory)) {
        fprintf(stderr, "tandem: cannot open logs in %s: %s\n", c->log_directory, strerror(errno));
        return false;
    }
    if (c->transaction_log && (!safe_path(p, c->transaction_log, false, err, sizeof(err)) ||
                               !log_open_transactions(c->transaction_log))) {
        fprintf(stderr, "tandem: transaction_log %s: %s\n", c->transaction_log,
                err[0] ? err : strerror(errno));
        return false;
    }
    return true;
}

/* daemonize - detach; the original process exits once the daemon reports it is ready */
static int daemonize(int *ready_fd)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0) {
        char ok = 0;
        close(pfd[1]);
        if (read(pfd[0], &ok, 1) != 1)
            ok = 0;
        _exit(ok == 'y' ? 0 : 1);
    }
    close(pfd[0]);
    setsid();
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        if (null > STDERR_FILENO)
            close(null);
    }
    *ready_fd = pfd[1];
    return 0;
}

/* write_pidfile - take the pid file (locked for our whole life: pidfile.h); false when
 * another daemon holds it.  A file that cannot be written is only logged. */
static bool write_pidfile(struct parent *p)
{
    char err[600];
    spool_pid_path(p->pidfile, sizeof(p->pidfile), p->conf->spool_directory);
    p->pidfd = pidfile_take(p->pidfile, err, sizeof(err));
    if (p->pidfd >= 0)
        return true;
    if (strstr(err, "is held by pid")) {
        fprintf(stderr, "tandem: %s\n", err);
        return false;
    }
    log_main("cannot write pid file: %s", err);
    p->pidfile[0] = '\0';            /* not ours: not to be removed at exit */
    return true;
}

/* supervise - set up signal handling and run the parent's loop until everything stopped */
static void supervise(struct parent *p)
{
    p->base = event_base_new();
    if (p->base == NULL)
        fatalx("event_base_new");
    struct event *evs[] = {
        evsignal_new(p->base, SIGCHLD, sigchld_cb, p), evsignal_new(p->base, SIGTERM, sigterm_cb, p),
        evsignal_new(p->base, SIGINT, sigterm_cb, p), evsignal_new(p->base, SIGHUP, sighup_cb, p),
        evsignal_new(p->base, SIGUSR1, sigusr1_cb, p),
    };
    for (size_t i = 0; i < ARRAY_LEN(evs); i++)
        evsignal_add(evs[i], NULL);
    p->restart_timer = evtimer_new(p->base, restart_cb, p);
    p->kill_timer = evtimer_new(p->base, kill_timer_cb, p);
    start_children(p);
    notify_systemd("READY=1");
    event_base_dispatch(p->base);
    for (size_t i = 0; i < ARRAY_LEN(evs); i++)
        event_free(evs[i]);
    event_free(p->restart_timer);
    event_free(p->kill_timer);
    event_base_free(p->base);
}

/* parent_free - release what prepare() and parent_serve() set up (a sanitizer build checks
 * the parent for leaks when it exits) */
static void parent_free(struct parent *p)
{
    if (p->listen_fds)
        listeners_close(p->listen_fds, p->nlisten);
    if (p->metrics_fd >= 0)
        close(p->metrics_fd);
    free(p->listen_fds);
    if (p->tls_ctx)
        SSL_CTX_free(p->tls_ctx);
    conf_free(p->conf);
}

int parent_serve(const char *conf_path, bool foreground)
{
    struct parent p;
    int ready_fd = -1;
    memset(&p, 0, sizeof(p));
    p.pidfd = -1;
    p.conf_path = conf_path;
    p.metrics_fd = -1;
    notify_init();
    if ((p.conf = conf_load_or_report(conf_path)) == NULL)
        return 1;
    if (!prepare(&p)) {
        parent_free(&p);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (foreground)
        (void)setpgid(0, 0);
    else if (daemonize(&ready_fd) != 0) {
        perror("tandem: fork");
        parent_free(&p);
        return 1;
    }
    if (!write_pidfile(&p)) {
        parent_free(&p);
        return 1;
    }
    spool_clean_tmp(p.conf->spool_directory);
    p.nslots = worker_count(p.conf) * 4 + 4;
    if (p.nslots > MAX_CHILDREN)
        p.nslots = MAX_CHILDREN;
    p.limits = conn_limits_create(p.nslots, p.conf->smtp_accept_max);
    p.accept_max_sized = p.conf->smtp_accept_max;
    p.metrics = metrics_create(p.nslots + 1);     /* the last slot is the scheduler's */
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, p.sched_sock) != 0)
        fatal("socketpair");
    fd_nonblock(p.sched_sock[0]);
    char where[1024];
    listeners_describe(p.conf, where, sizeof(where));
    log_main("tandem %s daemon started: pid=%d, %u workers, listening for SMTP on %s",
             TANDEM_VERSION, (int)getpid(), worker_count(p.conf), where);
    if (p.privs.drop == false && geteuid() == 0)
        log_main("warning: running as root (no `user` configured)");
    if (ready_fd >= 0) {
        fprintf(stderr, "tandem: started, pid %d, listening on %s\n", (int)getpid(), where);
        (void)!write(ready_fd, "y", 1);
        close(ready_fd);
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null >= 0) {
            dup2(null, STDERR_FILENO);
            close(null);    /* it was inherited by every child */
        }
    }
    supervise(&p);
    if (p.pidfile[0])
        unlink(p.pidfile);           /* while still holding its lock */
    if (p.pidfd >= 0)
        close(p.pidfd);
    log_main("tandem daemon stopped (pid=%d)", (int)getpid());
    parent_free(&p);
    return 0;
}
