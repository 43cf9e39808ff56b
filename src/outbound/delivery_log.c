/* delivery_log.c - a recipient's verdict: its result record and its main-log line in Exim's
 * format (=> first delivery, -> further ones, == deferral, ** failure).  Every peer string
 * is sanitised here, once. */
#include "delivery_int.h"

#include <string.h>

#include "core/core.h"

bool dlv_decided(const struct dlv *d, size_t i)
{
    return d->results[i].outcome != DLV_NOT_TRIED;
}

const char *dlv_route_name(const struct dlv *d, size_t i)
{
    size_t di = d->rcpt_domain[i];
    if (di == SIZE_MAX || d->domains[di].res == NULL || d->domains[di].res->route == NULL)
        return NULL;
    return d->domains[di].res->route->pattern;
}

void dlv_reply_text(const struct smtp_reply *r, char *buf, size_t sz)
{
    struct sbuf b;
    sbuf_init(&b);
    smtp_reply_oneline(r, &b);
    str_sanitize(buf, sz, b.s ? b.s : "", b.len);
    sbuf_free(&b);
}

/* fill_result - the result record the scheduler keeps */
static void fill_result(struct dlv *d, size_t i, const struct dlv_verdict *v)
{
    struct dlv_result *res = &d->results[i];
    res->outcome = v->outcome;
    if (v->reply) {
        res->code = v->reply->code;
        str_copy(res->ecode, v->reply->ecode, sizeof(res->ecode));
        dlv_reply_text(v->reply, res->text, sizeof(res->text));
    } else {
        res->code = v->code;
        str_copy(res->ecode, v->ecode ? v->ecode : "", sizeof(res->ecode));
        str_sanitize(res->text, sizeof(res->text), v->text ? v->text : "", v->text ? strlen(v->text) : 0);
    }
    if (v->so) {
        char h[400];
        smtp_out_log_host(v->so, h, sizeof(h));
        str_copy(res->host, h + 2, sizeof(res->host)); /* without "H=" */
        res->relayed_without_dsn = v->outcome == DLV_DELIVERED &&
                                   !(smtp_out_exts(v->so) & EXT_DSN);
    } else if (v->host) {
        str_copy(res->host, v->host, sizeof(res->host));
    }
}

/* route_part - " R=pattern" (or nothing for an unroutable address) */
static void route_part(const struct dlv *d, size_t i, char *buf, size_t sz)
{
    const char *r = dlv_route_name(d, i);
    char s[300];
    if (r == NULL) {
        buf[0] = '\0';
        return;
    }
    str_sanitize(s, sizeof(s), r, strlen(r));
    str_fmt(buf, sz, " R=%s", s);
}

/* host_part - " H=name [ip]:port" from the connection, or the remembered host */
static void host_part(const struct dlv_verdict *v, char *buf, size_t sz)
{
    char h[400];
    buf[0] = '\0';
    if (v->so) {
        smtp_out_log_host(v->so, h, sizeof(h));
        str_fmt(buf, sz, " %s", h);
    } else if (v->host && v->host[0]) {
        str_fmt(buf, sz, " H=%s", v->host);
    }
}

void dlv_decide(struct dlv *d, size_t i, const struct dlv_verdict *v)
{
    char addr[600], rt[320], hp[420], what[700] = "";
    if (dlv_decided(d, i))
        return;
    fill_result(d, i, v);
    const struct dlv_result *res = &d->results[i];
    if (d->final_cb && v->outcome != DLV_DEFERRED) /* journaled before it is logged */
        d->final_cb(d->arg, i, res);
    const char *a = d->env->rcpts[i].addr;
    str_sanitize(addr, sizeof(addr), a, strlen(a));
    route_part(d, i, rt, sizeof(rt));
    host_part(v, hp, sizeof(hp));
    if (v->reply && v->after) {
        char after[600];
        str_sanitize(after, sizeof(after), v->after, strlen(v->after));
        str_fmt(what, sizeof(what), "SMTP error from remote mail server after %s: %s", after, res->text);
    } else {
        str_copy(what, res->text, sizeof(what));
    }
    metric_inc(v->outcome == DLV_DELIVERED ? M_DLV_QUEUE
               : v->outcome == DLV_FAILED  ? M_DLV_FAILED : M_DLV_DEFERRED);
    if (v->outcome == DLV_DELIVERED) {
        char x[200] = "", ta[40] = "";
        const char *tls = v->so ? smtp_out_tls_info(v->so) : NULL;
        if (v->so)
            smtp_out_log_auth(v->so, ta, sizeof(ta));
        if (tls)
            str_fmt(x, sizeof(x), " X=%s CV=%s%s", tls, smtp_out_tls_verified(v->so) ? "yes" : "no", ta);
        else
            str_copy(x, ta, sizeof(x));
        log_main("%s %s %s%s T=remote_smtp%s%s C=\"%s\"", d->env->id,
                 d->delivered_one ? "->" : "=>", addr, rt, hp, x, res->text);
        d->delivered_one = true;
    } else if (v->outcome == DLV_FAILED) {
        log_main("%s ** %s%s%s%s: %s", d->env->id, addr, rt, v->routing ? "" : " T=remote_smtp",
                 hp, what);
    } else {
        log_main("%s == %s%s%s defer (%d)%s: %s", d->env->id, addr, rt,
                 v->routing ? "" : " T=remote_smtp", v->errnum, hp, what);
    }
}
