/* test_addr.c - RFC 5321 mailbox and path parsing. */
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

/* A string literal and its length (embedded NULs count). */
#define S(lit) lit, sizeof(lit) - 1

/* mbox_case - a mailbox, whether SMTPUTF8 is on, and what addr_parse_mailbox must make of it
 * (local and domain: NULL is not checked) */
struct mbox_case {
    const char *s;
    size_t len;
    bool utf8;
    enum addr_err want;
    const char *local;
    const char *domain;
};

/* path_case - a reverse or forward path and what addr_parse_path must make of it (out and
 * end: NULL is not checked) */
struct path_case {
    const char *s;
    bool empty_ok;
    bool utf8;
    enum addr_err want;
    const char *out;
    const char *end;
};

static enum addr_err mbox(const char *s, bool utf8, struct mailbox *mb)
{
    return addr_parse_mailbox(s, strlen(s), utf8, mb);
}

static enum addr_err path(const char *s, bool empty_ok, bool utf8, char *out, const char **end)
{
    return addr_parse_path(s, empty_ok, utf8, out, ADDR_PATH_MAX + 1, end);
}

/* check_field - where names the case; got must be want unless want is NULL */
static void check_field(const char *where, const char *what, const char *got, const char *want)
{
    if (want != NULL && strcmp(got, want) != 0)
        fail_msg("%s: %s \"%s\", want \"%s\"", where, what, got, want);
}

/* run_mboxes - every row of t parses as it says; a failure names "name[i]" */
static void run_mboxes(const struct mbox_case *t, size_t n, const char *name)
{
    char where[160];
    for (size_t i = 0; i < n; i++) {
        struct mailbox mb;
        str_fmt(where, sizeof(where), "%s[%zu] \"%s\"", name, i, t[i].s);
        enum addr_err got = addr_parse_mailbox(t[i].s, t[i].len, t[i].utf8, &mb);
        if (got != t[i].want)
            fail_msg("%s: %s, want %s", where, addr_err_text(got), addr_err_text(t[i].want));
        check_field(where, "local part", mb.local, t[i].local);
        check_field(where, "domain", mb.domain, t[i].domain);
    }
}
#define RUN_MBOXES(table) run_mboxes((table), ARRAY_LEN(table), #table)

/* run_paths - every row of t parses as it says; a failure names "name[i]" */
static void run_paths(const struct path_case *t, size_t n, const char *name)
{
    char where[160], out[ADDR_PATH_MAX + 1];
    for (size_t i = 0; i < n; i++) {
        const char *end = NULL;
        str_fmt(where, sizeof(where), "%s[%zu] \"%s\"", name, i, t[i].s);
        enum addr_err got = path(t[i].s, t[i].empty_ok, t[i].utf8, out, &end);
        if (got != t[i].want)
            fail_msg("%s: %s, want %s", where, addr_err_text(got), addr_err_text(t[i].want));
        check_field(where, "path", out, t[i].out);
        check_field(where, "rest", end, t[i].end);
    }
}
#define RUN_PATHS(table) run_paths((table), ARRAY_LEN(table), #table)

/* rep - a string of n copies of c (static buffer, one at a time per slot) */
static char *rep(int slot, char c, size_t n)
{
    static char bufs[4][1024];
    memset(bufs[slot], c, n);
    bufs[slot][n] = '\0';
    return bufs[slot];
}

/* domain_of - a syntactically valid domain of exactly n octets ("aaa...a.bb..b") */
static char *domain_of(int slot, size_t n)
{
    static char bufs[4][1024];
    char *d = bufs[slot];
    size_t i = 0;
    while (i < n) {
        size_t label = n - i > 63 ? 63 : n - i;
        if (n - i > 63 && n - i - 63 < 2)
            label = n - i - 2; /* leave room for a '.' and a 1-octet label */
        memset(d + i, 'a', label);
        i += label;
        if (i < n)
            d[i++] = '.';
    }
    d[n] = '\0';
    return d;
}

