/* smtp_in_cut.h - the session's cutthrough state, shared by smtp_in_cut_rcpt.c (the RCPT side:
 * routing, choosing the link, mirroring, the next hop's verdict or what tandem knows when it
 * cannot answer) and smtp_in_cut.c (DATA, body, end of data, the end of a transaction).  No
 * other file sees inside it. */
#ifndef TANDEM_SMTP_IN_CUT_H
#define TANDEM_SMTP_IN_CUT_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp_in.h"
#include "conf/conf.h"
#include "outbound/outbound.h"
#include "smtp/smtp.h"

/* The session's cutthrough state (doc/architecture.md, "Cutthrough"): the link of the
 * current transaction and the idle one kept for the next message, the recipient being
 * mirrored, and which recipients the link carries. */
struct smtp_cut {
    /* across transactions */
    struct cut_link *idle;          /* a finished onward connection kept for the next message */
    struct route_query *rq;         /* routing the recipient being mirrored */
    struct acl_run *verify_run;     /* the ACL whose recipient callout is the mirrored RCPT */
    bool paused;                    /* input paused for the next hop's back-pressure */
    /* the recipient being mirrored */
    struct cutthrough_opts req_opts; /* its control's options */
    struct callout_opts callout;    /* its callout's options (enabled false: none) */
    char hops_name[256];            /* its next hops, as the callout cache names them */
    char vouched_by[200];           /* the local list that has it, "" if none */
    char known_rcpt[ADDR_PATH_MAX + 1]; /* verified from knowledge: its control need not ask again */
    bool asking;                    /* inside knowledge_ask */
    bool ask_done;                  /* ... and it answered before returning */
    struct smtp_reply unans_reply;  /* why the next hop could not answer (the 4xx, if any) */
    bool have_unans_reply;
    char unans_text[300];
    bool unans_timeout;
    /* the current transaction */
    struct cut_link *link;          /* the onward transaction, NULL if none */
    struct cutthrough_opts opts;
    unsigned timeout;               /* its connect and command timeout (0: callout_timeout) */
    bool abandoned;                 /* cutthrough given up: the message goes to the queue */
    bool *on_link;                  /* per recipient index: the next hop accepted it at RCPT */
    size_t non_link;
    bool data_async;                /* DATA sent upstream for BDAT input, answer pending */
    bool dot_pending;               /* end of data reached before that answer */
};

/* smtp_in_cut.c */
struct smtp_cut *cut_of(struct smtp_session *s);
bool cut_on_link(const struct smtp_cut *c, size_t i);
/* the code a next hop's reply has for our client: its 421 closed the next hop's connection,
 * not the client's, so the client hears 451 */
int cut_client_code(const struct smtp_reply *r);
/* pass a next hop's reply to the client, well-formed and sanitised (code 0: its own, 421 as
 * 451) */
void cut_reply_upstream(struct smtp_session *s, const struct smtp_reply *r, int code, const char *ecode);
/* accept the pending recipient, noting whether the link carries it */
void cut_add_rcpt(struct smtp_session *s, bool via_link);
/* give up cutthrough for this message: it will be spooled and queued */
void cut_abandon(struct smtp_session *s);
void cut_event(void *arg, struct cut_link *l, const struct cut_result *r);
void cut_drained(void *arg, struct cut_link *l);

/* smtp_in_cut_rcpt.c: the next hop's answer to the mirrored RCPT */
void cut_rcpt_event(struct smtp_session *s, const struct cut_result *r);

#endif
