/* server.c - services the sessions of one process share. */
#include "in.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "smtp_in.h"
#include "conf/conf.h"
#include "core/core.h"
#include "dns/dns.h"
#include "outbound/outbound.h"
#include "policy/policy.h"
#include "store/store.h"

#include <event2/event.h>
#include <openssl/ssl.h>

/* server_init_outbound - DNS, client TLS, hints and the dialer of this process */
void server_init_outbound(struct server *srv)
{
    char err[512];
    srv->dns = dns_new(srv->base, srv->conf->dns_servers, srv->conf->dnssec_trust_anchor);
    if (srv->dns == NULL)
        log_panic("DNS resolver could not be set up: routing will defer");
    srv->client_tls = tls_client_ctx(srv->conf->tls_outbound_ca, err, sizeof(err));
    if (srv->client_tls == NULL)
        log_main("outbound TLS unavailable: %s", err);
    srv->hints = hints_open(srv->conf->spool_directory, err, sizeof(err));
    if (srv->hints == NULL)
        log_main("callout cache unavailable: %s", err);
    srv->tlsp = tlsp_new(srv->base, srv->conf, srv->dns, srv->hints);
    srv->dialer = dialer_new(srv->base, srv->conf, srv->client_tls, srv->hints, srv->tlsp);
    srv->need_host_names = srv->dns && conf_needs_host_names(srv->conf);
    for (int st = 0; st < ACL_NSTAGES; st++) {
        srv->uses_dnslists |= acl_uses(srv->conf->acl_for_stage[st], COND_DNSLISTS);
        srv->uses_ratelimit |= acl_uses(srv->conf->acl_for_stage[st], COND_RATELIMIT);
    }
    if (acl_uses(srv->conf->acl_for_stage[ACL_DATA], COND_SPAM))
        srv->spam = spam_client_new(srv->base, &srv->conf->spamd);
    if (!srv->no_deliver)
        srv->spool_pool = spool_pool_new(srv->conf->spool_directory);
    srv->notify_backlog = xcalloc(NOTIFY_BACKLOG_MAX, sizeof(*srv->notify_backlog));
}

void server_free_outbound(struct server *srv)
{
    dialer_free(srv->dialer);          /* pooled connections QUIT ... */
    srv->dialer = NULL;
    smtp_out_drain(srv->base);         /* ... and have their reply before the loop goes */
    tlsp_free(srv->tlsp);
    srv->tlsp = NULL;
    if (srv->dns)
        dns_free(srv->dns);
    if (srv->client_tls)
        SSL_CTX_free(srv->client_tls);
    if (srv->hints)
        hints_close(srv->hints);
    spam_client_free(srv->spam);
    spool_pool_free(srv->spool_pool);
    if (srv->notify_ev)
        event_free(srv->notify_ev);
    free(srv->notify_backlog);
}

/* notify_send - one datagram to the scheduler; false if its queue is full (EAGAIN) */
static bool notify_send(struct server *srv, const char *id)
{
    return send(srv->sched_fd, id, strlen(id), MSG_DONTWAIT | MSG_NOSIGNAL) >= 0;
}

/* notify_retry_cb - the scheduler's queue was full: send what is waiting, in order */
static void notify_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    size_t done = 0;
    (void)fd;
    (void)what;
    while (done < srv->nnotify && notify_send(srv, srv->notify_backlog[done]))
        done++;
    memmove(srv->notify_backlog, srv->notify_backlog + done,
            (srv->nnotify - done) * sizeof(*srv->notify_backlog));
    srv->nnotify -= done;
    if (srv->nnotify > 0) {
        struct timeval tv = { 0, 20000 };
        evtimer_add(srv->notify_ev, &tv);
    }
}

/* server_notify_scheduler - hand a committed message to the scheduler for its first attempt.
 * Its datagram queue is short (net.unix.max_dgram_qlen): when it is full the id waits here
 * and is sent again shortly, so no first attempt waits for the periodic spool scan. */
void server_notify_scheduler(struct server *srv, const char *id)
{
    if (srv->sched_fd < 0)
        return;
    if (srv->nnotify == 0 && notify_send(srv, id))
        return;
    if (srv->nnotify >= NOTIFY_BACKLOG_MAX) {
        log_main("%s: scheduler not notified (it will find the message in the spool)", id);
        return;
    }
    if (srv->notify_ev == NULL)
        srv->notify_ev = evtimer_new(srv->base, notify_retry_cb, srv);
    str_copy(srv->notify_backlog[srv->nnotify++], id, sizeof(srv->notify_backlog[0]));
    if (!evtimer_pending(srv->notify_ev, NULL)) {
        struct timeval tv = { 0, 20000 };
        evtimer_add(srv->notify_ev, &tv);
    }
}

/* server_refuse - over a connection limit: one 421 line written directly, then close */
void server_refuse(int fd, const char *ip, const char *why)
{
    char line[200];
    str_fmt(line, sizeof(line), "421 4.7.0 %s; please try again later\r\n", why);
    (void)!send(fd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL);
    close(fd);
    metric_inc(M_CONNECTIONS_REFUSED);
    log_reject("H=[%s] rejected connection: %s", ip, why);
}

/* server_accept - a new connection: a load balancer's (hosts_proxy) first says whose it is;
 * any other is checked against the connection limits and its session starts */
void server_accept(struct server *srv, int fd, const struct sockaddr *peer, socklen_t peerlen,
                   bool implicit_tls)
{
    const struct conf *c = srv->conf;
    char ip[64];
    sockaddr_ip(peer, ip, sizeof(ip));
    enum list_result proxied = c->hosts_proxy.n > 0 ? list_check_host(&c->hosts_proxy, ip, NULL, NULL)
                                                    : LIST_NO_MATCH;
    if (proxied == LIST_MATCH) {
        proxy_wait_start(srv, fd, peer, peerlen, implicit_tls);
        return;
    }
    if (proxied == LIST_DEFER) {          /* a hosts_proxy lookup file is unreadable */
        server_refuse(fd, ip, "hosts_proxy cannot be checked (lookup deferred)");
        return;
    }
    const char *why = srv->limits ? conn_limits_check(srv->limits, (unsigned)srv->worker_index,
                                                      ip, c->smtp_accept_max,
                                                      c->smtp_accept_max_per_host)
                                  : NULL;
    if (why)
        server_refuse(fd, ip, why);
    else
        smtp_session_start(srv, fd, peer, implicit_tls);
}

void server_shutdown_sessions(struct server *srv)
{
    struct smtp_session *s, *next;
    for (s = LIST_FIRST(&srv->sessions); s; s = next) {
        next = LIST_NEXT(s, entry);
        smtp_session_shutdown(s);
    }
}