TEST(simple_mailbox)
{
    UNUSED;
    struct mailbox mb;
    assert_int_equal(mbox("User.Name@Example.COM", false, &mb), ADDR_OK);
    assert_string_equal(mb.local, "User.Name");
    assert_string_equal(mb.domain, "example.com");
    assert_false(mb.domain_is_literal);
    assert_int_equal(mbox("a@b", false, &mb), ADDR_OK);
    assert_int_equal(mbox("x@localhost", false, &mb), ADDR_OK);
}

static const struct mbox_case dot_string_cases[] = {
    { S(".a@b.c"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a.@b.c"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a..b@b.c"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("@b.c"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a@"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("ab.c"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a@b@c"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S(""), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a b@c"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a\tb@c"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a\x01@c"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a\x7f@c"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a(b)@c"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a,b@c"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a<b@c"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a\\b@c"), false, ADDR_ERR_SYNTAX, NULL, NULL },
};

TEST(dot_string_rules)
{
    UNUSED;
    RUN_MBOXES(dot_string_cases);
}

static const struct mbox_case nul_cases[] = {
    { "a\0b@c", 5, false, ADDR_ERR_SYNTAX, NULL, NULL },
    { "ab@c\0", 5, false, ADDR_ERR_SYNTAX, NULL, NULL },
    { "ab@[1.2.3.4\0]", 13, false, ADDR_ERR_SYNTAX, NULL, NULL },
    { "\"a\0\"@c", 7, false, ADDR_ERR_SYNTAX, NULL, NULL },
};

TEST(nul_is_syntax_error)
{
    UNUSED;
    RUN_MBOXES(nul_cases);
}

TEST(hostile_atext_is_kept_literally)
{
    UNUSED;
    struct mailbox mb;
    const char *cases[] = {
        "user%other@relay.example", "host!user@relay.example", "${run{/bin/sh}}@x.example",
        "a|b@x.example", "`id`@x.example", "{a}@x.example", "~!#$%&'*+-/=?^_`{|}@x.example",
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        enum addr_err got = mbox(cases[i], false, &mb);
        if (got != ADDR_OK)
            fail_msg("cases[%zu] \"%s\": %s", i, cases[i], addr_err_text(got));
        size_t llen = (size_t)(strchr(cases[i], '@') - cases[i]);
        if (strlen(mb.local) != llen || memcmp(mb.local, cases[i], llen) != 0)
            fail_msg("cases[%zu] \"%s\": local part \"%s\"", i, cases[i], mb.local);
    }
}

static const struct mbox_case quoted_cases[] = {
    { S("\"john doe\"@Example.org"), false, ADDR_OK, "\"john doe\"", "example.org" },
    { S("\"a\\\"b\\\\c@d\"@e"), false, ADDR_OK, "\"a\\\"b\\\\c@d\"", NULL },
    { S("\"\"@e"), false, ADDR_OK, NULL, NULL },
    { S("\"a>b\"@e"), false, ADDR_OK, NULL, NULL },
    { S("\"abc@e"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("\"a\"b@e"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("\"a\"\"b\"@e"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("\"a\r\nb\"@e"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("\"a\\\x01\"@e"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("\"a\\\"@e"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a\"b\"@e"), false, ADDR_ERR_SYNTAX, NULL, NULL },
};

TEST(quoted_local_part)
{
    UNUSED;
    RUN_MBOXES(quoted_cases);
}

TEST(local_part_limit)
{
    UNUSED;
    struct mailbox mb;
    char buf[300];
    str_fmt(buf, sizeof(buf), "%s@example.com", rep(0, 'a', 64));
    assert_int_equal(mbox(buf, false, &mb), ADDR_OK);
    assert_int_equal(strlen(mb.local), 64);
    str_fmt(buf, sizeof(buf), "%s@example.com", rep(0, 'a', 65));
    assert_int_equal(mbox(buf, false, &mb), ADDR_ERR_LOCAL_LEN);
    /* Quoted: 64 octets as written, quotes included. */
    str_fmt(buf, sizeof(buf), "\"%s\"@example.com", rep(0, 'a', 62));
    assert_int_equal(mbox(buf, false, &mb), ADDR_OK);
    str_fmt(buf, sizeof(buf), "\"%s\"@example.com", rep(0, 'a', 63));
    assert_int_equal(mbox(buf, false, &mb), ADDR_ERR_LOCAL_LEN);
}

TEST(domain_limits)
{
    UNUSED;
    struct mailbox mb;
    char buf[600];
    assert_int_equal(strlen(domain_of(0, 255)), 255);
    str_fmt(buf, sizeof(buf), "a@%s", domain_of(0, 255));
    assert_int_equal(mbox(buf, false, &mb), ADDR_OK);
    assert_int_equal(strlen(mb.domain), 255);
    str_fmt(buf, sizeof(buf), "a@%s", domain_of(0, 256));
    assert_int_equal(mbox(buf, false, &mb), ADDR_ERR_DOMAIN_LEN);
    /* Labels: 63 fine, 64 not. */
    str_fmt(buf, sizeof(buf), "a@%s.com", rep(0, 'b', 63));
    assert_int_equal(mbox(buf, false, &mb), ADDR_OK);
    str_fmt(buf, sizeof(buf), "a@%s.com", rep(0, 'b', 64));
    assert_int_equal(mbox(buf, false, &mb), ADDR_ERR_SYNTAX);
}

static const struct mbox_case label_cases[] = {
    { S("a@my-host.example"), false, ADDR_OK, NULL, NULL },
    { S("a@0.example"), false, ADDR_OK, NULL, NULL },
    { S("a@-host.example"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a@host-.example"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a@host..example"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a@.example"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a@example."), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a@ex_ample.com"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a@ex ample.com"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a@exa%mple.com"), false, ADDR_ERR_SYNTAX, NULL, NULL },
};

TEST(domain_labels)
{
    UNUSED;
    RUN_MBOXES(label_cases);
}

static const struct mbox_case literal_cases[] = {
    { S("a@[IPv6:2001:DB8::1]"), false, ADDR_OK, NULL, "[IPv6:2001:db8::1]" },
    { S("a@[ipv6:::1]"), false, ADDR_OK, NULL, "[IPv6:::1]" },
    { S("a@[IPv6:::ffff:192.0.2.1]"), false, ADDR_OK, NULL, NULL },
    { S("a@[256.0.0.1]"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a@[1.2.3]"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a@[01.2.3.4]"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a@[2001:db8::1]"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a@[IPv6:1.2.3.4]"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a@[IPv6:fe80::1%eth0]"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a@[IPv6:]"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a@[x-tag:stuff]"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a@[1.2.3.4"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a@[]"), false, ADDR_ERR_SYNTAX, NULL, NULL },
    { S("a@[ 1.2.3.4]"), false, ADDR_ERR_SYNTAX, NULL, NULL },
};

TEST(address_literals)
{
    UNUSED;
    struct mailbox mb;
    assert_int_equal(mbox("a@[192.0.2.1]", false, &mb), ADDR_OK);
    assert_string_equal(mb.domain, "[192.0.2.1]");
    assert_true(mb.domain_is_literal);
    RUN_MBOXES(literal_cases);
}

static const struct mbox_case utf8_cases[] = {
    { S("j\xc3\xb6rg@b\xc3\xbc" "cher.example"), false, ADDR_ERR_UTF8, NULL, NULL },
    { S("j\xc3\xb6rg@b\xc3\xbc" "cher.example"), true, ADDR_OK, "j\xc3\xb6rg",
      "b\xc3\xbc" "cher.example" },
    { S("\"\xe2\x82\xac x\"@e"), true, ADDR_OK, NULL, NULL },
    { S("\"\xe2\x82\xac x\"@e"), false, ADDR_ERR_UTF8, NULL, NULL },
    /* Invalid UTF-8 is refused even with SMTPUTF8. */
    { S("\xc0\xaf@e"), true, ADDR_ERR_UTF8, NULL, NULL },         /* overlong */
    { S("\xed\xa0\x80@e"), true, ADDR_ERR_UTF8, NULL, NULL },     /* surrogate */
    { S("\xf4\x90\x80\x80@e"), true, ADDR_ERR_UTF8, NULL, NULL }, /* > U+10FFFF */
    { S("\xc3@e"), true, ADDR_ERR_UTF8, NULL, NULL },             /* truncated */
    { S("a@e\x80"), true, ADDR_ERR_UTF8, NULL, NULL },            /* lone continuation */
    { S("a@\xc3\xbc-.e"), true, ADDR_ERR_SYNTAX, NULL, NULL },
};

TEST(utf8_addresses)
{
    UNUSED;
    RUN_MBOXES(utf8_cases);
}

static const struct {
    const char *s;
    size_t len;
    bool valid;
} utf8_valid_cases[] = {
    { "", 0, true },
    { "abc", 3, true },
    { "\xc2\x80", 2, true },
    { "\xdf\xbf", 2, true },
    { "\xe0\xa0\x80", 3, true },
    { "\xed\x9f\xbf", 3, true },     /* U+D7FF */
    { "\xee\x80\x80", 3, true },     /* U+E000 */
    { "\xef\xbf\xbf", 3, true },
    { "\xf0\x90\x80\x80", 4, true },
    { "\xf4\x8f\xbf\xbf", 4, true }, /* U+10FFFF */
    { "\xc0\x80", 2, false },
    { "\xc1\xbf", 2, false },
    { "\xe0\x9f\xbf", 3, false },
    { "\xf0\x8f\xbf\xbf", 4, false },
    { "\xed\xa0\x80", 3, false },
    { "\xed\xbf\xbf", 3, false },
    { "\xf4\x90\x80\x80", 4, false },
    { "\xf5\x80\x80\x80", 4, false },
    { "\xff", 1, false },
    { "\x80", 1, false },
    { "\xe2\x82", 2, false },
    { "\xe2\x82\xac", 2, false },    /* length bounds the check */
    { "\xe2\x28\xa1", 3, false },
};

TEST(utf8_valid_table)
{
    UNUSED;
    for (size_t i = 0; i < ARRAY_LEN(utf8_valid_cases); i++)
        if (utf8_valid(utf8_valid_cases[i].s, utf8_valid_cases[i].len) !=
            utf8_valid_cases[i].valid)
            fail_msg("utf8_valid_cases[%zu]: want %s", i,
                     utf8_valid_cases[i].valid ? "valid" : "invalid");
}

static const struct path_case basic_paths[] = {
    { "<User@Example.COM> SIZE=10", false, false, ADDR_OK, "User@example.com", " SIZE=10" },
    { "<>", true, false, ADDR_OK, "", "" },
    { "<>", false, false, ADDR_ERR_SYNTAX, NULL, NULL },
    { "< >", true, false, ADDR_ERR_SYNTAX, NULL, NULL },
    { "a@b", false, false, ADDR_ERR_SYNTAX, NULL, NULL },
    { "<a@b", false, false, ADDR_ERR_SYNTAX, NULL, NULL },
    { "< a@b>", false, false, ADDR_ERR_SYNTAX, NULL, NULL },
    { "<a@b >", false, false, ADDR_ERR_SYNTAX, NULL, NULL },
    { "", false, false, ADDR_ERR_SYNTAX, NULL, NULL },
    { "<\"a>b\"@c>x", false, false, ADDR_OK, "\"a>b\"@c", "x" },
    { "<\"a\\\">\"@c>", false, false, ADDR_OK, "\"a\\\">\"@c", NULL },
    { "<\"a\\", false, false, ADDR_ERR_SYNTAX, NULL, NULL },
    { "<a@[IPv6:::1]>", false, false, ADDR_OK, "a@[IPv6:::1]", NULL },
};

TEST(path_basic)
{
    UNUSED;
    RUN_PATHS(basic_paths);
}

static const struct path_case source_routes[] = {
    { "<@a.example,@b.example:User@C.example>", false, false, ADDR_OK, "User@c.example", NULL },
    { "<@[1.2.3.4]:u@c>", false, false, ADDR_OK, "u@c", NULL },
    { "<@a:>", false, false, ADDR_ERR_SYNTAX, NULL, NULL },
    { "<@a,u@c>", false, false, ADDR_ERR_SYNTAX, NULL, NULL },
    { "<@:u@c>", false, false, ADDR_ERR_SYNTAX, NULL, NULL },
    { "<@a,:u@c>", false, false, ADDR_ERR_SYNTAX, NULL, NULL },
    { "<@a,b:u@c>", false, false, ADDR_ERR_SYNTAX, NULL, NULL },
    { "<@-a:u@c>", false, false, ADDR_ERR_SYNTAX, NULL, NULL },
    { "<@a:@b:u@c>", false, false, ADDR_ERR_SYNTAX, NULL, NULL },
};

TEST(path_source_route)
{
    UNUSED;
    struct mailbox mb;
    RUN_PATHS(source_routes);
    assert_int_equal(mbox("@a,@b:u@c", false, &mb), ADDR_ERR_SOURCE_ROUTE);
}

TEST(path_limits)
{
    UNUSED;
    char out[ADDR_PATH_MAX + 1], buf[600];
    const char *end;
    /* "<" + 64 + "@" + d + ">" = 256 with d = 189 */
    str_fmt(buf, sizeof(buf), "<%s@%s>", rep(0, 'l', 64), domain_of(1, 189));
    assert_int_equal(strlen(buf), 256);
    assert_int_equal(path(buf, false, false, out, &end), ADDR_OK);
    assert_int_equal(strlen(out), 254);
    str_fmt(buf, sizeof(buf), "<%s@%s>", rep(0, 'l', 64), domain_of(1, 190));
    assert_int_equal(strlen(buf), 257);
    assert_int_equal(path(buf, false, false, out, &end), ADDR_ERR_PATH_LEN);
    /* The source route counts towards the path length. */
    str_fmt(buf, sizeof(buf), "<@r:%s@%s>", rep(0, 'l', 64), domain_of(1, 186));
    assert_int_equal(strlen(buf), 256);
    assert_int_equal(path(buf, false, false, out, &end), ADDR_OK);
    str_fmt(buf, sizeof(buf), "<@r:%s@%s>", rep(0, 'l', 64), domain_of(1, 187));
    assert_int_equal(path(buf, false, false, out, &end), ADDR_ERR_PATH_LEN);
    /* Component limits are reported as such. */
    str_fmt(buf, sizeof(buf), "<%s@b>", rep(0, 'l', 65));
    assert_int_equal(path(buf, false, false, out, &end), ADDR_ERR_LOCAL_LEN);
    str_fmt(buf, sizeof(buf), "<a@%s>", domain_of(1, 256));
    assert_int_equal(path(buf, false, false, out, &end), ADDR_ERR_DOMAIN_LEN);
    /* A too small output buffer is refused, not overrun. */
    char small[8];
    assert_int_equal(addr_parse_path("<abcd@efgh>", false, false, small, sizeof(small), &end),
                     ADDR_ERR_PATH_LEN);
}

static const struct path_case utf8_paths[] = {
    { "<\xc3\xa9@x>", false, false, ADDR_ERR_UTF8, NULL, NULL },
    { "<\xc3\xa9@x>", false, true, ADDR_OK, "\xc3\xa9@x", NULL },
    { "<@\xc3\xa9:a@x>", false, false, ADDR_ERR_UTF8, NULL, NULL },
    { "<\xc3\xa9\xa9@x>", false, true, ADDR_ERR_UTF8, NULL, NULL },
};

TEST(path_utf8)
{
    UNUSED;
    RUN_PATHS(utf8_paths);
}

/* addr_split cases: the address, the room for each side, and the sides (NULL: not checked) */
static const struct {
    const char *addr;
    size_t lsz, dsz;
    bool ok;
    const char *local, *domain;
} split_cases[] = {
    { "\"a@b\"@Example.COM", 80, 300, true, "\"a@b\"", "example.com" },
    { "postmaster", 80, 300, false, NULL, NULL },
    { "abc@d", 3, 300, false, NULL, NULL },
    { "ab@d", 3, 2, true, NULL, NULL },
    { "ab@de", 3, 2, false, NULL, NULL },
    { "@", 80, 300, true, "", "" },
};

TEST(split)
{
    UNUSED;
    char l[80], d[300], where[64];
    for (size_t i = 0; i < ARRAY_LEN(split_cases); i++) {
        str_fmt(where, sizeof(where), "split_cases[%zu] \"%s\"", i, split_cases[i].addr);
        bool ok = addr_split(split_cases[i].addr, l, split_cases[i].lsz, d, split_cases[i].dsz);
        if (ok != split_cases[i].ok)
            fail_msg("%s: %s", where, ok ? "split" : "not split");
        check_field(where, "local part", l, split_cases[i].local);
        check_field(where, "domain", d, split_cases[i].domain);
    }
}

static const struct {
    const char *domain;
    bool literal_ok;
    bool valid;
} domain_cases[] = {
    { "mx.Example.com", false, true },
    { "localhost", false, true },
    { "", true, false },
    { "[192.0.2.1]", false, false },
    { "[192.0.2.1]", true, true },
    { "[IPv6:2001:db8::5]", true, true },
    { "[IPv6:2001:db8::5", true, false },
    { "bad domain", true, false },
    { "b\xc3\xbc" "cher.example", true, false },
    { "a..b", true, false },
};

TEST(valid_domain)
{
    UNUSED;
    for (size_t i = 0; i < ARRAY_LEN(domain_cases); i++)
        if (addr_valid_domain(domain_cases[i].domain, domain_cases[i].literal_ok) !=
            domain_cases[i].valid)
            fail_msg("domain_cases[%zu] \"%s\": want %s", i, domain_cases[i].domain,
                     domain_cases[i].valid ? "valid" : "invalid");
    assert_true(addr_valid_domain(domain_of(0, 255), false));
    assert_false(addr_valid_domain(domain_of(0, 256), false));
}

TEST(err_text)
{
    UNUSED;
    for (int e = ADDR_OK; e <= ADDR_ERR_UTF8; e++) {
        const char *t = addr_err_text((enum addr_err)e);
        assert_non_null(t);
        assert_true(strlen(t) > 0);
    }
    assert_string_equal(addr_err_text((enum addr_err)99), "unknown address error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(simple_mailbox),     cmocka_unit_test(dot_string_rules),
        cmocka_unit_test(nul_is_syntax_error), cmocka_unit_test(hostile_atext_is_kept_literally),
        cmocka_unit_test(quoted_local_part),  cmocka_unit_test(local_part_limit),
        cmocka_unit_test(domain_limits),      cmocka_unit_test(domain_labels),
        cmocka_unit_test(address_literals),   cmocka_unit_test(utf8_addresses),
        cmocka_unit_test(utf8_valid_table),   cmocka_unit_test(path_basic),
        cmocka_unit_test(path_source_route),  cmocka_unit_test(path_limits),
        cmocka_unit_test(path_utf8),          cmocka_unit_test(split),
        cmocka_unit_test(valid_domain),       cmocka_unit_test(err_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
