/* test_smtp_cmd.c - SMTP verbs, MAIL/RCPT parameters, BDAT, xtext. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/core.h"
#include "smtp/smtp.h"

#define TEST(name) static void name(void **state)
#define UNUSED (void)state

static void split(const char *line, struct smtp_cmd *c)
{
    smtp_cmd_split(line, strlen(line), c);
}

static bool mail(const char *arg, bool dsn, bool utf8, uint64_t limit, struct mail_params *m,
                 struct parse_err *e)
{
    return smtp_parse_mail(arg, strlen(arg), dsn, utf8, limit, m, e);
}

static bool rcpt(const char *arg, bool dsn, bool utf8, struct rcpt_params *r, struct parse_err *e)
{
    return smtp_parse_rcpt(arg, strlen(arg), dsn, utf8, r, e);
}

/* assert_err - the reply in e is code ecode text */
#define assert_err(e, c, ec, t)                                                                    \
    do {                                                                                           \
        assert_int_equal((e).code, (c));                                                           \
        assert_string_equal((e).ecode, (ec));                                                      \
        assert_string_equal((e).text, (t));                                                        \
    } while (0)

/* mail_fails - MAIL arg (DSN and SMTPUTF8 on, 1000-byte limit) fails with code and ecode */
static void mail_fails(const char *arg, int code, const char *ecode)
{
    struct mail_params m;
    struct parse_err e;
    if (mail(arg, true, true, 1000, &m, &e))
        fail_msg("MAIL accepted: %s", arg);
    if (e.code != code || strcmp(e.ecode, ecode) != 0)
        fail_msg("MAIL %s: got %d %s %s", arg, e.code, e.ecode, e.text);
    assert_string_equal(m.sender, "");
}

static void rcpt_fails(const char *arg, int code, const char *ecode)
{
    struct rcpt_params r;
    struct parse_err e;
    if (rcpt(arg, true, false, &r, &e))
        fail_msg("RCPT accepted: %s", arg);
    if (e.code != code || strcmp(e.ecode, ecode) != 0)
        fail_msg("RCPT %s: got %d %s %s", arg, e.code, e.ecode, e.text);
}

TEST(verbs)
{
    UNUSED;
    struct smtp_cmd c;
    static const struct { const char *line; enum smtp_verb v; const char *arg; } cases[] = {
        { "EHLO mx.example", CMD_EHLO, "mx.example" }, { "helo  x", CMD_HELO, "x" },
        { "DATA", CMD_DATA, "" },       { "data ", CMD_DATA, "" },
        { "BDAT 10 LAST", CMD_BDAT, "10 LAST" }, { "RSET", CMD_RSET, "" },
        { "NoOp hi", CMD_NOOP, "hi" },  { "QUIT", CMD_QUIT, "" },
        { "VRFY a", CMD_VRFY, "a" },    { "EXPN l", CMD_EXPN, "l" },
        { "HELP", CMD_HELP, "" },       { "STARTTLS", CMD_STARTTLS, "" },
        { "AUTH PLAIN xx", CMD_AUTH, "PLAIN xx" },
        { "NOOPX", CMD_UNKNOWN, "" },   { "NOO", CMD_UNKNOWN, "" },
        { "", CMD_UNKNOWN, "" },        { " NOOP", CMD_UNKNOWN, "" },
        { "NOOP\tx", CMD_UNKNOWN, "" }, { "XYZZY", CMD_UNKNOWN, "" },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        split(cases[i].line, &c);
        assert_int_equal(c.verb, cases[i].v);
        assert_int_equal(c.arglen, strlen(cases[i].arg));
        assert_memory_equal(c.arg, cases[i].arg, c.arglen);
        assert_false(c.no_keyword);
    }
    /* The argument is bounded by len, not by a NUL. */
    smtp_cmd_split("NOOP abcdef", 7, &c);
    assert_int_equal(c.verb, CMD_NOOP);
    assert_int_equal(c.arglen, 2);
    smtp_cmd_split("NO\0P", 4, &c);
    assert_int_equal(c.verb, CMD_UNKNOWN);
    assert_string_equal(smtp_verb_name(CMD_STARTTLS), "STARTTLS");
    assert_string_equal(smtp_verb_name(CMD_UNKNOWN), "UNKNOWN");
    assert_string_equal(smtp_verb_name(CMD_NVERBS), "INVALID");
    for (int v = 0; v < CMD_NVERBS; v++)
        assert_non_null(smtp_verb_name((enum smtp_verb)v));
}

