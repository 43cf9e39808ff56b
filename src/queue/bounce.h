/* bounce.h - who is told about what (RFC 3461 NOTIFY), and spooling the notification as a
 * new message from <> to the original sender. */
#ifndef TANDEM_BOUNCE_H
#define TANDEM_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>

#include "dsn.h"
#include "smtp/smtp.h"

struct conf;

/* Does the sender want to hear about this recipient's outcome?  Never for the null sender;
 * a failure unless NOTIFY was given without FAILURE (NEVER included); a relay to a next hop
 * without DSN only with NOTIFY=SUCCESS. */
bool bounce_wanted(const char *sender, const struct rcpt *r, enum dsn_action action);

/* Spool one DSN for the wanted entries, and log its arrival (`NEWID <= <> R=ID ...`).
 * new_id gets its id, or "" when nobody is to be told (with a log line when that is because
 * the sender is <>).  False with errno if it could not be written: the caller keeps the
 * original message and tries again later. */
bool bounce_send(const struct conf *c, const struct envelope *orig, const struct dsn_entry *entries,
                 size_t n, char new_id[MSGID_LEN + 1]);

#endif
