/* bounce.c - delivery status notifications for a message's recipients, spooled as a new
 * message (see bounce.h).
 *
 * What is returned with a failure: RET=FULL returns the message (up to DSN_RETURN_FULL_MAX),
 * RET=HDRS its header section, and no RET also only the header section.  RFC 3461 leaves the
 * default to the MTA; headers identify the message to its sender, while returning whole
 * messages to envelope senders (often forged: backscatter) re-sends content, possibly private
 * or hostile, to third parties and doubles the traffic of every bounce. */
#include "bounce.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/core.h"
#include "store/store.h"

bool bounce_wanted(const char *sender, const struct rcpt *r, enum dsn_action action)
{
    if (sender == NULL || sender[0] == '\0' || (r->notify & DSN_NOTIFY_NEVER))
        return false;
    if (action == DSN_RELAYED)
        return (r->notify & DSN_NOTIFY_SUCCESS) != 0;
    return r->notify == 0 || (r->notify & DSN_NOTIFY_FAILURE) != 0;
}

/* content_read - dsn_source adapter over the spool's content reader */
static long content_read(void *arg, void *buf, size_t n)
{
    return spool_read_content(arg, buf, n);
}

/* nonce - randomness for the boundary and Message-ID */
static unsigned long long nonce(void)
{
    unsigned long long v;
    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
        v = ((unsigned long long)time(NULL) << 20) ^ (unsigned long long)getpid();
    return v;
}

/* spool_dsn - write the built notification as a message from <> to the original sender */
static bool spool_dsn(const struct conf *c, const struct envelope *orig,
                      const struct dsn_output *out, struct envelope *env)
{
    envelope_init(env);
    env->arrival = time(NULL);
    envelope_set(&env->sender, "");
    envelope_add_rcpt(env, orig->sender, DSN_NOTIFY_NEVER, NULL);
    envelope_set(&env->protocol, "local");
    env->body = out->eight_bit ? BODY_8BITMIME : BODY_UNSET;
    env->smtputf8 = orig->smtputf8;
    env->size = out->msg.len;
    envelope_set(&env->message_id, out->message_id);
    struct spool_writer *w = spool_create(c->spool_directory, env);
    if (w == NULL)
        return false;
    if (!spool_write(w, out->msg.s, out->msg.len)) {
        int e = errno;
        spool_abort(w);
        errno = e;
        return false;
    }
    return spool_commit(w, env, true);
}

/* log_arrival - Exim's line for a locally generated bounce: `NEW <= <> R=ORIG U=user P=local` */
static void log_arrival(const struct envelope *env, const char *orig_id)
{
    struct passwd *pw = getpwuid(geteuid());
    log_main("%s <= <> R=%s U=%s P=local S=%llu", env->id, orig_id, pw ? pw->pw_name : "tandem",
             (unsigned long long)env->size);
}

/* wanted_entries - the entries the sender wants to hear about, in a new array */
static struct dsn_entry *wanted_entries(const struct envelope *orig, const struct dsn_entry *all,
                                        size_t n, size_t *nwanted)
{
    struct dsn_entry *v = xcalloc(n ? n : 1, sizeof(*v));
    *nwanted = 0;
    for (size_t i = 0; i < n; i++)
        if (bounce_wanted(orig->sender, all[i].rcpt, all[i].action))
            v[(*nwanted)++] = all[i];
    return v;
}

bool bounce_send(const struct conf *c, const struct envelope *orig, const struct dsn_entry *entries,
                 size_t n, char new_id[MSGID_LEN + 1])
{
    size_t nwanted;
    new_id[0] = '\0';
    if (orig->sender == NULL || orig->sender[0] == '\0') {
        if (n > 0)
            log_main("%s no bounce sent for %zu address(es): the sender is <>", orig->id, n);
        return true;
    }
    struct dsn_entry *wanted = wanted_entries(orig, entries, n, &nwanted);
    if (nwanted == 0) {
        free(wanted);
        return true;
    }
    struct dsn_report rep = { c->hostname, orig, wanted, nwanted, time(NULL), nonce(),
                              c->retry_give_up };
    struct spool_reader *rd = spool_open_content(c->spool_directory, orig->id);
    struct dsn_source src = { content_read, rd };
    struct dsn_output out;
    dsn_build(&rep, rd ? &src : NULL, &out);
    if (rd)
        spool_close_content(rd);
    free(wanted);
    struct envelope env;
    bool ok = spool_dsn(c, orig, &out, &env);
    int e = errno;
    if (ok) {
        str_copy(new_id, env.id, MSGID_LEN + 1);
        metric_inc(M_BOUNCES);
        log_arrival(&env, orig->id);
    }
    envelope_free(&env);
    sbuf_free(&out.msg);
    errno = e;
    return ok;
}
