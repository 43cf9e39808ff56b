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

/* The extensions the server advertised to the client: DSN, SMTPUTF8. */
enum { NO_EXT = 0, DSN = 1, UTF8 = 2 };

/* A string literal and its length (embedded NULs count). */
#define S(lit) lit, sizeof(lit) - 1

/* mail_refusal - a MAIL FROM argument that must be refused, and the reply it must get: "code",
 * "code ecode" or "code ecode text" (what is left out is not checked) */
struct mail_refusal {
    const char *arg;
    size_t len;
    unsigned ext;        /* DSN, UTF8: what was advertised */
    uint64_t limit;      /* the SIZE limit, 0 for none */
    const char *reply;
};

/* rcpt_refusal - a RCPT TO argument that must be refused, and the reply it must get */
struct rcpt_refusal {
    const char *arg;
    size_t len;
    unsigned ext;
    const char *reply;
};

/* split_case - a command line and how smtp_cmd_split must cut it */
struct split_case {
    const char *line;
    enum smtp_verb verb;
    bool no_keyword;
    const char *arg;     /* NULL: not checked */
};

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

/* check_reply - where names the case; e must be want: "code", "code ecode" or the whole
 * "code ecode text" */
static void check_reply(const char *where, const struct parse_err *e, const char *want)
{
    char code[8], code_ecode[32], got[256];
    str_fmt(code, sizeof(code), "%d", e->code);
    str_fmt(code_ecode, sizeof(code_ecode), "%d %s", e->code, e->ecode);
    str_fmt(got, sizeof(got), "%d %s %s", e->code, e->ecode, e->text);
    if (strcmp(want, code) != 0 && strcmp(want, code_ecode) != 0 && strcmp(want, got) != 0)
        fail_msg("%s: got \"%s\", want \"%s\"", where, got, want);
}

/* mail_refused - MAIL with c's argument must be refused with c's reply and no sender kept */
static void mail_refused(const struct mail_refusal *c, const char *where)
{
    struct mail_params m;
    struct parse_err e;
    if (smtp_parse_mail(c->arg, c->len, c->ext & DSN, c->ext & UTF8, c->limit, &m, &e))
        fail_msg("%s: MAIL accepted", where);
    check_reply(where, &e, c->reply);
    if (m.sender[0] != '\0')
        fail_msg("%s: MAIL refused but the sender is %s", where, m.sender);
}

/* rcpt_refused - RCPT with c's argument must be refused with c's reply */
static void rcpt_refused(const struct rcpt_refusal *c, const char *where)
{
    struct rcpt_params r;
    struct parse_err e;
    if (smtp_parse_rcpt(c->arg, c->len, c->ext & DSN, c->ext & UTF8, &r, &e))
        fail_msg("%s: RCPT accepted", where);
    check_reply(where, &e, c->reply);
}

/* RUN_REFUSALS - check (mail_refused or rcpt_refused) every row; a failure names "table[i]" */
#define RUN_REFUSALS(check, table)                                                                 \
    do {                                                                                           \
        char where_[600];                                                                          \
        for (size_t i_ = 0; i_ < ARRAY_LEN(table); i_++) {                                         \
            str_fmt(where_, sizeof(where_), "%s[%zu] \"%s\"", #table, i_, (table)[i_].arg);       \
            check(&(table)[i_], where_);                                                           \
        }                                                                                          \
    } while (0)

/* run_splits - every line of the table is cut as the row says */
static void run_splits(const struct split_case *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        struct smtp_cmd c;
        split(t[i].line, &c);
        if (c.verb != t[i].verb || c.no_keyword != t[i].no_keyword)
            fail_msg("%s[%zu] \"%s\": verb %s no_keyword %d, want %s %d", name, i, t[i].line,
                     smtp_verb_name(c.verb), c.no_keyword, smtp_verb_name(t[i].verb),
                     t[i].no_keyword);
        if (t[i].arg != NULL &&
            (c.arglen != strlen(t[i].arg) || memcmp(c.arg, t[i].arg, c.arglen) != 0))
            fail_msg("%s[%zu] \"%s\": arg \"%.*s\", want \"%s\"", name, i, t[i].line,
                     (int)c.arglen, c.arg, t[i].arg);
    }
}

