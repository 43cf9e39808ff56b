/* smtp_reply_fmt.c - replies rendered for a client or a log line; copying and freeing. */
#include "smtp.h"

#include <string.h>

#define ECODE_MAX 16

void smtp_reply_copy(struct smtp_reply *dst, const struct smtp_reply *src)
{
    dst->code = src->code;
    memcpy(dst->ecode, src->ecode, sizeof(dst->ecode));
    dst->ecode[sizeof(dst->ecode) - 1] = '\0';
    dst->nlines = src->nlines;
    sbuf_init(&dst->text);
    sbuf_add(&dst->text, src->text.s ? src->text.s : "", src->text.len);
}

void smtp_reply_free(struct smtp_reply *r)
{
    sbuf_free(&r->text);
}

/* add_clean - append text with control and 8-bit bytes replaced by '?' */
static void add_clean(struct sbuf *out, const char *t, size_t n)
{
    size_t start = out->len;
    sbuf_add(out, t, n);
    for (size_t i = start; i < out->len; i++) {
        unsigned char c = (unsigned char)out->s[i];
        if (c < 0x20 || c >= 0x7f)
            out->s[i] = '?';
    }
}

/* pick_ecode - the enhanced code to send with code: given, the reply's own, or derived */
static void pick_ecode(const struct smtp_reply *r, int code, const char *ecode, char *ec)
{
    char cls = (char)('0' + code / 100);
    if (ecode != NULL) {
        str_copy(ec, ecode, ECODE_MAX);
    } else if (cls == '3') {
        ec[0] = '\0';
    } else if (r->ecode[0] != '\0' && r->ecode[1] == '.') {
        str_copy(ec, r->ecode, ECODE_MAX);
        ec[0] = cls;
    } else {
        str_fmt(ec, ECODE_MAX, "%c.0.0", cls);
    }
}

/* format_line - one line "CODE-ECODE text\r\n" (space instead of '-' when last) */
static void format_line(struct sbuf *out, int code, const char *ec, bool last, const char *t,
                        size_t n)
{
    size_t eclen = strlen(ec);
    size_t room = REPLY_LINE_MAX - 4 - 2 - (eclen ? eclen + 1 : 0);
    sbuf_printf(out, "%03d", code);
    if (!last || eclen > 0 || n > 0) /* a last line is "CODE" or "CODE SP text" */
        sbuf_printf(out, "%c%s", last ? ' ' : '-', ec);
    if (n > 0) {
        if (eclen > 0)
            sbuf_addch(out, ' ');
        add_clean(out, t, n < room ? n : room);
    }
    sbuf_add(out, "\r\n", 2);
}

void smtp_reply_format(const struct smtp_reply *r, int code, const char *ecode, struct sbuf *out)
{
    char ec[ECODE_MAX];
    const char *t = r->text.s ? r->text.s : "";
    size_t len = r->text.len, start = 0;
    if (code == 0)
        code = r->code;
    if (code < 200 || code > 599)
        fatalx("smtp_reply_format: bad reply code %d", code);
    pick_ecode(r, code, ecode, ec);
    for (size_t lines = 1;; lines++) {
        const char *nl = memchr(t + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - t) : len;
        bool last = nl == NULL || lines == REPLY_LINES_MAX;
        format_line(out, code, ec, last, t + start, end - start);
        if (last)
            return;
        start = end + 1;
    }
}

void smtp_reply_oneline(const struct smtp_reply *r, struct sbuf *out)
{
    const char *t = r->text.s ? r->text.s : "";
    size_t len = r->text.len, start = 0;
    sbuf_printf(out, "%03d", r->code);
    if (r->ecode[0] != '\0')
        sbuf_printf(out, " %s", r->ecode);
    if (len == 0)
        return;
    sbuf_addch(out, ' ');
    while (start <= len) {
        const char *nl = memchr(t + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - t) : len;
        add_clean(out, t + start, end - start);
        if (nl == NULL)
            break;
        sbuf_add(out, "; ", 2);
        start = end + 1;
    }
}