TEST(mail_rcpt_keywords)
{
    UNUSED;
    struct smtp_cmd c;
    split("MAIL FROM:<a@b>", &c);
    assert_int_equal(c.verb, CMD_MAIL);
    assert_false(c.no_keyword);
    assert_string_equal(c.arg, "<a@b>");
    split("mail from: <a@b> SIZE=1", &c);
    assert_false(c.no_keyword);
    assert_string_equal(c.arg, "<a@b> SIZE=1");
    split("MAIL  From:<>", &c);
    assert_false(c.no_keyword);
    assert_string_equal(c.arg, "<>");
    split("RCPT TO:<x@y>", &c);
    assert_int_equal(c.verb, CMD_RCPT);
    assert_false(c.no_keyword);
    assert_string_equal(c.arg, "<x@y>");
    split("MAIL <a@b>", &c);
    assert_int_equal(c.verb, CMD_MAIL);
    assert_true(c.no_keyword);
    assert_string_equal(c.arg, "<a@b>");
    split("MAIL", &c);
    assert_true(c.no_keyword);
    assert_int_equal(c.arglen, 0);
    split("MAIL FROM <a@b>", &c);
    assert_true(c.no_keyword);
    split("RCPT FROM:<a@b>", &c);
    assert_int_equal(c.verb, CMD_RCPT);
    assert_true(c.no_keyword);
    split("RCPT TO", &c);
    assert_true(c.no_keyword);
    split("RCPT TO:", &c);
    assert_false(c.no_keyword);
    assert_int_equal(c.arglen, 0);
}

TEST(mail_plain)
{
    UNUSED;
    struct mail_params m;
    struct parse_err e;
    assert_true(mail("<Joe@Example.COM>", false, false, 0, &m, &e));
    assert_string_equal(m.sender, "Joe@example.com");
    assert_false(m.size_given);
    assert_int_equal(m.body, BODY_UNSET);
    assert_int_equal(m.ret, DSN_RET_UNSET);
    assert_false(m.smtputf8);
    assert_string_equal(m.envid, "");
    assert_true(mail("<>", false, false, 0, &m, &e));
    assert_string_equal(m.sender, "");
    assert_true(mail("<a@b>   ", false, false, 0, &m, &e));
    assert_true(mail("<@r1,@r2:a@b>", false, false, 0, &m, &e));
    assert_string_equal(m.sender, "a@b");
}

TEST(mail_all_params)
{
    UNUSED;
    struct mail_params m;
    struct parse_err e;
    assert_true(mail("<a@b> SIZE=1000  body=8BITMIME SMTPUTF8 RET=hdrs ENVID=QQ+2BZ", true, true,
                     1000, &m, &e));
    assert_true(m.size_given);
    assert_int_equal(m.size, 1000);
    assert_int_equal(m.body, BODY_8BITMIME);
    assert_true(m.smtputf8);
    assert_int_equal(m.ret, DSN_RET_HDRS);
    assert_string_equal(m.envid, "QQ+2BZ");
    assert_true(mail("<> BODY=7bit RET=FULL", true, false, 0, &m, &e));
    assert_int_equal(m.body, BODY_7BIT);
    assert_int_equal(m.ret, DSN_RET_FULL);
    assert_true(mail("<> BODY=BINARYMIME", false, false, 0, &m, &e));
    assert_int_equal(m.body, BODY_BINARYMIME);
}

