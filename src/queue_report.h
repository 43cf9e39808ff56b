/* queue_report.h - attempt reports as text lines, the same for the control socket and for
 * `tandem queue deliver` run without a daemon. */
#ifndef TANDEM_QUEUE_REPORT_H
#define TANDEM_QUEUE_REPORT_H

#include <stdbool.h>

#include "queue.h"
#include "util.h"

/* One line per recipient attempted ("addr: deferred: 451 ..."), each ending in "\n". */
void report_rcpt_lines(const struct attempt_report *rep, struct sbuf *out);
/* The summary, without a newline: "ID: 1 delivered, 1 deferred, 0 failed; next attempt in 5m"
 * or "ID: locked by another process". */
void report_summary(const struct attempt_report *rep, struct sbuf *out);
/* Is this an error for whoever asked (as opposed to an attempt, whatever its outcome)? */
bool report_is_error(const struct attempt_report *rep, bool single);

#endif
