/* conf_options.c - the main options: one table row per option (name, type, field, default,
 * bounds), one parser per type.  Defaults are applied by parsing their text like a value. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf_int.h"

enum opt_type {
    OT_STRING, OT_HOSTNAME, OT_LISTEN, OT_UINT, OT_WORKERS, OT_SIZE, OT_TIME, OT_HOSTLIST,
    OT_DNS, OT_PORT, OT_TLS, OT_TIMES, OT_BARE_NL, OT_ACL, OT_ADDR, OT_HINTS, OT_SPAMD,
    OT_NTYPES
};

struct option {
    const char *name;
    enum opt_type type;
    size_t off;          /* field in struct conf */
    const char *def;     /* default, written as in the file; NULL = unset */
    unsigned min, max;   /* OT_UINT, OT_TIME */
};

#define F(field) offsetof(struct conf, field)
#define NOMAX UINT_MAX

static const struct option options[] = {
    { "hostname", OT_HOSTNAME, F(hostname), NULL, 0, 0 },
    { "listen", OT_LISTEN, F(listen), "127.0.0.1:2525", 0, 0 },
    { "spool_directory", OT_STRING, F(spool_directory), "./var/spool", 0, 0 },
    { "log_directory", OT_STRING, F(log_directory), "./var/log", 0, 0 },
    { "user", OT_STRING, F(user), NULL, 0, 0 },
    { "workers", OT_WORKERS, F(workers), "auto", 1, 1024 },
    { "message_size_limit", OT_SIZE, F(message_size_limit), "50M", 0, 0 },
    { "recipients_max", OT_UINT, F(recipients_max), "1000", 1, 1000000 },
    { "smtp_accept_max", OT_UINT, F(smtp_accept_max), "1000", 1, 1000000 },
    { "smtp_accept_max_per_host", OT_UINT, F(smtp_accept_max_per_host), "50", 1, 1000000 },
    { "smtp_receive_timeout", OT_TIME, F(smtp_receive_timeout), "5m", 1, NOMAX },
    { "tls_certificate", OT_STRING, F(tls_certificate), NULL, 0, 0 },
    { "tls_privatekey", OT_STRING, F(tls_privatekey), NULL, 0, 0 },
    { "tls_advertise_hosts", OT_HOSTLIST, F(tls_advertise_hosts), "*", 0, 0 },
    { "dns_servers", OT_DNS, F(dns_servers), NULL, 0, 0 },
    { "dnssec_trust_anchor", OT_STRING, F(dnssec_trust_anchor), NULL, 0, 0 },
    { "remote_port", OT_PORT, F(remote_port), "25", 0, 0 },
    { "tls_outbound", OT_TLS, F(tls_outbound), "may", 0, 0 },
    { "tls_outbound_ca", OT_STRING, F(tls_outbound_ca), NULL, 0, 0 },
    { "helo_data", OT_HOSTNAME, F(helo_data), NULL, 0, 0 },
    { "callout_timeout", OT_TIME, F(callout_timeout), "30s", 1, NOMAX },
    { "cutthrough_data_timeout", OT_TIME, F(cutthrough_data_timeout), "9m", 1, NOMAX },
    { "callout_cache_positive", OT_TIME, F(callout_cache_positive), "24h", 0, NOMAX },
    { "callout_cache_negative", OT_TIME, F(callout_cache_negative), "2h", 0, NOMAX },
    { "retry_intervals", OT_TIMES, F(retry_intervals), "5m 15m 30m 1h 2h 4h", 1, NOMAX },
    { "retry_give_up", OT_TIME, F(retry_give_up), "5d", 1, NOMAX },
    { "chunking_advertise_hosts", OT_HOSTLIST, F(chunking_advertise_hosts), "*", 0, 0 },
    { "dsn_advertise_hosts", OT_HOSTLIST, F(dsn_advertise_hosts), "*", 0, 0 },
    { "pipelining_advertise_hosts", OT_HOSTLIST, F(pipelining_advertise_hosts), "*", 0, 0 },
    { "received_headers_max", OT_UINT, F(received_headers_max), "30", 1, 1000 },
    { "smtp_line_length_max", OT_UINT, F(smtp_line_length_max), "2048", 512, 1048576 },
    { "smtp_max_errors", OT_UINT, F(smtp_max_errors), "10", 1, 1000 },
    { "smtp_data_min_rate", OT_SIZE, F(smtp_data_min_rate), "256", 0, 0 },
    { "bare_newline", OT_BARE_NL, F(bare_newline), "reject", 0, 0 },
    { "remote_max_parallel", OT_UINT, F(remote_max_parallel), "20", 1, 100000 },
    { "callout_max_per_host", OT_UINT, F(callout_max_per_host), "20", 1, 10000 },
    { "onward_pool_size", OT_UINT, F(onward_pool_size), "20", 0, 10000 },
    { "onward_pool_idle", OT_TIME, F(onward_pool_idle), "30s", 1, NOMAX },
    { "connect_timeout", OT_TIME, F(connect_timeout), "30s", 1, NOMAX },
    { "data_timeout", OT_TIME, F(data_timeout), "5m", 1, NOMAX },
    { "shutdown_timeout", OT_TIME, F(shutdown_timeout), "30s", 0, NOMAX },
    { "hosts_proxy", OT_HOSTLIST, F(hosts_proxy), NULL, 0, 0 },
    { "metrics_listen", OT_ADDR, F(metrics_listen), NULL, 0, 0 },
    { "transaction_log", OT_STRING, F(transaction_log), NULL, 0, 0 },
    { "hints_backend", OT_HINTS, F(hints_backend), "lmdb", 0, 0 },
    { "spamd_address", OT_SPAMD, F(spamd), NULL, 0, 0 },
    { "dnslist_timeout", OT_TIME, F(dnslist_timeout), "5s", 1, NOMAX },
    { "acl_smtp_connect", OT_ACL, F(acl_names[ACL_CONNECT]), NULL, ACL_CONNECT, 0 },
    { "acl_smtp_helo", OT_ACL, F(acl_names[ACL_HELO]), NULL, ACL_HELO, 0 },
    { "acl_smtp_mail", OT_ACL, F(acl_names[ACL_MAIL]), NULL, ACL_MAIL, 0 },
    { "acl_smtp_rcpt", OT_ACL, F(acl_names[ACL_RCPT]), NULL, ACL_RCPT, 0 },
    { "acl_smtp_predata", OT_ACL, F(acl_names[ACL_PREDATA]), NULL, ACL_PREDATA, 0 },
    { "acl_smtp_data", OT_ACL, F(acl_names[ACL_DATA]), NULL, ACL_DATA, 0 },
};