static const struct split_case verb_cases[] = {
    { "EHLO mx.example", CMD_EHLO, false, "mx.example" },
    { "helo  x", CMD_HELO, false, "x" },
    { "DATA", CMD_DATA, false, "" },
    { "data ", CMD_DATA, false, "" },
    { "BDAT 10 LAST", CMD_BDAT, false, "10 LAST" },
    { "RSET", CMD_RSET, false, "" },
    { "NoOp hi", CMD_NOOP, false, "hi" },
    { "QUIT", CMD_QUIT, false, "" },
    { "VRFY a", CMD_VRFY, false, "a" },
    { "EXPN l", CMD_EXPN, false, "l" },
    { "HELP", CMD_HELP, false, "" },
    { "STARTTLS", CMD_STARTTLS, false, "" },
    { "AUTH PLAIN xx", CMD_AUTH, false, "PLAIN xx" },
    { "NOOPX", CMD_UNKNOWN, false, "" },
    { "NOO", CMD_UNKNOWN, false, "" },
    { "", CMD_UNKNOWN, false, "" },
    { " NOOP", CMD_UNKNOWN, false, "" },
    { "NOOP\tx", CMD_UNKNOWN, false, "" },
    { "XYZZY", CMD_UNKNOWN, false, "" },
};

TEST(verbs)
{
    UNUSED;
    struct smtp_cmd c;
    run_splits(verb_cases, ARRAY_LEN(verb_cases), "verb_cases");
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

/* MAIL and RCPT need FROM: and TO:; without them the verb stands and no_keyword is set. */
static const struct split_case keyword_cases[] = {
    { "MAIL FROM:<a@b>", CMD_MAIL, false, "<a@b>" },
    { "mail from: <a@b> SIZE=1", CMD_MAIL, false, "<a@b> SIZE=1" },
    { "MAIL  From:<>", CMD_MAIL, false, "<>" },
    { "RCPT TO:<x@y>", CMD_RCPT, false, "<x@y>" },
    { "MAIL <a@b>", CMD_MAIL, true, "<a@b>" },
    { "MAIL", CMD_MAIL, true, "" },
    { "MAIL FROM <a@b>", CMD_MAIL, true, NULL },
    { "RCPT FROM:<a@b>", CMD_RCPT, true, NULL },
    { "RCPT TO", CMD_RCPT, true, NULL },
    { "RCPT TO:", CMD_RCPT, false, "" },
};

TEST(mail_rcpt_keywords)
{
    UNUSED;
    run_splits(keyword_cases, ARRAY_LEN(keyword_cases), "keyword_cases");
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

static const struct mail_refusal size_refusals[] = {
    { S("<> SIZE=11"), NO_EXT, 10, "552 5.3.4 Message size exceeds fixed maximum message size" },
    { S("<> SIZE=18446744073709551616"), NO_EXT, 0, "552" },
    { S("<> SIZE=99999999999999999999"), NO_EXT, 0, "552" },
    { S("<> SIZE=000000000000000000001"), NO_EXT, 0, "501 5.5.4 Invalid SIZE value" },
    { S("<> SIZE="), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> SIZE"), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> SIZE=-1"), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> SIZE=1k"), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> SIZE=+1"), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> SIZE=1 SIZE=1"), DSN | UTF8, 1000, "501 5.5.4" },
};

TEST(mail_size)
{
    UNUSED;
    struct mail_params m;
    struct parse_err e;
    assert_true(mail("<> SIZE=0", false, false, 10, &m, &e));
    assert_true(m.size_given);
    assert_int_equal(m.size, 0);
    assert_true(mail("<> SIZE=10", false, false, 10, &m, &e));
    assert_true(mail("<> SIZE=18446744073709551615", false, false, 0, &m, &e));
    assert_int_equal(m.size, UINT64_MAX);
    assert_true(mail("<> SIZE=00000000000000000001", false, false, 0, &m, &e));
    RUN_REFUSALS(mail_refused, size_refusals);
}

static const struct mail_refusal param_refusals[] = {
    { S("<> FOO=bar"), DSN | UTF8, 0, "555 5.5.4 Unsupported parameter" },
    { S("<> BODY=8BITMIME body=7BIT"), DSN | UTF8, 0, "501 5.5.4 Duplicate parameter" },
    { S("<> BODY=9BIT"), DSN | UTF8, 0, "501 5.5.4 Invalid BODY value" },
    { S("<> SMTPUTF8=yes"), DSN | UTF8, 0, "501 5.5.4 SMTPUTF8 takes no value" },
    { S("<> SMTPUTF8"), DSN, 0, "555 5.5.4 Unsupported parameter" },
    { S("<> RET=FULL"), UTF8, 0, "555 5.5.4 Unsupported parameter" },
    { S("<> ENVID=x"), UTF8, 0, "555 5.5.4 Unsupported parameter" },
    { S("<> RET=BODY"), DSN | UTF8, 0, "501 5.5.4 Invalid RET value" },
    { S("<>SIZE=1"), DSN | UTF8, 0, "501 5.5.4 Syntax error in parameters" },
    { S("<> =1"), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> -X=1"), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> X_Y=1"), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> SIZE=1\t"), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> RET"), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> RET="), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> BODY"), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> SMTPUTF8 SMTPUTF8"), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> RET=FULL RET=HDRS"), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> NOTIFY=NEVER"), DSN | UTF8, 1000, "555 5.5.4" },
    { S("<> ORCPT=rfc822;a@b"), DSN | UTF8, 1000, "555 5.5.4" },
    { S("<> AUTH=<>"), DSN | UTF8, 1000, "555 5.5.4" },
    { S("<> X-UNKNOWN"), DSN | UTF8, 1000, "555 5.5.4" },
};

