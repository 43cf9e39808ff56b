/* smtp/smtp.h - the contract of the SMTP codecs both sides share: envelopes, addresses, command
 * and parameter parsing, reply parsing and formatting, the DATA codec, header scanning.
 * May include: core. */
#ifndef TANDEM_SMTP_H
#define TANDEM_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/core.h"

/* ---- envelope: the envelope of one message: what the spool stores besides the content. */

#define MSGID_LEN 16 /* Exim form: 6 base62 (time) '-' 6 base62 (pid) '-' 2 base62 (fraction) */

/* RFC 3461 NOTIFY bits; 0 means the client gave no NOTIFY. */
enum dsn_notify {
    DSN_NOTIFY_NEVER = 1,
    DSN_NOTIFY_SUCCESS = 2,
    DSN_NOTIFY_FAILURE = 4,
    DSN_NOTIFY_DELAY = 8,
};

enum dsn_ret { DSN_RET_UNSET = 0, DSN_RET_FULL, DSN_RET_HDRS };
enum body_type { BODY_UNSET = 0, BODY_7BIT, BODY_8BITMIME, BODY_BINARYMIME };

/* Delivery state of a recipient (kept in the journal, not in the message file). */
enum rcpt_state { RCPT_PENDING = 0, RCPT_DELIVERED, RCPT_FAILED };

struct rcpt {
    char *addr;        /* mailbox "local@domain" as received (no angle brackets) */
    unsigned notify;   /* enum dsn_notify bits, 0 = unset */
    char *orcpt;       /* ORCPT as received ("rfc822;" + xtext), or NULL */
    enum rcpt_state state;
};

struct envelope {
    char id[MSGID_LEN + 1];
    time_t arrival;
    char *sender;        /* "" for the null sender <> */
    struct rcpt *rcpts;
    size_t nrcpts, rcpts_cap;
    char *client_ip;     /* NULL for locally generated messages (bounces) */
    int client_port;
    char *helo;          /* as given by the client, NULL if none */
    char *protocol;      /* "smtp", "esmtp", "esmtps", "local" */
    char *tls;           /* "TLS1.3:TLS_AES_256_GCM_SHA384:256" or NULL */
    char *envid;         /* ENVID xtext as received, or NULL */
    enum dsn_ret ret;
    enum body_type body;
    bool smtputf8;
    uint64_t size;       /* bytes of content as stored (CRLF lines, unstuffed) */
    char *message_id;    /* Message-ID header value, for the log's id= field, or NULL */
    char *added_headers; /* CRLF header lines decided at end of data, delivered before the
                          * content (ACL add_header in the data ACL), or NULL */
};

void envelope_init(struct envelope *env);
void envelope_free(struct envelope *env);
/* Append a recipient (copies addr and orcpt); returns it. */
struct rcpt *envelope_add_rcpt(struct envelope *env, const char *addr, unsigned notify,
                               const char *orcpt);
/* Replace *field with a copy of value (NULL allowed). */
void envelope_set(char **field, const char *value);

/* ---- addr: RFC 5321 paths and mailboxes: parse, validate, split. */

#define ADDR_LOCAL_MAX 64
#define ADDR_DOMAIN_MAX 255
#define ADDR_PATH_MAX 256

enum addr_err {
    ADDR_OK = 0,
    ADDR_ERR_SYNTAX,       /* 501 5.1.3 (5.1.7 for a sender) */
    ADDR_ERR_LOCAL_LEN,    /* local part over 64: 501 5.1.3 */
    ADDR_ERR_DOMAIN_LEN,   /* domain over 255: 501 5.1.3 */
    ADDR_ERR_PATH_LEN,     /* path over 256: 501 5.1.3 */
    ADDR_ERR_SOURCE_ROUTE, /* "@a,@b:user@c": accepted per RFC 5321 4.1.2 but the route is dropped */
    ADDR_ERR_UTF8,         /* 8-bit without SMTPUTF8, or invalid UTF-8: 553 5.6.7 */
};

