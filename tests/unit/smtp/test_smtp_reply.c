/* test_smtp_reply.c - parsing next-hop replies (including hostile ones) and formatting them. */
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
#define S(lit) lit, sizeof(lit) - 1

/* parse_all - feed in[0..len) in pieces of step bytes until a reply is done or fails */
static enum reply_status parse_all(struct reply_parser *p, const char *in, size_t len,
                                   size_t step, size_t *used)
{
    enum reply_status st = REPLY_MORE;
    *used = 0;
    while (*used < len) {
        size_t n = len - *used < step ? len - *used : step;
        size_t c = reply_parse(p, in + *used, n, &st);
        assert_true(c <= n);
        *used += c;
        if (st != REPLY_MORE)
            break;
        assert_int_equal(c, n);
    }
    return st;
}

/* parse_ok - in parses (in every chunk size) to code, ecode, text, nlines, using used bytes */
static void parse_ok(const char *in, size_t len, int code, const char *ecode, const char *text,
                     size_t nlines, size_t used)
{
    for (size_t step = 1; step <= len; step++) {
        struct reply_parser p;
        size_t u;
        reply_parser_init(&p);
        assert_int_equal(parse_all(&p, in, len, step, &u), REPLY_DONE);
        assert_int_equal(u, used);
        assert_int_equal(p.reply.code, code);
        assert_string_equal(p.reply.ecode, ecode);
        assert_string_equal(p.reply.text.s ? p.reply.text.s : "", text);
        assert_int_equal(p.reply.nlines, nlines);
        reply_parser_free(&p);
    }
}

/* parse_fails - in is refused (in every chunk size) with the given reason */
static void parse_fails(const char *in, size_t len, const char *why)
{
    for (size_t step = 1; step <= len; step += (len > 100 ? 97 : 1)) {
        struct reply_parser p;
        size_t u;
        reply_parser_init(&p);
        assert_int_equal(parse_all(&p, in, len, step, &u), REPLY_ERROR);
        assert_string_equal(p.error, why);
        enum reply_status st;
        assert_int_equal(reply_parse(&p, S("250 ok\r\n"), &st), 0);
        assert_int_equal(st, REPLY_ERROR);
        reply_parser_free(&p);
    }
}

TEST(single_line)
{
    UNUSED;
    parse_ok(S("250 OK\r\n"), 250, "", "OK", 1, 8);
    parse_ok(S("250 2.1.0 Sender ok\r\n"), 250, "2.1.0", "Sender ok", 1, 21);
    parse_ok(S("550 5.1.1 <x@y>: Recipient address rejected\r\n"), 550, "5.1.1",
             "<x@y>: Recipient address rejected", 1, 45);
    parse_ok(S("354 End data with <CR><LF>.<CR><LF>\r\n"), 354, "",
             "End data with <CR><LF>.<CR><LF>", 1, 37);
    parse_ok(S("250\r\n"), 250, "", "", 1, 5);
    parse_ok(S("250 \r\n"), 250, "", "", 1, 6);
    parse_ok(S("250 2.0.0\r\n"), 250, "2.0.0", "", 1, 11);
    parse_ok(S("221 bye\n"), 221, "", "bye", 1, 8);
    parse_ok(S("421 4.3.2 Shutting down\r\n"), 421, "4.3.2", "Shutting down", 1, 25);
}

TEST(enhanced_code_rules)
{
    UNUSED;
    parse_ok(S("250 5.1.1 class mismatch\r\n"), 250, "", "5.1.1 class mismatch", 1, 26);
    parse_ok(S("354 3.0.0 no class 3\r\n"), 354, "", "3.0.0 no class 3", 1, 22);
    parse_ok(S("550 5.1.1x\r\n"), 550, "", "5.1.1x", 1, 12);
    parse_ok(S("550 5.1234.1 x\r\n"), 550, "", "5.1234.1 x", 1, 16);
    parse_ok(S("550 5.1.1234 x\r\n"), 550, "", "5.1.1234 x", 1, 16);
    parse_ok(S("550 5..1 x\r\n"), 550, "", "5..1 x", 1, 12);
    parse_ok(S("550 5.123.456 x\r\n"), 550, "5.123.456", "x", 1, 17);
    parse_ok(S("550 5.1 x\r\n"), 550, "", "5.1 x", 1, 11);
}