_Static_assert(ARRAY_LEN(options) <= CONF_MAX_OPTIONS, "raise CONF_MAX_OPTIONS");

#define MAX_DNS_SERVERS 16
#define MAX_RETRY_INTERVALS 64

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

typedef bool (*opt_parser)(struct conf_parser *p, const struct option *o, void *field,
                           const char *value, char *err, size_t errsz);

/* parse_uint_bounded - a decimal number within [min, max] */
static bool parse_uint_bounded(const char *s, unsigned min, unsigned max, unsigned *out)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 10 || s[n] != '\0')
        return false;
    unsigned long long v = strtoull(s, NULL, 10);
    if (v < min || v > max)
        return false;
    *out = (unsigned)v;
    return true;
}

/* set_string - any non-empty text (paths, user); double quotes are stripped */
static bool set_string(struct conf_parser *p, const struct option *o, void *field,
                       const char *value, char *err, size_t errsz)
{
    char **dst = field;
    char *s = conf_unquote(value);
    (void)p;
    (void)o;
    if (s == NULL)
        return fail(err, errsz, "unterminated quoted string");
    if (s[0] == '\0') {
        free(s);
        return fail(err, errsz, "empty value");
    }
    free(*dst);
    *dst = s;
    return true;
}

/* set_hostname - a host name, or an address literal like [192.0.2.1] (helo_data) */
static bool set_hostname(struct conf_parser *p, const struct option *o, void *field,
                         const char *value, char *err, size_t errsz)
{
    char ip[64];
    struct in6_addr a;
    size_t len = strlen(value);
    bool literal = len > 2 && len < sizeof(ip) && value[0] == '[' && value[len - 1] == ']';
    if (literal) {
        memcpy(ip, value + 1, len - 2);
        ip[len - 2] = '\0';
        literal = inet_pton(AF_INET, ip, &a) == 1 || inet_pton(AF_INET6, ip, &a) == 1;
    }
    if (!literal && !conf_hostname_ok(value))
        return fail(err, errsz, "invalid host name \"%.80s\"", value);
    return set_string(p, o, field, value, err, errsz);
}

