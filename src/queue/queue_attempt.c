/* queue_attempt.c - one delivery attempt of one message: take its lock, read its envelope,
 * deliver the pending recipients, journal what became final, remember the rest for the
 * retry, give up after retry_give_up, and finish the message when nothing is pending. */
#include "queue_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"
#include "retry.h"
#include "conf/conf.h"
#include "core/core.h"
#include "store/store.h"

struct attempt {
    struct queue *q;
    struct qentry *e;
    int lock_fd;
    bool force;                  /* ignore retry times (a request) */
    struct envelope env;
    bool *want;                  /* recipients handed to delivery */
    bool *timed_out;             /* recipients failed by give-up in this attempt */
    struct dlv_result *results;  /* this attempt's outcomes (DLV_NOT_TRIED elsewhere) */
    struct msg_state st;
    struct attempt_report rep;
};

/* end - release the message, report the attempt, and reschedule (or drop) its entry */
static void end(struct attempt *a, enum attempt_status st, time_t next_due)
{
    spool_unlock(a->lock_fd);
    a->rep.id = a->e->id;
    a->rep.status = st;
    a->rep.next_try = next_due;
    if (st == ATT_DONE) {
        a->rep.env = &a->env;
        a->rep.results = a->results;
    }
    queue_attempt_over(a->q, a->e, &a->rep, next_due);
    envelope_free(&a->env);
    free(a->want);
    free(a->timed_out);
    free(a->results);
    free(a);
}

/* journal - record a final state durably (and in memory, which decides completion) */
static void journal(struct attempt *a, size_t i, enum rcpt_state st)
{
    if (a->env.rcpts[i].state == st)
        return; /* already journaled when delivery decided it (delivery_final) */
    a->env.rcpts[i].state = st;
    if (!spool_journal(a->q->conf->spool_directory, a->env.id, i, st))
        log_panic("%s: cannot journal recipient %zu: %s", a->env.id, i, strerror(errno));
}

/* note - remember a recipient's outcome for `queue show`, bounces and the give-up */
static void note(struct attempt *a, size_t i, time_t now, bool timed_out)
{
    struct rcpt_note n = { now, a->results[i], timed_out };
    qstate_note_put(a->q->de->hints, a->env.id, i, &n);
}

/* record - act on one recipient's outcome */
static void record(struct attempt *a, size_t i, time_t now)
{
    const struct dlv_result *r = &a->results[i];
    switch (r->outcome) {
    case DLV_DELIVERED:
        journal(a, i, RCPT_DELIVERED);
        a->rep.delivered++;
        if (r->relayed_without_dsn && (a->env.rcpts[i].notify & DSN_NOTIFY_SUCCESS))
            note(a, i, now, false);
        break;
    case DLV_FAILED:
        journal(a, i, RCPT_FAILED);
        a->rep.failed++;
        note(a, i, now, false);
        break;
    case DLV_DEFERRED:
        a->rep.deferred++;
        note(a, i, now, false);
        break;
    case DLV_NOT_TRIED:
        a->rep.deferred++;
        break;
    }
}

/* give_up - fail every pending recipient: retry_give_up has passed since arrival */
static void give_up(struct attempt *a, time_t now)
{
    for (size_t i = 0; i < a->env.nrcpts; i++) {
        if (a->env.rcpts[i].state != RCPT_PENDING)
            continue;
        char addr[600];
        str_sanitize(addr, sizeof(addr), a->env.rcpts[i].addr, strlen(a->env.rcpts[i].addr));
        metric_inc(M_DLV_FAILED);
        log_main("%s ** %s: retry timeout exceeded", a->env.id, addr);
        journal(a, i, RCPT_FAILED);
        a->timed_out[i] = true;
        if (a->results[i].outcome == DLV_DEFERRED) {
            note(a, i, now, true);
        } else {
            struct rcpt_note n;
            if (!qstate_note_get(a->q->de->hints, a->env.id, i, &n))
                memset(&n, 0, sizeof(n));
            n.when = n.when ? n.when : now;
            n.timed_out = true;
            qstate_note_put(a->q->de->hints, a->env.id, i, &n);
        }
        a->rep.deferred--;
        a->rep.failed++;
    }
}

/* pending - recipients not yet delivered or failed */
static size_t pending(const struct envelope *env)
{
    size_t n = 0;
    for (size_t i = 0; i < env->nrcpts; i++)
        n += env->rcpts[i].state == RCPT_PENDING;
    return n;
}

/* conclude - after delivery (or with nothing to deliver): schedule the retry, or give up
 * and finish the message */
