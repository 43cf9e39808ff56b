/* envelope.h - the envelope of one message: what the spool stores besides the content. */
#ifndef TANDEM_ENVELOPE_H
#define TANDEM_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

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

#endif
