/* msg_header.h - streaming scan of a message's header section as it is received: counts
 * Received: fields, notes Date: and Message-ID:, finds where the header section ends (a blank
 * line, or a line that is not a header field) so missing fields can be added there. */
#ifndef TANDEM_MSG_HEADER_H
#define TANDEM_MSG_HEADER_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

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
