/* smtp_in_acl.c - running ACLs from an SMTP session: the variables they see, the verify hooks,
 * the replies and reject-log lines their verdicts produce. */
#include "smtp_in.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "in.h"
#include "verify.h"
#include "conf/conf.h"
#include "core/core.h"

/* Per-run context kept alive while an ACL is pending. */
struct acl_call {
    struct smtp_session *s;
    smtp_acl_done done;
    enum acl_stage stage;
    char rcpt[ADDR_PATH_MAX + 1];
    char local[ADDR_PATH_MAX + 1];
    char domain[ADDR_DOMAIN_MAX + 1];
    struct acl_vars vars;
    struct acl_env env;
};

static const struct acl_hooks session_hooks = { .verify = smtp_verify_start, .cancel = smtp_verify_cancel };

/* call_done - deliver the verdict to the stage's handler and free the run */
static void call_done(struct acl_call *call, struct acl_run *run)
{
    struct smtp_session *s = call->s;
    sf_clear(s, SF_WAITING);
    s->acl = NULL;
    call->done(s, acl_run_outcome(run));
    acl_run_free(run);
    free(call);
}

static void acl_async_done(void *arg, struct acl_run *run)
{
    call_done(arg, run);
}

/* smtp_acl_run - evaluate the stage's ACL with the session's variables */
void smtp_acl_run(struct smtp_session *s, enum acl_stage stage, const char *rcpt, smtp_acl_done done)
{
    const struct conf *c = s->srv->conf;
    struct acl_call *call = xcalloc(1, sizeof(*call));
    call->s = s;
    call->done = done;
    call->stage = stage;
    struct acl_vars *v = &call->vars;
    v->sender_host_address = s->peer_ip;
    v->sender_host_name = s->rdns.name;
    v->sender_helo_name = s->helo;
    v->sender_address = s->txn ? s->txn->env.sender : NULL;
    v->primary_hostname = c->hostname;
    v->message_id = s->txn && s->txn->env.id[0] ? s->txn->env.id : NULL;
    v->tls_in_cipher = sf_has(s, SF_TLS) ? s->tls_info : NULL;
    smtp_policy_env(s, stage, &call->env);
    v->env = &call->env;
    if (rcpt) {
        str_copy(call->rcpt, rcpt, sizeof(call->rcpt));
        addr_split(rcpt, call->local, sizeof(call->local), call->domain, sizeof(call->domain));
        v->recipient = call->rcpt;
        v->local_part = call->local;
        v->domain = call->domain;
    }
    struct acl_run *run = acl_run_new(c->acl_for_stage[stage], stage, v, &session_hooks, s,
                                      s->srv->base, acl_async_done, call);
    sf_set(s, SF_WAITING);
    s->acl = run;
    if (acl_run_start(run))
        call_done(call, run);
}

/* message_code - the length of a leading "ddd " or "ddd x.y.z " in an ACL message (Exim's
 * regex_smtp_code), 0 if there is none */
static size_t message_code(const char *msg)
{
    if (!(isdigit((unsigned char)msg[0]) && isdigit((unsigned char)msg[1]) &&
          isdigit((unsigned char)msg[2]) && msg[3] == ' '))
        return 0;
    const char *e = msg + 4;
    size_t n = strspn(e, "0123456789.");
    int dots = 0;
    for (size_t i = 0; i < n; i++)
        dots += e[i] == '.';
    if (n >= 5 && dots == 2 && e[n] == ' ' && e[1] == '.' && e[n - 1] != '.')
        return 4 + n + 1;
    return 4;
}

/* refusal_class - the first digit a refusal's code must have */
static char refusal_class(const struct acl_outcome *o)
{
    return o->result == ACL_DEFER ? '4' : '5';
}

/* code_from_message - an ACL message may start with its own code ("550 5.1.1 text"); one of
 * the right class replaces the default, one of the wrong class is dropped and logged (Exim) */
static const char *code_from_message(const char *msg, char class, bool configured, int *code,
                                     char *ecode, size_t esz)
{
    size_t len = message_code(msg);
    if (len == 0)
        return msg;
    if (msg[0] != class) {
        if (configured)
            log_main("configured error code starts with incorrect digit (expected %c) in \"%s\"",
                     class, msg);
        return msg + len;
    }
    *code = atoi(msg);
    if (len > 4 && msg[4] == class && len - 5 < esz) {
        memcpy(ecode, msg + 4, len - 5);
        ecode[len - 5] = '\0';
    }
    return msg + len;
}