/* listen_item - "ip:port", "[ipv6]:port", either with "/tls" for implicit TLS */
static bool listen_item(const char *item, struct listen_addr *la, char *err, size_t errsz)
{
    char buf[128];
    if (str_copy(buf, item, sizeof(buf)) >= sizeof(buf))
        return fail(err, errsz, "address too long");
    size_t len = strlen(buf);
    la->implicit_tls = len > 4 && strcmp(buf + len - 4, "/tls") == 0;
    if (la->implicit_tls)
        buf[len - 4] = '\0';
    char *host = buf, *port = strrchr(buf, ':');
    if (buf[0] == '[') {
        char *close = strchr(buf, ']');
        port = close && close[1] == ':' ? close + 1 : NULL;
        host = buf + 1;
        if (close)
            *close = '\0';
    } else if (port != NULL && strchr(buf, ':') != port) {
        return fail(err, errsz, "\"%s\": write IPv6 addresses as [addr]:port", item);
    }
    if (port == NULL)
        return fail(err, errsz, "\"%s\": expected addr:port", item);
    *port++ = '\0';
    uint16_t pn;
    if (!conf_parse_port(port, &pn))
        return fail(err, errsz, "\"%s\": invalid port", item);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&la->ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&la->ss;
    memset(&la->ss, 0, sizeof(la->ss));
    if (buf[0] != '[' && inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(pn);
        la->sslen = sizeof(*s4);
    } else if (buf[0] == '[' && inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(pn);
        la->sslen = sizeof(*s6);
    } else {
        return fail(err, errsz, "\"%s\": not a numeric IP address", item);
    }
    la->text = xstrdup(item);
    return true;
}

/* set_listen - space-separated listen addresses; a duplicate is an error */
static bool set_listen(struct conf_parser *p, const struct option *o, void *field,
                       const char *value, char *err, size_t errsz)
{
    struct conf *c = p->c;
    (void)o;
    (void)field;
    char *copy = xstrdup(value), *save = NULL;
    bool ok = true;
    for (char *tok = strtok_r(copy, " \t", &save); tok && ok; tok = strtok_r(NULL, " \t", &save)) {
        struct listen_addr la;
        if (!(ok = listen_item(tok, &la, err, errsz)))
            break;
        for (size_t i = 0; i < c->nlisten && ok; i++)
            if (c->listen[i].sslen == la.sslen && memcmp(&c->listen[i].ss, &la.ss, la.sslen) == 0)
                ok = fail(err, errsz, "\"%s\" given twice", tok);
        if (!ok) {
            free(la.text);
            break;
        }
        c->listen = xreallocarray(c->listen, c->nlisten + 1, sizeof(*c->listen));
        c->listen[c->nlisten++] = la;
    }
    free(copy);
    if (ok && c->nlisten == 0)
        ok = fail(err, errsz, "no address given");
    return ok;
}

static bool set_uint(struct conf_parser *p, const struct option *o, void *field,
                     const char *value, char *err, size_t errsz)
{
    (void)p;
    if (parse_uint_bounded(value, o->min, o->max, field))
        return true;
    return fail(err, errsz, "\"%.40s\" is not a number from %u to %u", value, o->min, o->max);
}

static bool set_workers(struct conf_parser *p, const struct option *o, void *field,
                        const char *value, char *err, size_t errsz)
{
    if (strcmp(value, "auto") == 0) {
        *(unsigned *)field = 0;
        return true;
    }
    if (set_uint(p, o, field, value, err, errsz))
        return true;
    return fail(err, errsz, "expected \"auto\" or a number from %u to %u", o->min, o->max);
}

static bool set_size(struct conf_parser *p, const struct option *o, void *field,
                     const char *value, char *err, size_t errsz)
{
    (void)p;
    (void)o;
    if (parse_size(value, field))
        return true;
    return fail(err, errsz, "invalid size \"%.40s\" (bytes, or with K, M, G)", value);
}

