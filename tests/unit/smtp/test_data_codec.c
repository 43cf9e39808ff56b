/* test_data_codec.c - DATA decoding (smuggling, splits, NUL, flags) and encoding. */
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

/* The result of decoding one input. */
struct dec_result {
    struct sbuf out;
    size_t used;
    bool done;
    unsigned flags;
};

/* decode_split - decode in[0..len) fed as pieces cut at a and b (a <= b <= len) */
static void decode_split(const char *in, size_t len, bool raw, bool finish, size_t a, size_t b,
                         struct dec_result *r)
{
    struct data_dec d;
    size_t cuts[3] = { a, b, len }, pos = 0;
    data_dec_init(&d, raw);
    sbuf_init(&r->out);
    r->used = 0;
    for (int i = 0; i < 3; i++) {
        size_t n = data_dec_feed(&d, in + pos, cuts[i] - pos, &r->out);
        assert_true(n <= cuts[i] - pos);
        r->used += n;
        if (n < cuts[i] - pos) {
            assert_true(d.done);
            break;
        }
        pos = cuts[i];
    }
    if (finish)
        data_dec_finish(&d, &r->out);
    assert_int_equal(d.out_len, r->out.len);
    r->done = d.done;
    r->flags = d.flags;
}

static void decode(const char *in, size_t len, bool raw, bool finish, struct dec_result *r)
{
    decode_split(in, len, raw, finish, len, len, r);
}

/* check_splits - every one- and two-cut split of in gives the same result as one feed */
static void check_splits(const char *in, size_t len, bool raw, bool finish)
{
    struct dec_result whole, part;
    decode(in, len, raw, finish, &whole);
    for (size_t a = 0; a <= len; a++) {
        for (size_t b = a; b <= len; b += (len > 64 ? 7 : 1)) {
            decode_split(in, len, raw, finish, a, b, &part);
            assert_int_equal(part.out.len, whole.out.len);
            assert_memory_equal(part.out.s, whole.out.s, whole.out.len);
            assert_int_equal(part.used, whole.used);
            assert_int_equal(part.done, whole.done);
            assert_int_equal(part.flags, whole.flags);
            sbuf_free(&part.out);
        }
    }
    sbuf_free(&whole.out);
}

/* expect - decoding in (DATA mode) gives out, consumes used bytes, done as given */
static void expect(const char *in, size_t len, const char *out, size_t olen, size_t used,
                   bool done, unsigned flags)
{
    struct dec_result r;
    decode(in, len, false, false, &r);
    if (r.out.len != olen || memcmp(r.out.s ? r.out.s : "", out, olen) != 0)
        fail_msg("decoded output differs (%zu vs %zu bytes)", r.out.len, olen);
    assert_int_equal(r.used, used);
    assert_int_equal(r.done, done);
    assert_int_equal(r.flags, flags);
    sbuf_free(&r.out);
    check_splits(in, len, false, false);
}

TEST(simple_message)
{
    UNUSED;
    expect(S("Subject: x\r\n\r\nbody\r\n.\r\n"), S("Subject: x\r\n\r\nbody\r\n"), 23, true, 0);
}

TEST(empty_message_first_line_dot)
{
    UNUSED;
    expect(S(".\r\n"), S(""), 3, true, 0);
    expect(S(".\r\nMAIL FROM:<x@y>\r\n"), S(""), 3, true, 0);
}

TEST(terminator_stops_consumption)
{
    UNUSED;
    const char in[] = "a\r\n.\r\nQUIT\r\n";
    expect(S(in), S("a\r\n"), 6, true, 0);
}

TEST(dot_unstuffing)
{
    UNUSED;
    expect(S("..\r\n.x\r\n...\r\n.\r\n"), S(".\r\nx\r\n..\r\n"), 16, true, 0);
    expect(S("a.b\r\n .\r\n.\r\n"), S("a.b\r\n .\r\n"), 12, true, 0);
}

/* Smuggling: none of these end the data; what follows stays inside it. */
TEST(smuggling_bare_lf_dot_lf)
{
    UNUSED;
    const char in[] = "a\n.\nMAIL FROM:<evil@x>\r\n.\r\n";
    expect(S(in), S("a . MAIL FROM:<evil@x>\r\n"), sizeof(in) - 1, true, DATA_BARE_LF);
}