/* smtp_acl_reply - the client's reply to a refusal; a deferral is always 451, as in Exim */
void smtp_acl_reply(struct smtp_session *s, const struct acl_outcome *o, int def_code,
                    const char *def_ecode, const char *def_text)
{
    int code = def_code;
    char ecode[16];
    if (o->result == ACL_DEFER) {
        code = 451;
        def_ecode = "4.7.1";
        def_text = "Temporary local problem - please try later";
    }
    str_copy(ecode, def_ecode, sizeof(ecode));
    if (o->message) {
        const char *text = code_from_message(o->message, refusal_class(o), true, &code, ecode,
                                             sizeof(ecode));
        smtp_reply(s, code, ecode, "%s", text);
    } else if (o->verify_reply) {
        const char *text = code_from_message(o->verify_reply, refusal_class(o), false, &code,
                                             ecode, sizeof(ecode));
        smtp_reply(s, code, ecode, "%s", text);
    } else {
        smtp_reply(s, code, ecode, "%s", def_text);
    }
    if (o->result != ACL_DROP)
        smtp_count_error(s);
}

/* smtp_acl_log_reject - a refusal in Exim's wording, to the main and reject logs:
 *   H=[ip] rejected connection in "connect" ACL: why
 *   H=(helo) [ip] rejected EHLO or HELO helo: why
 *   H=(helo) [ip] rejected MAIL <sender>: why
 *   H=(helo) [ip] F=<sender> rejected RCPT <rcpt>: why
 *   H=(helo) [ip] rejected DATA: why                       (the predata ACL)
 *   ID H=(helo) [ip] F=<sender> rejected after DATA: why
 * "temporarily rejected" for a deferral; ": why" (log_message, else message, else the failed
 * verification's reply) is left out when there is none. */
void smtp_acl_log_reject(struct smtp_session *s, const struct acl_outcome *o, const char *what)
{
    char host[160], sender[560], rcpt[560], helo[300], why[1000] = "";
    const char *reason = o->log_message ? o->log_message : o->message ? o->message
                         : o->verify_reply;
    const char *verb = o->result == ACL_DEFER ? "temporarily rejected" : "rejected";
    if (reason != NULL) {
        if (reason == o->message && message_code(reason) > 0 && reason[0] != refusal_class(o))
            reason += message_code(reason);      /* a wrong code is not used (Exim) */
        memcpy(why, ": ", 3);
        str_sanitize(why + 2, sizeof(why) - 2, reason, strlen(reason));
    }
    smtp_log_host(s, host, sizeof(host));
    const char *from = s->txn && s->txn->env.sender ? s->txn->env.sender : "";
    str_sanitize_utf8(sender, sizeof(sender), from, strlen(from));
    if (strcmp(what, "connection") == 0) {
        log_reject("%s %s connection in \"connect\" ACL%s", host, verb, why);
    } else if (strcmp(what, "EHLO") == 0) {
        const char *h = s->helo ? s->helo : "";
        str_sanitize(helo, sizeof(helo), h, strlen(h));
        log_reject("%s %s EHLO or HELO %s%s", host, verb, helo, why);
    } else if (s->txn == NULL || strcmp(what, "DATA") == 0) {
        log_reject("%s %s %s%s", host, verb, what, why);
    } else if (strcmp(what, "MAIL") == 0) {
        log_reject("%s %s MAIL <%s>%s", host, verb, sender, why);
    } else if (strcmp(what, "RCPT") == 0) {
        const char *r = s->txn->pending_rcpt.rcpt;
        str_sanitize_utf8(rcpt, sizeof(rcpt), r, strlen(r));
        log_reject("%s F=<%s> %s RCPT <%s>%s", host, sender, verb, rcpt, why);
    } else if (s->txn->env.id[0]) {
        log_reject("%s %s F=<%s> %s %s%s", s->txn->env.id, host, sender, verb, what, why);
    } else {
        log_reject("%s F=<%s> %s %s%s", host, sender, verb, what, why);
    }
}

/* has_line - is the CRLF-terminated line[0..len) one of the lines in b */
static bool has_line(const struct sbuf *b, const char *line, size_t len)
{
    for (size_t o = 0; o < b->len;) {
        const char *have = b->s + o, *e = strstr(have, "\r\n");
        size_t hl = e ? (size_t)(e - have) + 2 : b->len - o;
        if (hl == len && memcmp(have, line, len) == 0)
            return true;
        o += hl;
    }
    return false;
}

void smtp_acl_headers_merge(const struct sbuf *have, const struct sbuf *h, struct sbuf *out)
{
    for (size_t off = 0; off < h->len;) {
        const char *line = h->s + off, *eol = strstr(line, "\r\n");
        size_t len = eol ? (size_t)(eol - line) + 2 : h->len - off;
        if (!has_line(have, line, len) && (out == have || !has_line(out, line, len)))
            sbuf_add(out, line, len);
        off += len;
    }
}