struct mailbox {
    char local[ADDR_LOCAL_MAX * 4 + 3]; /* as written, quotes kept; room for quoted UTF-8 */
    char domain[ADDR_DOMAIN_MAX + 1];   /* lower-cased; "[1.2.3.4]" literal kept with brackets */
    bool domain_is_literal;
};

/* Parse a mailbox "local@domain" (no angle brackets).  utf8_ok allows UTF-8 (SMTPUTF8).
 * Source routes are not accepted here. */
enum addr_err addr_parse_mailbox(const char *s, size_t len, bool utf8_ok, struct mailbox *mb);

/* Parse a reverse-path or forward-path as it appears after "MAIL FROM:" / "RCPT TO:":
 * "<...>" with an optional source route (which is discarded).  empty_ok allows "<>".
 * On success, out holds "local@domain" (or "" for <>) and *end points just past '>'. */
enum addr_err addr_parse_path(const char *s, bool empty_ok, bool utf8_ok, char *out, size_t outsz,
                              const char **end);

/* Split "local@domain" at the last '@' (copies; domain lower-cased).  False if no '@'. */
bool addr_split(const char *addr, char *local, size_t lsz, char *domain, size_t dsz);

/* A domain name (or [literal]) valid for EHLO/HELO and routing. */
bool addr_valid_domain(const char *d, bool allow_literal);

/* Validate UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). */
bool utf8_valid(const char *s, size_t len);

const char *addr_err_text(enum addr_err e);

/* ---- smtp_cmd: parsing of SMTP command lines and ESMTP parameters (RFC 5321, 1870, 3461,
 * 6152, 6531, 3030).  Pure functions: no I/O, no session state. */

enum smtp_verb {
    CMD_UNKNOWN = 0, CMD_HELO, CMD_EHLO, CMD_MAIL, CMD_RCPT, CMD_DATA, CMD_BDAT, CMD_RSET,
    CMD_NOOP, CMD_QUIT, CMD_VRFY, CMD_EXPN, CMD_HELP, CMD_STARTTLS, CMD_AUTH, CMD_NVERBS
};

/* A command line split into verb and argument.  line excludes the CRLF. */
struct smtp_cmd {
    enum smtp_verb verb;
    const char *arg;   /* points into the line, leading spaces skipped; "" if none */
    size_t arglen;
    bool no_keyword;   /* MAIL without "FROM:" / RCPT without "TO:": verb is still CMD_MAIL /
                        * CMD_RCPT, arg is the rest of the line; answer 501 5.5.4 */
};

/* Identify the verb (case-insensitive).  The verb must be followed by a space or the end of
 * the line ("NOOPX" is CMD_UNKNOWN).  For MAIL and RCPT, one or more spaces, then "FROM:" /
 * "TO:" (case-insensitive), then optional spaces ("MAIL FROM: <a@b>" is accepted); arg is
 * what follows.  Without the keyword, no_keyword is set (see above). */
void smtp_cmd_split(const char *line, size_t len, struct smtp_cmd *cmd);
const char *smtp_verb_name(enum smtp_verb v);

/* MAIL FROM parameters. */
struct mail_params {
    char sender[ADDR_PATH_MAX + 1];
    bool size_given;
    uint64_t size;
    enum body_type body;
    bool smtputf8;
    enum dsn_ret ret;
    char envid[301];  /* xtext as received (validated), "" if none; decoded: at most 100
                       * printable ASCII characters, so at most 300 as received */
};

/* RCPT TO parameters. */
struct rcpt_params {
    char rcpt[ADDR_PATH_MAX + 1];
    unsigned notify;  /* DSN_NOTIFY_* bits, 0 unset */
    char orcpt[600];  /* "addr-type;xtext" as received (validated, at most 500, the xtext
                       * decoding to printable ASCII), "" if none */
};

/* The result of parsing the argument of MAIL or RCPT: 0 and filled params on success, or an
 * SMTP reply (code, enhanced code, text) to send. */
struct parse_err {
    int code;             /* e.g. 501, 555, 552 */
    const char *ecode;    /* e.g. "5.5.4" */
    const char *text;     /* static text */
};