/* time_bounded - a time within the option's bounds */
static bool time_bounded(const struct option *o, const char *value, unsigned *out, char *err,
                         size_t errsz)
{
    if (!parse_time(value, out))
        return fail(err, errsz, "invalid time \"%.40s\" (e.g. 30s, 5m, 1h30m)", value);
    if (*out < o->min)
        return fail(err, errsz, "time \"%.40s\" must be at least %us", value, o->min);
    return true;
}

static bool set_time(struct conf_parser *p, const struct option *o, void *field,
                     const char *value, char *err, size_t errsz)
{
    (void)p;
    return time_bounded(o, value, field, err, errsz);
}

/* set_times - a space-separated list of times (retry_intervals) */
static bool set_times(struct conf_parser *p, const struct option *o, void *field,
                      const char *value, char *err, size_t errsz)
{
    struct conf *c = p->c;
    unsigned v[MAX_RETRY_INTERVALS];
    size_t n = 0;
    char *copy = xstrdup(value), *save = NULL;
    bool ok = true;
    for (char *t = strtok_r(copy, " \t,", &save); t && ok; t = strtok_r(NULL, " \t,", &save)) {
        if (n == MAX_RETRY_INTERVALS)
            ok = fail(err, errsz, "more than %d times", MAX_RETRY_INTERVALS);
        else
            ok = time_bounded(o, t, &v[n++], err, errsz);
    }
    free(copy);
    if (ok && n == 0)
        ok = fail(err, errsz, "no time given");
    if (ok) {
        free(*(unsigned **)field);
        *(unsigned **)field = xmemdup(v, n * sizeof(v[0]));
        c->nretry_intervals = n;
    }
    return ok;
}

/* set_hostlist - kept as text until the named lists are known (end of the main section) */
static bool set_hostlist(struct conf_parser *p, const struct option *o, void *field,
                         const char *value, char *err, size_t errsz)
{
    if (p->npending == CONF_MAX_PENDING)
        return fail(err, errsz, "too many host lists");
    struct pending_list *pl = &p->pending[p->npending++];
    pl->dst = field;
    pl->text = xstrdup(value);
    pl->option = o->name;
    pl->line = p->line;
    return true;
}

/* dns_server_ok - "ip", "ip:port", "ipv6", "[ipv6]", "[ipv6]:port" */
static bool dns_server_ok(const char *s)
{
    char buf[80];
    struct in6_addr a;
    uint16_t port;
    if (str_copy(buf, s, sizeof(buf)) >= sizeof(buf))
        return false;
    if (inet_pton(AF_INET, buf, &a) == 1 || inet_pton(AF_INET6, buf, &a) == 1)
        return true;
    char *close = buf[0] == '[' ? strchr(buf, ']') : NULL;
    if (close != NULL) {
        *close = '\0';
        return inet_pton(AF_INET6, buf + 1, &a) == 1 &&
               (close[1] == '\0' || (close[1] == ':' && conf_parse_port(close + 2, &port)));
    }
    char *colon = strrchr(buf, ':');
    if (colon == NULL)
        return false;
    *colon = '\0';
    return inet_pton(AF_INET, buf, &a) == 1 && conf_parse_port(colon + 1, &port);
}

/* set_dns - resolver addresses separated by blanks or " : ", kept as written */
static bool set_dns(struct conf_parser *p, const struct option *o, void *field,
                    const char *value, char *err, size_t errsz)
{
    (void)p;
    (void)o;
    char *v[MAX_DNS_SERVERS + 1];
    size_t n = 0;
    char *copy = xstrdup(value), *save = NULL;
    bool ok = true;
    for (char *t = strtok_r(copy, " \t", &save); t && ok; t = strtok_r(NULL, " \t", &save)) {
        if (strcmp(t, ":") == 0)
            continue;
        if (n == MAX_DNS_SERVERS)
            ok = fail(err, errsz, "more than %d servers", MAX_DNS_SERVERS);
        else if (!dns_server_ok(t))
            ok = fail(err, errsz, "\"%.60s\" is not ip, ip:port or [ipv6]:port", t);
        else
            v[n++] = xstrdup(t);
    }
    free(copy);
    if (ok && n == 0)
        ok = fail(err, errsz, "no server given");
    if (!ok) {
        while (n > 0)
            free(v[--n]);
        return false;
    }
    v[n++] = NULL;
    *(char ***)field = xmemdup(v, n * sizeof(v[0]));
    return true;
}

