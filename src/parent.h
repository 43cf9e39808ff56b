/* parent.h - the privileged supervisor behind `tandem serve`. */
#ifndef TANDEM_PARENT_H
#define TANDEM_PARENT_H

#include <stdbool.h>

/* Load the configuration, bind, start workers (and the scheduler), supervise until SIGTERM.
 * Returns the process exit status. */
int parent_serve(const char *conf_path, bool foreground);

/* `tandem stop`: SIGTERM the daemon named in the pid file and wait for it.  Exit status. */
int parent_stop(const char *conf_path);

#endif
