/* smtp_reply.h - strict, resumable parser for SMTP replies from a next hop, and the
 * formatting of replies passed on to clients. */
#ifndef TANDEM_SMTP_REPLY_H
#define TANDEM_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define REPLY_LINE_MAX 512      /* RFC 5321 4.5.3.1.5: lines we format never exceed it */
#define REPLY_LINE_HARD_MAX 2048 /* a received line (with its CRLF) longer than this is a
                                  * protocol error; longer than REPLY_LINE_MAX is tolerated
                                  * (real servers send them) but its text is truncated */
#define REPLY_TEXT_MAX (REPLY_LINE_MAX - 6) /* text kept per received line: "DDD-" text CRLF */
#define REPLY_LINES_MAX 100     /* more lines than this in one reply is a protocol error */

struct smtp_reply {
    int code;          /* 200..599 */
    char ecode[16];    /* enhanced status code of the first line ("5.1.1"), "" if none */
    struct sbuf text;  /* the lines' text after code (and enhanced code), joined with '\n';
                        * control and 8-bit characters replaced by '?' */
    size_t nlines;
};

enum reply_status { REPLY_MORE, REPLY_DONE, REPLY_ERROR };

struct reply_parser {
    int state;
    struct sbuf line;       /* the line being assembled */
    struct smtp_reply reply;
    const char *error;      /* after REPLY_ERROR: what was wrong (static text) */
};

void reply_parser_init(struct reply_parser *p);
void reply_parser_free(struct reply_parser *p);

/* Received lines: "DDD" then '-' (more lines follow), ' ' or nothing (last line), text, then
 * CRLF or a bare LF.  Digits: [2-5][0-5][0-9], the same code on every line.  The enhanced
 * status code (RFC 3463, class matching the first digit) is taken from the first line and
 * stripped from every line that repeats it.
 * Feed bytes received from the server.  Returns the number of bytes consumed and sets *st:
 * REPLY_DONE when a complete reply is in p->reply (consumption stops after it; call
 * reply_parser_next before parsing the next one), REPLY_MORE when all input was consumed
 * without completing a reply, REPLY_ERROR on a malformed reply (p->error says why). */
size_t reply_parse(struct reply_parser *p, const char *in, size_t len, enum reply_status *st);
void reply_parser_next(struct reply_parser *p);

/* Copy a parsed reply into dst (which owns no buffer yet); free a reply's buffer. */
void smtp_reply_copy(struct smtp_reply *dst, const struct smtp_reply *src);
void smtp_reply_free(struct smtp_reply *r);

/* Format r as the reply a client receives: every line "CODE-ECODE text\r\n", the last with a
 * space, each line's text truncated so that the line fits REPLY_LINE_MAX, control and 8-bit
 * characters replaced by '?', at most REPLY_LINES_MAX lines; an empty text gives "CODE ECODE".
 * code/ecode replace the originals when non-zero/non-NULL (ecode "" means none).  Without
 * either, the reply's own ecode is used (its class digit set to match code), else one is
 * derived from the code's class ("5.0.0"); 3xx replies get no ecode.  code (or r->code) must
 * be 200..599. */
void smtp_reply_format(const struct smtp_reply *r, int code, const char *ecode, struct sbuf *out);

/* The reply on one line for logs: "550 5.1.1 text; second line" */
void smtp_reply_oneline(const struct smtp_reply *r, struct sbuf *out);

#endif
