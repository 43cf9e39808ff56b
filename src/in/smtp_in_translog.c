/* smtp_in_translog.c - the transaction log (transaction_log = FILE): one JSON object a line
 * per transaction that reached its end of data, linking the client leg (address, HELO, TLS,
 * sender, recipients, size, the reply, timings) and the onward leg under cutthrough (next hop,
 * TLS, its reply, timing): what otherwise takes a grep over the <=, >>, == and reject lines.
 * Messages delivered later from the queue keep their main-log lines (same id). */
#include "smtp_in.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "in.h"
#include "conf/conf.h"
#include "core/core.h"
#include "outbound/outbound.h"

/* json_str - "text" with JSON escapes; bytes outside printable ASCII become \u00XX, so the
 * line stays one line of ASCII whatever a peer sent */
static void json_str(struct sbuf *b, const char *s)
{
    sbuf_addch(b, '"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            sbuf_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            sbuf_printf(b, "\\u%04x", *p);
        else
            sbuf_addch(b, (char)*p);
    }
    sbuf_addch(b, '"');
}

/* field - ,"key":"value" (or null) */
static void field(struct sbuf *b, const char *key, const char *value)
{
    sbuf_printf(b, ",\"%s\":", key);
    if (value)
        json_str(b, value);
    else
        sbuf_addstr(b, "null");
}

static uint64_t ms_between(uint64_t from_us, uint64_t to_us)
{
    return from_us && to_us > from_us ? (to_us - from_us) / 1000 : 0;
}

/* result_word - accepted, refused or deferred, from the final reply's class */
static const char *result_word(int code)
{
    return code / 100 == 2 ? "accepted" : code / 100 == 4 ? "deferred" : "refused";
}

/* client_leg - who sent what, and what they were told */
static void client_leg(struct smtp_session *s, const struct txn *t, uint64_t now, struct sbuf *b)
{
    sbuf_printf(b, ",\"client\":{\"ip\":");
    json_str(b, s->peer_ip);
    sbuf_printf(b, ",\"port\":%d", s->peer_port);
    field(b, "host_name", s->rdns.name);
    field(b, "helo", s->helo);
    field(b, "tls", s->tls_info);
    field(b, "sender", t->env.sender);
    sbuf_addstr(b, ",\"rcpts\":[");
    for (size_t i = 0; i < t->env.nrcpts; i++) {
        if (i)
            sbuf_addch(b, ',');
        json_str(b, t->env.rcpts[i].addr);
    }
    sbuf_printf(b, "],\"size\":%llu,\"reply_code\":%d", (unsigned long long)t->data_bytes,
                t->final_code);
    field(b, "reply", t->final_text);
    sbuf_printf(b, ",\"mail_to_eod_ms\":%llu,\"eod_to_reply_ms\":%llu}",
                (unsigned long long)ms_between(t->start_us, t->eod_us),
                (unsigned long long)ms_between(t->eod_us, now));
}

/* onward_leg - the next hop of the cut-through transaction, or null */
static void onward_leg(const struct smtp_session *s, const struct txn *t, struct sbuf *b)
{
    char host[320], tls[256];
    const struct cut_link *l = smtp_cut_link(s);
    if (l == NULL) {
        sbuf_addstr(b, ",\"onward\":null");
        return;
    }
    cut_link_log_host(l, host, sizeof(host));
    cut_link_log_tls(l, tls, sizeof(tls));
    sbuf_addstr(b, ",\"onward\":{\"route\":");
    json_str(b, cut_link_route_name(l));
    field(b, "host", host[0] == 'H' && host[1] == '=' ? host + 2 : host);
    field(b, "tls", tls[0] ? tls + (tls[0] == ' ') : NULL);     /* "X=... CV=..." as logged */
    sbuf_printf(b, ",\"rcpts_accepted\":%zu", cut_link_naccepted(l));
    field(b, "reply", t->onward_us ? t->onward_reply : NULL);
    sbuf_printf(b, ",\"eod_to_reply_ms\":%llu}", (unsigned long long)ms_between(t->eod_us, t->onward_us));
}

void smtp_translog_write(struct smtp_session *s)
{
    const struct txn *t = s->txn;
    if (!log_transactions_on() || t == NULL)
        return;
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    struct sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "{\"time\":\"%s\"", when);
    field(&b, "id", t->env.id[0] ? t->env.id : NULL);
    field(&b, "result", result_word(t->final_code));
    size_t queued = 0;
    for (size_t i = 0; i < t->env.nrcpts; i++)
        queued += t->env.rcpts[i].state == RCPT_PENDING && t->final_code / 100 == 2 && !t->discard;
    sbuf_printf(&b, ",\"queued\":%zu", queued);
    client_leg(s, t, now_mono_us(), &b);
    onward_leg(s, t, &b);
    sbuf_addstr(&b, "}\n");
    log_transaction(b.s, b.len);
    sbuf_free(&b);
}
