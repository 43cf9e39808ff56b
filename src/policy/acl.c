/* acl.c - evaluate a compiled ACL with Exim's semantics.  The evaluation is resumable: a
 * verify condition may complete later (from the event loop), as may dnslists, ratelimit and
 * spam (started by acl_cond.c), and a delay waits on a timer. */
#include "acl_int.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/core.h"

enum run_state { RS_NEW, RS_RUNNING, RS_WAIT_VERIFY, RS_WAIT_DELAY, RS_WAIT_COND, RS_DONE };
enum cond { C_TRUE, C_FALSE, C_DEFER, C_WAIT };

struct acl_run {
    const struct acl *acl;
    enum acl_stage stage;
    char *vals[VAR_NVARS];     /* owned copies of the variables */
    char *host_name, *recipient;
    const struct acl_hooks *hooks;
    void *hook_arg;
    struct event_base *base;
    acl_done_fn done;
    void *done_arg;
    bool has_cutthrough;       /* the ACL contains control = cutthrough_delivery */
    size_t si, ii;             /* current statement and item */
    const struct acl_item *msg, *log_msg; /* last seen in the current statement */
    enum run_state state;
    bool in_verify;            /* inside hooks->verify(): a completion is picked up on return */
    bool verify_done;
    enum verify_result vres;
    char *vreply;
    struct event *timer;
    struct acl_env env;        /* the session's policy state (pointers it owns) */
    bool has_env;
    bool in_cond, cond_done;   /* an asynchronous condition, as for verify */
    enum acl_cond_result cres;
    struct acl_pending pend;
    struct acl_outcome out;
};

static bool run_loop(struct acl_run *r);

const char *acl_result_name(enum acl_result res)
{
    static const char *const names[] = { "accept", "deny", "defer", "discard", "drop" };
    return (unsigned)res < ARRAY_LEN(names) ? names[res] : "?";
}

