/* log.h - main, reject and panic logs in Exim's line format (or syslog). */
#ifndef TANDEM_LOG_H
#define TANDEM_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include "util.h"

/* Open the logs under dir (mainlog, rejectlog, paniclog), or syslog when dir is "syslog".
 * Returns false with errno on failure.  Before log_open, lines go to stderr. */
bool log_open(const char *dir);
/* Also copy every line to stderr (foreground / test-session debugging). */
void log_set_stderr(bool on);
/* Name used as syslog ident and in stderr copies. */
void log_set_process(const char *name);

/* Each call writes one whole line with one write(2), prefixed "YYYY-MM-DD HH:MM:SS ". */
void log_main(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* Rejections go to the reject log and the main log. */
void log_reject(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* Panics go to the panic log and the main log. */
void log_panic(const char *fmt, ...) PRINTF_LIKE(1, 2);

#endif
