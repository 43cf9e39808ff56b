/* dsn.c - RFC 3464 delivery status notifications (see dsn.h): the header section, the
 * human-readable part, the machine-readable delivery-status part, and the returned original. */
#include "dsn.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "smtp/smtp.h"

#define DSN_ENTRIES_MAX 1000   /* recipients detailed in one notification */
#define DSN_READ_CHUNK 8192

/* The part of the original that is returned. */
struct returned {
    struct sbuf text;      /* CRLF lines, ending in CRLF (empty if nothing is returned) */
    bool full;             /* the whole message, else its header section */
    const char *why_hdrs;  /* when full was asked for but only headers are returned */
};

void dsn_date(time_t t, char *buf, size_t sz)
{
    struct tm tm;
    localtime_r(&t, &tm);
    if (strftime(buf, sz, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0 && sz)
        buf[0] = '\0';
}

/* add_line - append one formatted line and CRLF, truncated to DSN_LINE_MAX; the format's
 * own text is one line, so CR and LF can only come from values */
static void PRINTF_LIKE(2, 3) add_line(struct sbuf *b, const char *fmt, ...)
{
    char line[DSN_LINE_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    str_vfmt(line, sizeof(line), fmt, ap);
    va_end(ap);
    for (char *p = line; *p; p++)   /* a line break inside a value would forge fields */
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    sbuf_addstr(b, line);
    sbuf_add(b, "\r\n", 2);
}

/* read_original - read the content until limit bytes are in raw (or, when stop_at_body, the
 * header section has ended); false on a read error */
static bool read_original(const struct dsn_source *src, size_t limit, bool stop_at_body,
                          struct sbuf *raw)
{
    char buf[DSN_READ_CHUNK];
    while (raw->len < limit) {
        size_t want = limit - raw->len < sizeof(buf) ? limit - raw->len : sizeof(buf);
        long n = src->read(src->arg, buf, want);
        if (n < 0)
            return false;
        if (n == 0)
            break;
        sbuf_add(raw, buf, (size_t)n);
        if (stop_at_body && memmem(raw->s, raw->len, "\r\n\r\n", 4) != NULL)
            break;
    }
    return true;
}

/* header_len - bytes of the header section (through the CRLF of its last line) */
static size_t header_len(const char *p, size_t n)
{
    if (n >= 2 && p[0] == '\r' && p[1] == '\n')
        return 0;
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    return end ? (size_t)(end - p) + 2 : n;
}

/* copy_lines - append n bytes as CRLF lines.  Strict (returning a message unchanged): a line
 * longer than DSN_LINE_MAX, a bare CR or a NUL stops the copy and false is returned.  Otherwise
 * long lines are cut and bare CRs and NULs become spaces. */
static bool copy_lines(struct sbuf *out, const char *p, size_t n, bool strict)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t len = nl ? (size_t)(nl - p) + 1 : n;
        size_t body = len - (nl ? 1 : 0) - (nl && len >= 2 && p[len - 2] == '\r' ? 1 : 0);
        bool odd = memchr(p, '\r', body) != NULL || memchr(p, '\0', body) != NULL;
        if (strict && (body > DSN_LINE_MAX || odd))
            return false;
        size_t start = out->len, keep = body > DSN_LINE_MAX ? DSN_LINE_MAX : body;
        sbuf_add(out, p, keep);
        for (size_t i = start; odd && i < out->len; i++)
            if (out->s[i] == '\r' || out->s[i] == '\0')
                out->s[i] = ' ';
        sbuf_add(out, "\r\n", 2);
        p += len;
        n -= len;
    }
    return true;
}

/* pick_returned - what of the original goes back: everything for RET=FULL when it is small
 * enough and has only legal line lengths, else the header section */
