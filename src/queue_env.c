/* queue_env.c - what the deliveries of one process share (struct delivery_env): opened after
 * fork in the scheduler, or by `tandem queue` delivering without a daemon. */
#include "queue.h"

#include <string.h>

#include <openssl/ssl.h>

#include "conf.h"
#include "dns.h"
#include "hints.h"
#include "log.h"
#include "tls.h"
#include "util.h"

bool queue_env_open(struct delivery_env *de, struct event_base *base, const struct conf *c,
                    char *err, size_t errsz)
{
    char herr[512];
    memset(de, 0, sizeof(*de));
    de->base = base;
    de->conf = c;
    if ((de->dns = dns_new(base, c)) == NULL) {
        str_fmt(err, errsz, "cannot start the DNS resolver");
        return false;
    }
    if ((de->client_tls = tls_client_ctx(c, err, errsz)) == NULL) {
        dns_free(de->dns);
        de->dns = NULL;
        return false;
    }
    if ((de->hints = hints_open(c->spool_directory, herr, sizeof(herr))) == NULL)
        log_panic("%s; retry state and delivery notes are not kept", herr);
    return true;
}

void queue_env_close(struct delivery_env *de)
{
    hints_close(de->hints);
    if (de->client_tls)
        SSL_CTX_free(de->client_tls);
    if (de->dns)
        dns_free(de->dns);
    memset(de, 0, sizeof(*de));
}