TEST(mail_size)
{
    UNUSED;
    struct mail_params m;
    struct parse_err e;
    assert_true(mail("<> SIZE=0", false, false, 10, &m, &e));
    assert_true(m.size_given);
    assert_int_equal(m.size, 0);
    assert_true(mail("<> SIZE=10", false, false, 10, &m, &e));
    assert_false(mail("<> SIZE=11", false, false, 10, &m, &e));
    assert_err(e, 552, "5.3.4", "Message size exceeds fixed maximum message size");
    assert_true(mail("<> SIZE=18446744073709551615", false, false, 0, &m, &e));
    assert_int_equal(m.size, UINT64_MAX);
    assert_false(mail("<> SIZE=18446744073709551616", false, false, 0, &m, &e));
    assert_int_equal(e.code, 552);
    assert_false(mail("<> SIZE=99999999999999999999", false, false, 0, &m, &e));
    assert_int_equal(e.code, 552);
    assert_true(mail("<> SIZE=00000000000000000001", false, false, 0, &m, &e));
    assert_false(mail("<> SIZE=000000000000000000001", false, false, 0, &m, &e));
    assert_err(e, 501, "5.5.4", "Invalid SIZE value");
    mail_fails("<> SIZE=", 501, "5.5.4");
    mail_fails("<> SIZE", 501, "5.5.4");
    mail_fails("<> SIZE=-1", 501, "5.5.4");
    mail_fails("<> SIZE=1k", 501, "5.5.4");
    mail_fails("<> SIZE=+1", 501, "5.5.4");
    mail_fails("<> SIZE=1 SIZE=1", 501, "5.5.4");
}

TEST(mail_param_errors)
{
    UNUSED;
    struct mail_params m;
    struct parse_err e;
    assert_false(mail("<> FOO=bar", true, true, 0, &m, &e));
    assert_err(e, 555, "5.5.4", "Unsupported parameter");
    assert_false(mail("<> BODY=8BITMIME body=7BIT", true, true, 0, &m, &e));
    assert_err(e, 501, "5.5.4", "Duplicate parameter");
    assert_false(mail("<> BODY=9BIT", true, true, 0, &m, &e));
    assert_err(e, 501, "5.5.4", "Invalid BODY value");
    assert_false(mail("<> SMTPUTF8=yes", true, true, 0, &m, &e));
    assert_err(e, 501, "5.5.4", "SMTPUTF8 takes no value");
    assert_false(mail("<> SMTPUTF8", true, false, 0, &m, &e));
    assert_err(e, 555, "5.5.4", "Unsupported parameter");
    assert_false(mail("<> RET=FULL", false, true, 0, &m, &e));
    assert_err(e, 555, "5.5.4", "Unsupported parameter");
    assert_false(mail("<> ENVID=x", false, true, 0, &m, &e));
    assert_err(e, 555, "5.5.4", "Unsupported parameter");
    assert_false(mail("<> RET=BODY", true, true, 0, &m, &e));
    assert_err(e, 501, "5.5.4", "Invalid RET value");
    assert_false(mail("<>SIZE=1", true, true, 0, &m, &e));
    assert_err(e, 501, "5.5.4", "Syntax error in parameters");
    mail_fails("<> =1", 501, "5.5.4");
    mail_fails("<> -X=1", 501, "5.5.4");
    mail_fails("<> X_Y=1", 501, "5.5.4");
    mail_fails("<> SIZE=1\t", 501, "5.5.4");
    mail_fails("<> RET", 501, "5.5.4");
    mail_fails("<> RET=", 501, "5.5.4");
    mail_fails("<> BODY", 501, "5.5.4");
    mail_fails("<> SMTPUTF8 SMTPUTF8", 501, "5.5.4");
    mail_fails("<> RET=FULL RET=HDRS", 501, "5.5.4");
    mail_fails("<> NOTIFY=NEVER", 555, "5.5.4");
    mail_fails("<> ORCPT=rfc822;a@b", 555, "5.5.4");
    mail_fails("<> AUTH=<>", 555, "5.5.4");
    mail_fails("<> X-UNKNOWN", 555, "5.5.4");
}

