/* msg_header.c - streaming header-section scan (see smtp/smtp.h). */
#include "smtp.h"

#include <string.h>
#include <strings.h>

void hdr_scan_init(struct hdr_scan *h)
{
    memset(h, 0, sizeof(*h));
    sbuf_init(&h->line);
    sbuf_init(&h->message_id);
}

void hdr_scan_free(struct hdr_scan *h)
{
    sbuf_free(&h->line);
    sbuf_free(&h->message_id);
}

/* field_name_len - length of the field name if line starts "name:" (RFC 5322 ftext, with the
 * obsolete optional whitespace before the colon), else 0 */
static size_t field_name_len(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && (unsigned char)p[i] >= 33 && (unsigned char)p[i] <= 126 && p[i] != ':')
        i++;
    size_t name = i;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    return (name > 0 && i < n && p[i] == ':') ? name : 0;
}

static bool name_is(const char *p, size_t len, const char *name)
{
    return len == strlen(name) && strncasecmp(p, name, len) == 0;
}

/* note_message_id - collect the Message-ID value across continuation lines (bounded) */
static void note_message_id(struct hdr_scan *h, const char *p, size_t n)
{
    while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    size_t room = HDR_MSGID_MAX - h->message_id.len;
    sbuf_add(&h->message_id, p, n < room ? n : room);
}

/* end_headers - the header section is over: let the sink add fields, then go to the body */
static void end_headers(struct hdr_scan *h, const struct hdr_sink *sink, bool add_blank)
{
    sink->headers_end(sink->arg, h);
    if (add_blank)
        sink->emit(sink->arg, "\r\n", 2);
    h->in_body = true;
}

/* scan_line - classify one complete header-section line and pass it on */
static void scan_line(struct hdr_scan *h, const char *p, size_t n, const struct hdr_sink *sink)
{
    size_t name;
    if (n == 2 && p[0] == '\r') {                     /* blank line: end of the header section */
        end_headers(h, sink, false);
    } else if ((p[0] == ' ' || p[0] == '\t') && h->seen_field) {   /* continuation */
        if (h->in_message_id)
            note_message_id(h, p, n);
    } else if ((name = field_name_len(p, n)) > 0) {
        h->seen_field = true;
        h->in_message_id = false;
        if (name_is(p, name, "Received"))
            h->nreceived++;
        else if (name_is(p, name, "Date"))
            h->has_date = true;
        else if (name_is(p, name, "Message-ID") && !h->has_message_id) {
            h->has_message_id = h->in_message_id = true;
            const char *colon = memchr(p, ':', n);
            note_message_id(h, colon + 1, n - (size_t)(colon + 1 - p));
        }
    } else {                                           /* not a header: the body starts */
        end_headers(h, sink, true);
    }
    sink->emit(sink->arg, p, n);
}

/* hdr_scan_feed - assemble header-section lines; once in the body, pass bytes straight on */
void hdr_scan_feed(struct hdr_scan *h, const char *p, size_t n, const struct hdr_sink *sink)
{
    while (n > 0 && !h->in_body) {
        const char *lf = memchr(p, '\n', n);
        size_t take = lf ? (size_t)(lf - p) + 1 : n;
        sbuf_add(&h->line, p, take);
        p += take;
        n -= take;
        if (lf) {
            scan_line(h, h->line.s, h->line.len, sink);
            sbuf_reset(&h->line);
        } else if (h->line.len > HDR_LINE_MAX) {      /* absurd line: treat it as body */
            end_headers(h, sink, true);
            sink->emit(sink->arg, h->line.s, h->line.len);
            sbuf_reset(&h->line);
        }
    }
    if (n > 0)
        sink->emit(sink->arg, p, n);
}

void hdr_scan_finish(struct hdr_scan *h, const struct hdr_sink *sink)
{
    if (h->in_body)
        return;
    if (h->line.len) {
        scan_line(h, h->line.s, h->line.len, sink);
        sbuf_reset(&h->line);
    }
    if (!h->in_body) {
        sink->headers_end(sink->arg, h);
        h->in_body = true;
    }
}

bool hdr_scan_message_id(const struct hdr_scan *h, char *out, size_t outsz)
{
    if (!h->has_message_id || outsz == 0)
        return false;
    const char *p = h->message_id.s ? h->message_id.s : "";
    size_t n = h->message_id.len;
    while (n && (*p == ' ' || *p == '\t'))
        p++, n--;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n >= 2 && p[0] == '<' && p[n - 1] == '>')
        p++, n -= 2;
    if (n >= outsz)
        n = outsz - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}
