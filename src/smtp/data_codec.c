/* data_codec.c - the DATA stream, decoded strictly and re-encoded for the wire.
 *
 * SMTP smuggling defence: only CR LF . CR LF ends DATA.  A CR not followed by LF and an LF
 * not preceded by CR are never line breaks: each becomes one space (and is flagged), so no
 * "\n.\n", "\r.\r" or "\r\n.\n" can end the data here or, after re-encoding, at the next hop.
 * The decoder is a byte state machine: input may be split anywhere across calls, and the
 * output for a given input does not depend on how it was split. */
#include "smtp.h"

#include <string.h>

enum dec_state {
    DS_LINE_START, /* at the start of a line (the first line of the data, or after CR LF) */
    DS_TEXT,       /* inside a line */
    DS_CR,         /* a CR was read and not yet output: CR LF or a bare CR */
    DS_DOT,        /* a '.' at the start of a line was read (and is dropped) */
    DS_DOT_CR,     /* ".\r" at the start of a line: LF next ends the data */
};

/* Byte classes for the run scanner: a byte stops the run when its class intersects the stop
 * mask.  NUL and 8-bit bytes stop it only until their flag is set. */
#define CLASS_EOL 0x10

static const unsigned char byte_class[256] = {
    [0] = DATA_NUL, ['\r'] = CLASS_EOL, ['\n'] = CLASS_EOL,
    [0x80 ... 0xff] = DATA_8BIT,
};

/* scan_run - length of the run of ordinary bytes at p, flagging NUL and 8-bit bytes */
static size_t scan_run(const unsigned char *p, size_t n, unsigned *flags)
{
    size_t i = 0;
    for (;;) {
        unsigned stop = CLASS_EOL | (~*flags & (DATA_NUL | DATA_8BIT));
        while (i < n && (byte_class[p[i]] & stop) == 0)
            i++;
        if (i == n || byte_class[p[i]] == CLASS_EOL)
            return i;
        *flags |= byte_class[p[i]];
        i++;
    }
}

void data_dec_init(struct data_dec *d, bool raw)
{
    memset(d, 0, sizeof(*d));
    d->state = DS_LINE_START;
    d->raw = raw;
}

/* bare - output the space that stands for a bare CR or LF */
static void bare(struct data_dec *d, unsigned flag, struct sbuf *out)
{
    d->flags |= flag;
    sbuf_addch(out, ' ');
    d->state = DS_TEXT;
}

/* dec_text - inside a line: copy a run of ordinary bytes, then settle one CR or LF */
static size_t dec_text(struct data_dec *d, const unsigned char *p, size_t n, struct sbuf *out)
{
    size_t run = scan_run(p, n, &d->flags);
    sbuf_add(out, p, run);
    if (run == n)
        return n;
    if (p[run] == '\r')
        d->state = DS_CR;
    else
        bare(d, DATA_BARE_LF, out);
    return run + 1;
}

/* dec_step - consume at least one byte of p[0..n) according to the state */
static size_t dec_step(struct data_dec *d, const unsigned char *p, size_t n, struct sbuf *out)
{
    switch (d->state) {
    case DS_LINE_START:
        if (p[0] == '.' && !d->raw) {
            d->state = DS_DOT;
            return 1;
        }
        d->state = DS_TEXT;
        return dec_text(d, p, n, out);
    case DS_TEXT:
        return dec_text(d, p, n, out);
    case DS_CR:
        if (p[0] == '\n') {
            sbuf_add(out, "\r\n", 2);
            d->state = DS_LINE_START;
            return 1;
        }
        bare(d, DATA_BARE_CR, out);
        return 0; /* the byte after the bare CR is read again as text */
    case DS_DOT:
        if (p[0] == '\r') {
            d->state = DS_DOT_CR;
            return 1;
        }
        d->state = DS_TEXT;
        return 0;
    case DS_DOT_CR:
        if (p[0] == '\n') {
            d->done = true;
            return 1;
        }
        bare(d, DATA_BARE_CR, out);
        return 0;
    }
    fatalx("data_dec: bad state %d", d->state);
}

size_t data_dec_feed(struct data_dec *d, const char *in, size_t len, struct sbuf *out)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0, before = out->len;
    while (i < len && !d->done)
        i += dec_step(d, p + i, len - i, out);
    d->out_len += out->len - before;
    return i;
}

void data_dec_finish(struct data_dec *d, struct sbuf *out)
{
    size_t before = out->len;
    if (d->done)
        return;
    if (d->state == DS_CR || d->state == DS_DOT_CR)
        bare(d, DATA_BARE_CR, out);
    if (d->state == DS_TEXT || d->state == DS_DOT)
        sbuf_add(out, "\r\n", 2);
    d->state = DS_LINE_START;
    d->out_len += out->len - before;
}

void data_enc_init(struct data_enc *e)
{
    e->at_line_start = true;
    e->after_cr = false;
}

/* enc_line_run - length of the run at p up to the next CR or LF */
static size_t enc_line_run(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && p[i] != '\r' && p[i] != '\n')
        i++;
    return i;
}

/* enc_step - encode at least one byte of p[0..n) (0 only to re-read a byte after a CR) */
static size_t enc_step(struct data_enc *e, const char *p, size_t n, struct sbuf *out)
{
    if (e->after_cr) {
        e->after_cr = false;
        if (p[0] == '\n') {
            sbuf_add(out, "\r\n", 2);
            e->at_line_start = true;
            return 1;
        }
        sbuf_addch(out, ' '); /* a bare CR never reaches the wire */
        e->at_line_start = false;
        return 0;
    }
    if (e->at_line_start && p[0] == '.')
        sbuf_addch(out, '.');
    e->at_line_start = false;
    size_t run = enc_line_run(p, n);
    sbuf_add(out, p, run);
    if (run == n)
        return n;
    if (p[run] == '\r')
        e->after_cr = true;
    else
        sbuf_addch(out, ' '); /* nor does a bare LF */
    return run + 1;
}

void data_enc_feed(struct data_enc *e, const char *in, size_t len, struct sbuf *out)
{
    size_t i = 0;
    while (i < len)
        i += enc_step(e, in + i, len - i, out);
}

void data_enc_finish(struct data_enc *e, struct sbuf *out)
{
    if (e->after_cr) {
        sbuf_addch(out, ' ');
        e->after_cr = false;
        e->at_line_start = false;
    }
    if (!e->at_line_start)
        sbuf_add(out, "\r\n", 2);
    sbuf_add(out, ".\r\n", 3);
    e->at_line_start = true;
}
