/* control_server.c - the scheduler's side of the control socket (protocol in queue/queue.h):
 * accept local connections from the scheduler's own user or root, read bounded command lines,
 * act on the queue, and answer once the attempts asked for are over. */
#include "queue.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "conf/conf.h"
#include "core/core.h"
#include "store/store.h"

struct ctl_req;

struct ctl_conn {
    struct control *ctl;
    struct bufferevent *bev;
    char who[64];              /* the peer's user name, for the log */
    struct ctl_req *req;       /* the command being answered, NULL when idle */
    bool closing;              /* close once the output is written */
    LIST_ENTRY(ctl_conn) link;
};

/* A deliver or deliver-all command waiting for its attempts. */
struct ctl_req {
    struct ctl_conn *conn;     /* NULL once the connection is gone */
    bool single;               /* deliver ID (else deliver-all) */
    bool counting;             /* deliver-all still handing out its requests */
    size_t total, done, errors;
};

struct control {
    struct event_base *base;
    const struct conf *conf;
    struct queue *q;
    struct evconnlistener *listener;
    char path[4096];
    dev_t dev;                 /* the socket file we bound: a successor's is left alone */
    ino_t ino;
    size_t nconns;
    LIST_HEAD(, ctl_conn) conns;
};

/* conn_free - close a connection; a command still waiting is detached from it */
static void conn_free(struct ctl_conn *c)
{
    if (c->req)
        c->req->conn = NULL;
    LIST_REMOVE(c, link);
    c->ctl->nconns--;
    bufferevent_free(c->bev);
    free(c);
}

/* reply - one line to the client (control characters made harmless) */
static void PRINTF_LIKE(2, 3) reply(struct ctl_conn *c, const char *fmt, ...)
{
    char line[CONTROL_REPLY_MAX];
    va_list ap;
    va_start(ap, fmt);
    str_vfmt(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    bufferevent_write(c->bev, line, strlen(line));
    bufferevent_write(c->bev, "\n", 1);
}

/* reply_lines - each line of text as an information line */
static void reply_lines(struct ctl_conn *c, const char *text)
{
    while (text && *text) {
        size_t n = strcspn(text, "\n");
        reply(c, "* %.*s", (int)n, text);
        text += n + (text[n] == '\n');
    }
}

/* idle_again - the command is answered: wait for the next one (or run one already there,
 * from the loop rather than from inside this call) */
static void idle_again(struct ctl_conn *c)
{
    struct timeval tv = { CONTROL_IDLE_TIMEOUT, 0 };
    c->req = NULL;
    bufferevent_set_timeouts(c->bev, &tv, NULL);
    bufferevent_enable(c->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

/* req_report - one attempt asked for by a command is over */
static void req_report(void *arg, const struct attempt_report *rep)
{
    struct ctl_req *r = arg;
    struct sbuf lines, sum;
    sbuf_init(&lines);
    sbuf_init(&sum);
    report_rcpt_lines(rep, &lines);
    report_summary(rep, &sum);
    r->done++;
    r->errors += report_is_error(rep, r->single);
    if (r->conn) {
        reply_lines(r->conn, lines.s);
        if (r->single)
            reply(r->conn, "%s %s", report_is_error(rep, true) ? "err" : "ok", sum.s);
        else
            reply(r->conn, "* %s", sum.s);
    }
    sbuf_free(&lines);
    sbuf_free(&sum);
    if (r->counting || r->done < r->total)
        return;
    if (r->conn && !r->single)
        reply(r->conn, "%s %zu message(s) attempted", r->errors ? "err" : "ok", r->total);
    if (r->conn)
        idle_again(r->conn);
    free(r);
}

/* cmd_deliver - `deliver ID` */
static void cmd_deliver(struct ctl_conn *c, const char *id)
{
    if (!msgid_valid(id)) {
        reply(c, "err %s: no such message", id);
        return;
    }
    struct ctl_req *r = xcalloc(1, sizeof(*r));
    r->conn = c;
    r->single = true;
    r->total = 1;
    c->req = r;
    queue_request(c->ctl->q, id, req_report, r);
}

/* cmd_deliver_all - `deliver-all`: pick up what the spool holds, then request everything */
static void cmd_deliver_all(struct ctl_conn *c)
{
    struct ctl_req *r = xcalloc(1, sizeof(*r));
    r->conn = c;
    r->counting = true;
    c->req = r;
    queue_scan(c->ctl->q);
    r->total = queue_request_all(c->ctl->q, req_report, r);
    r->counting = false;
    if (r->done < r->total)
        return;
    if (r->conn) {
        reply(c, "%s %zu message(s) attempted", r->errors ? "err" : "ok", r->total);
        c->req = NULL;
    }
    free(r);
}

/* cmd_remove - `remove ID` */
static void cmd_remove(struct ctl_conn *c, const char *id)
{
    char err[256];
    if (queue_remove(c->ctl->q, id, c->who, err, sizeof(err)))
        reply(c, "ok %s removed", id);
    else
        reply(c, "err %s", err);
}

/* execute - one command line */
static void execute(struct ctl_conn *c, const char *line)
{
    char verb[32], arg[CONTROL_LINE_MAX];
    arg[0] = '\0';
    if (sscanf(line, "%31s %511s", verb, arg) < 1)
        reply(c, "err empty command");
    else if (strcmp(verb, "deliver") == 0 && arg[0])
        cmd_deliver(c, arg);
    else if (strcmp(verb, "deliver-all") == 0)
        cmd_deliver_all(c);
    else if (strcmp(verb, "remove") == 0 && arg[0])
        cmd_remove(c, arg);
    else
        reply(c, "err unknown command (deliver ID, deliver-all, remove ID)");
}

/* conn_read_cb - run complete command lines, one at a time */
static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct ctl_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (c->req == NULL && !c->closing) {
        size_t n;
        char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
        if (line == NULL) {
            if (evbuffer_get_length(in) >= CONTROL_LINE_MAX) {
                reply(c, "err command line too long");
                c->closing = true;
            }
            return;
        }
        if (n >= CONTROL_LINE_MAX)
            reply(c, "err command line too long");
        else
            execute(c, line);
        free(line);
    }
    if (c->req) {
        bufferevent_set_timeouts(bev, NULL, NULL);   /* attempts take as long as they take */
        bufferevent_disable(bev, EV_READ);
    }
}

/* conn_write_cb - output written: close if that was the last of it */
static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct ctl_conn *c = arg;
    (void)bev;
    if (c->closing)
        conn_free(c);
}

/* conn_event_cb - end of file, error or idle timeout */
static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    conn_free(arg);
}

