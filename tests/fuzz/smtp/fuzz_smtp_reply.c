/* fuzz_smtp_reply.c - libFuzzer target for the reply parser and formatter.
 * Input: bytes 0-1 seed the chunk sizes, the rest is what a next hop sends.  Properties: the
 * sequence of replies (and the error, if any) does not depend on the chunking; parsed replies
 * respect the bounds; formatted replies have well-formed, bounded lines and parse back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "smtp/smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* All replies of one input, summarised in a buffer for comparison. */
static size_t next_chunk(uint32_t *seed)
{
    *seed ^= *seed << 13;
    *seed ^= *seed >> 17;
    *seed ^= *seed << 5;
    return 1 + *seed % 100;
}

/* check_text - text is printable ASCII lines, none too long, nlines of them */
static void check_reply(const struct smtp_reply *r)
{
    size_t lines = 1, linelen = 0;
    if (r->code < 200 || r->code > 599 || r->nlines < 1 || r->nlines > REPLY_LINES_MAX)
        abort();
    for (size_t i = 0; i < r->text.len; i++) {
        unsigned char c = (unsigned char)r->text.s[i];
        if (c == '\n') {
            lines++, linelen = 0;
            continue;
        }
        if (c < 0x20 || c >= 0x7f || ++linelen > REPLY_TEXT_MAX)
            abort();
    }
    if (lines != r->nlines || strlen(r->ecode) >= sizeof(r->ecode))
        abort();
    if (r->ecode[0] && r->ecode[0] != '0' + r->code / 100)
        abort();
}

/* check_format - the client-facing rendering: bounded CRLF lines that parse back */
static void check_format(const struct smtp_reply *r)
{
    struct sbuf out;
    struct reply_parser p;
    enum reply_status st;
    sbuf_init(&out);
    smtp_reply_format(r, 0, NULL, &out);
    for (size_t start = 0; start < out.len;) {
        const char *nl = memmem(out.s + start, out.len - start, "\r\n", 2);
        if (nl == NULL || (size_t)(nl + 2 - out.s) - start > REPLY_LINE_MAX)
            abort();
        if (memchr(out.s + start, '\n', (size_t)(nl - out.s) - start) ||
            memchr(out.s + start, '\r', (size_t)(nl - out.s) - start))
            abort();
        start = (size_t)(nl + 2 - out.s);
    }
    reply_parser_init(&p);
    if (reply_parse(&p, out.s, out.len, &st) != out.len || st != REPLY_DONE ||
        p.reply.code != r->code || p.reply.nlines != r->nlines)
        abort();
    reply_parser_free(&p);
    sbuf_reset(&out);
    smtp_reply_oneline(r, &out);
    if (memchr(out.s, '\n', out.len) || memchr(out.s, '\r', out.len))
        abort();
    sbuf_free(&out);
}

/* check_raw - an independent look at the raw bytes of an accepted reply: nlines lines, each
 * at most REPLY_LINE_HARD_MAX with its LF, all with the reply's code, '-' on all but the last */
static void check_raw(const char *s, size_t n, const struct smtp_reply *r)
{
    size_t lines = 0;
    char code[4];
    str_fmt(code, sizeof(code), "%03d", r->code);
    for (size_t pos = 0; pos < n; lines++) {
        const char *lf = memchr(s + pos, '\n', n - pos);
        if (lf == NULL)
            abort();
        size_t len = (size_t)(lf - (s + pos)) + 1, body = len - 1 - (len >= 2 && lf[-1] == '\r');
        bool last = (size_t)(lf - s) + 1 == n;
        if (len > REPLY_LINE_HARD_MAX || body < 3 || memcmp(s + pos, code, 3) != 0)
            abort();
        if (last ? body > 3 && s[pos + 3] != ' ' : body <= 3 || s[pos + 3] != '-')
            abort();
        pos += len;
    }
    if (lines != r->nlines)
        abort();
}

/* run - parse all replies of in (chunked by seed, 0: whole), summarising them into sum */
static void run(const char *in, size_t len, uint32_t seed, bool check, struct sbuf *sum)
{
    struct reply_parser p;
    enum reply_status st = REPLY_MORE;
    size_t pos = 0, start = 0;
    reply_parser_init(&p);
    while (pos < len && st != REPLY_ERROR) {
        size_t n = seed ? next_chunk(&seed) : len - pos;
        if (n > len - pos)
            n = len - pos;
        size_t end = pos + n;
        while (pos < end && st != REPLY_ERROR) {
            pos += reply_parse(&p, in + pos, end - pos, &st);
            if (st != REPLY_DONE)
                continue;
            if (check) {
                check_raw(in + start, pos - start, &p.reply);
                check_reply(&p.reply);
                check_format(&p.reply);
            }
            sbuf_printf(sum, "%zu %d %s %zu ", pos, p.reply.code, p.reply.ecode, p.reply.nlines);
            sbuf_add(sum, p.reply.text.s, p.reply.text.len);
            sbuf_addch(sum, '|');
            reply_parser_next(&p);
            st = REPLY_MORE;
            start = pos;
        }
    }
    sbuf_printf(sum, "end %d %s", st, st == REPLY_ERROR ? p.error : "");
    reply_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t seed = (uint32_t)data[0] << 8 | data[1] | 0x10000u;
    struct sbuf a, b;
    sbuf_init(&a);
    sbuf_init(&b);
    run((const char *)data + 2, size - 2, 0, true, &a);
    run((const char *)data + 2, size - 2, seed, false, &b);
    if (a.len != b.len || strcmp(a.s, b.s) != 0)
        abort();
    sbuf_free(&a);
    sbuf_free(&b);
    return 0;
}