TEST(mail_param_errors)
{
    UNUSED;
    RUN_REFUSALS(mail_refused, param_refusals);
}

static const struct mail_refusal envid_refusals[] = {
    { S("<> ENVID="), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> ENVID"), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> ENVID=a+2b"), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> ENVID=a+2"), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> ENVID=a+00"), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> ENVID=a\x80"), DSN | UTF8, 1000, "501 5.5.4" },
    /* Decoded values must be printable: no header injection into a later DSN. */
    { S("<> ENVID=a+0D+0ABcc:x"), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> ENVID=a+09"), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> ENVID=a+7F"), DSN | UTF8, 1000, "501 5.5.4" },
    { S("<> ENVID=a+C3+A9"), DSN | UTF8, 1000, "501 5.5.4" },
};

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
    mail_refused(&(struct mail_refusal){ buf, strlen(buf), DSN, 0,
                                         "501 5.5.4 Invalid ENVID value" },
                 "ENVID of 101 characters");
    /* 100 decoded characters, each encoded: 300 as received. */
    size_t o = str_copy(buf, "<> ENVID=", sizeof(buf));
    for (int i = 0; i < 100; i++)
        o += str_copy(buf + o, "+2B", sizeof(buf) - o);
    assert_true(mail(buf, true, false, 0, &m, &e));
    assert_int_equal(strlen(m.envid), 300);
    RUN_REFUSALS(mail_refused, envid_refusals);
    assert_true(mail("<> ENVID=a+20b", true, false, 0, &m, &e));
}

static const struct mail_refusal path_refusals[] = {
    { S("a@b"), NO_EXT, 0, "501 5.1.7 Bad sender address syntax" },
    { S(""), NO_EXT, 0, "501 5.1.7 Bad sender address syntax" },
    { S("<a\0@b>\0"), NO_EXT, 0, "501 5.1.7 Bad sender address syntax" },
    { S("<a@b..c>"), DSN | UTF8, 1000, "501 5.1.7" },
    { S("<a@b"), DSN | UTF8, 1000, "501 5.1.7" },
    { S("<a@b>>"), DSN | UTF8, 1000, "501 5.5.4" },
};

TEST(mail_bad_paths)
{
    UNUSED;
    char buf[400];
    str_fmt(buf, sizeof(buf), "<%0*d@b>", 65, 0);
    mail_refused(&(struct mail_refusal){ buf, strlen(buf), NO_EXT, 0,
                                         "501 5.1.7 Sender local part too long" },
                 "local part of 65 characters");
    RUN_REFUSALS(mail_refused, path_refusals);
}

