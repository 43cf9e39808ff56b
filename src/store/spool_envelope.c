/* spool_envelope.c - the envelope part of a message file: struct envelope to records and
 * back.  The decoder is table-driven and strict: unknown, repeated or misplaced records, bad
 * numbers and NUL bytes inside strings all make the file unreadable. */
#include "spool_private.h"
#include "store.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PORT_MAX 65535
#define NOTIFY_ALL (DSN_NOTIFY_NEVER | DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY)

/* str_fits - a string field is absent or short enough for one record */
static bool str_fits(const char *s)
{
    return s == NULL || strnlen(s, SPOOL_FIELD_MAX + 1) <= SPOOL_FIELD_MAX;
}

/* rcpts_fit - every recipient's fields are within the limits */
static bool rcpts_fit(const struct envelope *env)
{
    if (env->nrcpts > SPOOL_RCPTS_MAX)
        return false;
    for (size_t i = 0; i < env->nrcpts; i++) {
        const struct rcpt *r = &env->rcpts[i];
        if (r->addr == NULL || !str_fits(r->addr) || !str_fits(r->orcpt) || r->notify > NOTIFY_ALL)
            return false;
    }
    return true;
}

/* spool_envelope_fits - will the reader accept this envelope back? */
bool spool_envelope_fits(const struct envelope *env)
{
    bool ok = env->arrival >= 0 && env->client_port >= 0 && env->client_port <= PORT_MAX &&
              (unsigned)env->ret <= DSN_RET_HDRS && (unsigned)env->body <= BODY_BINARYMIME &&
              str_fits(env->sender) && str_fits(env->client_ip) && str_fits(env->helo) &&
              str_fits(env->protocol) && str_fits(env->tls) && str_fits(env->envid) &&
              rcpts_fit(env);
    if (!ok)
        errno = EMSGSIZE;
    return ok;
}

/* put_opt - a string record, only when the field is set */
static void put_opt(struct sbuf *out, char type, const char *s)
{
    if (s)
        rec_put_str(out, type, s);
}

/* spool_envelope_encode - the envelope records, in the order the reader expects */
void spool_envelope_encode(struct sbuf *out, const struct envelope *env)
{
    rec_put(out, REC_ID, env->id, MSGID_LEN);
    rec_put_num(out, REC_TIME, (uint64_t)env->arrival);
    rec_put_str(out, REC_SENDER, env->sender ? env->sender : "");
    for (size_t i = 0; i < env->nrcpts; i++) {
        const struct rcpt *r = &env->rcpts[i];
        rec_put_str(out, REC_RCPT, r->addr);
        if (r->notify)
            rec_put_num(out, REC_NOTIFY, r->notify);
        put_opt(out, REC_ORCPT, r->orcpt);
    }
    put_opt(out, REC_CLIENT_IP, env->client_ip);
    if (env->client_port)
        rec_put_num(out, REC_CLIENT_PORT, (uint64_t)env->client_port);
    put_opt(out, REC_HELO, env->helo);
    put_opt(out, REC_PROTOCOL, env->protocol);
    put_opt(out, REC_TLS, env->tls);
    put_opt(out, REC_ENVID, env->envid);
    if (env->ret != DSN_RET_UNSET)
        rec_put_num(out, REC_RET, (uint64_t)env->ret);
    if (env->body != BODY_UNSET)
        rec_put_num(out, REC_BODY, (uint64_t)env->body);
    if (env->smtputf8)
        rec_put_str(out, REC_SMTPUTF8, "1");
}

/* One row per envelope record type. */
struct env_field {
    char type;
    bool once;      /* may appear at most once (tracked in env_decoder.seen) */
    bool required;
    size_t off;     /* offset of the char * field, for the plain string types */
    uint64_t min, max; /* bounds, for the numeric types (the writer omits unset zeros) */
    int (*apply)(struct env_decoder *, const struct env_field *, const struct rec *);
};

/* bad - fail with EBADMSG */
static int bad(void)
{
    errno = EBADMSG;
    return -1;
}

/* apply_id - the id record must carry the file's own name */
static int apply_id(struct env_decoder *d, const struct env_field *f, const struct rec *r)
{
    (void)f;
    if (r->len != MSGID_LEN || memcmp(r->data, d->id, MSGID_LEN) != 0)
        return bad();
    memcpy(d->env->id, d->id, MSGID_LEN + 1);
    return 0;
}

/* apply_string - one of the plain optional/required strings, found by offset */
static int apply_string(struct env_decoder *d, const struct env_field *f, const struct rec *r)
{
    const char *s = rec_str(r);
    if (s == NULL)
        return bad();
    envelope_set((char **)((char *)d->env + f->off), s);
    return 0;
}

