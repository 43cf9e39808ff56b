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

static enum addr_err mbox(const char *s, bool utf8, struct mailbox *mb)
{
    return addr_parse_mailbox(s, strlen(s), utf8, mb);
}

static enum addr_err path(const char *s, bool empty_ok, bool utf8, char *out, const char **end)
{
    return addr_parse_path(s, empty_ok, utf8, out, ADDR_PATH_MAX + 1, end);
}

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

TEST(dot_string_rules)
{
    UNUSED;
    struct mailbox mb;
    assert_int_equal(mbox(".a@b.c", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a.@b.c", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a..b@b.c", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("@b.c", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a@", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("ab.c", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a@b@c", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a b@c", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a\tb@c", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a\x01@c", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a\x7f@c", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a(b)@c", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a,b@c", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a<b@c", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a\\b@c", false, &mb), ADDR_ERR_SYNTAX);
}

TEST(nul_is_syntax_error)
{
    UNUSED;
    struct mailbox mb;
    assert_int_equal(addr_parse_mailbox("a\0b@c", 5, false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(addr_parse_mailbox("ab@c\0", 5, false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(addr_parse_mailbox("ab@[1.2.3.4\0]", 13, false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(addr_parse_mailbox("\"a\0\"@c", 7, false, &mb), ADDR_ERR_SYNTAX);
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
        assert_int_equal(mbox(cases[i], false, &mb), ADDR_OK);
        size_t llen = (size_t)(strchr(cases[i], '@') - cases[i]);
        assert_int_equal(strlen(mb.local), llen);
        assert_memory_equal(mb.local, cases[i], llen);
    }
}

TEST(quoted_local_part)
{
    UNUSED;
    struct mailbox mb;
    assert_int_equal(mbox("\"john doe\"@Example.org", false, &mb), ADDR_OK);
    assert_string_equal(mb.local, "\"john doe\"");
    assert_string_equal(mb.domain, "example.org");
    assert_int_equal(mbox("\"a\\\"b\\\\c@d\"@e", false, &mb), ADDR_OK);
    assert_string_equal(mb.local, "\"a\\\"b\\\\c@d\"");
    assert_int_equal(mbox("\"\"@e", false, &mb), ADDR_OK);
    assert_int_equal(mbox("\"a>b\"@e", false, &mb), ADDR_OK);
    assert_int_equal(mbox("\"abc@e", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("\"a\"b@e", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("\"a\"\"b\"@e", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("\"a\r\nb\"@e", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("\"a\\\x01\"@e", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("\"a\\\"@e", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a\"b\"@e", false, &mb), ADDR_ERR_SYNTAX);
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

TEST(domain_labels)
{
    UNUSED;
    struct mailbox mb;
    assert_int_equal(mbox("a@my-host.example", false, &mb), ADDR_OK);
    assert_int_equal(mbox("a@0.example", false, &mb), ADDR_OK);
    assert_int_equal(mbox("a@-host.example", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a@host-.example", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a@host..example", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a@.example", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a@example.", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a@ex_ample.com", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a@ex ample.com", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a@exa%mple.com", false, &mb), ADDR_ERR_SYNTAX);
}

TEST(address_literals)
{
    UNUSED;
    struct mailbox mb;
    assert_int_equal(mbox("a@[192.0.2.1]", false, &mb), ADDR_OK);
    assert_string_equal(mb.domain, "[192.0.2.1]");
    assert_true(mb.domain_is_literal);
    assert_int_equal(mbox("a@[IPv6:2001:DB8::1]", false, &mb), ADDR_OK);
    assert_string_equal(mb.domain, "[IPv6:2001:db8::1]");
    assert_int_equal(mbox("a@[ipv6:::1]", false, &mb), ADDR_OK);
    assert_string_equal(mb.domain, "[IPv6:::1]");
    assert_int_equal(mbox("a@[IPv6:::ffff:192.0.2.1]", false, &mb), ADDR_OK);
    assert_int_equal(mbox("a@[256.0.0.1]", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a@[1.2.3]", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a@[01.2.3.4]", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a@[2001:db8::1]", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a@[IPv6:1.2.3.4]", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a@[IPv6:fe80::1%eth0]", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a@[IPv6:]", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a@[x-tag:stuff]", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a@[1.2.3.4", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a@[]", false, &mb), ADDR_ERR_SYNTAX);
    assert_int_equal(mbox("a@[ 1.2.3.4]", false, &mb), ADDR_ERR_SYNTAX);
}

TEST(utf8_addresses)
{
    UNUSED;
    struct mailbox mb;
    const char *u = "j\xc3\xb6rg@b\xc3\xbc" "cher.example";
    assert_int_equal(mbox(u, false, &mb), ADDR_ERR_UTF8);
    assert_int_equal(mbox(u, true, &mb), ADDR_OK);
    assert_string_equal(mb.local, "j\xc3\xb6rg");
    assert_string_equal(mb.domain, "b\xc3\xbc" "cher.example");
    assert_int_equal(mbox("\"\xe2\x82\xac x\"@e", true, &mb), ADDR_OK);
    assert_int_equal(mbox("\"\xe2\x82\xac x\"@e", false, &mb), ADDR_ERR_UTF8);
    /* Invalid UTF-8 is refused even with SMTPUTF8. */
    assert_int_equal(mbox("\xc0\xaf@e", true, &mb), ADDR_ERR_UTF8);       /* overlong */
    assert_int_equal(mbox("\xed\xa0\x80@e", true, &mb), ADDR_ERR_UTF8);   /* surrogate */
    assert_int_equal(mbox("\xf4\x90\x80\x80@e", true, &mb), ADDR_ERR_UTF8); /* > U+10FFFF */
    assert_int_equal(mbox("\xc3@e", true, &mb), ADDR_ERR_UTF8);           /* truncated */
    assert_int_equal(mbox("a@e\x80", true, &mb), ADDR_ERR_UTF8);          /* lone continuation */
    assert_int_equal(mbox("a@\xc3\xbc-.e", true, &mb), ADDR_ERR_SYNTAX);
}

TEST(utf8_valid_table)
{
    UNUSED;
    assert_true(utf8_valid("", 0));
    assert_true(utf8_valid("abc", 3));
    assert_true(utf8_valid("\xc2\x80", 2));
    assert_true(utf8_valid("\xdf\xbf", 2));
    assert_true(utf8_valid("\xe0\xa0\x80", 3));
    assert_true(utf8_valid("\xed\x9f\xbf", 3));     /* U+D7FF */
    assert_true(utf8_valid("\xee\x80\x80", 3));     /* U+E000 */
    assert_true(utf8_valid("\xef\xbf\xbf", 3));
    assert_true(utf8_valid("\xf0\x90\x80\x80", 4));
    assert_true(utf8_valid("\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF */
    assert_false(utf8_valid("\xc0\x80", 2));
    assert_false(utf8_valid("\xc1\xbf", 2));
    assert_false(utf8_valid("\xe0\x9f\xbf", 3));
    assert_false(utf8_valid("\xf0\x8f\xbf\xbf", 4));
    assert_false(utf8_valid("\xed\xa0\x80", 3));
    assert_false(utf8_valid("\xed\xbf\xbf", 3));
    assert_false(utf8_valid("\xf4\x90\x80\x80", 4));
    assert_false(utf8_valid("\xf5\x80\x80\x80", 4));
    assert_false(utf8_valid("\xff", 1));
    assert_false(utf8_valid("\x80", 1));
    assert_false(utf8_valid("\xe2\x82", 2));
    assert_false(utf8_valid("\xe2\x82\xac", 2)); /* length bounds the check */
    assert_false(utf8_valid("\xe2\x28\xa1", 3));
}

TEST(path_basic)
{
    UNUSED;
    char out[ADDR_PATH_MAX + 1];
    const char *end = NULL;
    const char *s = "<User@Example.COM> SIZE=10";
    assert_int_equal(path(s, false, false, out, &end), ADDR_OK);
    assert_string_equal(out, "User@example.com");
    assert_string_equal(end, " SIZE=10");
    assert_int_equal(path("<>", true, false, out, &end), ADDR_OK);
    assert_string_equal(out, "");
    assert_string_equal(end, "");
    assert_int_equal(path("<>", false, false, out, &end), ADDR_ERR_SYNTAX);
    assert_int_equal(path("< >", true, false, out, &end), ADDR_ERR_SYNTAX);
    assert_int_equal(path("a@b", false, false, out, &end), ADDR_ERR_SYNTAX);
    assert_int_equal(path("<a@b", false, false, out, &end), ADDR_ERR_SYNTAX);
    assert_int_equal(path("< a@b>", false, false, out, &end), ADDR_ERR_SYNTAX);
    assert_int_equal(path("<a@b >", false, false, out, &end), ADDR_ERR_SYNTAX);
    assert_int_equal(path("", false, false, out, &end), ADDR_ERR_SYNTAX);
    assert_int_equal(path("<\"a>b\"@c>x", false, false, out, &end), ADDR_OK);
    assert_string_equal(out, "\"a>b\"@c");
    assert_string_equal(end, "x");
    assert_int_equal(path("<\"a\\\">\"@c>", false, false, out, &end), ADDR_OK);
    assert_string_equal(out, "\"a\\\">\"@c");
    assert_int_equal(path("<\"a\\", false, false, out, &end), ADDR_ERR_SYNTAX);
    assert_int_equal(path("<a@[IPv6:::1]>", false, false, out, &end), ADDR_OK);
    assert_string_equal(out, "a@[IPv6:::1]");
}

TEST(path_source_route)
{
    UNUSED;
    char out[ADDR_PATH_MAX + 1];
    const char *end;
    struct mailbox mb;
    assert_int_equal(path("<@a.example,@b.example:User@C.example>", false, false, out, &end),
                     ADDR_OK);
    assert_string_equal(out, "User@c.example");
    assert_int_equal(path("<@[1.2.3.4]:u@c>", false, false, out, &end), ADDR_OK);
    assert_string_equal(out, "u@c");
    assert_int_equal(path("<@a:>", false, false, out, &end), ADDR_ERR_SYNTAX);
    assert_int_equal(path("<@a,u@c>", false, false, out, &end), ADDR_ERR_SYNTAX);
    assert_int_equal(path("<@:u@c>", false, false, out, &end), ADDR_ERR_SYNTAX);
    assert_int_equal(path("<@a,:u@c>", false, false, out, &end), ADDR_ERR_SYNTAX);
    assert_int_equal(path("<@a,b:u@c>", false, false, out, &end), ADDR_ERR_SYNTAX);
    assert_int_equal(path("<@-a:u@c>", false, false, out, &end), ADDR_ERR_SYNTAX);
    assert_int_equal(path("<@a:@b:u@c>", false, false, out, &end), ADDR_ERR_SYNTAX);
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

TEST(path_utf8)
{
    UNUSED;
    char out[ADDR_PATH_MAX + 1];
    const char *end;
    assert_int_equal(path("<\xc3\xa9@x>", false, false, out, &end), ADDR_ERR_UTF8);
    assert_int_equal(path("<\xc3\xa9@x>", false, true, out, &end), ADDR_OK);
    assert_string_equal(out, "\xc3\xa9@x");
    assert_int_equal(path("<@\xc3\xa9:a@x>", false, false, out, &end), ADDR_ERR_UTF8);
    assert_int_equal(path("<\xc3\xa9\xa9@x>", false, true, out, &end), ADDR_ERR_UTF8);
}

TEST(split)
{
    UNUSED;
    char l[80], d[300];
    assert_true(addr_split("\"a@b\"@Example.COM", l, sizeof(l), d, sizeof(d)));
    assert_string_equal(l, "\"a@b\"");
    assert_string_equal(d, "example.com");
    assert_false(addr_split("postmaster", l, sizeof(l), d, sizeof(d)));
    assert_false(addr_split("abc@d", l, 3, d, sizeof(d)));
    assert_true(addr_split("ab@d", l, 3, d, 2));
    assert_false(addr_split("ab@de", l, 3, d, 2));
    assert_true(addr_split("@", l, sizeof(l), d, sizeof(d)));
    assert_string_equal(l, "");
    assert_string_equal(d, "");
}

TEST(valid_domain)
{
    UNUSED;
    assert_true(addr_valid_domain("mx.Example.com", false));
    assert_true(addr_valid_domain("localhost", false));
    assert_false(addr_valid_domain("", true));
    assert_false(addr_valid_domain("[192.0.2.1]", false));
    assert_true(addr_valid_domain("[192.0.2.1]", true));
    assert_true(addr_valid_domain("[IPv6:2001:db8::5]", true));
    assert_false(addr_valid_domain("[IPv6:2001:db8::5", true));
    assert_false(addr_valid_domain("bad domain", true));
    assert_false(addr_valid_domain("b\xc3\xbc" "cher.example", true));
    assert_false(addr_valid_domain("a..b", true));
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