/* dsn_ok: DSN was advertised (NOTIFY/ORCPT/RET/ENVID allowed); size_limit: SIZE= above it gets
 * 552 5.3.4 (0: no limit).  utf8_ok for MAIL: SMTPUTF8 was advertised (the SMTPUTF8 parameter
 * is allowed, and then a UTF-8 sender); for RCPT: this transaction's MAIL had SMTPUTF8 (a UTF-8
 * recipient is allowed).  The path must be in angle brackets; a source route is dropped.
 * RCPT TO:<Postmaster> (no domain, any case) is accepted as rcpt "postmaster" (RFC 5321
 * 4.5.1): the caller qualifies it with its own domain.  Parameters are separated by one or
 * more spaces; trailing spaces are ignored.  Keywords and fixed values are case-insensitive. */
bool smtp_parse_mail(const char *arg, size_t len, bool dsn_ok, bool utf8_ok, uint64_t size_limit,
                     struct mail_params *out, struct parse_err *err);
bool smtp_parse_rcpt(const char *arg, size_t len, bool dsn_ok, bool utf8_ok,
                     struct rcpt_params *out, struct parse_err *err);

/* BDAT <size> [LAST] */
bool smtp_parse_bdat(const char *arg, size_t len, uint64_t *size, bool *last, struct parse_err *err);

/* RFC 3461 xtext: validate (printable ASCII 33..126 except '+' and '=', or "+XX" with two
 * UPPER-case hex digits; the empty string is valid), and decode into out (NUL-terminated;
 * decoded NULs, bad syntax or a too small out make decoding fail). */
bool xtext_valid(const char *s, size_t len);
bool xtext_decode(const char *s, size_t len, char *out, size_t outsz);
/* Encode arbitrary bytes as xtext; false if out too small. */
bool xtext_encode(const char *s, size_t len, char *out, size_t outsz);

/* ---- smtp_reply: strict, resumable parser for SMTP replies from a next hop, and the
 * formatting of replies passed on to clients. */

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

/* ---- data_codec: the DATA stream: strict decoding of client input (end of data only at
 * CR LF . CR LF, dot-unstuffing, bare CR/LF never a line break) and re-encoding for output
 * (CRLF lines, dot-stuffing, the final dot).  Pure and resumable: input may be split anywhere. */

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

/* ---- msg_header: streaming scan of a message's header section as it is received: counts
 * Received: fields, notes Date: and Message-ID:, finds where the header section ends (a blank
 * line, or a line that is not a header field) so missing fields can be added there. */

#define HDR_LINE_MAX (64 * 1024) /* a longer header-section line ends the header section */
#define HDR_MSGID_MAX 998

struct hdr_scan {
    bool in_body;
    bool seen_field;      /* a header field line was seen (continuations may follow) */
    bool in_message_id;   /* the current field is Message-ID (continuations belong to it) */
    bool has_date, has_message_id;
    unsigned nreceived;
    struct sbuf line;     /* the header-section line being assembled */
    struct sbuf message_id;
};

/* Where scanned content goes.  headers_end is called once, where fields may be added: just
 * before the blank line that ends the header section (or before the first body line when there
 * is no blank line, in which case the scanner then emits the missing blank line itself). */
struct hdr_sink {
    void (*emit)(void *arg, const char *p, size_t n);
    void (*headers_end)(void *arg, const struct hdr_scan *h);
    void *arg;
};

void hdr_scan_init(struct hdr_scan *h);
void hdr_scan_free(struct hdr_scan *h);
/* Scan decoded content (CRLF lines) and pass it on to the sink. */
void hdr_scan_feed(struct hdr_scan *h, const char *p, size_t n, const struct hdr_sink *sink);
/* End of message: flush what is pending; call headers_end if the body was never reached. */
void hdr_scan_finish(struct hdr_scan *h, const struct hdr_sink *sink);
/* Copy the Message-ID field's value, trimmed and without <>, into out; false if none. */
bool hdr_scan_message_id(const struct hdr_scan *h, char *out, size_t outsz);

#endif
