/* ratelimit.c - the ratelimit condition, with Exim's semantics: what an event counts (per_*),
 * the stored key ("PERIOD/per_x/KEY"), and the session's memory of rates already computed, so
 * that a condition met twice for one message (or, per_conn, for one connection) counts once. */
#include "policy.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "conf/conf.h"
#include "core/core.h"

#define RATE_MEMO_MAX 64        /* rates remembered per session */
#define RATE_KEY_KEEP 400       /* longer keys keep this much and a digest of the whole */

enum memo_scope { SCOPE_CONN, SCOPE_MAIL, SCOPE_CMD };

struct memo_entry {
    char *key;
    enum memo_scope scope;
    unsigned serial;            /* SCOPE_MAIL: the message, SCOPE_CMD: the ACL run */
    double rate;
};

struct rate_memo {
    struct hints *hints;
    struct memo_entry *e;       /* grows to RATE_MEMO_MAX, then slots are reused in turn */
    size_t n, next;
    unsigned mail_serial, cmd_serial;
};

struct rate_memo *rate_memo_new(struct hints *h)
{
    struct rate_memo *m = xcalloc(1, sizeof(*m));
    m->hints = h;
    return m;
}

void rate_memo_free(struct rate_memo *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->e[i].key);
    free(m->e);
    free(m);
}

void rate_memo_new_message(struct rate_memo *m)
{
    if (m)
        m->mail_serial++;
}

void rate_memo_new_command(struct rate_memo *m)
{
    if (m)
        m->cmd_serial++;
}

/* scope_of - how long a computed rate stands (Exim: per_conn for the connection; per_mail,
 * per_byte and the all-recipients count for the message; the rest for the command; read-only
 * checks for the command, since a later command may change the rate) */
static enum memo_scope scope_of(const struct rate_check_req *q, bool readonly)
{
    if (readonly)
        return SCOPE_CMD;
    switch (q->spec->per) {
    case RATE_PER_CONN: return SCOPE_CONN;
    case RATE_PER_MAIL:
    case RATE_PER_BYTE: return SCOPE_MAIL;
    case RATE_PER_RCPT: return q->stage == ACL_RCPT ? SCOPE_CMD : SCOPE_MAIL;
    default: return SCOPE_CMD;
    }
}

/* memo_serial - the serial an entry of this scope must carry to be current */
static unsigned memo_serial(const struct rate_memo *m, enum memo_scope sc)
{
    return sc == SCOPE_MAIL ? m->mail_serial : sc == SCOPE_CMD ? m->cmd_serial : 0;
}

static struct memo_entry *memo_find(struct rate_memo *m, const char *key, enum memo_scope sc)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->e[i].scope == sc && m->e[i].serial == memo_serial(m, sc) &&
            strcmp(m->e[i].key, key) == 0)
            return &m->e[i];
    return NULL;
}

static void memo_put(struct rate_memo *m, const char *key, enum memo_scope sc, double rate)
{
    struct memo_entry *e = memo_find(m, key, sc);
    if (e == NULL && m->n < RATE_MEMO_MAX) {
        m->e = xreallocarray(m->e, m->n + 1, sizeof(*m->e));
        e = &m->e[m->n++];
        e->key = NULL;
    } else if (e == NULL) {
        e = &m->e[m->next++ % RATE_MEMO_MAX];
    }
    if (e->key == NULL || strcmp(e->key, key) != 0) {
        free(e->key);
        e->key = xstrdup(key);
    }
    e->scope = sc;
    e->serial = memo_serial(m, sc);
    e->rate = rate;
}

/* event_count - what this event adds (Exim): per_rcpt after RCPT counts every recipient,
 * per_byte the message size (SIZE= before the data), count= replaces either */
static double event_count(const struct rate_check_req *q)
{
    const struct ratelimit_spec *s = q->spec;
    if (s->count_given)
        return s->count;
    if (s->per == RATE_PER_BYTE)
        return (double)q->message_size;
    if (s->per == RATE_PER_RCPT && q->stage != ACL_RCPT)
        return (double)q->nrcpts;
    return 1.0;
}

/* store_key - "PERIOD/per_x/KEY" as Exim builds it; an overlong one is shortened with a
 * SHA-256 digest of the whole, so distinct keys stay distinct */
static void store_key(const struct rate_check_req *q, char *out, size_t sz)
{
    char full[4096];
    str_fmt(full, sizeof(full), "%s/%s/%s", q->spec->period_text, rate_per_name(q->spec->per),
            q->key ? q->key : "");
    size_t len = strlen(full);
    if (len <= HINTS_RATE_KEY_MAX) {
        str_copy(out, full, sz);
        return;
    }
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)full, len, md);
    str_copy(out, full, RATE_KEY_KEEP + 1 < sz ? RATE_KEY_KEEP + 1 : sz);
    for (size_t i = 0; i < sizeof(md) && strlen(out) + 3 < sz; i++)
        str_fmt(out + strlen(out), sz - strlen(out), "%s%02x", i ? "" : "#", md[i]);
}

static int64_t now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

struct stored {
    struct rate_memo *m;
    const char *key;
    enum memo_scope scope;
    double limit;
    rate_cb cb;
    void *arg;
};

/* stored - the store's answer: remember the rate, report */
static void stored(void *arg, const struct rate_result *r)
{
    struct stored *st = arg;
    struct rate_outcome o = { r->ok, r->ok && r->rate >= st->limit, r->rate };
    if (r->ok)
        memo_put(st->m, st->key, st->scope, r->rate);
    st->cb(st->arg, &o);
}

void ratelimit_check(struct rate_memo *m, const struct rate_check_req *q, rate_cb cb, void *arg)
{
    const struct ratelimit_spec *s = q->spec;
    char key[HINTS_RATE_KEY_MAX + 1];
    bool readonly = s->mode == RATE_READONLY || !ratelimit_counts_in(s->per, q->stage);
    enum memo_scope sc = scope_of(q, readonly);
    store_key(q, key, sizeof(key));
    const struct memo_entry *e = memo_find(m, key, sc);
    if (e != NULL) {
        struct rate_outcome o = { true, e->rate >= s->limit, e->rate };
        cb(arg, &o);
        return;
    }
    struct rate_event ev = { event_count(q), s->limit, s->period,
                             readonly ? RATE_READONLY : s->mode, now_us() };
    struct stored st = { m, key, sc, s->limit, cb, arg };
    rate_store_update(m->hints, key, &ev, stored, &st);   /* LMDB: answers at once */
}
