/* queue_notify.c - the delivery status notifications of a queued message (RFC 3464): at the end
 * of every attempt that leaves recipients pending, one for the recipients the attempt decided
 * (failed, or relayed to a next hop without DSN when NOTIFY=SUCCESS asked), so that a sender
 * hears of a failure at once, not when the last recipient is done days later; when the message
 * completes, one for those not yet reported.  Each recipient is reported once: the journal's
 * "n" line remembers it. */
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

/* collect - the DSN entries: failed recipients and the delivered ones that went to a next hop
 * without DSN support, not yet reported (fresh_only: decided by this attempt); returns how
 * many, their recipient indices in idx */
static size_t collect(struct queue *q, const struct envelope *env, const struct dlv_result *results,
                      const bool *timed_out, bool fresh_only, struct rcpt_note *notes,
                      struct dsn_entry *out, size_t *idx)
{
    size_t n = 0;
    time_t now = time(NULL);
    for (size_t i = 0; i < env->nrcpts; i++) {
        const struct rcpt *rc = &env->rcpts[i];
        bool fresh = results && results[i].outcome != DLV_NOT_TRIED;
        if (rc->notified || (fresh_only && !fresh))
            continue;
        const struct dlv_result *res = outcome_of(q, env, i, results, &notes[i]);
        struct dsn_entry e = { rc, DSN_FAILED, res, fresh ? now : notes[i].when,
                               (timed_out && timed_out[i]) || notes[i].timed_out };
        if (rc->state == RCPT_DELIVERED && res && res->relayed_without_dsn)
            e.action = DSN_RELAYED;
        else if (rc->state != RCPT_FAILED)
            continue;
        idx[n] = i;
        out[n++] = e;
    }
    return n;
}

bool queue_notify(struct queue *q, const struct envelope *env, const struct dlv_result *results,
                  const bool *timed_out, bool attempt_end)
{
    size_t cap = env->nrcpts ? env->nrcpts : 1;
    struct rcpt_note *notes = xcalloc(cap, sizeof(*notes));
    struct dsn_entry *entries = xcalloc(cap, sizeof(*entries));
    size_t *idx = xcalloc(cap, sizeof(*idx));
    char bounce_id[MSGID_LEN + 1] = "";
    size_t n = collect(q, env, results, timed_out, attempt_end, notes, entries, idx);
    bool ok = n == 0 || bounce_send(q->conf, env, entries, n, bounce_id);
    int err = errno;
    if (!ok)
        log_panic("%s: cannot spool the delivery status notification: %s; will try again",
                  env->id, strerror(err));
    if (ok && bounce_id[0])
        queue_add(q, bounce_id);
    for (size_t k = 0; ok && attempt_end && k < n; k++)   /* reported: never again */
        if (!spool_journal_notified(q->conf->spool_directory, env->id, idx[k]))
            log_panic("%s: cannot journal the notification of recipient %zu: %s", env->id, idx[k],
                      strerror(errno));
    free(idx);
    free(entries);
    free(notes);
    errno = err;
    return ok;
}