TEST(multi_line)
{
    UNUSED;
    const char ehlo[] = "250-mx.example Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
                        "250 8BITMIME\r\n";
    parse_ok(S(ehlo), 250, "", "mx.example Hello\nPIPELINING\nSIZE 10240000\n8BITMIME", 4,
             sizeof(ehlo) - 1);
    const char rej[] = "550-5.7.1 Message rejected\r\n550-5.7.1 see http://x\r\n550 5.7.1 bye\r\n";
    parse_ok(S(rej), 550, "5.7.1", "Message rejected\nsee http://x\nbye", 3, sizeof(rej) - 1);
    /* Only a repeat of the first line's code is stripped. */
    const char mix[] = "451-4.3.0 first\r\n451-4.4.1 second\r\n451 third\r\n";
    parse_ok(S(mix), 451, "4.3.0", "first\n4.4.1 second\nthird", 3, sizeof(mix) - 1);
    parse_ok(S("250-\r\n250\r\n"), 250, "", "\n", 2, 11);
}

TEST(consumption_stops_after_reply)
{
    UNUSED;
    struct reply_parser p;
    enum reply_status st;
    const char in[] = "250 first\r\n251-a\r\n251 b\r\n";
    reply_parser_init(&p);
    size_t n = reply_parse(&p, S(in), &st);
    assert_int_equal(st, REPLY_DONE);
    assert_int_equal(n, 11);
    assert_int_equal(reply_parse(&p, in + n, sizeof(in) - 1 - n, &st), 0);
    assert_int_equal(st, REPLY_DONE);
    reply_parser_next(&p);
    size_t m = reply_parse(&p, in + n, sizeof(in) - 1 - n, &st);
    assert_int_equal(st, REPLY_DONE);
    assert_int_equal(n + m, sizeof(in) - 1);
    assert_int_equal(p.reply.code, 251);
    assert_string_equal(p.reply.text.s, "a\nb");
    assert_int_equal(reply_parse(&p, "", 0, &st), 0);
    assert_int_equal(st, REPLY_DONE);
    reply_parser_next(&p);
    assert_int_equal(reply_parse(&p, S("25"), &st), 2);
    assert_int_equal(st, REPLY_MORE);
    assert_int_equal(reply_parse(&p, "", 0, &st), 0);
    assert_int_equal(st, REPLY_MORE);
    reply_parser_free(&p);
}

TEST(hostile_text_sanitised)
{
    UNUSED;
    parse_ok(S("250 a\rb\0c\x7f\x80\xff\td\r\n"), 250, "", "a?b?c????d", 1, 16);
    parse_ok(S("250 x\r\r\n"), 250, "", "x?", 1, 8);
    parse_ok(S("550-a\0\r\n550 \x1b[31mred\r\n"), 550, "", "a?\n?[31mred", 2, 22);
}

TEST(malformed_lines)
{
    UNUSED;
    parse_fails(S("25\r\n"), "malformed reply code");
    parse_fails(S("2\n"), "malformed reply code");
    parse_fails(S("\r\n"), "malformed reply code");
    parse_fails(S("\n"), "malformed reply code");
    parse_fails(S("hello\r\n"), "malformed reply code");
    parse_fails(S("150 x\r\n"), "malformed reply code");
    parse_fails(S("650 x\r\n"), "malformed reply code");
    parse_fails(S("260 x\r\n"), "malformed reply code");
    parse_fails(S("25a x\r\n"), "malformed reply code");
    parse_fails(S("2\0\0 x\r\n"), "malformed reply code");
    parse_fails(S("250x\r\n"), "malformed reply line");
    parse_fails(S("250\tx\r\n"), "malformed reply line");
    parse_fails(S("250\r\r\n"), "malformed reply line");
    parse_fails(S("250-ok\r\nxyz\r\n"), "malformed reply code");
    parse_fails(S("250-ok\r\n25\r\n"), "malformed reply code");
}

TEST(inconsistent_codes)
{
    UNUSED;
    parse_fails(S("250-a\r\n251 b\r\n"), "inconsistent codes in a multi-line reply");
    parse_fails(S("250-a\r\n250-b\r\n550 c\r\n"), "inconsistent codes in a multi-line reply");
}