TEST(mail_envid)
{
    UNUSED;
    struct mail_params m;
    struct parse_err e;
    char buf[400], envid[101];
    memset(envid, 'x', 100);
    envid[100] = '\0';
    str_fmt(buf, sizeof(buf), "<> ENVID=%s", envid);
    assert_true(mail(buf, true, false, 0, &m, &e));
    assert_string_equal(m.envid, envid);
    str_fmt(buf, sizeof(buf), "<> ENVID=%sx", envid);
    assert_false(mail(buf, true, false, 0, &m, &e));
    assert_err(e, 501, "5.5.4", "Invalid ENVID value");
    /* 100 decoded characters, each encoded: 300 as received. */
    size_t o = str_copy(buf, "<> ENVID=", sizeof(buf));
    for (int i = 0; i < 100; i++)
        o += str_copy(buf + o, "+2B", sizeof(buf) - o);
    assert_true(mail(buf, true, false, 0, &m, &e));
    assert_int_equal(strlen(m.envid), 300);
    mail_fails("<> ENVID=", 501, "5.5.4");
    mail_fails("<> ENVID", 501, "5.5.4");
    mail_fails("<> ENVID=a+2b", 501, "5.5.4");
    mail_fails("<> ENVID=a+2", 501, "5.5.4");
    mail_fails("<> ENVID=a+00", 501, "5.5.4");
    mail_fails("<> ENVID=a\x80", 501, "5.5.4");
    /* Decoded values must be printable: no header injection into a later DSN. */
    mail_fails("<> ENVID=a+0D+0ABcc:x", 501, "5.5.4");
    mail_fails("<> ENVID=a+09", 501, "5.5.4");
    mail_fails("<> ENVID=a+7F", 501, "5.5.4");
    mail_fails("<> ENVID=a+C3+A9", 501, "5.5.4");
    assert_true(mail("<> ENVID=a+20b", true, false, 0, &m, &e));
}

TEST(mail_bad_paths)
{
    UNUSED;
    struct mail_params m;
    struct parse_err e;
    char buf[400];
    assert_false(mail("a@b", false, false, 0, &m, &e));
    assert_err(e, 501, "5.1.7", "Bad sender address syntax");
    assert_false(mail("", false, false, 0, &m, &e));
    assert_err(e, 501, "5.1.7", "Bad sender address syntax");
    assert_false(smtp_parse_mail("<a\0@b>", 7, false, false, 0, &m, &e));
    assert_err(e, 501, "5.1.7", "Bad sender address syntax");
    str_fmt(buf, sizeof(buf), "<%0*d@b>", 65, 0);
    assert_false(mail(buf, false, false, 0, &m, &e));
    assert_err(e, 501, "5.1.7", "Sender local part too long");
    mail_fails("<a@b..c>", 501, "5.1.7");
    mail_fails("<a@b", 501, "5.1.7");
    mail_fails("<a@b>>", 501, "5.5.4");
}

TEST(mail_utf8)
{
    UNUSED;
    struct mail_params m;
    struct parse_err e;
    const char *u = "<\xc3\xa9t\xc3\xa9@b\xc3\xbc" "cher.example> SMTPUTF8";
    assert_true(mail(u, false, true, 0, &m, &e));
    assert_string_equal(m.sender, "\xc3\xa9t\xc3\xa9@b\xc3\xbc" "cher.example");
    assert_true(m.smtputf8);
    /* Not advertised. */
    assert_false(mail("<\xc3\xa9@b>", false, false, 0, &m, &e));
    assert_err(e, 553, "5.6.7", "Non-ASCII sender address needs SMTPUTF8");
    /* Advertised but not requested. */
    assert_false(mail("<\xc3\xa9@b>", false, true, 0, &m, &e));
    assert_err(e, 553, "5.6.7", "Non-ASCII sender address needs SMTPUTF8");
    /* Invalid UTF-8 is a syntax error even with SMTPUTF8. */
    assert_false(mail("<\xc3@b> SMTPUTF8", false, true, 0, &m, &e));
    assert_err(e, 501, "5.1.7", "Invalid UTF-8 in sender address");
    /* ASCII sender with SMTPUTF8 is fine. */
    assert_true(mail("<a@b> SMTPUTF8", false, true, 0, &m, &e));
}