TEST(smuggling_lf_dot_crlf)
{
    UNUSED;
    const char in[] = "a\n.\r\nRCPT TO:<v@x>\r\nDATA\r\n.\r\n";
    expect(S(in), S("a .\r\nRCPT TO:<v@x>\r\nDATA\r\n"), sizeof(in) - 1, true, DATA_BARE_LF);
}

TEST(smuggling_crlf_dot_lf)
{
    UNUSED;
    const char in[] = "a\r\n.\nMAIL FROM:<e@x>\r\n.\r\n";
    expect(S(in), S("a\r\n MAIL FROM:<e@x>\r\n"), sizeof(in) - 1, true, DATA_BARE_LF);
}

TEST(smuggling_cr_dot_cr)
{
    UNUSED;
    const char in[] = "a\r.\rMAIL FROM:<e@x>\r\n.\r\n";
    expect(S(in), S("a . MAIL FROM:<e@x>\r\n"), sizeof(in) - 1, true, DATA_BARE_CR);
}

TEST(smuggling_crlf_dot_cr_crlf)
{
    UNUSED;
    const char in[] = "a\r\n.\r\r\nDATA\r\n.\r\n";
    expect(S(in), S("a\r\n \r\nDATA\r\n"), sizeof(in) - 1, true, DATA_BARE_CR);
}

TEST(smuggling_more_variants)
{
    UNUSED;
    expect(S("a\r\n.\r.\r\n.\r\n"), S("a\r\n .\r\n"), 11, true, DATA_BARE_CR);
    expect(S("a\n\r\n.\r\n"), S("a \r\n"), 7, true, DATA_BARE_LF);
    expect(S("a\r\r\n.\r\n"), S("a \r\n"), 7, true, DATA_BARE_CR);
    expect(S("a\r\n\n.\r\n.\r\n"), S("a\r\n .\r\n"), 10, true, DATA_BARE_LF);
    expect(S("\n.\n"), S(" . "), 3, false, DATA_BARE_LF);
    expect(S(".\n"), S(" "), 2, false, DATA_BARE_LF);
    expect(S(".\r"), S(""), 2, false, 0);
    expect(S("\r\n.\r"), S("\r\n"), 4, false, 0);
    expect(S("a\r\n.\r\n\r\n"), S("a\r\n"), 6, true, 0);
    expect(S("a\r\n..\r\n.\r\n"), S("a\r\n.\r\n"), 10, true, 0);
    expect(S("a\r\n. \r\n.\r\n"), S("a\r\n \r\n"), 10, true, 0);
}

TEST(cr_cr_lf)
{
    UNUSED;
    expect(S("x\r\r\ny\r\n.\r\n"), S("x \r\ny\r\n"), 10, true, DATA_BARE_CR);
    expect(S("\r\r\r\n.\r\n"), S("  \r\n"), 7, true, DATA_BARE_CR);
}

TEST(nul_and_8bit)
{
    UNUSED;
    expect(S("a\0b\r\n.\r\n"), S("a\0b\r\n"), 8, true, DATA_NUL);
    expect(S("\xc3\xa9\r\n.\r\n"), S("\xc3\xa9\r\n"), 7, true, DATA_8BIT);
    expect(S("\0\xff\0\x80\n\r\n.\r\n"), S("\0\xff\0\x80 \r\n"), 10, true,
           DATA_NUL | DATA_8BIT | DATA_BARE_LF);
    expect(S(".\0\r\n.\r\n"), S("\0\r\n"), 7, true, DATA_NUL);
}

TEST(incomplete_data)
{
    UNUSED;
    expect(S("abc"), S("abc"), 3, false, 0);
    expect(S("abc\r"), S("abc"), 4, false, 0);
    expect(S("abc\r\n."), S("abc\r\n"), 6, false, 0);
    expect(S("abc\r\n.\r"), S("abc\r\n"), 7, false, 0);
}