static bool set_port(struct conf_parser *p, const struct option *o, void *field,
                     const char *value, char *err, size_t errsz)
{
    (void)p;
    (void)o;
    if (conf_parse_port(value, field))
        return true;
    return fail(err, errsz, "invalid port \"%.40s\"", value);
}

static bool set_tls(struct conf_parser *p, const struct option *o, void *field,
                    const char *value, char *err, size_t errsz)
{
    (void)p;
    (void)o;
    static const enum tls_policy pols[] = { TLS_NONE, TLS_MAY, TLS_ENCRYPT, TLS_VERIFY, TLS_DANE };
    for (size_t i = 0; i < ARRAY_LEN(pols); i++)
        if (strcmp(value, tls_policy_name(pols[i])) == 0) {
            *(enum tls_policy *)field = pols[i];
            return true;
        }
    return fail(err, errsz, "expected none, may, encrypt, verify or dane, not \"%.40s\"", value);
}

static bool set_bare_nl(struct conf_parser *p, const struct option *o, void *field,
                        const char *value, char *err, size_t errsz)
{
    (void)p;
    (void)o;
    if (strcmp(value, "reject") == 0 || strcmp(value, "space") == 0) {
        *(enum bare_newline *)field = value[0] == 'r' ? BARE_NEWLINE_REJECT : BARE_NEWLINE_SPACE;
        return true;
    }
    return fail(err, errsz, "expected reject or space, not \"%.40s\"", value);
}

/* set_acl - an ACL name, resolved once the ACL section has been read */
static bool set_acl(struct conf_parser *p, const struct option *o, void *field,
                    const char *value, char *err, size_t errsz)
{
    size_t n = strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");
    if (n == 0 || value[n] != '\0')
        return fail(err, errsz, "invalid ACL name \"%.40s\"", value);
    return set_string(p, o, field, value, err, errsz);
}

/* set_addr - one numeric addr:port (metrics_listen) */
static bool set_addr(struct conf_parser *p, const struct option *o, void *field,
                     const char *value, char *err, size_t errsz)
{
    struct listen_addr la, **dst = field;
    (void)p;
    (void)o;
    if (!listen_item(value, &la, err, errsz))
        return false;
    if (la.implicit_tls) {
        free(la.text);
        return fail(err, errsz, "\"%.60s\": /tls is for SMTP listeners", value);
    }
    *dst = xmemdup(&la, sizeof(la));
    return true;
}

/* set_hints - where the shared hints live: "lmdb"; "redis://HOST:PORT[/DB]" is not built yet
 * and is refused rather than silently served from LMDB */
static bool set_hints(struct conf_parser *p, const struct option *o, void *field,
                      const char *value, char *err, size_t errsz)
{
    if (strcmp(value, "lmdb") == 0)
        return set_string(p, o, field, value, err, errsz);
    if (strncmp(value, "redis://", 8) == 0)
        return fail(err, errsz, "the redis backend is not available in this version");
    return fail(err, errsz, "expected lmdb or redis://HOST:PORT[/DB], not \"%.40s\"", value);
}

/* set_spamd - spamd_address (conf_spamd.c) */
static bool set_spamd(struct conf_parser *p, const struct option *o, void *field,
                      const char *value, char *err, size_t errsz)
{
    (void)p;
    (void)o;
    return conf_parse_spamd(field, value, err, errsz);
}

static const opt_parser parsers[OT_NTYPES] = {
    [OT_STRING] = set_string, [OT_HOSTNAME] = set_hostname, [OT_LISTEN] = set_listen,
    [OT_UINT] = set_uint, [OT_WORKERS] = set_workers, [OT_SIZE] = set_size,
    [OT_TIME] = set_time, [OT_HOSTLIST] = set_hostlist, [OT_DNS] = set_dns,
    [OT_PORT] = set_port, [OT_TLS] = set_tls, [OT_TIMES] = set_times,
    [OT_BARE_NL] = set_bare_nl, [OT_ACL] = set_acl, [OT_ADDR] = set_addr,
    [OT_HINTS] = set_hints, [OT_SPAMD] = set_spamd,
};

