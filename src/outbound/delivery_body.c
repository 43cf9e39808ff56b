/* delivery_body.c - stream a message's content from the spool into the data phase, pausing
 * while the connection's output is above its high-water mark.  The engine re-encodes it
 * (dot-stuffing); the raw spool bytes never reach the wire directly. */
#include "delivery_int.h"

#include <errno.h>
#include <string.h>

#include "conf/conf.h"
#include "core/core.h"
#include "store/store.h"

/* spool_trouble - the content cannot be read: nothing is the next hop's fault */
static void spool_trouble(struct dlv_txn *t, const char *what)
{
    char text[256];
    str_fmt(text, sizeof(text), "cannot read the spool file (%s): %s", what, strerror(errno));
    log_main("%s %s", t->d->env->id, text);
    dlv_body_close(t);
    struct dlv_verdict v = { .outcome = DLV_DEFERRED, .ecode = "4.3.0", .text = text, .errnum = -1 };
    for (size_t k = 0; k < t->nrcpts; k++)
        dlv_decide(t->d, t->rcpts[k], &v);
    smtp_out_free(t->so); /* mid-data: the next hop must not take a truncated message */
    t->so = NULL;
    t->phase = TP_IDLE;
    dlv_txn_finished(t);
}

void dlv_body_start(struct dlv_txn *t)
{
    t->rd = spool_open_content(t->d->de->conf->spool_directory, t->d->env->id);
    if (t->rd == NULL) {
        spool_trouble(t, "open");
        return;
    }
    dlv_body_pump(t);
}

void dlv_body_pump(struct dlv_txn *t)
{
    char buf[DLV_READ_CHUNK];
    while (t->rd && smtp_out_body_pending(t->so) < SMTP_OUT_BODY_HIGH) {
        long n = spool_read_content(t->rd, buf, sizeof(buf));
        if (n < 0) {
            spool_trouble(t, "read");
            return;
        }
        if (n == 0) {
            dlv_body_close(t);
            t->phase = TP_DOT;
            t->dot_sent = true;
            smtp_out_dot(t->so, NULL);
            return;
        }
        smtp_out_body(t->so, buf, (size_t)n);
    }
}

void dlv_body_close(struct dlv_txn *t)
{
    if (t->rd) {
        spool_close_content(t->rd);
        t->rd = NULL;
    }
}