TEST(rcpt_plain)
{
    UNUSED;
    struct rcpt_params r;
    struct parse_err e;
    assert_true(rcpt("<Bob@Example.ORG>", false, false, &r, &e));
    assert_string_equal(r.rcpt, "Bob@example.org");
    assert_int_equal(r.notify, 0);
    assert_string_equal(r.orcpt, "");
    assert_true(rcpt("<PostMaster>", false, false, &r, &e));
    assert_string_equal(r.rcpt, "postmaster");
    assert_true(rcpt("<postmaster> ", false, false, &r, &e));
    assert_false(rcpt("<postmaster>x", false, false, &r, &e));
    assert_false(rcpt("<>", false, false, &r, &e));
    assert_err(e, 501, "5.1.3", "Bad recipient address syntax");
    assert_false(rcpt("<abuse>", false, false, &r, &e));
    assert_err(e, 501, "5.1.3", "Bad recipient address syntax");
    assert_true(rcpt("<@hop1,@hop2:u@d>", false, false, &r, &e));
    assert_string_equal(r.rcpt, "u@d");
}

TEST(rcpt_notify)
{
    UNUSED;
    struct rcpt_params r;
    struct parse_err e;
    assert_true(rcpt("<a@b> NOTIFY=NEVER", true, false, &r, &e));
    assert_int_equal(r.notify, DSN_NOTIFY_NEVER);
    assert_true(rcpt("<a@b> notify=success,Failure,DELAY", true, false, &r, &e));
    assert_int_equal(r.notify, DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY);
    assert_true(rcpt("<a@b> NOTIFY=DELAY", true, false, &r, &e));
    assert_int_equal(r.notify, DSN_NOTIFY_DELAY);
    assert_false(rcpt("<a@b> NOTIFY=NEVER,SUCCESS", true, false, &r, &e));
    assert_err(e, 501, "5.5.4", "NOTIFY=NEVER cannot be combined with other values");
    assert_false(rcpt("<a@b> NOTIFY=SUCCESS,NEVER", true, false, &r, &e));
    assert_int_equal(e.code, 501);
    assert_false(rcpt("<a@b> NOTIFY=SUCCESS", false, false, &r, &e));
    assert_err(e, 555, "5.5.4", "Unsupported parameter");
    rcpt_fails("<a@b> NOTIFY=", 501, "5.5.4");
    rcpt_fails("<a@b> NOTIFY", 501, "5.5.4");
    rcpt_fails("<a@b> NOTIFY=SUCCESS,", 501, "5.5.4");
    rcpt_fails("<a@b> NOTIFY=,SUCCESS", 501, "5.5.4");
    rcpt_fails("<a@b> NOTIFY=SUCCESS,,DELAY", 501, "5.5.4");
    rcpt_fails("<a@b> NOTIFY=SUCCESS,SUCCESS", 501, "5.5.4");
    rcpt_fails("<a@b> NOTIFY=ALWAYS", 501, "5.5.4");
    rcpt_fails("<a@b> NOTIFY=NEVER NOTIFY=NEVER", 501, "5.5.4");
}

