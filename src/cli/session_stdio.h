/* session_stdio.h - `tandem session`: one SMTP session on stdin/stdout, same code as the daemon. */
#ifndef TANDEM_SESSION_STDIO_H
#define TANDEM_SESSION_STDIO_H

#include <stdbool.h>

struct conf;

/* Run one session for a client at client_ip (NULL = 127.0.0.1).  Returns an exit status. */
int session_stdio_run(const struct conf *c, const char *client_ip, bool no_deliver);

#endif
