/* spool_record.h - the typed, length-prefixed records of a message file (private to spool).
 *
 * A file is the magic line "tandem-spool 1\n" followed by records, each
 *     <type: one byte> <length: decimal, no leading zeros> ':' <length bytes> '\n'
 * so any byte may appear in a payload without ending or forging a record.  This layer
 * knows only the framing and the global payload cap; spool_envelope.c and spool_read.c
 * give the types their meaning and order. */
#ifndef TANDEM_SPOOL_RECORD_H
#define TANDEM_SPOOL_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define REC_MAGIC "tandem-spool 1\n"
#define REC_PAYLOAD_MAX 65536u /* no record is longer, whatever its type */
#define REC_DATA_MAX REC_PAYLOAD_MAX
#define REC_HDR_MAX 16 /* type + at most 6 digits + ':' fit with room to spare */

enum rec_type {
    REC_ID = 'I',          /* message id (must equal the file name) */
    REC_TIME = 'T',        /* arrival, decimal seconds since the epoch */
    REC_SENDER = 'S',      /* envelope sender, may be empty */
    REC_RCPT = 'R',        /* one recipient address; N and O that follow belong to it */
    REC_NOTIFY = 'N',      /* decimal DSN NOTIFY bits 1..15 of the preceding R */
    REC_ORCPT = 'O',       /* ORCPT of the preceding R */
    REC_CLIENT_IP = 'C',
    REC_CLIENT_PORT = 'P', /* decimal 0..65535 */
    REC_HELO = 'H',
    REC_PROTOCOL = 'Y',
    REC_TLS = 'L',
    REC_ENVID = 'E',
    REC_RET = 'F',         /* decimal enum dsn_ret */
    REC_BODY = 'B',        /* decimal enum body_type */
    REC_SMTPUTF8 = 'U',    /* "1" */
    REC_DATA = 'D',        /* 1..65536 bytes of content */
    REC_SIZE = 'Z',        /* decimal total of the D payloads */
    REC_MSGID = 'M',       /* Message-ID header value */
    REC_HEADERS = 'A',     /* header lines added after the content (data ACL): delivered first */
    REC_END = 'X',         /* empty; nothing may follow */
};

/* Writing: append one record to b. */
void rec_put(struct sbuf *b, char type, const void *p, size_t len);
void rec_put_str(struct sbuf *b, char type, const char *s);
void rec_put_num(struct sbuf *b, char type, uint64_t v);
/* Format just the "<type><len>:" prefix into hdr; returns its length. */
size_t rec_header(char hdr[REC_HDR_MAX], char type, size_t len);

/* Reading: a buffered, strictly bounded record reader over a file descriptor. */
struct rec_in {
    int fd;
    uint64_t off;           /* file offset of buf[pos] */
    size_t pos, len;
    unsigned char *payload; /* REC_PAYLOAD_MAX bytes and a NUL */
    unsigned char buf[8192];
};

struct rec {
    char type;
    size_t len;
    const unsigned char *data; /* NUL-terminated; NULL when the payload was skipped */
    uint64_t off;              /* file offset where the record starts */
};

void rec_in_init(struct rec_in *in, int fd);
void rec_in_free(struct rec_in *in);
/* Consume and check the magic line.  0, or -1 with errno (EBADMSG when it is wrong). */
int rec_in_magic(struct rec_in *in);
/* Read the next record; D payloads are skipped (not read) when skip_data.
 * Returns 1, 0 at a clean end of file, or -1 with errno (EBADMSG for bad framing). */
int rec_next(struct rec_in *in, struct rec *r, bool skip_data);
/* Continue reading at file offset off.  0, or -1 with errno. */
int rec_in_seek(struct rec_in *in, uint64_t off);

/* Parse a payload as a decimal number without sign or leading zeros, at most max. */
bool rec_num(const struct rec *r, uint64_t max, uint64_t *out);
/* The payload as a C string, or NULL when it holds a NUL (which a C string cannot keep). */
const char *rec_str(const struct rec *r);

#endif