const char *acl_stage_name(enum acl_stage s)
{
    static const char *const names[] = { "connect", "helo", "mail", "rcpt", "predata", "data" };
    return (unsigned)s < ARRAY_LEN(names) ? names[s] : "?";
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/* copy_vars - keep private copies, so the caller's strings may change while we wait */
static void copy_vars(struct acl_run *r, const struct acl_vars *v)
{
    r->vals[VAR_LOCAL_PART] = dup_or_null(v->local_part);
    r->vals[VAR_DOMAIN] = dup_or_null(v->domain);
    r->vals[VAR_SENDER_ADDRESS] = dup_or_null(v->sender_address);
    r->vals[VAR_SENDER_HOST_ADDRESS] = dup_or_null(v->sender_host_address);
    r->vals[VAR_SENDER_HELO_NAME] = dup_or_null(v->sender_helo_name);
    r->vals[VAR_PRIMARY_HOSTNAME] = dup_or_null(v->primary_hostname);
    r->vals[VAR_MESSAGE_ID] = dup_or_null(v->message_id);
    r->vals[VAR_TLS_IN_CIPHER] = dup_or_null(v->tls_in_cipher);
    r->host_name = dup_or_null(v->sender_host_name);
    if (v->env != NULL) {
        r->env = *v->env;
        r->has_env = true;
    }
    if (v->recipient != NULL)
        r->recipient = xstrdup(v->recipient);
    else if (v->local_part != NULL && v->domain != NULL) {
        struct sbuf b;
        sbuf_init(&b);
        sbuf_printf(&b, "%s@%s", v->local_part, v->domain);
        r->recipient = sbuf_steal(&b);
    }
}

/* acl_run_new - a run over acl with private copies of the variables */
struct acl_run *acl_run_new(const struct acl *acl, enum acl_stage stage, const struct acl_vars *vars,
                            const struct acl_hooks *hooks, void *hook_arg, struct event_base *base,
                            acl_done_fn done, void *done_arg)
{
    struct acl_run *r = xcalloc(1, sizeof(*r));
    static const struct acl_vars none;
    r->acl = acl;
    r->stage = stage;
    copy_vars(r, vars ? vars : &none);
    r->hooks = hooks;
    r->hook_arg = hook_arg;
    r->base = base;
    r->done = done;
    r->done_arg = done_arg;
    r->has_cutthrough = acl_has_cutthrough(acl, NULL);
    sbuf_init(&r->out.headers);
    return r;
}

/* expand - a text with the run's variables, as a new string */
static char *expand(const struct acl_run *r, const struct acl_text *t)
{
    struct sbuf b;
    sbuf_init(&b);
    acl_text_expand(t, (const char *const *)r->vals, &b);
    return sbuf_steal(&b);
}

/* log_text - write an ACL log line, carrying the message id when there is one */
static void log_text(const struct acl_run *r, const char *prefix, const char *text)
{
    const char *id = r->vals[VAR_MESSAGE_ID];
    if (id != NULL)
        log_main("%s %s%s", id, prefix, text);
    else
        log_main("%s%s", prefix, text);
}

/* header_valid - "Name: ..." with a printable field name */
static bool header_valid(const char *h)
{
    size_t n = 0;
    while (h[n] > 32 && h[n] < 127 && h[n] != ':')
        n++;
    return n > 0 && h[n] == ':';
}

/* has_header_line - is line already among the CRLF-terminated lines in b */
static bool has_header_line(const struct sbuf *b, const char *line)
{
    size_t len = strlen(line);
    for (size_t off = 0; off < b->len;) {
        const char *eol = strstr(b->s + off, "\r\n");
        size_t l = eol ? (size_t)(eol - (b->s + off)) : b->len - off;
        if (l == len && memcmp(b->s + off, line, len) == 0)
            return true;
        off += l + 2;
    }
    return false;
}

/* add_header - queue a header line (Exim: invalid lines get "X-ACL-Warn: ", duplicates once) */
static void add_header(struct acl_run *r, const struct acl_text *t)
{
    char *text = expand(r, t);
    struct sbuf line;
    sbuf_init(&line);
    if (text[0] != '\0') {
        if (!header_valid(text))
            sbuf_addstr(&line, "X-ACL-Warn: ");
        sbuf_addstr(&line, text);
        if (!has_header_line(&r->out.headers, line.s)) {
            sbuf_add(&r->out.headers, line.s, line.len);
            sbuf_addstr(&r->out.headers, "\r\n");
        }
    }
    sbuf_free(&line);
    free(text);
}

/* set_text - expand t into *dst, leaving *dst alone when the result is empty (Exim) */
static void set_text(const struct acl_run *r, char **dst, const struct acl_item *it)
{
    if (it == NULL)
        return;
    char *s = expand(r, &it->text);
    if (s[0] == '\0') {
        free(s);
        return;
    }
    free(*dst);
    *dst = s;
}

/* finish - the ACL's verdict; with_texts uses the statement's message and log_message */
static void finish(struct acl_run *r, enum acl_result res, bool with_texts)
{
    r->out.result = res;
    if (with_texts) {
        set_text(r, &r->out.message, r->msg);
        set_text(r, &r->out.log_message, r->log_msg);
    }
    r->state = RS_DONE;
}

/* next_stmt - move on; message and log_message belong to their statement, and (Exim) the
 * reply of a verification that failed in a warn statement is not used by a later refusal;
 * $acl_verify_message keeps it */
static void next_stmt(struct acl_run *r)
{
    if (r->acl->stmts[r->si].verb == VERB_WARN) {
        free(r->out.verify_reply);
        r->out.verify_reply = NULL;
    }
    r->si++;
    r->ii = 0;
    r->msg = r->log_msg = NULL;
}

/* warn_fired - a warn statement's conditions all held: log_message is logged as Exim does,
 * "H=(helo) [ip] Warning: text", and (Exim's legacy behaviour) message becomes a header line */
static void warn_fired(struct acl_run *r)
{
    if (r->log_msg != NULL) {
        char *s = expand(r, &r->log_msg->text);
        const char *ip = r->vals[VAR_SENDER_HOST_ADDRESS], *helo = r->vals[VAR_SENDER_HELO_NAME];
        char prefix[400] = "Warning: ", h[300];
        if (ip != NULL && ip[0] != '\0' && helo != NULL) {
            str_sanitize(h, sizeof(h), helo, strlen(helo));
            str_fmt(prefix, sizeof(prefix), "H=(%s) [%s] Warning: ", h, ip);
        } else if (ip != NULL && ip[0] != '\0') {
            str_fmt(prefix, sizeof(prefix), "H=[%s] Warning: ", ip);
        }
        if (s[0] != '\0')
            log_text(r, prefix, s);
        free(s);
    }
    if (r->msg != NULL)
        add_header(r, &r->msg->text);
}

/* stmt_true - every condition of the statement held: obey the verb */
static void stmt_true(struct acl_run *r, const struct acl_stmt *st)
{
    switch (st->verb) {
    case VERB_ACCEPT: finish(r, ACL_ACCEPT, true); return;
    case VERB_DENY: finish(r, ACL_DENY, true); return;
    case VERB_DEFER: finish(r, ACL_DEFER, true); return;
    case VERB_DISCARD: finish(r, ACL_DISCARD, true); return;
    case VERB_DROP: finish(r, ACL_DROP, true); return;
    case VERB_WARN: warn_fired(r); break;
    case VERB_REQUIRE: break;
    }
    next_stmt(r);
}

/* item_result - apply one condition's outcome to the statement */
static void item_result(struct acl_run *r, enum cond c)
{
    enum acl_verb verb = r->acl->stmts[r->si].verb;
    if (c == C_TRUE) {
        r->ii++;
    } else if (c == C_FALSE) {
        if (verb == VERB_REQUIRE)
            finish(r, ACL_DENY, true);
        else
            next_stmt(r);
    } else if (verb == VERB_WARN) {
        char line[1100];
        str_fmt(line, sizeof(line), "ACL \"warn\" statement skipped: condition test deferred%s%s",
                r->out.log_message ? ": " : "", r->out.log_message ? r->out.log_message : "");
        log_text(r, "", line);
        free(r->out.log_message);
        r->out.log_message = NULL;
        next_stmt(r);
    } else {
        finish(r, ACL_DEFER, false);
    }
}

/* status_len - length of a leading enhanced status code "x.y.z " (RFC 3463), or 0 */
static size_t status_len(const char *s, size_t len)
{
    size_t i = 0;
    for (int part = 0; part < 3; part++) {
        size_t digits = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9' && digits < 3) {
            i++;
            digits++;
        }
        if (digits == 0 || i >= len || s[i] != (part < 2 ? '.' : ' '))
            return 0;
        i++;
    }
    return i;
}

