/* smtp_reply.c - strict, resumable parser for the replies of a next hop.  The peer is not
 * trusted: every line is bounded, every byte of text is sanitised, and a malformed reply is
 * an error (the caller drops the connection), never a guess. */
#include "smtp.h"

#include <string.h>

enum { RP_LINES, RP_DONE, RP_ERROR };

void reply_parser_init(struct reply_parser *p)
{
    memset(p, 0, sizeof(*p));
    sbuf_init(&p->line);
    sbuf_init(&p->reply.text);
    p->state = RP_LINES;
}

void reply_parser_free(struct reply_parser *p)
{
    sbuf_free(&p->line);
    sbuf_free(&p->reply.text);
}

void reply_parser_next(struct reply_parser *p)
{
    sbuf_reset(&p->line);
    sbuf_reset(&p->reply.text);
    p->reply.code = 0;
    p->reply.ecode[0] = '\0';
    p->reply.nlines = 0;
    p->error = NULL;
    p->state = RP_LINES;
}

/* parse_error - latch the error; the parser stays in error until reply_parser_next */
static int parse_error(struct reply_parser *p, const char *why)
{
    p->error = why;
    p->state = RP_ERROR;
    return -1;
}

/* ecode_len - length of an RFC 3463 code of class cls at s, followed by a space or the end */
static size_t ecode_len(const char *s, size_t n, char cls)
{
    size_t i = 2;
    if (n < 5 || s[0] != cls || s[1] != '.' || (cls != '2' && cls != '4' && cls != '5'))
        return 0;
    for (int part = 0; part < 2; part++) {
        size_t start = i;
        while (i < n && i - start < 4 && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start || i - start > 3)
            return 0;
        if (part == 0 && (i >= n || s[i++] != '.'))
            return 0;
    }
    return i == n || s[i] == ' ' ? i : 0;
}

/* strip_ecode - take the first line's enhanced code; drop it from lines that repeat it */
static void strip_ecode(struct smtp_reply *r, const char **t, size_t *tlen)
{
    size_t n = ecode_len(*t, *tlen, (char)('0' + r->code / 100));
    if (n == 0)
        return;
    if (r->nlines == 0) {
        memcpy(r->ecode, *t, n);
        r->ecode[n] = '\0';
    } else if (strlen(r->ecode) != n || memcmp(r->ecode, *t, n) != 0) {
        return;
    }
    n += n < *tlen; /* and the space after it */
    *t += n;
    *tlen -= n;
}

/* add_text - append one line's text, truncated, control and 8-bit bytes made '?' */
static void add_text(struct smtp_reply *r, const char *t, size_t tlen)
{
    char buf[REPLY_TEXT_MAX];
    if (tlen > sizeof(buf))
        tlen = sizeof(buf);
    for (size_t i = 0; i < tlen; i++) {
        unsigned char c = (unsigned char)t[i];
        buf[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (r->nlines > 0)
        sbuf_addch(&r->text, '\n');
    sbuf_add(&r->text, buf, tlen);
}

static bool valid_code(const char *s)
{
    return s[0] >= '2' && s[0] <= '5' && s[1] >= '0' && s[1] <= '5' && s[2] >= '0' &&
           s[2] <= '9';
}

/* take_line - one complete line s[0..n) ending in LF: -1 error, 0 more lines, 1 last line */
static int take_line(struct reply_parser *p, const char *s, size_t n)
{
    struct smtp_reply *r = &p->reply;
    n -= 1 + (n >= 2 && s[n - 2] == '\r');
    if (n < 3 || !valid_code(s))
        return parse_error(p, "malformed reply code");
    if (n > 3 && s[3] != ' ' && s[3] != '-')
        return parse_error(p, "malformed reply line");
    int code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    if (r->nlines > 0 && code != r->code)
        return parse_error(p, "inconsistent codes in a multi-line reply");
    if (r->nlines >= REPLY_LINES_MAX)
        return parse_error(p, "too many lines in a reply");
    r->code = code;
    const char *t = s + (n > 3 ? 4 : 3);
    size_t tlen = n > 3 ? n - 4 : 0;
    strip_ecode(r, &t, &tlen);
    add_text(r, t, tlen);
    r->nlines++;
    return n == 3 || s[3] == ' ';
}

/* feed_line - take bytes up to and including the next LF (or all of them); -1/0/1 as above,
 * 0 also when the line is still incomplete */
static int feed_line(struct reply_parser *p, const char *in, size_t len, size_t *used)
{
    const char *lf = memchr(in, '\n', len);
    size_t n = lf ? (size_t)(lf - in) + 1 : len;
    *used = n;
    if (p->line.len + n > REPLY_LINE_HARD_MAX || (!lf && p->line.len + n >= REPLY_LINE_HARD_MAX))
        return parse_error(p, "reply line too long");
    if (lf == NULL) {
        sbuf_add(&p->line, in, n);
        return 0;
    }
    if (p->line.len == 0)
        return take_line(p, in, n);
    sbuf_add(&p->line, in, n);
    int rc = take_line(p, p->line.s, p->line.len);
    sbuf_reset(&p->line);
    return rc;
}

size_t reply_parse(struct reply_parser *p, const char *in, size_t len, enum reply_status *st)
{
    size_t i = 0;
    while (p->state == RP_LINES && i < len) {
        size_t used;
        int rc = feed_line(p, in + i, len - i, &used);
        i += used;
        if (rc > 0)
            p->state = RP_DONE;
    }
    *st = p->state == RP_DONE ? REPLY_DONE : p->state == RP_ERROR ? REPLY_ERROR : REPLY_MORE;
    return i;
}
