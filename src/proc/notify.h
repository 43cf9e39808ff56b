/* notify.h - systemd's readiness notification (sd_notify), without libsystemd. */
#ifndef TANDEM_NOTIFY_H
#define TANDEM_NOTIFY_H

/* Take NOTIFY_SOCKET from the environment (and remove it, so no child inherits it). */
void notify_init(void);
/* Send one state ("READY=1", "RELOADING=1", "STOPPING=1") if systemd asked for them. */
void notify_systemd(const char *state);

#endif
