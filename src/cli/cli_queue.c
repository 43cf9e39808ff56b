/* cli_queue.c - `tandem queue`: options, configuration, identity, then the subcommand.
 * Started as root with `user` set, it does its work as that user (like the daemon's
 * children), so that whatever it writes in the spool stays theirs; the logs and the control
 * socket are opened before privileges are dropped. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli_queue_int.h"
#include "conf/conf.h"
#include "core/core.h"
#include "queue/queue.h"

struct cli_opts {
    const char *conf;
    bool raw, count;
    const char *verb, *id;
};

static int usage(void)
{
    fputs("usage: tandem queue [-c FILE] list [--count]\n"
          "       tandem queue [-c FILE] show [--raw] ID\n"
          "       tandem queue [-c FILE] deliver ID | deliver-all | remove ID\n", stderr);
    return 64;
}

/* parse - options anywhere on the line, then the verb and its id */
static bool parse(int argc, char **argv, struct cli_opts *o)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "raw", no_argument, NULL, 'r' },
        { "count", no_argument, NULL, 'n' },
        { NULL, 0, NULL, 0 },
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': o->conf = optarg; break;
        case 'r': o->raw = true; break;
        case 'n': o->count = true; break;
        default: return false;
        }
    }
    if (optind >= argc)
        return false;
    o->verb = argv[optind++];
    o->id = optind < argc ? argv[optind++] : NULL;
    if (optind < argc)
        return false;
    bool needs_id = strcmp(o->verb, "list") != 0 && strcmp(o->verb, "deliver-all") != 0;
    return needs_id == (o->id != NULL);
}

/* invoker - the name of the user who ran the command */
static void invoker(char *who, size_t sz)
{
    struct passwd *pw = getpwuid(getuid());
    if (pw)
        str_copy(who, pw->pw_name, sz);
    else
        str_fmt(who, sz, "uid %u", (unsigned)getuid());
}

/* scheduler_peer - the control socket lives in the user's spool, where the user could put
 * any socket: talk only to a peer running as the scheduler's user */
static bool scheduler_peer(int fd, uid_t want)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        fprintf(stderr, "tandem: control socket: %s\n", strerror(errno));
        return false;
    }
    if (cred.uid == want)
        return true;
    fprintf(stderr, "tandem: the control socket's listener (pid %d) runs as uid %u, not as the "
            "scheduler's uid %u: refusing to talk to it\n", (int)cred.pid, (unsigned)cred.uid,
            (unsigned)want);
    return false;
}

/* prepare - logs and control connection (as invoked), then become the spool's user */
static bool prepare(struct cli_ctx *x, bool acts)
{
    struct privs p;
    char err[256];
    const struct conf *c = x->conf;
    if (!privs_lookup(c->user, &p, err, sizeof(err))) {
        fprintf(stderr, "tandem: %s\n", err);
        return false;
    }
    if (acts) {
        log_set_process("tandem-queue");
        if (!log_open(c->log_directory)) {
            fprintf(stderr, "tandem: cannot open logs in %s: %s\n", c->log_directory,
                    strerror(errno));
            return false;
        }
        x->control_fd = control_connect(c->spool_directory);
        if (x->control_fd < 0 && errno != ENOENT && errno != ECONNREFUSED) {
            fprintf(stderr, "tandem: cannot reach the scheduler: %s\n", strerror(errno));
            return false;
        }
        if (x->control_fd >= 0 && !scheduler_peer(x->control_fd, p.drop ? p.uid : geteuid())) {
            close(x->control_fd);
            return false;
        }
    }
    privs_drop(&p);
    return true;
}

/* run - the subcommand */
static int run(const struct cli_ctx *x, const struct cli_opts *o)
{
    if (strcmp(o->verb, "list") == 0)
        return cli_queue_list(x, o->count);
    if (strcmp(o->verb, "show") == 0)
        return cli_queue_show(x, o->id, o->raw);
    return cli_queue_act(x, o->verb, o->id);
}

int cli_queue(const char *conf_path, int argc, char **argv)
{
    struct cli_opts o = { conf_path, false, false, NULL, NULL };
    struct cli_ctx x = { NULL, "", -1 };
    if (!parse(argc, argv, &o))
        return usage();
    static const char *const verbs[] = { "list", "show", "deliver", "deliver-all", "remove" };
    size_t v = 0;
    while (v < ARRAY_LEN(verbs) && strcmp(o.verb, verbs[v]) != 0)
        v++;
    if (v == ARRAY_LEN(verbs))
        return usage();
    struct conf *c = conf_load_or_report(o.conf);
    if (c == NULL)
        return 1;
    x.conf = c;
    invoker(x.who, sizeof(x.who));
    int rc = prepare(&x, v >= 2) ? run(&x, &o) : 1;
    if (x.control_fd >= 0)
        close(x.control_fd);
    conf_free(c);
    return rc;
}