TEST(rcpt_orcpt)
{
    UNUSED;
    struct rcpt_params r;
    struct parse_err e;
    char buf[700];
    assert_true(rcpt("<a@b> ORCPT=rfc822;Joe+2BX@example.com NOTIFY=FAILURE", true, false, &r,
                     &e));
    assert_string_equal(r.orcpt, "rfc822;Joe+2BX@example.com");
    assert_int_equal(r.notify, DSN_NOTIFY_FAILURE);
    assert_true(rcpt("<a@b> ORCPT=utf-8;j\\x{00F6}rg@example.com", true, false, &r, &e));
    /* 500 as received is the bound. */
    size_t o = str_copy(buf, "<a@b> ORCPT=rfc822;", sizeof(buf));
    memset(buf + o, 'x', 493);
    buf[o + 493] = '\0';
    assert_true(rcpt(buf, true, false, &r, &e));
    assert_int_equal(strlen(r.orcpt), 500);
    buf[o + 493] = 'x';
    buf[o + 494] = '\0';
    assert_false(rcpt(buf, true, false, &r, &e));
    assert_err(e, 501, "5.5.4", "Invalid ORCPT value");
    rcpt_fails("<a@b> ORCPT=rfc822", 501, "5.5.4");
    rcpt_fails("<a@b> ORCPT=rfc822;", 501, "5.5.4");
    rcpt_fails("<a@b> ORCPT=;a@b", 501, "5.5.4");
    rcpt_fails("<a@b> ORCPT=rfc(822);a@b", 501, "5.5.4");
    rcpt_fails("<a@b> ORCPT=rfc822;a+2x", 501, "5.5.4");
    rcpt_fails("<a@b> ORCPT=rfc822;a+00", 501, "5.5.4");
    rcpt_fails("<a@b> ORCPT=rfc822;a+0D+0AX:y", 501, "5.5.4");
    rcpt_fails("<a@b> ORCPT=rfc822;a+FF", 501, "5.5.4");
    rcpt_fails("<a@b> ORCPT", 501, "5.5.4");
    rcpt_fails("<a@b> ORCPT=rfc822;a ORCPT=rfc822;b", 501, "5.5.4");
    rcpt_fails("<a@b> SIZE=10", 555, "5.5.4");
    rcpt_fails("<a@b> SMTPUTF8", 555, "5.5.4");
    rcpt_fails("<a@b> RET=FULL", 555, "5.5.4");
}

TEST(rcpt_bad_paths)
{
    UNUSED;
    struct rcpt_params r;
    struct parse_err e;
    char buf[400];
    assert_false(rcpt("<\xc3\xa9@b>", false, false, &r, &e));
    assert_err(e, 553, "5.6.7", "Non-ASCII recipient address needs SMTPUTF8");
    assert_true(rcpt("<\xc3\xa9@b>", false, true, &r, &e));
    assert_false(rcpt("<\xc3\xa9\xc3@b>", false, true, &r, &e));
    assert_err(e, 501, "5.1.3", "Invalid UTF-8 in recipient address");
    str_fmt(buf, sizeof(buf), "<a@%0*d.com>", 252, 0);
    assert_false(rcpt(buf, false, false, &r, &e));
    assert_err(e, 501, "5.1.3", "Recipient domain too long");
    str_fmt(buf, sizeof(buf), "<%0*d@b>", 65, 0);
    assert_false(rcpt(buf, false, false, &r, &e));
    assert_err(e, 501, "5.1.3", "Recipient local part too long");
    str_fmt(buf, sizeof(buf), "<%0*d@%0*d.%0*d.%0*d.com>", 64, 0, 63, 0, 63, 0, 60, 0);
    assert_false(rcpt(buf, false, false, &r, &e));
    assert_err(e, 501, "5.1.3", "Recipient path too long");
    assert_false(smtp_parse_rcpt("<a@b>\0", 6, false, false, &r, &e));
    assert_err(e, 501, "5.1.3", "Bad recipient address syntax");
    rcpt_fails("<a b@c>", 501, "5.1.3");
    rcpt_fails("a@b", 501, "5.1.3");
}

