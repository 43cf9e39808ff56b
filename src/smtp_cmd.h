/* smtp_cmd.h - parsing of SMTP command lines and ESMTP parameters (RFC 5321, 1870, 3461,
 * 6152, 6531, 3030).  Pure functions: no I/O, no session state. */
#ifndef TANDEM_SMTP_CMD_H
#define TANDEM_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "envelope.h"

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

#endif
