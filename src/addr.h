/* addr.h - RFC 5321 paths and mailboxes: parse, validate, split. */
#ifndef TANDEM_ADDR_H
#define TANDEM_ADDR_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
