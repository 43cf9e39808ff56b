/* queue/queue.h - the contract of the queue: the scheduler, retries, bounces (RFC 3464 reports) and
 * the control socket of `tandem queue`.  May include: core, smtp, conf, store, dns, route, outbound. */
#ifndef TANDEM_QUEUE_H
#define TANDEM_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "core/core.h"
#include "outbound/outbound.h"
#include "smtp/smtp.h"

/* ---- queue: the queue engine: which messages are due, at most remote_max_parallel attempts at
 * once, one attempt per message at a time (under its spool lock), retries, give-up, bounces and
 * completion.  The scheduler process runs one; so does `tandem queue deliver` when no daemon
 * is running, on its own event loop with the same delivery code. */

struct queue;

enum attempt_status {
    ATT_DONE,     /* delivery was attempted (or nothing was left to do) */
    ATT_LOCKED,   /* another process holds the message (cutthrough, a queue command) */
    ATT_GONE,     /* no such message */
    ATT_CORRUPT,  /* its spool file is unreadable: quarantined */
    ATT_ERROR,    /* local trouble (reading the spool, writing a bounce) */
    ATT_STOPPED,  /* the queue is stopping: not attempted */
};

/* The outcome of one attempt, for whoever asked for it. */
struct attempt_report {
    const char *id;
    enum attempt_status status;
    const struct envelope *env;        /* NULL unless the envelope was read */
    const struct dlv_result *results;  /* env->nrcpts entries (DLV_NOT_TRIED where not
                                        * attempted), or NULL */
    unsigned delivered, deferred, failed;  /* recipients, in this attempt */
    bool completed;                    /* every recipient is done; the message left the queue */
    time_t next_try;                   /* when it is tried again (still queued) */
};
typedef void (*queue_report_cb)(void *arg, const struct attempt_report *rep);

/* Set up what deliveries share in this process: DNS resolver, client TLS context, hints (a
 * hints failure is logged and tolerated).  False with a message when delivery is impossible. */
bool queue_env_open(struct delivery_env *de, struct event_base *base, const struct conf *c,
                    char *err, size_t errsz);
/* Release it, after the queue: connections still closing are given time to finish. */
void queue_env_close(struct delivery_env *de);

/* de (event base, configuration, hints, DNS, TLS) must outlive the queue. */
struct queue *queue_new(const struct delivery_env *de);
/* Free the queue; requests still waiting are answered ATT_STOPPED.  Nothing may be running. */
void queue_free(struct queue *q);

/* A new message: attempt it as soon as a delivery slot is free. */
void queue_add(struct queue *q, const char *id);
/* Add the spool's messages not known yet, due now, and forget the hints of messages that are
 * gone; returns how many were added. */
size_t queue_scan(struct queue *q);

/* Attempt id now, ignoring retry times; cb (may be NULL) runs once when that attempt is over
 * (after the running one, if it is being attempted already). */
void queue_request(struct queue *q, const char *id, queue_report_cb cb, void *arg);
/* queue_request for every known message; returns how many (cb runs once per message). */
size_t queue_request_all(struct queue *q, queue_report_cb cb, void *arg);

/* Remove a message on an operator's request (`who` names them in the log).  False with a
 * reason in err when it does not exist or is being delivered. */
bool queue_remove(struct queue *q, const char *id, const char *who, char *err, size_t errsz);

/* The same without a queue (`tandem queue remove` when no daemon runs): take the message's
 * lock, remove it, forget its hints, log `ID removed by WHO` and `ID Completed`. */
struct hints;
bool queue_remove_message(const struct conf *c, struct hints *h, const char *id, const char *who,
                          char *err, size_t errsz);

/* Start no more attempts; requests not yet started are answered ATT_STOPPED. */
void queue_stop(struct queue *q);
size_t queue_running(const struct queue *q);
size_t queue_length(const struct queue *q);
/* cb runs whenever nothing is running and nothing is due (`tandem queue` then exits). */
void queue_set_idle_cb(struct queue *q, void (*cb)(void *arg), void *arg);

const char *attempt_status_name(enum attempt_status st);

/* ---- queue_report: attempt reports as text lines, the same for the control socket and for
 * `tandem queue deliver` run without a daemon. */

/* One line per recipient attempted ("addr: deferred: 451 ..."), each ending in "\n". */
void report_rcpt_lines(const struct attempt_report *rep, struct sbuf *out);
/* The summary, without a newline: "ID: 1 delivered, 1 deferred, 0 failed; next attempt in 5m"
 * or "ID: locked by another process". */
void report_summary(const struct attempt_report *rep, struct sbuf *out);
/* Is this an error for whoever asked (as opposed to an attempt, whatever its outcome)? */
bool report_is_error(const struct attempt_report *rep, bool single);

/* ---- queue_state: what the scheduler remembers about a queued message between attempts and
 * across restarts, kept in the hints: per message, how often and when it was tried and when
 * it is due again; per recipient, the last outcome (the next hop's reply), which `tandem
 * queue show` prints and bounces quote. */

struct hints;

struct msg_state {
    unsigned attempts;   /* delivery attempts so far */
    time_t last_try;     /* when the last one ended */
    time_t next_try;     /* when the next one is due */
};

struct rcpt_note {
    time_t when;            /* when the outcome was learnt */
    struct dlv_result res;  /* outcome, reply code and text, next hop */
    bool timed_out;         /* failed because retry_give_up passed (res is the last deferral) */
};

bool qstate_get(struct hints *h, const char *id, struct msg_state *s);
bool qstate_put(struct hints *h, const char *id, const struct msg_state *s);
bool qstate_note_get(struct hints *h, const char *id, size_t rcpt_index, struct rcpt_note *n);
bool qstate_note_put(struct hints *h, const char *id, size_t rcpt_index, const struct rcpt_note *n);
/* Forget a message that left the queue (its state and every recipient's note). */
void qstate_forget(struct hints *h, const char *id);
/* Forget the messages the hints remember that are not among live (the spool's ids, sorted by
 * strcmp): what a crash between removal and forgetting left behind.  At most
 * QSTATE_SWEEP_MAX messages per call; returns how many were forgotten. */
#define QSTATE_SWEEP_MAX 4096
size_t qstate_sweep(struct hints *h, char **live, size_t nlive);

/* ---- sched: the scheduler process: owns the queue, runs deliveries, retries, bounces. */

struct conf;

/* Run the scheduler; notify_fd receives message ids from the workers.  Never returns. */
NORETURN void sched_run(const struct conf *c, int notify_fd);

/* ---- control: the scheduler's control socket, spool_directory/control: an AF_UNIX stream
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
