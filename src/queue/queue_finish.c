/* queue_finish.c - a message leaves the queue: when every recipient is done (notifications
 * for the failed and relayed ones, then removal and `Completed`), or on an operator's request. */
#include "queue_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "queue.h"
#include "conf/conf.h"
#include "core/core.h"
#include "store/store.h"

/* outcome_of - this attempt's result for recipient i, else the one remembered in the hints */
static const struct dlv_result *outcome_of(struct queue *q, const struct envelope *env, size_t i,
                                           const struct dlv_result *results,
                                           struct rcpt_note *note)
{
    bool remembered = qstate_note_get(q->de->hints, env->id, i, note);
    if (results && results[i].outcome != DLV_NOT_TRIED)
        return &results[i];
    return remembered && note->res.outcome != DLV_NOT_TRIED ? &note->res : NULL;
}

/* collect - the DSN entries of a finished message: its failed recipients, and the delivered
 * ones that went to a next hop without DSN support; returns how many */
static size_t collect(struct queue *q, const struct envelope *env, const struct dlv_result *results,
                      const bool *timed_out, struct rcpt_note *notes, struct dsn_entry *out)
{
    size_t n = 0;
    time_t now = time(NULL);
    for (size_t i = 0; i < env->nrcpts; i++) {
        const struct rcpt *rc = &env->rcpts[i];
        const struct dlv_result *res = outcome_of(q, env, i, results, &notes[i]);
        bool fresh = results && results[i].outcome != DLV_NOT_TRIED;
        struct dsn_entry e = { rc, DSN_FAILED, res, fresh ? now : notes[i].when,
                               (timed_out && timed_out[i]) || notes[i].timed_out };
        if (rc->state == RCPT_DELIVERED && res && res->relayed_without_dsn)
            e.action = DSN_RELAYED;
        else if (rc->state != RCPT_FAILED)
            continue;
        out[n++] = e;
    }
    return n;
}

bool finish_message(struct queue *q, const struct envelope *env, const struct dlv_result *results,
                    const bool *timed_out)
{
    size_t cap = env->nrcpts ? env->nrcpts : 1;
    struct rcpt_note *notes = xcalloc(cap, sizeof(*notes));
    struct dsn_entry *entries = xcalloc(cap, sizeof(*entries));
    char bounce_id[MSGID_LEN + 1];
    size_t n = collect(q, env, results, timed_out, notes, entries);
    bool ok = bounce_send(q->conf, env, entries, n, bounce_id);
    int err = errno;
    free(entries);
    free(notes);
    if (!ok) {
        log_panic("%s: cannot spool the delivery status notification: %s; will try again",
                  env->id, strerror(err));
        return false;
    }
    if (bounce_id[0])
        queue_add(q, bounce_id);
    if (!spool_remove(q->conf->spool_directory, env->id))
        log_panic("%s: cannot remove the spool file: %s", env->id, strerror(errno));
    qstate_forget(q->de->hints, env->id);
    log_main("%s Completed", env->id);
    return true;
}

bool queue_remove_message(const struct conf *c, struct hints *h, const char *id, const char *who,
                          char *err, size_t errsz)
{
    int fd = msgid_valid(id) ? spool_lock(c->spool_directory, id) : -1;
    if (fd < 0) {
        if (!msgid_valid(id) || errno == ENOENT || errno == EINVAL)
            str_fmt(err, errsz, "%s: no such message", id);
        else if (errno == EWOULDBLOCK)
            str_fmt(err, errsz, "%s: locked by another process (being delivered); try again", id);
        else
            str_fmt(err, errsz, "%s: cannot lock: %s", id, strerror(errno));
        return false;
    }
    bool ok = spool_remove(c->spool_directory, id);
    int e = errno;
    spool_unlock(fd);
    if (!ok) {
        str_fmt(err, errsz, "%s: cannot remove: %s", id, strerror(e));
        return false;
    }
    qstate_forget(h, id);
    log_main("%s removed by %s", id, who);
    log_main("%s Completed", id);
    return true;
}
