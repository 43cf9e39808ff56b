/* pidfile.h - the daemon's pid file, spooldir/tandem.pid, and `tandem stop`.  The file lies in
 * the spool, which the unprivileged user owns and may fill with anything: so the parent keeps
 * a write lock (fcntl) on it for its whole life, and `tandem stop` signals only the process
 * the kernel names as the holder of that lock, never a number read from the file alone. */
#ifndef TANDEM_PIDFILE_H
#define TANDEM_PIDFILE_H

#include <stddef.h>

/* Take path for this process: open it (no symbolic link, a plain file with no other link),
 * lock it, write our pid.  Returns the descriptor to keep open (closing it drops the lock),
 * or -1 with the reason in err (another daemon holds it, or the file is unsafe). */
int pidfile_take(const char *path, char *err, size_t errsz);

#endif
