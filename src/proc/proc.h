/* proc/proc.h - the contract of the process tree: the privileged parent that supervises workers and
 * the scheduler.  May include every folder below cli. */
#ifndef TANDEM_PROC_H
#define TANDEM_PROC_H

#include <stdbool.h>

/* ---- parent: the privileged supervisor behind `tandem serve`. */

/* Load the configuration, bind, start workers (and the scheduler), supervise until SIGTERM.
 * Returns the process exit status. */
int parent_serve(const char *conf_path, bool foreground);

/* `tandem stop`: SIGTERM the daemon named in the pid file and wait for it.  Exit status. */
int parent_stop(const char *conf_path);

#endif