/* flatten_reply - "550-5.1.1 a\r\n550 5.1.1 b" as "550 5.1.1 a b" for $acl_verify_message */
static char *flatten_reply(const char *reply)
{
    struct sbuf b;
    sbuf_init(&b);
    for (bool first = true; *reply != '\0'; first = false) {
        size_t len = strcspn(reply, "\r\n");
        size_t skip = 0;
        bool code = len >= 4 && (reply[3] == '-' || reply[3] == ' ');
        if (first && code) {
            sbuf_add(&b, reply, 3);
            sbuf_addch(&b, ' ');
            skip = 4;
        } else if (code) {
            skip = 4 + status_len(reply + 4, len - 4);
        }
        if (len > skip) {
            if (b.len > 0 && b.s[b.len - 1] != ' ')
                sbuf_addch(&b, ' ');
            sbuf_add(&b, reply + skip, len - skip);
        }
        reply += len;
        reply += strspn(reply, "\r\n");
    }
    return sbuf_steal(&b);
}

/* verify_apply - turn the verification result into the condition's value */
static enum cond verify_apply(struct acl_run *r, const struct acl_item *it)
{
    enum verify_result res = r->vres;
    if (it->verify == VERIFY_RECIPIENT && it->callout.enabled) {
        r->out.verified_recipient_callout = true;
        r->out.callout = it->callout;
    }
    if (res == VERIFY_DEFER && it->callout.enabled && it->callout.defer_ok)
        res = VERIFY_OK;
    if (res != VERIFY_OK) {
        free(r->out.verify_reply);
        free(r->vals[VAR_ACL_VERIFY_MESSAGE]);
        r->out.verify_reply = r->vreply;
        r->vals[VAR_ACL_VERIFY_MESSAGE] = r->vreply ? flatten_reply(r->vreply) : NULL;
    } else {
        free(r->vreply);
    }
    r->vreply = NULL;
    if (res == VERIFY_DEFER)
        return C_DEFER;
    return (res == VERIFY_OK) != it->negate ? C_TRUE : C_FALSE;
}

