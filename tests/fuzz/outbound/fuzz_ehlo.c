/* fuzz_ehlo.c - libFuzzer target for the outbound engine's pure parsers and formatters:
 * so_parse_ehlo on arbitrary reply text, and so_fmt_mail / so_fmt_rcpt on arbitrary
 * arguments.  Properties: no crash; formatted commands are exactly one line (a single CRLF,
 * at the end) or refused; extensions are only the known bits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "outbound/smtp_out_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* one_line - exactly one CRLF, at the end, and no other CR or LF or NUL */
static void check_one_line(const struct sbuf *b)
{
    if (b->len < 2 || b->s[b->len - 2] != '\r' || b->s[b->len - 1] != '\n')
        abort();
    for (size_t i = 0; i + 2 < b->len; i++)
        if (b->s[i] == '\r' || b->s[i] == '\n' || b->s[i] == '\0')
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned exts;
    uint64_t limit;
    so_parse_ehlo((const char *)data, size, &exts, &limit);
    if (exts & ~0xffu)
        abort();
    if (limit && !(exts & EXT_SIZE))
        abort();

    /* split the input into sender, recipient, orcpt and envid at NUL bytes */
    char *s = malloc(size + 4);
    memcpy(s, data, size);
    memset(s + size, 0, 4);
    const char *parts[4];
    size_t at = 0;
    for (int i = 0; i < 4; i++) {
        parts[i] = s + (at < size ? at : size);
        at += strlen(parts[i]) + 1;
    }
    struct mail_out m = { parts[0], size, size & 1, size & 2, (enum dsn_ret)(size % 3), parts[3] };
    struct sbuf b;
    sbuf_init(&b);
    if (so_fmt_mail(&b, &m, exts))
        check_one_line(&b);
    sbuf_reset(&b);
    if (so_fmt_rcpt(&b, parts[1], (unsigned)size & 15, parts[2], exts | EXT_DSN))
        check_one_line(&b);
    sbuf_free(&b);
    free(s);
    return 0;
}
