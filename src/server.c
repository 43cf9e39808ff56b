/* server.c - services the sessions of one process share. */
#include "server.h"

#include <string.h>
#include <sys/socket.h>

#include "callout.h"
#include "conf.h"
#include "dns.h"
#include "hints.h"
#include "log.h"
#include "spool.h"
#include "tls.h"

#include <openssl/ssl.h>

/* server_init_outbound - DNS, client TLS, hints and the callout limiter of this process */
void server_init_outbound(struct server *srv)
{
    char err[512];
    srv->dns = dns_new(srv->base, srv->conf);
    if (srv->dns == NULL)
        log_panic("DNS resolver could not be set up: routing will defer");
    srv->client_tls = tls_client_ctx(srv->conf, err, sizeof(err));
    if (srv->client_tls == NULL)
        log_main("outbound TLS unavailable: %s", err);
    srv->hints = hints_open(srv->conf->spool_directory, err, sizeof(err));
    if (srv->hints == NULL)
        log_main("callout cache unavailable: %s", err);
    srv->callout_limiter = callout_limiter_new(srv->conf->callout_max_per_host);
    if (!srv->no_deliver)
        srv->spool_pool = spool_pool_new(srv->conf->spool_directory);
}

void server_free_outbound(struct server *srv)
{
    if (srv->dns)
        dns_free(srv->dns);
    if (srv->client_tls)
        SSL_CTX_free(srv->client_tls);
    if (srv->hints)
        hints_close(srv->hints);
    callout_limiter_free(srv->callout_limiter);
    spool_pool_free(srv->spool_pool);
}

/* server_notify_scheduler - hand a committed message to the scheduler for its first attempt */
void server_notify_scheduler(struct server *srv, const char *id)
{
    if (srv->sched_fd < 0)
        return;
    if (send(srv->sched_fd, id, strlen(id), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        log_main("%s: scheduler not notified (it will find the message in the spool)", id);
}