TEST(line_lengths)
{
    UNUSED;
    struct sbuf in;
    char want[REPLY_TEXT_MAX + 1];
    sbuf_init(&in);
    /* 2048 with CRLF: tolerated, text truncated. */
    sbuf_addstr(&in, "250 ");
    for (int i = 0; i < 2048 - 6; i++)
        sbuf_addch(&in, (char)('a' + i % 26));
    sbuf_addstr(&in, "\r\n");
    assert_int_equal(in.len, REPLY_LINE_HARD_MAX);
    memcpy(want, in.s + 4, REPLY_TEXT_MAX);
    want[REPLY_TEXT_MAX] = '\0';
    parse_ok(in.s, in.len, 250, "", want, 1, in.len);
    /* 2048 with a bare LF. */
    in.s[in.len - 2] = 'x';
    parse_ok(in.s, in.len, 250, "", want, 1, in.len);
    /* 2049: an error, whatever the chunking, also without ever seeing the LF. */
    in.s[in.len - 2] = '\r';
    sbuf_reset(&in);
    sbuf_addstr(&in, "250 ");
    for (int i = 0; i < 2048 - 5; i++)
        sbuf_addch(&in, 'b');
    sbuf_addstr(&in, "\r\n");
    parse_fails(in.s, in.len, "reply line too long");
    parse_fails(in.s, 2048, "reply line too long");
    /* A 3000-byte line. */
    sbuf_reset(&in);
    sbuf_addstr(&in, "550 ");
    for (int i = 0; i < 3000; i++)
        sbuf_addch(&in, 'z');
    sbuf_addstr(&in, "\r\n");
    parse_fails(in.s, in.len, "reply line too long");
    /* A 512-byte line keeps all of its text. */
    sbuf_reset(&in);
    sbuf_addstr(&in, "250 ");
    for (int i = 0; i < REPLY_TEXT_MAX; i++)
        sbuf_addch(&in, 'q');
    sbuf_addstr(&in, "\r\n");
    assert_int_equal(in.len, REPLY_LINE_MAX);
    memset(want, 'q', REPLY_TEXT_MAX);
    parse_ok(in.s, in.len, 250, "", want, 1, in.len);
    sbuf_free(&in);
}

TEST(line_count)
{
    UNUSED;
    struct sbuf in;
    sbuf_init(&in);
    for (int i = 0; i < REPLY_LINES_MAX - 1; i++)
        sbuf_addstr(&in, "250-x\r\n");
    sbuf_addstr(&in, "250 x\r\n");
    struct reply_parser p;
    size_t u;
    reply_parser_init(&p);
    assert_int_equal(parse_all(&p, in.s, in.len, in.len, &u), REPLY_DONE);
    assert_int_equal(p.reply.nlines, REPLY_LINES_MAX);
    reply_parser_free(&p);
    sbuf_reset(&in);
    for (int i = 0; i < 200; i++)
        sbuf_addstr(&in, "250-x\r\n");
    sbuf_addstr(&in, "250 x\r\n");
    parse_fails(in.s, in.len, "too many lines in a reply");
    sbuf_free(&in);
}

TEST(next_after_error)
{
    UNUSED;
    struct reply_parser p;
    enum reply_status st;
    reply_parser_init(&p);
    reply_parse(&p, S("xx\r\n"), &st);
    assert_int_equal(st, REPLY_ERROR);
    reply_parser_next(&p);
    assert_null(p.error);
    assert_int_equal(reply_parse(&p, S("220 hi\r\n"), &st), 8);
    assert_int_equal(st, REPLY_DONE);
    reply_parser_free(&p);
}

/* parsed - parse a complete reply (test helper; caller frees with reply_parser_free) */
static struct smtp_reply *parsed(struct reply_parser *p, const char *in)
{
    enum reply_status st;
    reply_parser_init(p);
    reply_parse(p, in, strlen(in), &st);
    assert_int_equal(st, REPLY_DONE);
    return &p->reply;
}

static void expect_format(const char *in, int code, const char *ecode, const char *want)
{
    struct reply_parser p;
    struct sbuf out;
    sbuf_init(&out);
    smtp_reply_format(parsed(&p, in), code, ecode, &out);
    assert_string_equal(out.s, want);
    sbuf_free(&out);
    reply_parser_free(&p);
}