static const struct mail_refusal utf8_refusals[] = {
    /* SMTPUTF8 not advertised; advertised but not requested; invalid UTF-8 even with it. */
    { S("<\xc3\xa9@b>"), NO_EXT, 0, "553 5.6.7 Non-ASCII sender address needs SMTPUTF8" },
    { S("<\xc3\xa9@b>"), UTF8, 0, "553 5.6.7 Non-ASCII sender address needs SMTPUTF8" },
    { S("<\xc3@b> SMTPUTF8"), UTF8, 0, "501 5.1.7 Invalid UTF-8 in sender address" },
};

TEST(mail_utf8)
{
    UNUSED;
    struct mail_params m;
    struct parse_err e;
    const char *u = "<\xc3\xa9t\xc3\xa9@b\xc3\xbc" "cher.example> SMTPUTF8";
    assert_true(mail(u, false, true, 0, &m, &e));
    assert_string_equal(m.sender, "\xc3\xa9t\xc3\xa9@b\xc3\xbc" "cher.example");
    assert_true(m.smtputf8);
    RUN_REFUSALS(mail_refused, utf8_refusals);
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
    assert_true(rcpt("<@hop1,@hop2:u@d>", false, false, &r, &e));
    assert_string_equal(r.rcpt, "u@d");
}

/* NOTIFY= values that must be accepted, and the bits they set. */
static const struct {
    const char *arg;
    unsigned notify;
} notify_cases[] = {
    { "<a@b> NOTIFY=NEVER", DSN_NOTIFY_NEVER },
    { "<a@b> notify=success,Failure,DELAY",
      DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY },
    { "<a@b> NOTIFY=DELAY", DSN_NOTIFY_DELAY },
};

static const struct rcpt_refusal notify_refusals[] = {
    { S("<a@b> NOTIFY=NEVER,SUCCESS"), DSN,
      "501 5.5.4 NOTIFY=NEVER cannot be combined with other values" },
    { S("<a@b> NOTIFY=SUCCESS,NEVER"), DSN, "501" },
    { S("<a@b> NOTIFY=SUCCESS"), NO_EXT, "555 5.5.4 Unsupported parameter" },
    { S("<a@b> NOTIFY="), DSN, "501 5.5.4" },
    { S("<a@b> NOTIFY"), DSN, "501 5.5.4" },
    { S("<a@b> NOTIFY=SUCCESS,"), DSN, "501 5.5.4" },
    { S("<a@b> NOTIFY=,SUCCESS"), DSN, "501 5.5.4" },
    { S("<a@b> NOTIFY=SUCCESS,,DELAY"), DSN, "501 5.5.4" },
    { S("<a@b> NOTIFY=SUCCESS,SUCCESS"), DSN, "501 5.5.4" },
    { S("<a@b> NOTIFY=ALWAYS"), DSN, "501 5.5.4" },
    { S("<a@b> NOTIFY=NEVER NOTIFY=NEVER"), DSN, "501 5.5.4" },
};

TEST(rcpt_notify)
{
    UNUSED;
    struct rcpt_params r;
    struct parse_err e;
    for (size_t i = 0; i < ARRAY_LEN(notify_cases); i++) {
        if (!rcpt(notify_cases[i].arg, true, false, &r, &e))
            fail_msg("notify_cases[%zu] %s: %d %s %s", i, notify_cases[i].arg, e.code, e.ecode,
                     e.text);
        if (r.notify != notify_cases[i].notify)
            fail_msg("notify_cases[%zu] %s: notify %#x, want %#x", i, notify_cases[i].arg,
                     r.notify, notify_cases[i].notify);
    }
    RUN_REFUSALS(rcpt_refused, notify_refusals);
}

