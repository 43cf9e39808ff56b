/* fuzz_addr.c - libFuzzer target for addr_parse_mailbox, addr_parse_path, addr_split,
 * addr_valid_domain and utf8_valid.  Properties: no crash; accepted addresses respect the
 * RFC 5321 limits, are ASCII without SMTPUTF8, and parse again to themselves. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "smtp/smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool has_8bit(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return true;
    return false;
}

/* check_grammar - independent checks of RFC 5321 syntax on an accepted mailbox */
static void check_grammar(const struct mailbox *mb)
{
    const char *l = mb->local, *d = mb->domain;
    size_t llen = strlen(l), label = 0;
    for (size_t i = 0; l[0] != '"' && i < llen; i++) {
        unsigned char c = (unsigned char)l[i];
        if (c <= ' ' || c == 0x7f || strchr("\"(),:;<>@[\\]", c) ||
            (c == '.' && (i == 0 || i + 1 == llen || l[i + 1] == '.')))
            abort();
    }
    if (l[0] == '"' && (llen < 2 || l[llen - 1] != '"'))
        abort();
    if (mb->domain_is_literal)
        return;
    for (size_t i = 0;; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || d[i - 1] == '-' || d[i - label] == '-')
                abort();
            if (c == '\0')
                return;
            label = 0;
            continue;
        }
        if (!(c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            abort();
        label++;
    }
}

/* check_mailbox - invariants of an accepted mailbox, and that its canonical form is stable */
static void check_mailbox(const struct mailbox *mb, bool utf8)
{
    char buf[ADDR_PATH_MAX * 2];
    struct mailbox again;
    if (strlen(mb->local) > ADDR_LOCAL_MAX || strlen(mb->domain) > ADDR_DOMAIN_MAX)
        abort();
    if (!utf8 && (has_8bit(mb->local) || has_8bit(mb->domain)))
        abort();
    check_grammar(mb);
    for (const char *d = mb->domain; *d; d++)
        if (*d >= 'A' && *d <= 'Z' && !(mb->domain_is_literal && d - mb->domain <= 5))
            abort();
    if (!str_fmt(buf, sizeof(buf), "%s@%s", mb->local, mb->domain))
        abort();
    if (addr_parse_mailbox(buf, strlen(buf), utf8, &again) != ADDR_OK ||
        strcmp(again.local, mb->local) != 0 || strcmp(again.domain, mb->domain) != 0)
        abort();
}

/* check_path - an accepted path: bounded, end inside the input, canonical form stable */
static void check_path(const char *s, const char *out, const char *end, bool utf8)
{
    char buf[ADDR_PATH_MAX * 2], again[ADDR_PATH_MAX + 1];
    const char *end2;
    if (end <= s || end > s + strlen(s) || end[-1] != '>' || strlen(out) > ADDR_PATH_MAX - 2)
        abort();
    if (!utf8 && has_8bit(out))
        abort();
    if (*out == '\0')
        return;
    str_fmt(buf, sizeof(buf), "<%s>", out);
    if (addr_parse_path(buf, false, utf8, again, sizeof(again), &end2) != ADDR_OK ||
        strcmp(again, out) != 0 || *end2 != '\0')
        abort();
    char l[ADDR_PATH_MAX], d[ADDR_PATH_MAX];
    if (!addr_split(out, l, sizeof(l), d, sizeof(d)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool utf8 = data[0] & 1, empty_ok = data[0] & 2, literal = data[0] & 4;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    struct mailbox mb;
    if (addr_parse_mailbox(in, len, utf8, &mb) == ADDR_OK)
        check_mailbox(&mb, utf8);
    char *s = xstrndup(in, len); /* stops at the first NUL, as a C string would */
    char out[ADDR_PATH_MAX + 1];
    const char *end;
    if (addr_parse_path(s, empty_ok, utf8, out, sizeof(out), &end) == ADDR_OK)
        check_path(s, out, end, utf8);
    if (addr_valid_domain(s, literal) && (strlen(s) > ADDR_DOMAIN_MAX || has_8bit(s)))
        abort();
    char l[64], d[64];
    addr_split(s, l, sizeof(l), d, sizeof(d));
    utf8_valid(in, len);
    addr_err_text(addr_parse_mailbox(s, strlen(s), !utf8, &mb));
    free(s);
    return 0;
}
