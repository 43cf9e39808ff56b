/* queue_state.h - what the scheduler remembers about a queued message between attempts and
 * across restarts, kept in the hints: per message, how often and when it was tried and when
 * it is due again; per recipient, the last outcome (the next hop's reply), which `tandem
 * queue show` prints and bounces quote. */
#ifndef TANDEM_QUEUE_STATE_H
#define TANDEM_QUEUE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "delivery.h"

struct hints;

struct msg_state {
    unsigned attempts;   /* delivery attempts so far */
    time_t last_try;     /* when the last one ended */
    time_t next_try;     /* when the next one is due */
};

struct rcpt_note {
    time_t when;            /* when the outcome was learnt */
    struct dlv_result res;  /* outcome, reply code and text, next hop */
    bool timed_out;         /* failed because retry_give_up passed (res is the last deferral) */
};

bool qstate_get(struct hints *h, const char *id, struct msg_state *s);
bool qstate_put(struct hints *h, const char *id, const struct msg_state *s);
bool qstate_note_get(struct hints *h, const char *id, size_t rcpt_index, struct rcpt_note *n);
bool qstate_note_put(struct hints *h, const char *id, size_t rcpt_index, const struct rcpt_note *n);
/* Forget a message that left the queue (its state and every recipient's note). */
void qstate_forget(struct hints *h, const char *id);
/* Forget the messages the hints remember that are not among live (the spool's ids, sorted by
 * strcmp): what a crash between removal and forgetting left behind.  At most
 * QSTATE_SWEEP_MAX messages per call; returns how many were forgotten. */
#define QSTATE_SWEEP_MAX 4096
size_t qstate_sweep(struct hints *h, char **live, size_t nlive);

#endif
