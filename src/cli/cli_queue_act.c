/* cli_queue_act.c - `tandem queue deliver ID | deliver-all | remove ID`: through the running
 * scheduler's control socket, or, when no daemon runs, directly: a queue engine on this
 * process's own event loop with the same delivery code and per-message locks. */
#include "cli_queue_int.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "core/core.h"
#include "queue/queue.h"
#include "store/store.h"

struct direct {
    struct event_base *base;
    bool single;
    size_t reported, errors;
};

/* print_line - an information line from the scheduler */
static void print_line(void *arg, const char *line)
{
    (void)arg;
    printf("%s\n", line);
    fflush(stdout);
}

/* via_control - send the command to the scheduler and relay its answer */
static int via_control(const struct cli_ctx *x, const char *verb, const char *id)
{
    char cmd[CONTROL_LINE_MAX], final[CONTROL_REPLY_MAX];
    if (!str_fmt(cmd, sizeof(cmd), "%s%s%s", verb, id ? " " : "", id ? id : "")) {
        fprintf(stderr, "tandem: %s: no such message\n", id ? id : "");
        return 1;
    }
    int rc = control_command(x->control_fd, cmd, print_line, NULL, final, sizeof(final));
    if (rc == 0)
        printf("%s\n", final);
    else
        fprintf(stderr, "tandem: %s\n", final);
    return rc == 0 ? 0 : 1;
}

/* direct_report - an attempt is over: print it like the scheduler would */
static void direct_report(void *arg, const struct attempt_report *rep)
{
    struct direct *d = arg;
    struct sbuf lines, sum;
    bool error = report_is_error(rep, d->single);
    sbuf_init(&lines);
    sbuf_init(&sum);
    report_rcpt_lines(rep, &lines);
    report_summary(rep, &sum);
    if (lines.s)
        fputs(lines.s, stdout);
    fprintf(error && d->single ? stderr : stdout, "%s%s\n", error && d->single ? "tandem: " : "",
            sum.s);
    fflush(stdout);
    d->errors += error;
    d->reported++;
    sbuf_free(&lines);
    sbuf_free(&sum);
}

/* direct_idle - nothing left to run now: done */
static void direct_idle(void *arg)
{
    struct direct *d = arg;
    event_base_loopbreak(d->base);
}

/* direct_deliver - deliver one message, or all, in this process */
static int direct_deliver(const struct cli_ctx *x, const char *id)
{
    struct delivery_env de;
    struct direct d = { event_base_new(), id != NULL, 0, 0 };
    char err[512];
    if (d.base == NULL || !queue_env_open(&de, d.base, x->conf, err, sizeof(err))) {
        fprintf(stderr, "tandem: %s\n", d.base ? err : "cannot create an event loop");
        if (d.base)
            event_base_free(d.base);
        return 1;
    }
    struct queue *q = queue_new(&de);
    size_t n = 1;
    queue_set_idle_cb(q, direct_idle, &d);
    if (id) {
        queue_request(q, id, direct_report, &d);
    } else {
        queue_scan(q);
        n = queue_request_all(q, direct_report, &d);
    }
    if (d.reported < n)   /* requests can be answered at once (a malformed id) */
        event_base_dispatch(d.base);
    if (!id)
        printf("%zu message(s) attempted\n", n);
    queue_free(q);
    queue_env_close(&de);
    event_base_free(d.base);
    return d.errors ? 1 : 0;
}

/* direct_remove - remove a message from the spool under its lock */
static int direct_remove(const struct cli_ctx *x, const char *id)
{
    char err[512];
    struct hints *h = hints_open(x->conf->spool_directory, err, sizeof(err));
    bool ok = queue_remove_message(x->conf, h, id, x->who, err, sizeof(err));
    hints_close(h);
    if (ok)
        printf("%s removed\n", id);
    else
        fprintf(stderr, "tandem: %s\n", err);
    return ok ? 0 : 1;
}

int cli_queue_act(const struct cli_ctx *x, const char *verb, const char *id)
{
    if (x->control_fd >= 0)
        return via_control(x, verb, id);
    if (strcmp(verb, "remove") == 0)
        return direct_remove(x, id);
    return direct_deliver(x, strcmp(verb, "deliver-all") == 0 ? NULL : id);
}
