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
};

/* Identify the verb (case-insensitive; "MAIL FROM:" and "RCPT TO:" need their keyword). */
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
    char envid[101];  /* xtext as received (validated), "" if none; decoded max 100 */
};

/* RCPT TO parameters. */
struct rcpt_params {
    char rcpt[ADDR_PATH_MAX + 1];
    unsigned notify;  /* DSN_NOTIFY_* bits, 0 unset */
    char orcpt[600];  /* "addr-type;xtext" as received (validated), "" if none */
};

/* The result of parsing the argument of MAIL or RCPT: 0 and filled params on success, or an
 * SMTP reply (code, enhanced code, text) to send. */
struct parse_err {
    int code;             /* e.g. 501, 555, 552 */
    const char *ecode;    /* e.g. "5.5.4" */
    const char *text;     /* static text */
};

/* dsn_ok: DSN was advertised (NOTIFY/ORCPT/RET/ENVID allowed); utf8_ok: SMTPUTF8 advertised;
 * size_limit: SIZE= above it gets 552 5.3.4. */
bool smtp_parse_mail(const char *arg, size_t len, bool dsn_ok, bool utf8_ok, uint64_t size_limit,
                     struct mail_params *out, struct parse_err *err);
bool smtp_parse_rcpt(const char *arg, size_t len, bool dsn_ok, bool utf8_ok,
                     struct rcpt_params *out, struct parse_err *err);

/* BDAT <size> [LAST] */
bool smtp_parse_bdat(const char *arg, size_t len, uint64_t *size, bool *last, struct parse_err *err);

/* RFC 3461 xtext: validate (only "+XX" hex escapes of chars that need it, printable ASCII
 * otherwise), and decode into out (NUL-terminated; decoded NULs make decoding fail). */
bool xtext_valid(const char *s, size_t len);
bool xtext_decode(const char *s, size_t len, char *out, size_t outsz);
/* Encode arbitrary bytes as xtext; false if out too small. */
bool xtext_encode(const char *s, size_t len, char *out, size_t outsz);

#endif
