/* smtp_out_fmt.c - the pure parts of the outbound engine: EHLO keywords in, MAIL and RCPT
 * command lines out (ESMTP parameters only for extensions the server offered). */
#include "smtp_out_int.h"

#include <string.h>
#include <strings.h>

static const char *const state_names[] = {
    [SO_NEW] = "new", [SO_CONNECTING] = "connecting", [SO_GREETING] = "greeting",
    [SO_EHLO] = "EHLO", [SO_HELO] = "HELO", [SO_STARTTLS] = "STARTTLS",
    [SO_HANDSHAKE] = "TLS handshake", [SO_READY] = "ready", [SO_QUITTING] = "quitting",
    [SO_DEAD] = "dead",
};

const char *so_state_name(enum so_state st)
{
    return (size_t)st < ARRAY_LEN(state_names) ? state_names[st] : "?";
}

static const struct { const char *kw; unsigned bit; } ehlo_keywords[] = {
    { "PIPELINING", EXT_PIPELINING },
    { "SIZE", EXT_SIZE },
    { "8BITMIME", EXT_8BITMIME },
    { "SMTPUTF8", EXT_SMTPUTF8 },
    { "DSN", EXT_DSN },
    { "CHUNKING", EXT_CHUNKING },
    { "STARTTLS", EXT_STARTTLS },
    { "ENHANCEDSTATUSCODES", EXT_ENHANCEDSTATUSCODES },
};

/* parse_size - the SIZE parameter: decimal, at most 20 digits, no overflow; 0 if absent/bad */
static uint64_t parse_size_param(const char *p, size_t n)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < n && p[i] == ' ')
        i++;
    if (i == n)
        return 0;
    for (; i < n && p[i] != ' '; i++) {
        if (p[i] < '0' || p[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    return v;
}

/* ehlo_line - one keyword line of the EHLO reply */
static void ehlo_line(const char *p, size_t n, unsigned *exts, uint64_t *size)
{
    size_t kwlen = 0;
    while (kwlen < n && p[kwlen] != ' ')
        kwlen++;
    for (size_t i = 0; i < ARRAY_LEN(ehlo_keywords); i++) {
        const char *kw = ehlo_keywords[i].kw;
        if (strlen(kw) != kwlen || strncasecmp(p, kw, kwlen) != 0)
            continue;
        *exts |= ehlo_keywords[i].bit;
        if (ehlo_keywords[i].bit == EXT_SIZE)
            *size = parse_size_param(p + kwlen, n - kwlen);
    }
}

void so_parse_ehlo(const char *text, size_t len, unsigned *exts, uint64_t *size)
{
    *exts = 0;
    *size = 0;
    const char *end = text + len;
    const char *line = memchr(text, '\n', len); /* the first line is the server's name */
    while (line != NULL && line < end) {
        line++;
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
        ehlo_line(line, n, exts, size);
        line = nl;
    }
}

/* arg_ok - nothing that could end or split a command line */
static bool arg_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* xtext_ok - RFC 3461 xtext: printable ASCII except '+' escapes, no '=' or space */
static bool xtext_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || *s == '=')
            return false;
    return true;
}

bool so_fmt_mail(struct sbuf *out, const struct mail_out *m, unsigned exts)
{
    if (!arg_ok(m->sender) || (m->envid && !xtext_ok(m->envid)))
        return false;
    sbuf_printf(out, "MAIL FROM:<%s>", m->sender);
    if ((exts & EXT_SIZE) && m->size)
        sbuf_printf(out, " SIZE=%llu", (unsigned long long)m->size);
    if ((exts & EXT_8BITMIME) && m->body_8bit)
        sbuf_addstr(out, " BODY=8BITMIME");
    if ((exts & EXT_SMTPUTF8) && m->smtputf8)
        sbuf_addstr(out, " SMTPUTF8");
    if ((exts & EXT_DSN) && m->ret != DSN_RET_UNSET)
        sbuf_addstr(out, m->ret == DSN_RET_FULL ? " RET=FULL" : " RET=HDRS");
    if ((exts & EXT_DSN) && m->envid && m->envid[0])
        sbuf_printf(out, " ENVID=%s", m->envid);
    sbuf_addstr(out, "\r\n");
    return true;
}

/* notify_param - RFC 3461 NOTIFY: NEVER alone, else the listed conditions */
static void notify_param(struct sbuf *out, unsigned notify)
{
    static const struct { unsigned bit; const char *name; } words[] = {
        { DSN_NOTIFY_SUCCESS, "SUCCESS" }, { DSN_NOTIFY_FAILURE, "FAILURE" },
        { DSN_NOTIFY_DELAY, "DELAY" },
    };
    if (notify & DSN_NOTIFY_NEVER) {
        sbuf_addstr(out, " NOTIFY=NEVER");
        return;
    }
    const char *sep = " NOTIFY=";
    for (size_t i = 0; i < ARRAY_LEN(words); i++) {
        if (notify & words[i].bit) {
            sbuf_addstr(out, sep);
            sbuf_addstr(out, words[i].name);
            sep = ",";
        }
    }
}

bool so_fmt_rcpt(struct sbuf *out, const char *rcpt, unsigned notify, const char *orcpt,
                 unsigned exts)
{
    if (!arg_ok(rcpt) || (orcpt && !xtext_ok(orcpt)))
        return false;
    sbuf_printf(out, "RCPT TO:<%s>", rcpt);
    if ((exts & EXT_DSN) && notify)
        notify_param(out, notify);
    if ((exts & EXT_DSN) && orcpt && orcpt[0])
        sbuf_printf(out, " ORCPT=%s", orcpt);
    sbuf_addstr(out, "\r\n");
    return true;
}

/* mail_out_from_envelope - 8-bit content to a server without 8BITMIME goes anyway, without
 * BODY= (as most MTAs do); the engine adds each parameter only when the server offers it */
void mail_out_from_envelope(struct mail_out *m, const struct envelope *env, uint64_t size)
{
    *m = (struct mail_out){
        .sender = env->sender, .size = size,
        .body_8bit = env->body == BODY_8BITMIME || env->body == BODY_BINARYMIME,
        .smtputf8 = env->smtputf8, .ret = env->ret, .envid = env->envid,
    };
}