TEST(bdat)
{
    UNUSED;
    uint64_t size;
    bool last;
    struct parse_err e;
#define BDAT(s) smtp_parse_bdat((s), strlen(s), &size, &last, &e)
    assert_true(BDAT("100"));
    assert_int_equal(size, 100);
    assert_false(last);
    assert_true(BDAT("0 LAST"));
    assert_int_equal(size, 0);
    assert_true(last);
    assert_true(BDAT("7  last "));
    assert_true(last);
    assert_true(BDAT("18446744073709551615"));
    assert_int_equal(size, UINT64_MAX);
    assert_false(BDAT("18446744073709551616"));
    assert_err(e, 501, "5.5.4", "Syntax: BDAT chunk-size [LAST]");
    assert_false(BDAT("000000000000000000001"));
    assert_false(BDAT(""));
    assert_false(BDAT("LAST"));
    assert_false(BDAT("-1"));
    assert_false(BDAT("10LAST"));
    assert_false(BDAT("10 LASTX"));
    assert_false(BDAT("10 LAST x"));
    assert_false(BDAT("10 FIRST"));
    assert_false(BDAT("1 0"));
    assert_false(BDAT(" 10"));
    assert_false(smtp_parse_bdat("10\0", 3, &size, &last, &e));
#undef BDAT
}

TEST(xtext)
{
    UNUSED;
    char out[64];
    assert_true(xtext_valid("", 0));
    assert_true(xtext_valid("abc+2B+3D", 9));
    assert_true(xtext_valid("+41", 3)); /* over-encoded but well-formed */
    assert_false(xtext_valid("a b", 3));
    assert_false(xtext_valid("a=b", 3));
    assert_false(xtext_valid("a+", 2));
    assert_false(xtext_valid("a+2", 3));
    assert_false(xtext_valid("+2b", 3));
    assert_false(xtext_valid("+G0", 3));
    assert_false(xtext_valid("a\x7f", 2));
    assert_false(xtext_valid("a\x80", 2));
    assert_false(xtext_valid("a\0", 2));
    assert_true(xtext_decode("a+2Bb+3D+20", 11, out, sizeof(out)));
    assert_string_equal(out, "a+b= ");
    assert_false(xtext_decode("a+00", 4, out, sizeof(out)));
    assert_false(xtext_decode("abcd", 4, out, 4));
    assert_true(xtext_decode("abc", 3, out, 4));
    assert_false(xtext_decode("", 0, out, 0));
    assert_true(xtext_encode("a+b= \x01\xff", 7, out, sizeof(out)));
    assert_string_equal(out, "a+2Bb+3D+20+01+FF");
    assert_false(xtext_encode("++", 2, out, 6));
    assert_true(xtext_encode("++", 2, out, 7));
    assert_false(xtext_encode("", 0, out, 0));
}

TEST(xtext_round_trip)
{
    UNUSED;
    char raw[256], enc[800], dec[300];
    for (int i = 1; i < 256; i++)
        raw[i - 1] = (char)i;
    assert_true(xtext_encode(raw, 255, enc, sizeof(enc)));
    assert_true(xtext_valid(enc, strlen(enc)));
    assert_true(xtext_decode(enc, strlen(enc), dec, sizeof(dec)));
    assert_int_equal(strlen(dec), 255);
    assert_memory_equal(dec, raw, 255);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(verbs),           cmocka_unit_test(mail_rcpt_keywords),
        cmocka_unit_test(mail_plain),      cmocka_unit_test(mail_all_params),
        cmocka_unit_test(mail_size),       cmocka_unit_test(mail_param_errors),
        cmocka_unit_test(mail_envid),      cmocka_unit_test(mail_bad_paths),
        cmocka_unit_test(mail_utf8),       cmocka_unit_test(rcpt_plain),
        cmocka_unit_test(rcpt_notify),     cmocka_unit_test(rcpt_orcpt),
        cmocka_unit_test(rcpt_bad_paths),  cmocka_unit_test(bdat),
        cmocka_unit_test(xtext),           cmocka_unit_test(xtext_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
