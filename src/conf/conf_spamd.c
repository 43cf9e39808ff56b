/* conf_spamd.c - spamd_address, the content scanner of the spam condition: one rspamd, spoken to
 * over its HTTP protocol ("IP:PORT variant=rspamd [tmo=TIME]", or Exim's "IP PORT ..."). */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"

/* fail - format an error message and return false */
static bool fail(char *err, size_t errsz, const char *fmt, ...) PRINTF_LIKE(3, 4);
static bool fail(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    str_vfmt(err, errsz, fmt, ap);
    va_end(ap);
    return false;
}

/* spamd_host_port - "ip:port", "[ipv6]:port" or Exim's "ip port" (tok[1] is then used up) */
static bool spamd_host_port(struct spamd_addr *sa, char **tok, size_t *n, char *err, size_t errsz)
{
    char *t = tok[0], *colon = strrchr(t, ':'), *host = t;
    const char *port = "";
    struct in6_addr a;
    if (t[0] == '[' && colon != NULL && colon > t && colon[-1] == ']') {
        host = t + 1;
        colon[-1] = '\0';
        port = colon + 1;
    } else if (colon != NULL && strchr(t, ':') == colon) {
        *colon = '\0';
        port = colon + 1;
    } else if (*n > 1) {
        port = tok[1];
        memmove(tok + 1, tok + 2, (*n - 2) * sizeof(*tok));
        (*n)--;
    }
    if (inet_pton(AF_INET, host, &a) != 1 && inet_pton(AF_INET6, host, &a) != 1)
        return fail(err, errsz, "\"%.60s\" is not a numeric IP address", host);
    if (!conf_parse_port(port, &sa->port))
        return fail(err, errsz, "invalid or missing port \"%.20s\"", port);
    free(sa->host);
    sa->host = xstrdup(host);
    return true;
}

/* spamd_option - "variant=rspamd" or "tmo=TIME" after the address */
static bool spamd_option(struct spamd_addr *sa, const char *o, bool *rspamd, char *err,
                         size_t errsz)
{
    if (strcmp(o, "variant=rspamd") == 0)
        return *rspamd = true;
    if (strncmp(o, "tmo=", 4) == 0) {
        if (parse_time(o + 4, &sa->tmo) && sa->tmo > 0)
            return true;
        return fail(err, errsz, "invalid time \"%.40s\"", o + 4);
    }
    return fail(err, errsz, "unknown option \"%.40s\" (variant=rspamd, tmo=TIME)", o);
}

/* conf_parse_spamd - "127.0.0.1:11333 variant=rspamd [tmo=2m]": one rspamd, its HTTP
 * protocol */
bool conf_parse_spamd(struct spamd_addr *sa, const char *value, char *err, size_t errsz)
{
    char *copy = xstrdup(value), *tok[8], *save = NULL;
    size_t n = 0;
    bool rspamd = false, ok = true;
    for (char *t = strtok_r(copy, " \t", &save); t && ok; t = strtok_r(NULL, " \t", &save))
        ok = n < ARRAY_LEN(tok) ? (tok[n++] = t) != NULL : fail(err, errsz, "too many words");
    if (ok && n == 0)
        ok = fail(err, errsz, "no address given");
    sa->tmo = 120;
    if (ok)
        ok = spamd_host_port(sa, tok, &n, err, errsz);
    for (size_t i = 1; ok && i < n; i++)
        ok = spamd_option(sa, tok[i], &rspamd, err, errsz);
    if (ok && !rspamd)
        ok = fail(err, errsz, "only rspamd's HTTP protocol is supported: add variant=rspamd");
    free(copy);
    return ok;
}