TEST(feed_after_done)
{
    UNUSED;
    struct data_dec d;
    struct sbuf out;
    sbuf_init(&out);
    data_dec_init(&d, false);
    assert_int_equal(data_dec_feed(&d, S(".\r\n"), &out), 3);
    assert_true(d.done);
    assert_int_equal(data_dec_feed(&d, S("more\r\n"), &out), 0);
    data_dec_finish(&d, &out);
    assert_int_equal(out.len, 0);
    sbuf_free(&out);
}

TEST(raw_mode)
{
    UNUSED;
    struct dec_result r;
    const char in[] = ".\r\n..\r\na\rb\nc\r\n.\r\nx";
    decode(in, sizeof(in) - 1, true, true, &r);
    assert_false(r.done);
    assert_int_equal(r.used, sizeof(in) - 1);
    const char want[] = ".\r\n..\r\na b c\r\n.\r\nx\r\n";
    assert_int_equal(r.out.len, sizeof(want) - 1);
    assert_memory_equal(r.out.s, want, sizeof(want) - 1);
    assert_int_equal(r.flags, DATA_BARE_CR | DATA_BARE_LF);
    sbuf_free(&r.out);
    check_splits(in, sizeof(in) - 1, true, true);
    check_splits(in, sizeof(in) - 1, true, false);
}

TEST(raw_cr_across_chunks)
{
    UNUSED;
    struct data_dec d;
    struct sbuf out;
    sbuf_init(&out);
    data_dec_init(&d, true);
    data_dec_feed(&d, S("line\r"), &out);
    assert_int_equal(out.len, 4);
    data_dec_feed(&d, S("\nnext\r"), &out);
    data_dec_finish(&d, &out);
    assert_string_equal(out.s, "line\r\nnext \r\n");
    assert_int_equal(d.flags, DATA_BARE_CR);
    assert_int_equal(d.out_len, out.len);
    sbuf_free(&out);
}

TEST(raw_finish)
{
    UNUSED;
    struct dec_result r;
    decode(S(""), true, true, &r);
    assert_int_equal(r.out.len, 0);
    sbuf_free(&r.out);
    decode(S("a\r\n"), true, true, &r);
    assert_string_equal(r.out.s, "a\r\n");
    sbuf_free(&r.out);
    decode(S("a"), true, true, &r);
    assert_string_equal(r.out.s, "a\r\n");
    sbuf_free(&r.out);
    decode(S("a\n"), true, true, &r);
    assert_string_equal(r.out.s, "a \r\n");
    sbuf_free(&r.out);
}

TEST(every_split_of_tricky_inputs)
{
    UNUSED;
    static const char *const inputs[] = {
        "a\r\n.\r\nb", "\r\n.\r\n", ".\r\n", "..\r\n.\r\n", "a\r\r\n.\r\r\n.\r\n",
        "\r\r\n\n\r.\r\n.\n.\r\n", "x\r\n.y\r\n..\r\n.\r\r\n.\r\n", "\0\r\0\n.\0\r\n.\r\n",
        "a\n.\nb\r.\rc\r\n.\nd\r\n.\r\re\r\n.\r\n",
    };
    for (size_t i = 0; i < ARRAY_LEN(inputs); i++) {
        size_t len = strlen(inputs[i]);
        if (i == 7)
            len = 11;
        check_splits(inputs[i], len, false, false);
        check_splits(inputs[i], len, false, true);
        check_splits(inputs[i], len, true, true);
    }
}

/* encode - encode in[0..len) fed in pieces of step bytes */
static void encode(const char *in, size_t len, size_t step, struct sbuf *out)
{
    struct data_enc e;
    data_enc_init(&e);
    sbuf_init(out);
    for (size_t pos = 0; pos < len; pos += step)
        data_enc_feed(&e, in + pos, len - pos < step ? len - pos : step, out);
    data_enc_finish(&e, out);
}

static void expect_enc(const char *in, size_t len, const char *want)
{
    for (size_t step = 1; step <= len + 1; step++) {
        struct sbuf out;
        encode(in, len, step, &out);
        assert_string_equal(out.s, want);
        sbuf_free(&out);
    }
}