/* verify_start - ask the session to verify; the answer may come before the call returns */
static enum cond verify_start(struct acl_run *r, const struct acl_item *it)
{
    if (r->hooks == NULL || r->hooks->verify == NULL) {
        r->vres = VERIFY_DEFER;
        return verify_apply(r, it);
    }
    struct callout_opts opts = it->callout;
    if (opts.enabled && r->has_cutthrough && !opts.use_postmaster)
        opts.use_sender = true; /* the callout's connection may carry the message */
    r->state = RS_WAIT_VERIFY;
    r->verify_done = false;
    r->in_verify = true;
    r->hooks->verify(r->hook_arg, r, it->verify, &opts);
    r->in_verify = false;
    if (!r->verify_done)
        return C_WAIT;
    r->state = RS_RUNNING;
    return verify_apply(r, it);
}

/* acl_verify_done - a verification finished: resume, or let verify_start pick it up */
void acl_verify_done(struct acl_run *r, enum verify_result res, const char *reply)
{
    if (r->state != RS_WAIT_VERIFY || r->verify_done) {
        log_panic("acl_verify_done: no verification pending (state %d)", (int)r->state);
        return;
    }
    r->verify_done = true;
    r->vres = res;
    r->vreply = dup_or_null(reply);
    if (r->in_verify)
        return;
    r->state = RS_RUNNING;
    item_result(r, verify_apply(r, &r->acl->stmts[r->si].items[r->ii]));
    if (run_loop(r))
        r->done(r->done_arg, r); /* may free r: nothing after this */
}

/* delay_fired - the delay modifier's time is up: carry on */
static void delay_fired(evutil_socket_t fd, short what, void *arg)
{
    struct acl_run *r = arg;
    (void)fd;
    (void)what;
    r->state = RS_RUNNING;
    r->ii++;
    if (run_loop(r))
        r->done(r->done_arg, r);
}

/* delay_start - pause on a timer (no event base: no delay, as under exim -bh) */
static enum cond delay_start(struct acl_run *r, unsigned seconds)
{
    if (seconds == 0 || r->base == NULL)
        return C_TRUE;
    if (r->timer == NULL)
        r->timer = evtimer_new(r->base, delay_fired, r);
    if (r->timer == NULL)
        fatalx("evtimer_new failed");
    struct timeval tv = { .tv_sec = (time_t)seconds };
    evtimer_add(r->timer, &tv);
    r->state = RS_WAIT_DELAY;
    return C_WAIT;
}

/* note_vouch - a recipients or local_parts list that has the recipient and whose match lets it
 * through (it holds on accept/require, or a negated one keeps a refusal from firing) is local
 * knowledge of the recipient: cutthrough answers from it when the next hop cannot */
static void note_vouch(struct acl_run *r, const struct acl_item *it)
{
    enum acl_verb verb = r->acl->stmts[r->si].verb;
    bool lets_through = it->negate ? (verb == VERB_DENY || verb == VERB_DROP || verb == VERB_DEFER ||
                                      verb == VERB_DISCARD)
                                   : (verb == VERB_ACCEPT || verb == VERB_REQUIRE);
    char what[200];
    if (!lets_through || r->out.rcpt_vouched_by != NULL)
        return;
    const char *name = it->kind == COND_RECIPIENTS ? "recipients" : "local_parts";
    if (it->list.n == 1)
        str_fmt(what, sizeof(what), "%s = %s (ACL line %d)", name, it->list.items[0].text, it->line);
    else
        str_fmt(what, sizeof(what), "%s list (ACL line %d)", name, it->line);
    r->out.rcpt_vouched_by = xstrdup(what);
}