TEST(format)
{
    UNUSED;
    expect_format("550 5.1.1 No such user\r\n", 0, NULL, "550 5.1.1 No such user\r\n");
    expect_format("550 No such user\r\n", 0, NULL, "550 5.0.0 No such user\r\n");
    expect_format("550-5.7.1 a\r\n550 5.7.1 b\r\n", 0, NULL, "550-5.7.1 a\r\n550 5.7.1 b\r\n");
    expect_format("550 5.7.1 a\r\n", 451, NULL, "451 4.7.1 a\r\n");
    expect_format("550 5.7.1 a\r\n", 451, "4.4.0", "451 4.4.0 a\r\n");
    expect_format("550 5.7.1 a\r\n", 0, "", "550 a\r\n");
    expect_format("250 ok\r\n", 0, NULL, "250 2.0.0 ok\r\n");
    expect_format("354 go\r\n", 0, NULL, "354 go\r\n");
    expect_format("550\r\n", 0, NULL, "550 5.0.0\r\n");
    expect_format("550-\r\n550 x\r\n", 0, NULL, "550-5.0.0\r\n550 5.0.0 x\r\n");
    expect_format("550 5.1.1\r\n", 0, "", "550\r\n");
}

TEST(format_bounds)
{
    UNUSED;
    struct smtp_reply r = { .code = 550 };
    struct sbuf out;
    sbuf_init(&out);
    sbuf_init(&r.text);
    for (int i = 0; i < 1000; i++)
        sbuf_addch(&r.text, 'w');
    sbuf_addstr(&r.text, "\nsecond\r\nline\x01");
    r.nlines = 2;
    smtp_reply_format(&r, 0, NULL, &out);
    char *nl = strstr(out.s, "\r\n");
    assert_non_null(nl);
    assert_int_equal(nl + 2 - out.s, REPLY_LINE_MAX);
    assert_memory_equal(out.s, "550-5.0.0 www", 13);
    assert_string_equal(nl + 2, "550-5.0.0 second?\r\n550 5.0.0 line?\r\n");
    /* More than REPLY_LINES_MAX lines are cut, the last kept one ending the reply. */
    sbuf_reset(&r.text);
    sbuf_reset(&out);
    for (int i = 0; i < 150; i++)
        sbuf_addstr(&r.text, "l\n");
    smtp_reply_format(&r, 0, NULL, &out);
    size_t lines = 0;
    for (const char *s = out.s; (s = strstr(s, "\r\n")) != NULL; s += 2)
        lines++;
    assert_int_equal(lines, REPLY_LINES_MAX);
    assert_non_null(strstr(out.s, "550 5.0.0 l\r\n"));
    assert_int_equal(strstr(out.s, "550 5.0.0 l\r\n") + 13 - out.s, (long)out.len);
    sbuf_free(&out);
    smtp_reply_free(&r);
}

TEST(oneline_and_copy)
{
    UNUSED;
    struct reply_parser p;
    struct sbuf out;
    struct smtp_reply copy;
    sbuf_init(&out);
    smtp_reply_oneline(parsed(&p, "550-5.7.1 a\r\n550-5.7.1 b\r\n550 5.7.1 c\r\n"), &out);
    assert_string_equal(out.s, "550 5.7.1 a; b; c");
    smtp_reply_copy(&copy, &p.reply);
    reply_parser_free(&p);
    sbuf_reset(&out);
    smtp_reply_oneline(&copy, &out);
    assert_string_equal(out.s, "550 5.7.1 a; b; c");
    assert_int_equal(copy.nlines, 3);
    smtp_reply_free(&copy);
    sbuf_reset(&out);
    smtp_reply_oneline(parsed(&p, "250 ok\r\n"), &out);
    assert_string_equal(out.s, "250 ok");
    reply_parser_free(&p);
    sbuf_reset(&out);
    smtp_reply_oneline(parsed(&p, "250\r\n"), &out);
    assert_string_equal(out.s, "250");
    smtp_reply_copy(&copy, &p.reply);
    reply_parser_free(&p);
    sbuf_reset(&out);
    smtp_reply_format(&copy, 0, NULL, &out);
    assert_string_equal(out.s, "250 2.0.0\r\n");
    smtp_reply_free(&copy);
    sbuf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(single_line),        cmocka_unit_test(enhanced_code_rules),
        cmocka_unit_test(multi_line),         cmocka_unit_test(consumption_stops_after_reply),
        cmocka_unit_test(hostile_text_sanitised), cmocka_unit_test(malformed_lines),
        cmocka_unit_test(inconsistent_codes), cmocka_unit_test(line_lengths),
        cmocka_unit_test(line_count),         cmocka_unit_test(next_after_error),
        cmocka_unit_test(format),             cmocka_unit_test(format_bounds),
        cmocka_unit_test(oneline_and_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