static void pick_returned(const struct dsn_report *r, const struct dsn_source *src,
                          struct returned *ret)
{
    struct sbuf raw;
    bool full = r->orig->ret == DSN_RET_FULL;
    sbuf_init(&raw);
    sbuf_init(&ret->text);
    ret->full = false;
    ret->why_hdrs = NULL;
    size_t limit = full ? DSN_RETURN_FULL_MAX + 1 : DSN_HEADERS_MAX;
    if (src == NULL || !read_original(src, limit, !full, &raw)) {
        sbuf_free(&raw);
        return;
    }
    if (full && raw.len > DSN_RETURN_FULL_MAX) {
        ret->why_hdrs = "the message is larger than 100K";
    } else if (full && copy_lines(&ret->text, raw.s, raw.len, true)) {
        ret->full = true;
    } else if (full) {
        ret->why_hdrs = "the message has lines that cannot be returned unchanged";
        sbuf_reset(&ret->text);
    }
    if (!ret->full && raw.len > 0)
        copy_lines(&ret->text, raw.s, header_len(raw.s, raw.len), false);
    sbuf_free(&raw);
}

/* has_8bit - any byte outside US-ASCII */
static bool has_8bit(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0x80)
            return true;
    return false;
}

/* printable - only printable characters (no controls), so it is safe in a header field */
static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* decode_xtext - RFC 3461 xtext to its value; the raw form when it does not decode to a
 * printable string */
static void decode_xtext(const char *x, char *out, size_t outsz)
{
    if (!xtext_decode(x, strlen(x), out, outsz) || !printable(out))
        str_copy(out, x, outsz);
}

/* occurs - does text contain b? */
static bool occurs(const struct sbuf *text, const char *b)
{
    return text->len && memmem(text->s, text->len, b, strlen(b)) != NULL;
}

/* choose_boundary - a boundary that occurs in none of the parts' content */
static void choose_boundary(const struct dsn_report *r, const struct sbuf *parts[], size_t n,
                            char *b, size_t sz)
{
    unsigned long long nonce = r->nonce;
    bool clash;
    do {
        str_fmt(b, sz, "=_tandem_%s_%016llx", r->orig->id, nonce++);
        clash = false;
        for (size_t i = 0; i < n && !clash; i++)
            clash = occurs(parts[i], b);
    } while (clash);
}

/* any_failed - is any reported recipient a failure (not only relayed)? */
static bool any_failed(const struct dsn_report *r)
{
    for (size_t i = 0; i < r->nentries; i++)
        if (r->entries[i].action == DSN_FAILED)
            return true;
    return false;
}

/* write_header - the DSN's own header section */
static void write_header(struct sbuf *b, const struct dsn_report *r, const char *boundary,
                         const struct dsn_output *out)
{
    char date[64];
    dsn_date(r->now, date, sizeof(date));
    add_line(b, "From: Mail Delivery System <MAILER-DAEMON@%s>", r->hostname);
    add_line(b, "To: <%s>", r->orig->sender);
    add_line(b, "Subject: %s", any_failed(r) ? "Mail delivery failed: returning message to sender"
                                             : "Delivery Status Notification (relayed)");
    add_line(b, "Date: %s", date);
    add_line(b, "Message-ID: <%s>", out->message_id);
    add_line(b, "Auto-Submitted: auto-replied");
    add_line(b, "MIME-Version: 1.0");
    add_line(b, "Content-Type: multipart/report; report-type=delivery-status;");
    add_line(b, "\tboundary=\"%s\"", boundary);
    add_line(b, "Content-Transfer-Encoding: %s", out->eight_bit ? "8bit" : "7bit");
    add_line(b, "%s", "");
    add_line(b, "This is a MIME-encapsulated message.");
    add_line(b, "%s", "");
}

/* write_reason - the human explanation for one recipient */
static void write_reason(struct sbuf *b, const struct dsn_report *r, const struct dsn_entry *e)
{
    const struct dlv_result *res = e->res;
    char span[32];
    add_line(b, "  <%s>", e->rcpt->addr);
    if (e->timed_out) {
        fmt_age(span, sizeof(span), (long)r->retry_give_up);
        add_line(b, "    could not be delivered within %s (retry timeout exceeded)", span);
    }
    if (res && res->host[0])
        add_line(b, "    %s %s:", e->timed_out ? "the last attempt was to" : "host", res->host);
    if (res && res->text[0])
        add_line(b, "    %s", res->text);
    else if (e->action == DSN_FAILED && !e->timed_out)
        add_line(b, "    the delivery failed permanently");
    add_line(b, "%s", "");
}

