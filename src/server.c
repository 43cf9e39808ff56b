/* server.c - services the sessions of one process share. */
#include "server.h"

#include <string.h>
#include <sys/socket.h>

#include "log.h"

/* server_notify_scheduler - hand a committed message to the scheduler for its first attempt */
void server_notify_scheduler(struct server *srv, const char *id)
{
    if (srv->sched_fd < 0)
        return;
    if (send(srv->sched_fd, id, strlen(id), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        log_main("%s: scheduler not notified (it will find the message in the spool)", id);
}