/* set_option - parse value into option i, reporting an error naming the option */
static void set_option(struct conf_parser *p, size_t i, const char *value, int line)
{
    char err[CONF_ERR_MAX];
    const struct option *o = &options[i];
    if (!parsers[o->type](p, o, (char *)p->c + o->off, value, err, sizeof(err)))
        conf_error(p, line, "%s: %s", o->name, err);
}

/* conf_option_line - "name = value" for a main option; unknown or repeated names are errors */
void conf_option_line(struct conf_parser *p, const char *name, const char *value)
{
    for (size_t i = 0; i < ARRAY_LEN(options); i++) {
        if (strcmp(options[i].name, name) != 0)
            continue;
        if (p->opt_line[i] != 0) {
            conf_error(p, p->line, "%s: set twice (first at line %d)", name, p->opt_line[i]);
            return;
        }
        p->opt_line[i] = p->line;
        set_option(p, i, value, p->line);
        return;
    }
    conf_error(p, p->line, "unknown option \"%s\"", name);
}

/* conf_is_option - is name a main option */
bool conf_is_option(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(options); i++)
        if (strcmp(options[i].name, name) == 0)
            return true;
    return false;
}

/* system_hostname - the default for hostname */
static char *system_hostname(void)
{
    char buf[256];
    if (gethostname(buf, sizeof(buf)) != 0 || buf[0] == '\0')
        return xstrdup("localhost");
    buf[sizeof(buf) - 1] = '\0';
    return xstrdup(buf);
}

/* conf_options_defaults - apply the defaults of options not set */
void conf_options_defaults(struct conf_parser *p)
{
    int saved = p->line;
    p->line = 0;
    for (size_t i = 0; i < ARRAY_LEN(options); i++)
        if (p->opt_line[i] == 0 && options[i].def != NULL)
            set_option(p, i, options[i].def, 0);
    p->line = saved;
    if (p->c->hostname == NULL)
        p->c->hostname = system_hostname();
}

/* option_line - where the named option was set (0 = not set) */
static int option_line(const struct conf_parser *p, const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(options); i++)
        if (strcmp(options[i].name, name) == 0)
            return p->opt_line[i];
    return 0;
}

/* check_tls_pairs - tls_certificate and tls_privatekey name as many files each */
static void check_tls_pairs(struct conf_parser *p, const struct conf *c)
{
    char files[TLS_PAIRS_MAX][TLS_FILE_MAX];
    size_t ncert = tls_file_list(c->tls_certificate, files, TLS_PAIRS_MAX);
    size_t nkey = tls_file_list(c->tls_privatekey ? c->tls_privatekey : c->tls_certificate,
                                files, TLS_PAIRS_MAX);
    if (ncert == 0 || ncert > TLS_PAIRS_MAX)
        conf_error(p, option_line(p, "tls_certificate"),
                   "tls_certificate: 1 to %d files of at most %d bytes each, colon-separated",
                   TLS_PAIRS_MAX, TLS_FILE_MAX - 1);
    else if (nkey != ncert)
        conf_error(p, option_line(p, "tls_privatekey"),
                   "tls_privatekey: %zu file(s) for %zu certificate(s); they are paired in order",
                   nkey > TLS_PAIRS_MAX ? (size_t)TLS_PAIRS_MAX + 1 : nkey, ncert);
}

/* conf_options_finish - after the whole file: helo_data, TLS key, ACL names */
void conf_options_finish(struct conf_parser *p)
{
    struct conf *c = p->c;
    if (c->helo_data == NULL && c->hostname != NULL)
        c->helo_data = xstrdup(c->hostname);
    if (c->tls_privatekey != NULL && c->tls_certificate == NULL)
        conf_error(p, option_line(p, "tls_privatekey"),
                   "tls_privatekey: set without tls_certificate");
    if (c->tls_certificate != NULL)
        check_tls_pairs(p, c);
    for (size_t i = 0; i < ARRAY_LEN(options); i++) {
        const struct option *o = &options[i];
        char *name = o->type == OT_ACL ? *(char **)((char *)c + o->off) : NULL;
        if (name == NULL)
            continue;
        c->acl_for_stage[o->min] = conf_find_acl(c, name);
        if (c->acl_for_stage[o->min] == NULL)
            conf_error(p, p->opt_line[i], "%s: ACL \"%s\" is not defined", o->name, name);
    }
}