/* write_group - the introduction and the recipients of one action, if any */
static void write_group(struct sbuf *b, const struct dsn_report *r, enum dsn_action action,
                        const char *intro)
{
    bool first = true;
    for (size_t i = 0; i < r->nentries && i < DSN_ENTRIES_MAX; i++) {
        if (r->entries[i].action != action)
            continue;
        if (first) {
            sbuf_addstr(b, intro);   /* constant text, its own line breaks */
            sbuf_add(b, "\r\n", 2);
            add_line(b, "%s", "");
            first = false;
        }
        write_reason(b, r, &r->entries[i]);
    }
}

/* write_human - the text/plain part */
static void write_human(struct sbuf *b, const struct dsn_report *r, const struct returned *ret)
{
    add_line(b, "This message was created automatically by the mail system at %s.", r->hostname);
    add_line(b, "%s", "");
    write_group(b, r, DSN_FAILED,
                "Your message could not be delivered to the following address(es).\r\n"
                "This is a permanent error: the mail system has given up on them.");
    write_group(b, r, DSN_RELAYED,
                "You asked to be told when your message was delivered.  It was passed on\r\n"
                "for the following address(es) to a mail server that does not support\r\n"
                "delivery notifications, so no further notice about them will come.");
    if (r->nentries > DSN_ENTRIES_MAX) {
        add_line(b, "(%zu more address(es) not listed.)", r->nentries - DSN_ENTRIES_MAX);
        add_line(b, "%s", "");
    }
    if (ret->full)
        add_line(b, "A copy of your message is attached.");
    else if (ret->text.len && ret->why_hdrs)
        add_line(b, "Only the header section of your message is attached: %s.", ret->why_hdrs);
    else if (ret->text.len)
        add_line(b, "The header section of your message is attached.");
}

/* status_code - the Status field: the next hop's enhanced code when it fits the action;
 * a timed-out failure keeps its last transient code (as Postfix does), or 4.4.7 */
static void status_code(const struct dsn_entry *e, char *buf, size_t sz)
{
    const struct dlv_result *res = e->res;
    char want = e->action == DSN_RELAYED ? '2' : e->timed_out ? '4' : '5';
    if (res && res->ecode[0] == want && res->ecode[1] == '.')
        str_copy(buf, res->ecode, sz);
    else if (e->action == DSN_RELAYED)
        str_copy(buf, "2.0.0", sz);
    else if (e->timed_out)
        str_copy(buf, "4.4.7", sz);
    else
        str_copy(buf, "5.0.0", sz);
}

/* remote_mta - the next hop's name from "name [ip]:port", or "[ip]" for an IP literal */
static void remote_mta(const char *host, char *buf, size_t sz)
{
    size_t n = strcspn(host, " ");
    if (host[0] == '[' && strchr(host, ']') != NULL)
        n = (size_t)(strchr(host, ']') - host) + 1;
    if (n >= sz)
        n = sz - 1;
    memcpy(buf, host, n);
    buf[n] = '\0';
}

/* starts_with_code - does the reply text already begin with its code ("550 ...")? */
static bool starts_with_code(const char *text, int code)
{
    char c[8];
    str_fmt(c, sizeof(c), "%d", code);
    return strncmp(text, c, 3) == 0 && (text[3] == ' ' || text[3] == '-' || text[3] == '\0');
}

/* write_recipient_fields - one per-recipient block of the delivery-status part */
static void write_recipient_fields(struct sbuf *b, const struct dsn_entry *e)
{
    const struct dlv_result *res = e->res;
    const struct rcpt *rc = e->rcpt;
    char status[16], buf[1024], date[64];
    bool utf8 = has_8bit(rc->addr, strlen(rc->addr));
    add_line(b, "%s", "");
    add_line(b, "Final-Recipient: %s; %s", utf8 ? "utf-8" : "rfc822", rc->addr);
    if (rc->orcpt && strchr(rc->orcpt, ';')) {
        const char *semi = strchr(rc->orcpt, ';');
        decode_xtext(semi + 1, buf, sizeof(buf));
        add_line(b, "Original-Recipient: %.*s; %s", (int)(semi - rc->orcpt), rc->orcpt, buf);
    }
    status_code(e, status, sizeof(status));
    add_line(b, "Action: %s", e->action == DSN_FAILED ? "failed" : "relayed");
    add_line(b, "Status: %s", status);
    if (res && res->host[0]) {
        remote_mta(res->host, buf, sizeof(buf));
        add_line(b, "Remote-MTA: dns; %s", buf);
    }
    if (res && res->code > 0 && starts_with_code(res->text, res->code))
        add_line(b, "Diagnostic-Code: smtp; %s", res->text);
    else if (res && res->code > 0)
        add_line(b, "Diagnostic-Code: smtp; %d %s", res->code, res->text);
    else if (res && res->text[0])
        add_line(b, "Diagnostic-Code: X-Tandem; %s", res->text);
    if (e->last_attempt) {
        dsn_date(e->last_attempt, date, sizeof(date));
        add_line(b, "Last-Attempt-Date: %s", date);
    }
}

