/* fuzz_smtp_cmd.c - libFuzzer target for smtp_cmd_split, smtp_parse_mail, smtp_parse_rcpt,
 * smtp_parse_bdat and xtext.  Properties: no crash; arguments stay inside the line; accepted
 * parameters are well-formed; refusals carry a 5xx reply; xtext encode/decode round-trips. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "smtp/smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(const struct parse_err *e)
{
    if (e->code < 500 || e->code > 555 || e->ecode == NULL || e->text == NULL ||
        e->ecode[0] != '5' || strlen(e->text) == 0)
        abort();
}

static bool has_8bit(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return true;
    return false;
}

static void fuzz_split(const char *in, size_t len)
{
    struct smtp_cmd c;
    smtp_cmd_split(in, len, &c);
    if (c.verb >= CMD_NVERBS || smtp_verb_name(c.verb) == NULL)
        abort();
    if (c.arglen > 0 && (c.arg < in || c.arg + c.arglen != in + len))
        abort();
    if (c.no_keyword && c.verb != CMD_MAIL && c.verb != CMD_RCPT)
        abort();
}

static void fuzz_mail(const char *in, size_t len, bool dsn, bool utf8, uint64_t limit)
{
    struct mail_params m;
    struct parse_err e;
    if (!smtp_parse_mail(in, len, dsn, utf8, limit, &m, &e)) {
        check_err(&e);
        return;
    }
    if ((!utf8 && m.smtputf8) || (!m.smtputf8 && has_8bit(m.sender)))
        abort();
    if ((!dsn && (m.ret != DSN_RET_UNSET || m.envid[0])) || (limit && m.size > limit))
        abort();
    struct mailbox mb;
    if (m.sender[0] && addr_parse_mailbox(m.sender, strlen(m.sender), m.smtputf8, &mb) != ADDR_OK)
        abort();
    char dec[sizeof(m.envid)];
    if (m.envid[0] && !xtext_decode(m.envid, strlen(m.envid), dec, 101))
        abort();
    for (const char *d = m.envid[0] ? dec : ""; *d; d++)
        if (*d < 0x20 || *d > 0x7e)
            abort();
}

static void fuzz_rcpt(const char *in, size_t len, bool dsn, bool utf8)
{
    struct rcpt_params r;
    struct parse_err e;
    if (!smtp_parse_rcpt(in, len, dsn, utf8, &r, &e)) {
        check_err(&e);
        return;
    }
    if ((!utf8 && has_8bit(r.rcpt)) || (!dsn && (r.notify || r.orcpt[0])) || r.rcpt[0] == '\0')
        abort();
    if ((r.notify & DSN_NOTIFY_NEVER) && r.notify != DSN_NOTIFY_NEVER)
        abort();
    if (strlen(r.orcpt) > 500)
        abort();
    struct mailbox mb;
    if (strcmp(r.rcpt, "postmaster") != 0 &&
        addr_parse_mailbox(r.rcpt, strlen(r.rcpt), utf8, &mb) != ADDR_OK)
        abort();
}

/* fuzz_xtext - encode then decode gives the input back (unless it holds a NUL) */
static void fuzz_xtext(const char *in, size_t len)
{
    size_t encsz = len * 3 + 1;
    char *enc = xmalloc(encsz), *dec = xmalloc(len + 1);
    if (!xtext_encode(in, len, enc, encsz) || !xtext_valid(enc, strlen(enc)))
        abort();
    bool ok = xtext_decode(enc, strlen(enc), dec, len + 1);
    if (ok != (memchr(in, '\0', len) == NULL) || (ok && memcmp(dec, in, len) != 0))
        abort();
    /* Whatever decodes was valid, and re-encodes to valid xtext. */
    if (xtext_decode(in, len, dec, len + 1)) {
        if (!xtext_valid(in, len) || !xtext_encode(dec, strlen(dec), enc, encsz))
            abort();
    }
    free(enc);
    free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool dsn = data[0] & 1, utf8 = data[0] & 2;
    uint64_t limit = (data[0] & 4) ? 1000 : 0;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    fuzz_split(in, len);
    fuzz_mail(in, len, dsn, utf8, limit);
    fuzz_rcpt(in, len, dsn, utf8);
    uint64_t bsize;
    bool last;
    struct parse_err e;
    if (!smtp_parse_bdat(in, len, &bsize, &last, &e))
        check_err(&e);
    fuzz_xtext(in, len);
    return 0;
}
