/* queue.h - the queue engine: which messages are due, at most remote_max_parallel attempts at
 * once, one attempt per message at a time (under its spool lock), retries, give-up, bounces and
 * completion.  The scheduler process runs one; so does `tandem queue deliver` when no daemon
 * is running, on its own event loop with the same delivery code. */
#ifndef TANDEM_QUEUE_H
#define TANDEM_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "delivery.h"
#include "envelope.h"

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

#endif