/* write_status - the message/delivery-status part's fields */
static void write_status(struct sbuf *b, const struct dsn_report *r)
{
    char date[64], envid[256];
    add_line(b, "Reporting-MTA: dns; %s", r->hostname);
    add_line(b, "X-Tandem-Queue-ID: %s", r->orig->id);
    if (r->orig->envid) {
        decode_xtext(r->orig->envid, envid, sizeof(envid));
        add_line(b, "Original-Envelope-Id: %s", envid);
    }
    dsn_date(r->orig->arrival, date, sizeof(date));
    add_line(b, "Arrival-Date: %s", date);
    for (size_t i = 0; i < r->nentries && i < DSN_ENTRIES_MAX; i++)
        write_recipient_fields(b, &r->entries[i]);
}

/* write_part_header - a boundary line and a part's header section */
static void write_part_header(struct sbuf *b, const char *boundary, const char *type,
                              const char *desc, const char *cte)
{
    add_line(b, "%s", "");
    add_line(b, "--%s", boundary);
    add_line(b, "Content-Type: %s", type);
    add_line(b, "Content-Description: %s", desc);
    if (cte)
        add_line(b, "Content-Transfer-Encoding: %s", cte);
    add_line(b, "%s", "");
}

void dsn_build(const struct dsn_report *r, const struct dsn_source *src, struct dsn_output *out)
{
    struct returned ret;
    struct sbuf human, status;
    char boundary[128];
    sbuf_init(&out->msg);
    sbuf_init(&human);
    sbuf_init(&status);
    pick_returned(r, src, &ret);
    write_human(&human, r, &ret);
    write_status(&status, r);
    const struct sbuf *parts[] = { &human, &status, &ret.text };
    choose_boundary(r, parts, ARRAY_LEN(parts), boundary, sizeof(boundary));
    bool human8 = has_8bit(human.s, human.len), status8 = has_8bit(status.s, status.len);
    bool ret8 = has_8bit(ret.text.s, ret.text.len);
    out->eight_bit = human8 || status8 || ret8;
    out->full_returned = ret.full;
    str_fmt(out->message_id, sizeof(out->message_id), "%lld.%016llx.%s@%s", (long long)r->now,
            r->nonce, r->orig->id, r->hostname);
    write_header(&out->msg, r, boundary, out);
    write_part_header(&out->msg, boundary,
                      human8 ? "text/plain; charset=utf-8" : "text/plain; charset=us-ascii",
                      "Notification", human8 ? "8bit" : "7bit");
    sbuf_add(&out->msg, human.s, human.len);
    write_part_header(&out->msg, boundary,
                      status8 ? "message/global-delivery-status" : "message/delivery-status",
                      "Delivery report", NULL);
    sbuf_add(&out->msg, status.s, status.len);
    if (ret.text.len) {
        write_part_header(&out->msg, boundary, ret.full ? "message/rfc822" : "text/rfc822-headers",
                          ret.full ? "Undelivered message" : "Undelivered message headers",
                          ret8 ? "8bit" : "7bit");
        sbuf_add(&out->msg, ret.text.s, ret.text.len);
    }
    add_line(&out->msg, "%s", "");
    add_line(&out->msg, "--%s--", boundary);
    sbuf_free(&human);
    sbuf_free(&status);
    sbuf_free(&ret.text);
}
