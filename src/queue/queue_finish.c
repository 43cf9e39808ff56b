/* queue_finish.c - a message leaves the queue: when every recipient is done (notifications
 * for the failed and relayed ones not yet reported, then removal and `Completed`), or on an
 * operator's request. */
#include "queue_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"
#include "conf/conf.h"
#include "core/core.h"
#include "store/store.h"

bool finish_message(struct queue *q, const struct envelope *env, const struct dlv_result *results,
                    const bool *timed_out)
{
    if (!queue_notify(q, env, results, timed_out, false))
        return false;               /* logged; the message stays and is tried again */
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
