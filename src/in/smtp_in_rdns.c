/* smtp_in_rdns.c - the client's host name, for host lists that name hosts: the reverse-DNS
 * (PTR) name, kept only if that name's own addresses include the client's (forward-confirmed,
 * as Exim does).  Looked up at connect, before the connect ACL, and only when the
 * configuration has such lists; a lookup that fails leaves the session without a name. */
#include "smtp_in.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "in.h"
#include "dns/dns.h"

/* same_ip - does the sockaddr hold the text address ip? */
static bool same_ip(const struct sockaddr_storage *ss, const char *ip)
{
    char buf[64];
    const void *a = ss->ss_family == AF_INET ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                                             : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    return inet_ntop(ss->ss_family, a, buf, sizeof(buf)) && strcmp(buf, ip) == 0;
}

/* confirmed - the forward lookup of the PTR name came back */
static void confirmed(void *arg, enum dns_status st, enum dns_security sec,
                      const struct sockaddr_storage *addrs, size_t n)
{
    (void)sec;
    struct smtp_session *s = arg;
    s->rdns.q = NULL;
    for (size_t i = 0; st == DNS_OK && i < n; i++)
        if (same_ip(&addrs[i], s->peer_ip)) {
            s->rdns.name = xstrdup(s->rdns.candidate);
            break;
        }
    s->rdns.then(s);
}

/* ptr_answer - the PTR name (if any): confirm it forward */
static void ptr_answer(void *arg, enum dns_status st, const char *name)
{
    struct smtp_session *s = arg;
    s->rdns.q = NULL;
    if (st != DNS_OK || name[0] == '\0' || strlen(name) >= sizeof(s->rdns.candidate)) {
        s->rdns.then(s);
        return;
    }
    str_copy(s->rdns.candidate, name, sizeof(s->rdns.candidate));
    s->rdns.q = dns_lookup_addr(s->srv->dns, name, confirmed, s);
}

/* smtp_rdns_start - find the client's host name, then call then(s) (also when there is none) */
void smtp_rdns_start(struct smtp_session *s, void (*then)(struct smtp_session *s))
{
    s->rdns.then = then;
    s->rdns.q = dns_lookup_ptr(s->srv->dns, s->peer_ip, ptr_answer, s);
}

void smtp_rdns_cancel(struct smtp_session *s)
{
    if (s->rdns.q)
        dns_cancel(s->rdns.q);
    s->rdns.q = NULL;
}