/* apply_number - a bounded decimal into the field that its type names */
static int apply_number(struct env_decoder *d, const struct env_field *f, const struct rec *r)
{
    uint64_t v;
    if (!rec_num(r, f->max, &v) || v < f->min)
        return bad();
    switch (f->type) {
    case REC_TIME: d->env->arrival = (time_t)v; break;
    case REC_CLIENT_PORT: d->env->client_port = (int)v; break;
    case REC_RET: d->env->ret = (enum dsn_ret)v; break;
    case REC_BODY: d->env->body = (enum body_type)v; break;
    case REC_SMTPUTF8: d->env->smtputf8 = true; break;
    default: return bad();
    }
    return 0;
}

/* apply_rcpt - a new recipient, bounded in number */
static int apply_rcpt(struct env_decoder *d, const struct env_field *f, const struct rec *r)
{
    (void)f;
    const char *s = rec_str(r);
    if (s == NULL || d->env->nrcpts >= SPOOL_RCPTS_MAX)
        return bad();
    envelope_add_rcpt(d->env, s, 0, NULL);
    return 0;
}

/* apply_notify - NOTIFY of the recipient just read */
static int apply_notify(struct env_decoder *d, const struct env_field *f, const struct rec *r)
{
    uint64_t v;
    if (d->prev != REC_RCPT || !rec_num(r, f->max, &v) || v < f->min)
        return bad();
    d->env->rcpts[d->env->nrcpts - 1].notify = (unsigned)v;
    return 0;
}

/* apply_orcpt - ORCPT of the recipient just read */
static int apply_orcpt(struct env_decoder *d, const struct env_field *f, const struct rec *r)
{
    (void)f;
    const char *s = rec_str(r);
    if ((d->prev != REC_RCPT && d->prev != REC_NOTIFY) || s == NULL)
        return bad();
    envelope_set(&d->env->rcpts[d->env->nrcpts - 1].orcpt, s);
    return 0;
}

#define STR_FIELD(t, name, req) { t, true, req, offsetof(struct envelope, name), 0, 0, apply_string }
#define NUM_FIELD(t, min, max) { t, true, false, 0, min, max, apply_number }

static const struct env_field env_fields[] = {
    { REC_ID, true, true, 0, 0, 0, apply_id },
    { REC_TIME, true, true, 0, 0, INT64_MAX, apply_number },
    STR_FIELD(REC_SENDER, sender, true),
    { REC_RCPT, false, false, 0, 0, 0, apply_rcpt },
    { REC_NOTIFY, false, false, 0, 1, NOTIFY_ALL, apply_notify },
    { REC_ORCPT, false, false, 0, 0, 0, apply_orcpt },
    STR_FIELD(REC_CLIENT_IP, client_ip, false),
    NUM_FIELD(REC_CLIENT_PORT, 1, PORT_MAX),
    STR_FIELD(REC_HELO, helo, false),
    STR_FIELD(REC_PROTOCOL, protocol, false),
    STR_FIELD(REC_TLS, tls, false),
    STR_FIELD(REC_ENVID, envid, false),
    NUM_FIELD(REC_RET, DSN_RET_FULL, DSN_RET_HDRS),
    NUM_FIELD(REC_BODY, BODY_7BIT, BODY_BINARYMIME),
    NUM_FIELD(REC_SMTPUTF8, 1, 1),
};

/* env_decoder_init - start decoding the envelope of file id into env */
void env_decoder_init(struct env_decoder *d, const char *id, struct envelope *env)
{
    d->id = id;
    d->env = env;
    d->seen = 0;
    d->prev = 0;
}

/* env_decode - apply one record through its table row, enforcing order and repetition */
int env_decode(struct env_decoder *d, const struct rec *r)
{
    for (size_t i = 0; i < ARRAY_LEN(env_fields); i++) {
        const struct env_field *f = &env_fields[i];
        if (f->type != r->type)
            continue;
        if ((d->prev == 0) != (f->type == REC_ID)) /* the id comes first, and only there */
            return bad();
        if (f->once && (d->seen & (1u << i)))
            return bad();
        if (f->apply(d, f, r) < 0)
            return -1;
        d->seen |= 1u << i;
        d->prev = r->type;
        return 0;
    }
    return bad(); /* an unknown type */
}

/* env_decode_finish - at the end of the envelope: were the required records there? */
int env_decode_finish(const struct env_decoder *d)
{
    for (size_t i = 0; i < ARRAY_LEN(env_fields); i++)
        if (env_fields[i].required && !(d->seen & (1u << i)))
            return bad();
    return 0;
}
