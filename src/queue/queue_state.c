/* queue_state.c - per-message and per-recipient scheduler state in the "queue" and "rcpt"
 * hints databases (see queue/queue.h). */
#include "queue.h"

#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "store/store.h"

#define MSG_STATE_VERSION 1
#define RCPT_NOTE_VERSION 1
#define NOTE_RELAYED 1u     /* flag bits of a note */
#define NOTE_TIMED_OUT 2u

bool qstate_get(struct hints *h, const char *id, struct msg_state *s)
{
    unsigned char buf[HINTS_VALUE_MAX];
    size_t len;
    struct hrec_r rd;
    if (!hints_get(h, HINTS_QUEUE, id, buf, sizeof(buf), &len) ||
        !hrec_r_init(&rd, buf, len, MSG_STATE_VERSION))
        return false;
    s->attempts = hrec_get_u32(&rd);
    s->last_try = (time_t)hrec_get_i64(&rd);
    s->next_try = (time_t)hrec_get_i64(&rd);
    return !rd.bad;
}

bool qstate_put(struct hints *h, const char *id, const struct msg_state *s)
{
    struct hrec_w w;
    hrec_w_init(&w, MSG_STATE_VERSION);
    hrec_put_u32(&w, s->attempts);
    hrec_put_i64(&w, s->last_try);
    hrec_put_i64(&w, s->next_try);
    return !w.bad && hints_put(h, HINTS_QUEUE, id, w.buf, w.len);
}

/* note_key - "ID/000003": zero-padded so a message's notes sort together and in order */
static bool note_key(char *buf, size_t sz, const char *id, size_t rcpt_index)
{
    return str_fmt(buf, sz, "%s/%06zu", id, rcpt_index);
}

bool qstate_note_get(struct hints *h, const char *id, size_t rcpt_index, struct rcpt_note *n)
{
    unsigned char buf[HINTS_VALUE_MAX];
    char key[64];
    size_t len;
    struct hrec_r rd;
    memset(n, 0, sizeof(*n));
    if (!note_key(key, sizeof(key), id, rcpt_index) ||
        !hints_get(h, HINTS_RCPT, key, buf, sizeof(buf), &len) ||
        !hrec_r_init(&rd, buf, len, RCPT_NOTE_VERSION))
        return false;
    n->when = (time_t)hrec_get_i64(&rd);
    n->res.outcome = (enum dlv_outcome)hrec_get_u32(&rd);
    n->res.code = (int)hrec_get_u32(&rd);
    uint32_t flags = hrec_get_u32(&rd);
    n->res.relayed_without_dsn = (flags & NOTE_RELAYED) != 0;
    n->timed_out = (flags & NOTE_TIMED_OUT) != 0;
    hrec_get_str(&rd, n->res.ecode, sizeof(n->res.ecode));
    hrec_get_str(&rd, n->res.host, sizeof(n->res.host));
    hrec_get_str(&rd, n->res.text, sizeof(n->res.text));
    if (n->res.outcome > DLV_FAILED)
        rd.bad = true;
    return !rd.bad;
}

/* put_field - a fixed-size string field of dlv_result, which need not be terminated */
static void put_field(struct hrec_w *w, const char *field, size_t size)
{
    char tmp[512];
    size_t n = strnlen(field, size);
    if (n >= sizeof(tmp))
        n = sizeof(tmp) - 1;
    memcpy(tmp, field, n);
    tmp[n] = '\0';
    hrec_put_str(w, tmp);
}

bool qstate_note_put(struct hints *h, const char *id, size_t rcpt_index, const struct rcpt_note *n)
{
    struct hrec_w w;
    char key[64];
    if (!note_key(key, sizeof(key), id, rcpt_index))
        return false;
    hrec_w_init(&w, RCPT_NOTE_VERSION);
    hrec_put_i64(&w, n->when);
    hrec_put_u32(&w, (uint32_t)n->res.outcome);
    hrec_put_u32(&w, (uint32_t)n->res.code);
    hrec_put_u32(&w, (n->res.relayed_without_dsn ? NOTE_RELAYED : 0u) |
                         (n->timed_out ? NOTE_TIMED_OUT : 0u));
    put_field(&w, n->res.ecode, sizeof(n->res.ecode));
    put_field(&w, n->res.host, sizeof(n->res.host));
    put_field(&w, n->res.text, sizeof(n->res.text));
    return !w.bad && hints_put(h, HINTS_RCPT, key, w.buf, w.len);
}

void qstate_forget(struct hints *h, const char *id)
{
    char prefix[64];
    hints_del(h, HINTS_QUEUE, id);
    if (str_fmt(prefix, sizeof(prefix), "%s/", id))
        hints_del_prefix(h, HINTS_RCPT, prefix);
}

struct sweep {
    char **live;
    size_t nlive;
    char (*dead)[MSGID_LEN + 1];
    size_t ndead;
};

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, *(char *const *)b);
}

/* sweep_visit - note the message of a key that is not in the spool (once per message) */
static bool sweep_visit(void *arg, const char *key, const void *val, size_t len)
{
    struct sweep *s = arg;
    char id[MSGID_LEN + 1];
    (void)val;
    (void)len;
    str_copy(id, key, sizeof(id));   /* "ID" or "ID/000003" */
    if (s->ndead && strcmp(s->dead[s->ndead - 1], id) == 0)
        return true;
    if (bsearch(id, s->live, s->nlive, sizeof(*s->live), cmp_id) == NULL)
        str_copy(s->dead[s->ndead++], id, sizeof(s->dead[0]));
    return s->ndead < QSTATE_SWEEP_MAX;
}

size_t qstate_sweep(struct hints *h, char **live, size_t nlive)
{
    static const enum hints_db dbs[] = { HINTS_QUEUE, HINTS_RCPT };
    struct sweep s = { live, nlive, NULL, 0 };
    size_t forgotten = 0;
    if (h == NULL)
        return 0;
    s.dead = xcalloc(QSTATE_SWEEP_MAX, sizeof(*s.dead));
    for (size_t d = 0; d < ARRAY_LEN(dbs); d++) {
        s.ndead = 0;
        hints_each(h, dbs[d], "", sweep_visit, &s);
        for (size_t i = 0; i < s.ndead; i++)
            qstate_forget(h, s.dead[i]);
        forgotten += s.ndead;
    }
    free(s.dead);
    return forgotten;
}
