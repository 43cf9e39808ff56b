/* dsn.h - build RFC 3464 delivery status notifications: a multipart/report message with a
 * plain-language explanation, a message/delivery-status part and the original message (or its
 * header section).  Pure: the caller supplies the content reader, the clock and the randomness,
 * and decides who gets reported (bounce.h). */
#ifndef TANDEM_DSN_H
#define TANDEM_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/core.h"
#include "outbound/outbound.h"
#include "smtp/smtp.h"

#define DSN_LINE_MAX 998               /* RFC 5322 line limit, CRLF excluded */
#define DSN_RETURN_FULL_MAX (100 * 1024) /* RET=FULL: larger messages return headers only */
#define DSN_HEADERS_MAX (64 * 1024)    /* header section returned at most */

enum dsn_action { DSN_FAILED, DSN_RELAYED };

/* One recipient to report. */
struct dsn_entry {
    const struct rcpt *rcpt;       /* address, ORCPT */
    enum dsn_action action;
    const struct dlv_result *res;  /* the deciding outcome, NULL if unknown */
    time_t last_attempt;           /* 0 if unknown */
    bool timed_out;                /* failed because retry_give_up passed */
};

/* Reads the original message's content (CRLF lines); returns bytes read, 0 at the end, -1 on
 * error. */
struct dsn_source {
    long (*read)(void *arg, void *buf, size_t n);
    void *arg;
};

struct dsn_report {
    const char *hostname;          /* Reporting-MTA, From: MAILER-DAEMON@hostname */
    const struct envelope *orig;   /* the message reported on */
    const struct dsn_entry *entries;
    size_t nentries;
    time_t now;
    unsigned long long nonce;      /* randomness for the boundary and Message-ID */
    unsigned retry_give_up;        /* seconds, for the timed-out explanation */
};

struct dsn_output {
    struct sbuf msg;               /* the whole message, CRLF lines */
    bool eight_bit;                /* it contains 8-bit bytes (send with BODY=8BITMIME) */
    bool full_returned;            /* the whole original is attached, not only its headers */
    char message_id[320];          /* its Message-ID, without the angle brackets */
};

/* Build the DSN into out (initialised here; free out->msg with sbuf_free). */
void dsn_build(const struct dsn_report *r, const struct dsn_source *src, struct dsn_output *out);

/* An RFC 5322 date-time for t in local time ("Tue, 24 Nov 2026 13:00:00 +0000"). */
void dsn_date(time_t t, char *buf, size_t sz);

#endif
