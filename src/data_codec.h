/* data_codec.h - the DATA stream: strict decoding of client input (end of data only at
 * CR LF . CR LF, dot-unstuffing, bare CR/LF never a line break) and re-encoding for output
 * (CRLF lines, dot-stuffing, the final dot).  Pure and resumable: input may be split anywhere. */
#ifndef TANDEM_DATA_CODEC_H
#define TANDEM_DATA_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

enum data_flag {
    DATA_BARE_CR = 1, /* a CR not followed by LF was seen (replaced by a space in the output) */
    DATA_BARE_LF = 2, /* an LF not preceded by CR was seen (replaced by a space in the output) */
    DATA_NUL = 4,     /* a NUL byte was seen (kept as is) */
    DATA_8BIT = 8,    /* a byte >= 0x80 was seen (kept as is) */
};

struct data_dec {
    int state;
    bool raw;         /* BDAT content: no dot-unstuffing, no terminator */
    bool done;        /* the terminating CRLF.CRLF was consumed */
    unsigned flags;   /* enum data_flag bits seen so far */
    uint64_t out_len; /* decoded bytes produced so far */
};

/* Start decoding DATA input (raw=false) or BDAT chunk content (raw=true). */
void data_dec_init(struct data_dec *d, bool raw);

/* Decode in[0..len) appending to out: lines end in CRLF, leading dots removed, stray CR or LF
 * replaced by a space (and flagged).  For DATA, consumption stops just after the terminating
 * CR LF . CR LF (d->done is set); the returned count tells how much was consumed, and what
 * follows is the next command.  The terminator itself is not output.  A message that ends
 * with a partial line (BDAT) is finished by data_dec_finish. */
size_t data_dec_feed(struct data_dec *d, const char *in, size_t len, struct sbuf *out);

/* BDAT LAST: flush a pending CR (as a bare CR) and end the content with CRLF if it does not. */
void data_dec_finish(struct data_dec *d, struct sbuf *out);

struct data_enc {
    bool at_line_start;
    bool after_cr;
};

/* Re-encode decoded content for the wire: a '.' at the start of a line is doubled.  The input
 * is CRLF-lined content as produced by data_dec_feed; should it hold a bare CR or LF anyway,
 * that is sent as a space, so the output never holds one (and never a premature end of data).
 * Input may be split anywhere (a CR at the end of a piece waits for the next byte). */
void data_enc_init(struct data_enc *e);
void data_enc_feed(struct data_enc *e, const char *in, size_t len, struct sbuf *out);
/* Terminate: CRLF if the content did not end with one, then ".\r\n". */
void data_enc_finish(struct data_enc *e, struct sbuf *out);

#endif