static void conclude(struct attempt *a, time_t now)
{
    time_t next;
    if (pending(&a->env) > 0) {
        if (retry_next(a->q->conf, a->env.arrival, a->st.attempts, now, &next) == RETRY_LATER) {
            a->st.next_try = next;
            qstate_put(a->q->de->hints, a->env.id, &a->st);
            end(a, ATT_DONE, next);
            return;
        }
        give_up(a, now);
    }
    if (!finish_message(a->q, &a->env, a->results, a->timed_out)) {
        end(a, ATT_DONE, now + QUEUE_ERROR_RETRY);
        return;
    }
    a->rep.completed = true;
    end(a, ATT_DONE, 0);
}

/* delivery_final - a recipient delivered or failed while the attempt goes on: journal it now,
 * so that a crash before the attempt ends does not deliver it again */
static void delivery_final(void *arg, size_t i, const struct dlv_result *r)
{
    struct attempt *a = arg;
    bool relayed = r->relayed_without_dsn && (a->env.rcpts[i].notify & DSN_NOTIFY_SUCCESS);
    if (r->outcome == DLV_FAILED || relayed) { /* what the DSN will say first, then the journal */
        a->results[i] = *r;
        note(a, i, time(NULL), false);
    }
    journal(a, i, r->outcome == DLV_DELIVERED ? RCPT_DELIVERED : RCPT_FAILED);
}

/* delivery_done - delivery's verdicts for the recipients handed to it */
static void delivery_done(void *arg, struct dlv_result *results)
{
    struct attempt *a = arg;
    time_t now = time(NULL);
    a->st.attempts++;
    a->st.last_try = now;
    for (size_t i = 0; i < a->env.nrcpts; i++) {
        if (!a->want[i])
            continue;
        a->results[i] = results[i];
        record(a, i, now);
    }
    conclude(a, now);
}

/* read_envelope - the message's envelope; on failure end the attempt and return false */
static bool read_envelope(struct attempt *a)
{
    const char *dir = a->q->conf->spool_directory;
    if (spool_read_envelope(dir, a->e->id, &a->env) == 0)
        return true;
    int err = errno;
    envelope_free(&a->env);
    if (err == EBADMSG) {
        bool moved = spool_quarantine(dir, a->e->id);
        log_panic("%s: spool file unreadable; %s", a->e->id,
                  moved ? "moved to corrupt/" : "could not be moved aside");
        qstate_forget(a->q->de->hints, a->e->id);
        end(a, ATT_CORRUPT, moved ? 0 : time(NULL) + QUEUE_ERROR_RETRY);
    } else if (err == ENOENT) {
        end(a, ATT_GONE, 0);
    } else {
        log_main("%s: cannot read spool file: %s", a->e->id, strerror(err));
        end(a, ATT_ERROR, time(NULL) + QUEUE_ERROR_RETRY);
    }
    return false;
}

/* lock - the message's lock; on failure end the attempt and return false */
static bool lock(struct attempt *a)
{
    a->lock_fd = spool_lock(a->q->conf->spool_directory, a->e->id);
    if (a->lock_fd >= 0)
        return true;
    if (errno == EWOULDBLOCK)
        end(a, ATT_LOCKED, time(NULL) + QUEUE_LOCKED_RETRY);
    else if (errno == ENOENT || errno == EINVAL)
        end(a, ATT_GONE, 0);
    else
        end(a, ATT_ERROR, time(NULL) + QUEUE_ERROR_RETRY);
    return false;
}

void attempt_start(struct queue *q, struct qentry *e)
{
    struct attempt *a = xcalloc(1, sizeof(*a));
    a->q = q;
    a->e = e;
    a->force = e->force;
    e->force = false;
    envelope_init(&a->env);
    if (!lock(a) || !read_envelope(a))
        return;
    size_t n = a->env.nrcpts;
    a->want = xcalloc(n ? n : 1, sizeof(*a->want));
    a->timed_out = xcalloc(n ? n : 1, sizeof(*a->timed_out));
    a->results = xcalloc(n ? n : 1, sizeof(*a->results));
    if (!qstate_get(q->de->hints, e->id, &a->st))
        memset(&a->st, 0, sizeof(a->st));
    for (size_t i = 0; i < n; i++)
        a->want[i] = a->env.rcpts[i].state == RCPT_PENDING;
    if (pending(&a->env) == 0) {
        conclude(a, time(NULL));
        return;
    }
    delivery_start(q->de, &a->env, a->want, a->force, delivery_final, delivery_done, a);
}