TEST(encoder)
{
    UNUSED;
    expect_enc(S(""), ".\r\n");
    expect_enc(S("a\r\n"), "a\r\n.\r\n");
    expect_enc(S("a"), "a\r\n.\r\n");
    expect_enc(S(".\r\n"), "..\r\n.\r\n");
    expect_enc(S("a\r\n.b\r\n..\r\n"), "a\r\n..b\r\n...\r\n.\r\n");
    expect_enc(S("a.b\r\n"), "a.b\r\n.\r\n");
    expect_enc(S("\r\n.\r\n"), "\r\n..\r\n.\r\n");
    expect_enc(S("."), "..\r\n.\r\n");
    /* Defence in depth: a bare CR or LF never reaches the wire. */
    expect_enc(S("a\n.\r\n"), "a .\r\n.\r\n");
    expect_enc(S("a\r.\r"), "a . \r\n.\r\n");
    expect_enc(S("a\r\r\n"), "a \r\n.\r\n");
}

/* round_trip - decode(encode(x)) == x for decoded content x, over several chunkings */
static void round_trip(const char *x, size_t len)
{
    for (size_t step = 1; step <= len + 1; step++) {
        struct sbuf wire;
        struct dec_result r;
        encode(x, len, step, &wire);
        decode(wire.s, wire.len, false, false, &r);
        assert_true(r.done);
        assert_int_equal(r.used, wire.len);
        assert_int_equal(r.out.len, len);
        assert_memory_equal(r.out.s ? r.out.s : "", x, len);
        sbuf_free(&wire);
        sbuf_free(&r.out);
    }
}

TEST(dot_stuffing_round_trip)
{
    UNUSED;
    round_trip(S(""));
    round_trip(S("\r\n"));
    round_trip(S(".\r\n"));
    round_trip(S("..\r\n...\r\n.\r\n"));
    round_trip(S("a\r\n.\r\nMAIL FROM:<x@y>\r\n"));
    round_trip(S(".a\r\n\r\n.\r\n\0.\r\n\xff\r\n"));
}

TEST(big_message_out_len)
{
    UNUSED;
    struct sbuf in, out;
    struct data_dec d;
    sbuf_init(&in);
    sbuf_init(&out);
    for (int i = 0; i < 10000; i++)
        sbuf_addstr(&in, i % 7 ? "The quick brown fox jumps over the lazy dog\r\n" : ".dot\r\n");
    sbuf_addstr(&in, ".\r\n");
    data_dec_init(&d, false);
    size_t used = 0;
    for (size_t pos = 0; pos < in.len && !d.done; pos += 4096) {
        size_t n = in.len - pos < 4096 ? in.len - pos : 4096;
        used += data_dec_feed(&d, in.s + pos, n, &out);
    }
    assert_true(d.done);
    assert_int_equal(used, in.len);
    assert_int_equal(d.out_len, out.len);
    assert_int_equal(out.len, in.len - 3 - 1429);
    sbuf_free(&in);
    sbuf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(simple_message),
        cmocka_unit_test(empty_message_first_line_dot),
        cmocka_unit_test(terminator_stops_consumption),
        cmocka_unit_test(dot_unstuffing),
        cmocka_unit_test(smuggling_bare_lf_dot_lf),
        cmocka_unit_test(smuggling_lf_dot_crlf),
        cmocka_unit_test(smuggling_crlf_dot_lf),
        cmocka_unit_test(smuggling_cr_dot_cr),
        cmocka_unit_test(smuggling_crlf_dot_cr_crlf),
        cmocka_unit_test(smuggling_more_variants),
        cmocka_unit_test(cr_cr_lf),
        cmocka_unit_test(nul_and_8bit),
        cmocka_unit_test(incomplete_data),
        cmocka_unit_test(feed_after_done),
        cmocka_unit_test(raw_mode),
        cmocka_unit_test(raw_cr_across_chunks),
        cmocka_unit_test(raw_finish),
        cmocka_unit_test(every_split_of_tricky_inputs),
        cmocka_unit_test(encoder),
        cmocka_unit_test(dot_stuffing_round_trip),
        cmocka_unit_test(big_message_out_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