static const struct rcpt_refusal orcpt_refusals[] = {
    { S("<a@b> ORCPT=rfc822"), DSN, "501 5.5.4" },
    { S("<a@b> ORCPT=rfc822;"), DSN, "501 5.5.4" },
    { S("<a@b> ORCPT=;a@b"), DSN, "501 5.5.4" },
    { S("<a@b> ORCPT=rfc(822);a@b"), DSN, "501 5.5.4" },
    { S("<a@b> ORCPT=rfc822;a+2x"), DSN, "501 5.5.4" },
    { S("<a@b> ORCPT=rfc822;a+00"), DSN, "501 5.5.4" },
    { S("<a@b> ORCPT=rfc822;a+0D+0AX:y"), DSN, "501 5.5.4" },
    { S("<a@b> ORCPT=rfc822;a+FF"), DSN, "501 5.5.4" },
    { S("<a@b> ORCPT"), DSN, "501 5.5.4" },
    { S("<a@b> ORCPT=rfc822;a ORCPT=rfc822;b"), DSN, "501 5.5.4" },
    /* MAIL's parameters are not RCPT's. */
    { S("<a@b> SIZE=10"), DSN, "555 5.5.4" },
    { S("<a@b> SMTPUTF8"), DSN, "555 5.5.4" },
    { S("<a@b> RET=FULL"), DSN, "555 5.5.4" },
};

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
    rcpt_refused(&(struct rcpt_refusal){ buf, strlen(buf), DSN, "501 5.5.4 Invalid ORCPT value" },
                 "ORCPT of 501 characters");
    RUN_REFUSALS(rcpt_refused, orcpt_refusals);
}

static const struct rcpt_refusal path_rcpt_refusals[] = {
    { S("<postmaster>x"), NO_EXT, "501 5.5.4" },
    /* Only postmaster may stand without a domain; the null path is MAIL's alone. */
    { S("<>"), NO_EXT, "501 5.1.3 Bad recipient address syntax" },
    { S("<abuse>"), NO_EXT, "501 5.1.3 Bad recipient address syntax" },
    { S("<\xc3\xa9@b>"), NO_EXT, "553 5.6.7 Non-ASCII recipient address needs SMTPUTF8" },
    { S("<\xc3\xa9\xc3@b>"), UTF8, "501 5.1.3 Invalid UTF-8 in recipient address" },
    { S("<a@b>\0"), NO_EXT, "501 5.1.3 Bad recipient address syntax" },
    { S("<a b@c>"), DSN, "501 5.1.3" },
    { S("a@b"), DSN, "501 5.1.3" },
};

TEST(rcpt_bad_paths)
{
    UNUSED;
    struct rcpt_params r;
    struct parse_err e;
    char buf[400];
    assert_true(rcpt("<\xc3\xa9@b>", false, true, &r, &e));
    str_fmt(buf, sizeof(buf), "<a@%0*d.com>", 252, 0);
    rcpt_refused(&(struct rcpt_refusal){ buf, strlen(buf), NO_EXT,
                                         "501 5.1.3 Recipient domain too long" },
                 "domain of 256 characters");
    str_fmt(buf, sizeof(buf), "<%0*d@b>", 65, 0);
    rcpt_refused(&(struct rcpt_refusal){ buf, strlen(buf), NO_EXT,
                                         "501 5.1.3 Recipient local part too long" },
                 "local part of 65 characters");
    str_fmt(buf, sizeof(buf), "<%0*d@%0*d.%0*d.%0*d.com>", 64, 0, 63, 0, 63, 0, 60, 0);
    rcpt_refused(&(struct rcpt_refusal){ buf, strlen(buf), NO_EXT,
                                         "501 5.1.3 Recipient path too long" },
                 "path of 259 characters");
    RUN_REFUSALS(rcpt_refused, path_rcpt_refusals);
}

/* bdat_case - a BDAT argument and what it must parse to (size and last: when accepted) */
struct bdat_case {
    const char *arg;
    size_t len;
    bool ok;
    uint64_t size;
    bool last;
};

static const struct bdat_case bdat_cases[] = {
    { S("100"), true, 100, false },
    { S("0 LAST"), true, 0, true },
    { S("7  last "), true, 7, true },
    { S("18446744073709551615"), true, UINT64_MAX, false },
    { S("18446744073709551616"), false, 0, false },
    { S("000000000000000000001"), false, 0, false },
    { S(""), false, 0, false },
    { S("LAST"), false, 0, false },
    { S("-1"), false, 0, false },
    { S("10LAST"), false, 0, false },
    { S("10 LASTX"), false, 0, false },
    { S("10 LAST x"), false, 0, false },
    { S("10 FIRST"), false, 0, false },
    { S("1 0"), false, 0, false },
    { S(" 10"), false, 0, false },
    { S("10\0"), false, 0, false },
};

