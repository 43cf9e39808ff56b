/* queue_env.c - what the deliveries of one process share (struct delivery_env): opened after
 * fork in the scheduler, or by `tandem queue` delivering without a daemon. */
#include "queue.h"

#include <string.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "conf/conf.h"
#include "core/core.h"
#include "dns/dns.h"
#include "outbound/outbound.h"
#include "store/store.h"

#define QUEUE_DRAIN_MAX 10   /* seconds to let closing connections finish */

bool queue_env_open(struct delivery_env *de, struct event_base *base, const struct conf *c,
                    char *err, size_t errsz)
{
    char herr[512];
    memset(de, 0, sizeof(*de));
    de->base = base;
    de->conf = c;
    if ((de->dns = dns_new(base, c->dns_servers, c->dnssec_trust_anchor)) == NULL) {
        str_fmt(err, errsz, "cannot start the DNS resolver");
        return false;
    }
    if ((de->client_tls = tls_client_ctx(c->tls_outbound_ca, err, errsz)) == NULL) {
        dns_free(de->dns);
        de->dns = NULL;
        return false;
    }
    if ((de->hints = hints_open(c->spool_directory, herr, sizeof(herr))) == NULL)
        log_panic("%s; retry state and delivery notes are not kept", herr);
    de->cache = conn_cache_new(base, 0, 0);   /* reuse connections across messages */
    de->tlsp = tlsp_new(base, c, de->dns, de->hints);
    return true;
}

static void drain_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

/* drain - run the loop until nothing is left in it but the deadline: connections saying QUIT
 * finish their exchange (each frees itself then) instead of being cut */
static void drain(struct event_base *base)
{
    struct timeval tv = { QUEUE_DRAIN_MAX, 0 };
    struct event *deadline = evtimer_new(base, drain_deadline, base);
    if (deadline == NULL)
        return;
    evtimer_add(deadline, &tv);
    while (event_pending(deadline, EV_TIMEOUT, NULL) &&
           event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE) > 1)
        if (event_base_loop(base, EVLOOP_ONCE) != 0)
            break;
    event_free(deadline);
}

void queue_env_close(struct delivery_env *de)
{
    if (de->cache)
        conn_cache_free(de->cache);   /* QUITs; the drain below lets them finish */
    tlsp_free(de->tlsp);
    hints_close(de->hints);
    if (de->dns)
        dns_free(de->dns);
    if (de->base)
        drain(de->base);
    if (de->client_tls)
        SSL_CTX_free(de->client_tls);
    memset(de, 0, sizeof(*de));
}