/* encrypted - Exim's encrypted = CIPHERS: the connection is TLS and its cipher (the middle of
 * "TLS1.3:CIPHER:BITS") is in the list ("*" for any) */
static enum list_result encrypted(const struct acl_run *r, const struct acl_item *it,
                                   const char **why)
{
    const char *tls = r->vals[VAR_TLS_IN_CIPHER];
    char cipher[128];
    if (tls == NULL || tls[0] == '\0')
        return LIST_NO_MATCH;
    const char *c = strchr(tls, ':');
    c = c ? c + 1 : tls;
    size_t n = strcspn(c, ":");
    str_copy(cipher, c, n + 1 < sizeof(cipher) ? n + 1 : sizeof(cipher));
    return list_check_local_part(&it->list, cipher, why);
}

/* cond_apply - an asynchronous condition's result, negated if it was written with '!' */
static enum cond cond_apply(const struct acl_run *r, const struct acl_item *it)
{
    if (r->cres == ACL_COND_DEFER)
        return C_DEFER;
    return (r->cres == ACL_COND_TRUE) != it->negate ? C_TRUE : C_FALSE;
}

/* cond_start - a dnslists, ratelimit or spam condition; its result may come before the call
 * returns */
static enum cond cond_start(struct acl_run *r, const struct acl_item *it)
{
    r->state = RS_WAIT_COND;
    r->cond_done = false;
    r->in_cond = true;
    memset(&r->pend, 0, sizeof(r->pend));
    acl_cond_start(r, it, &r->pend);
    r->in_cond = false;
    if (!r->cond_done)
        return C_WAIT;
    r->state = RS_RUNNING;
    return cond_apply(r, it);
}

/* acl_cond_done - the condition finished: resume, or let cond_start pick it up */
void acl_cond_done(struct acl_run *r, enum acl_cond_result res)
{
    if (r->state != RS_WAIT_COND || r->cond_done) {
        log_panic("acl_cond_done: no condition pending (state %d)", (int)r->state);
        return;
    }
    r->cond_done = true;
    r->cres = res;
    memset(&r->pend, 0, sizeof(r->pend));
    if (r->in_cond)
        return;
    r->state = RS_RUNNING;
    item_result(r, cond_apply(r, &r->acl->stmts[r->si].items[r->ii]));
    if (run_loop(r))
        r->done(r->done_arg, r); /* may free r: nothing after this */
}

void acl_run_set_var(struct acl_run *r, enum acl_var v, const char *value)
{
    free(r->vals[v]);
    r->vals[v] = dup_or_null(value);
}

const char *acl_run_var(const struct acl_run *r, enum acl_var v)
{
    return r->vals[v];
}

const struct acl_env *acl_run_env(const struct acl_run *r)
{
    return r->has_env ? &r->env : NULL;
}

enum acl_stage acl_run_stage(const struct acl_run *r)
{
    return r->stage;
}

const struct acl_item *acl_run_current_item(const struct acl_run *r)
{
    return &r->acl->stmts[r->si].items[r->ii];
}

void acl_run_expand(const struct acl_run *r, const struct acl_text *t, struct sbuf *out)
{
    acl_text_expand(t, (const char *const *)r->vals, out);
}

/* list_cond - a hosts/domains/local_parts/senders/recipients/encrypted condition; a lookup that
 * defers makes the condition defer (the reason goes to the log line) */