TEST(bdat)
{
    UNUSED;
    char where[64];
    for (size_t i = 0; i < ARRAY_LEN(bdat_cases); i++) {
        const struct bdat_case *c = &bdat_cases[i];
        uint64_t size = 0;
        bool last = false;
        struct parse_err e;
        bool ok = smtp_parse_bdat(c->arg, c->len, &size, &last, &e);
        str_fmt(where, sizeof(where), "bdat_cases[%zu] \"%s\"", i, c->arg);
        if (ok != c->ok)
            fail_msg("%s: %s", where, ok ? "accepted" : "refused");
        if (ok && (size != c->size || last != c->last))
            fail_msg("%s: size %ju last %d, want %ju %d", where, (uintmax_t)size, last,
                     (uintmax_t)c->size, c->last);
        if (!ok)
            check_reply(where, &e, "501 5.5.4 Syntax: BDAT chunk-size [LAST]");
    }
}

/* xtext_case - an input, the room for the output, and what xtext_decode or xtext_encode must
 * return and write (out: NULL is not checked) */
struct xtext_case {
    const char *in;
    size_t len;
    size_t outsz;
    bool ok;
    const char *out;
};

static const struct {
    const char *s;
    size_t len;
    bool valid;
} xtext_valid_cases[] = {
    { S(""), true },
    { S("abc+2B+3D"), true },
    { S("+41"), true }, /* over-encoded but well-formed */
    { S("a b"), false },
    { S("a=b"), false },
    { S("a+"), false },
    { S("a+2"), false },
    { S("+2b"), false },
    { S("+G0"), false },
    { S("a\x7f"), false },
    { S("a\x80"), false },
    { S("a\0"), false },
};

static const struct xtext_case xtext_decode_cases[] = {
    { S("a+2Bb+3D+20"), 64, true, "a+b= " },
    { S("a+00"), 64, false, NULL },
    { S("abcd"), 4, false, NULL },
    { S("abc"), 4, true, NULL },
    { S(""), 0, false, NULL },
};

static const struct xtext_case xtext_encode_cases[] = {
    { S("a+b= \x01\xff"), 64, true, "a+2Bb+3D+20+01+FF" },
    { S("++"), 6, false, NULL },
    { S("++"), 7, true, NULL },
    { S(""), 0, false, NULL },
};

/* run_xtext - every row of t through fn (xtext_decode or xtext_encode) */
static void run_xtext(bool (*fn)(const char *, size_t, char *, size_t),
                      const struct xtext_case *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        char out[64] = "";
        bool ok = fn(t[i].in, t[i].len, out, t[i].outsz);
        if (ok != t[i].ok || (t[i].out != NULL && strcmp(out, t[i].out) != 0))
            fail_msg("%s[%zu] \"%s\" into %zu bytes: %d \"%s\", want %d \"%s\"", name, i, t[i].in,
                     t[i].outsz, ok, out, t[i].ok, t[i].out != NULL ? t[i].out : "*");
    }
}

TEST(xtext)
{
    UNUSED;
    for (size_t i = 0; i < ARRAY_LEN(xtext_valid_cases); i++)
        if (xtext_valid(xtext_valid_cases[i].s, xtext_valid_cases[i].len) !=
            xtext_valid_cases[i].valid)
            fail_msg("xtext_valid_cases[%zu] \"%s\": want %s", i, xtext_valid_cases[i].s,
                     xtext_valid_cases[i].valid ? "valid" : "invalid");
    run_xtext(xtext_decode, xtext_decode_cases, ARRAY_LEN(xtext_decode_cases),
              "xtext_decode_cases");
    run_xtext(xtext_encode, xtext_encode_cases, ARRAY_LEN(xtext_encode_cases),
              "xtext_encode_cases");
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
