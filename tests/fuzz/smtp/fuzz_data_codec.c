/* fuzz_data_codec.c - libFuzzer target for the DATA decoder and encoder.
 * Input: byte 0 selects DATA or BDAT (raw) mode, bytes 1-2 seed the chunk sizes, the rest is
 * the client's stream.  Properties:
 *  - decoding in random-sized chunks gives exactly what one whole feed gives;
 *  - decoded content never holds a bare CR or LF;
 *  - for the decoded content X, encode(X) decodes back to X, and the encoded stream (after
 *    the DATA command's CRLF) holds CR LF . CR LF exactly once, at its end;
 *  - the encoder given the raw (undecoded) input still emits exactly one terminator;
 *  - the result equals that of a naive reference model (find the first CR LF . CR LF, split
 *    at CRLF, unstuff, turn other CRs and LFs into spaces). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "smtp/smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decoding result for comparisons. */
struct dec {
    struct sbuf out;
    size_t used;
    bool done;
    unsigned flags;
};

/* next_chunk - a pseudo-random chunk length in 1..64 (xorshift on *seed) */
static size_t next_chunk(uint32_t *seed)
{
    *seed ^= *seed << 13;
    *seed ^= *seed >> 17;
    *seed ^= *seed << 5;
    return 1 + *seed % 64;
}

/* decode - feed in[0..len) in chunks (seed 0: one feed), then finish */
static void decode(const char *in, size_t len, bool raw, uint32_t seed, struct dec *r)
{
    struct data_dec d;
    data_dec_init(&d, raw);
    sbuf_init(&r->out);
    r->used = 0;
    while (r->used < len && !d.done) {
        size_t n = seed ? next_chunk(&seed) : len;
        if (n > len - r->used)
            n = len - r->used;
        size_t c = data_dec_feed(&d, in + r->used, n, &r->out);
        if (c > n || (c < n && !d.done))
            abort();
        r->used += c;
    }
    data_dec_finish(&d, &r->out);
    if (d.out_len != r->out.len)
        abort();
    r->done = d.done;
    r->flags = d.flags;
}

/* encode - encode in[0..len) in chunks (seed 0: one feed) and terminate */
static void encode(const char *in, size_t len, uint32_t seed, struct sbuf *out)
{
    struct data_enc e;
    data_enc_init(&e);
    sbuf_init(out);
    for (size_t pos = 0; pos < len;) {
        size_t n = seed ? next_chunk(&seed) : len;
        if (n > len - pos)
            n = len - pos;
        data_enc_feed(&e, in + pos, n, out);
        pos += n;
    }
    data_enc_finish(&e, out);
}

/* no_bare_eol - every CR in s is followed by LF and every LF preceded by CR */
static bool no_bare_eol(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n'))
            return false;
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
            return false;
    }
    return true;
}

/* one_terminator - "\r\n" + wire holds "\r\n.\r\n" exactly once, at its end */
static bool one_terminator(const struct sbuf *wire)
{
    struct sbuf w;
    sbuf_init(&w);
    sbuf_add(&w, "\r\n", 2);
    sbuf_add(&w, wire->s, wire->len);
    const char *hit = memmem(w.s, w.len, "\r\n.\r\n", 5);
    bool ok = hit != NULL && (size_t)(hit - w.s) == w.len - 5;
    sbuf_free(&w);
    return ok;
}

/* mem_eq - equal byte strings (an empty sbuf may have a NULL pointer) */
static bool mem_eq(const char *a, const char *b, size_t n)
{
    return n == 0 || memcmp(a, b, n) == 0;
}

static bool same(const struct dec *a, const struct dec *b)
{
    return a->used == b->used && a->done == b->done && a->flags == b->flags &&
           a->out.len == b->out.len && mem_eq(a->out.s, b->out.s, a->out.len);
}

/* ref_line - reference model for one line (without its CRLF): unstuff, bare CR/LF -> ' ' */
static void ref_line(const char *l, size_t n, bool raw, struct dec *r)
{
    if (!raw && n > 0 && l[0] == '.')
        l++, n--;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)l[i];
        r->flags |= c == '\r' ? DATA_BARE_CR : c == '\n' ? DATA_BARE_LF : c == 0 ? DATA_NUL
                  : c >= 0x80 ? DATA_8BIT : 0;
        sbuf_addch(&r->out, c == '\r' || c == '\n' ? ' ' : (char)c);
    }
}

/* ref_decode - the naive reference decoder (whole input, then finish) */
static void ref_decode(const char *in, size_t len, bool raw, struct dec *r)
{
    struct sbuf w;
    sbuf_init(&w);
    sbuf_add(&w, "\r\n", 2);
    sbuf_add(&w, in, len);
    const char *t = raw ? NULL : memmem(w.s, w.len, "\r\n.\r\n", 5);
    size_t clen = t ? (size_t)(t - w.s) : len; /* content: in[0..clen) */
    sbuf_init(&r->out);
    r->flags = 0;
    r->done = t != NULL;
    r->used = t ? clen + 3 : len;
    for (size_t pos = 0; pos < clen;) {
        const char *crlf = memmem(in + pos, clen - pos, "\r\n", 2);
        size_t n = crlf ? (size_t)(crlf - (in + pos)) : clen - pos;
        ref_line(in + pos, n, raw, r);
        sbuf_add(&r->out, "\r\n", 2); /* a line end, or the one finish adds */
        pos += n + 2;
    }
    sbuf_free(&w);
}

/* check_round_trip - encode(x) is well terminated and decodes back to x */
static void check_round_trip(const struct sbuf *x, uint32_t seed)
{
    struct sbuf wire;
    struct dec back;
    encode(x->s, x->len, seed, &wire);
    if (!one_terminator(&wire) || !no_bare_eol(wire.s, wire.len))
        abort();
    decode(wire.s, wire.len, false, seed, &back);
    if (!back.done || back.used != wire.len || back.out.len != x->len ||
        !mem_eq(back.out.s, x->s, x->len) || back.flags & (DATA_BARE_CR | DATA_BARE_LF))
        abort();
    sbuf_free(&wire);
    sbuf_free(&back.out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    bool raw = data[0] & 1;
    uint32_t seed = (uint32_t)data[1] << 8 | data[2] | 0x10000u;
    const char *in = (const char *)data + 3;
    size_t len = size - 3;
    struct dec whole, chunked;
    decode(in, len, raw, 0, &whole);
    decode(in, len, raw, seed, &chunked);
    if (!same(&whole, &chunked) || !no_bare_eol(whole.out.s, whole.out.len))
        abort();
    if (raw && whole.done)
        abort();
    struct dec ref;
    ref_decode(in, len, raw, &ref);
    if (!same(&whole, &ref))
        abort();
    sbuf_free(&ref.out);
    check_round_trip(&whole.out, seed);
    /* The encoder fed undecoded input (bare CR/LF and all) must still be safe. */
    struct sbuf wire;
    encode(in, len, seed, &wire);
    if (!one_terminator(&wire) || !no_bare_eol(wire.s, wire.len))
        abort();
    sbuf_free(&wire);
    sbuf_free(&whole.out);
    sbuf_free(&chunked.out);
    return 0;
}