static enum cond list_cond(struct acl_run *r, const struct acl_item *it)
{
    enum list_result m = LIST_NO_MATCH;
    const char *why = NULL;
    switch (it->kind) {
    case COND_HOSTS:
        m = list_check_host(&it->list, r->vals[VAR_SENDER_HOST_ADDRESS], r->host_name, &why);
        break;
    case COND_DOMAINS: m = list_check_domain(&it->list, r->vals[VAR_DOMAIN], &why); break;
    case COND_LOCAL_PARTS:
        m = list_check_local_part(&it->list, r->vals[VAR_LOCAL_PART], &why);
        break;
    case COND_SENDERS: m = list_check_address(&it->list, r->vals[VAR_SENDER_ADDRESS], &why); break;
    case COND_RECIPIENTS: m = list_check_address(&it->list, r->recipient, &why); break;
    case COND_ENCRYPTED: m = encrypted(r, it, &why); break;
    default: break;
    }
    if (m == LIST_DEFER) {
        free(r->out.log_message);
        r->out.log_message = xstrdup(why ? why : "lookup deferred");
        return C_DEFER;
    }
    if (m == LIST_MATCH && (it->kind == COND_RECIPIENTS || it->kind == COND_LOCAL_PARTS))
        note_vouch(r, it);
    return (m == LIST_MATCH) != it->negate ? C_TRUE : C_FALSE;
}

/* item_eval - evaluate a condition, or obey a modifier (which always "holds") */
static enum cond item_eval(struct acl_run *r, const struct acl_item *it)
{
    char *s;
    switch (it->kind) {
    case COND_VERIFY: return verify_start(r, it);
    case COND_DNSLISTS:
    case COND_RATELIMIT:
    case COND_SPAM: return cond_start(r, it);
    case MOD_MESSAGE: r->msg = it; break;
    case MOD_LOG_MESSAGE: r->log_msg = it; break;
    case MOD_ADD_HEADER: add_header(r, &it->text); break;
    case MOD_DELAY: return delay_start(r, it->delay);
    case MOD_CONTROL:
        r->out.cutthrough = true;
        r->out.cut = it->cut;
        break;
    case MOD_LOGWRITE:
        s = expand(r, &it->text);
        log_text(r, "", s);
        free(s);
        break;
    default: return list_cond(r, it);
    }
    return C_TRUE;
}

/* run_loop - evaluate until the verdict is known (true) or we must wait (false) */
static bool run_loop(struct acl_run *r)
{
    while (r->state == RS_RUNNING) {
        if (r->si >= r->acl->n) {
            finish(r, ACL_DENY, false); /* implicit deny at the end */
            break;
        }
        const struct acl_stmt *st = &r->acl->stmts[r->si];
        if (r->ii >= st->n) {
            stmt_true(r, st);
            continue;
        }
        enum cond c = item_eval(r, &st->items[r->ii]);
        if (c == C_WAIT)
            return false;
        item_result(r, c);
    }
    return true;
}

/* acl_run_start - evaluate until the verdict or the first wait */
bool acl_run_start(struct acl_run *r)
{
    if (r->state != RS_NEW)
        fatalx("acl_run_start: run already started");
    if (r->acl == NULL) {
        finish(r, r->stage == ACL_RCPT ? ACL_DENY : ACL_ACCEPT, false);
        return true;
    }
    r->state = RS_RUNNING;
    if (r->has_env)
        rate_memo_new_command(r->env.rates);
    return run_loop(r);
}

const struct acl_outcome *acl_run_outcome(const struct acl_run *r)
{
    return &r->out;
}

/* acl_run_free - cancel a pending verify or delay and release the run */
void acl_run_free(struct acl_run *r)
{
    if (r == NULL)
        return;
    if (r->state == RS_WAIT_VERIFY && !r->verify_done && r->hooks && r->hooks->cancel)
        r->hooks->cancel(r->hook_arg, r);
    if (r->state == RS_WAIT_COND && !r->cond_done && r->pend.cancel && r->pend.handle)
        r->pend.cancel(r->pend.handle);
    if (r->timer != NULL)
        event_free(r->timer);
    for (int i = 0; i < VAR_NVARS; i++)
        free(r->vals[i]);
    free(r->host_name);
    free(r->recipient);
    free(r->vreply);
    free(r->out.message);
    free(r->out.log_message);
    free(r->out.verify_reply);
    free(r->out.rcpt_vouched_by);
    sbuf_free(&r->out.headers);
    free(r);
}