/* peer_allowed - root or the scheduler's own user; fills who */
static bool peer_allowed(int fd, char *who, size_t whosz)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return false;
    struct passwd *pw = getpwuid(cred.uid);
    if (pw)
        str_copy(who, pw->pw_name, whosz);
    else
        str_fmt(who, whosz, "uid %u", (unsigned)cred.uid);
    return cred.uid == 0 || cred.uid == geteuid();
}

/* accept_cb - a new client */
static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    struct control *ctl = arg;
    char who[64];
    (void)l;
    (void)sa;
    (void)salen;
    if (ctl->nconns >= CONTROL_CONNS_MAX || !peer_allowed(fd, who, sizeof(who))) {
        static const char msg[] = "err refused\n";
        (void)!write(fd, msg, sizeof(msg) - 1);
        close(fd);
        return;
    }
    struct ctl_conn *c = xcalloc(1, sizeof(*c));
    c->ctl = ctl;
    str_copy(c->who, who, sizeof(c->who));
    c->bev = bufferevent_socket_new(ctl->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        close(fd);
        free(c);
        return;
    }
    LIST_INSERT_HEAD(&ctl->conns, c, link);
    ctl->nconns++;
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    idle_again(c);
}

/* bind_socket - a listening socket at spooldir/control, mode 0600, replacing a stale one */
static int bind_socket(const char *spooldir, char *path, size_t pathsz, char *err, size_t errsz)
{
    struct sockaddr_un sun;
    socklen_t len;
    int dirfd;
    struct stat st;
    str_fmt(path, pathsz, "%s/%s", spooldir, CONTROL_NAME);
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    if (!control_addr(spooldir, &sun, &len, &dirfd)) {
        str_fmt(err, errsz, "control socket %s: name too long", path);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    mode_t old = umask(0177);
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sun, len) == 0 && listen(fd, 16) == 0;
    umask(old);
    if (!ok)
        str_fmt(err, errsz, "control socket %s: %s", path, strerror(errno));
    if (!ok && fd >= 0)
        close(fd);
    if (dirfd >= 0)
        close(dirfd);
    return ok ? fd : -1;
}

struct control *control_open(struct event_base *base, const struct conf *c, struct queue *q,
                             char *err, size_t errsz)
{
    struct control *ctl = xcalloc(1, sizeof(*ctl));
    ctl->base = base;
    ctl->conf = c;
    ctl->q = q;
    LIST_INIT(&ctl->conns);
    int fd = bind_socket(c->spool_directory, ctl->path, sizeof(ctl->path), err, errsz);
    if (fd < 0) {
        free(ctl);
        return NULL;
    }
    struct stat st;
    if (lstat(ctl->path, &st) == 0) {
        ctl->dev = st.st_dev;
        ctl->ino = st.st_ino;
    }
    ctl->listener = evconnlistener_new(base, accept_cb, ctl, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    if (ctl->listener == NULL) {
        str_fmt(err, errsz, "control socket %s: cannot listen", ctl->path);
        close(fd);
        unlink(ctl->path);
        free(ctl);
        return NULL;
    }
    return ctl;
}

void control_close(struct control *ctl)
{
    struct stat st;
    if (ctl == NULL)
        return;
    evconnlistener_free(ctl->listener);
    /* After a reload the next scheduler may already listen there: remove only our own. */
    if (lstat(ctl->path, &st) == 0 && st.st_dev == ctl->dev && st.st_ino == ctl->ino)
        unlink(ctl->path);
    while (!LIST_EMPTY(&ctl->conns))
        conn_free(LIST_FIRST(&ctl->conns));
    free(ctl);
}
