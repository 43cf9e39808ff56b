/* conf_route.c - the routes section: "PATTERN HOP... [port=N] [tls=POLICY]" per line;
 * the first route whose pattern matches the recipient domain wins. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf_int.h"

#define ROUTE_MAX_HOPS 32

/* parse_ip_hop - "[192.0.2.7]", "[192.0.2.7]:2525", "[::1]:2525" */
static bool parse_ip_hop(const char *tok, struct hop_spec *h, char *err, size_t errsz)
{
    char ip[64];
    struct in6_addr a;
    const char *close = strchr(tok, ']');
    size_t len = close ? (size_t)(close - tok - 1) : 0;
    if (close == NULL || len == 0 || len >= sizeof(ip)) {
        str_fmt(err, errsz, "invalid IP literal \"%.60s\"", tok);
        return false;
    }
    memcpy(ip, tok + 1, len);
    ip[len] = '\0';
    if (inet_pton(AF_INET, ip, &a) != 1 && inet_pton(AF_INET6, ip, &a) != 1) {
        str_fmt(err, errsz, "\"%.60s\" is not an IP address", ip);
        return false;
    }
    if (close[1] != '\0' && (close[1] != ':' || !conf_parse_port(close + 2, &h->port))) {
        str_fmt(err, errsz, "invalid port in \"%.60s\"", tok);
        return false;
    }
    h->kind = HOP_IP;
    h->name = xstrdup(ip);
    return true;
}

/* parse_hop - "mx", a host name with an optional ":port", or an IP literal in brackets */
static bool parse_hop(const char *tok, struct hop_spec *h, char *err, size_t errsz)
{
    memset(h, 0, sizeof(*h));
    if (strcasecmp(tok, "mx") == 0) {
        h->kind = HOP_MX;
        return true;
    }
    if (strncasecmp(tok, "mx:", 3) == 0) {
        str_fmt(err, errsz, "\"%.60s\": an mx hop takes no port (use port=)", tok);
        return false;
    }
    if (tok[0] == '[')
        return parse_ip_hop(tok, h, err, errsz);
    const char *colon = strchr(tok, ':');
    if (colon != NULL && strchr(colon + 1, ':') != NULL) {
        str_fmt(err, errsz, "\"%.60s\": write IPv6 next hops as [addr]:port", tok);
        return false;
    }
    char *name = xstrndup(tok, colon ? (size_t)(colon - tok) : strlen(tok));
    if (!conf_hostname_ok(name) || (colon && !conf_parse_port(colon + 1, &h->port))) {
        str_fmt(err, errsz, "invalid next hop \"%.60s\"", tok);
        free(name);
        return false;
    }
    h->kind = HOP_HOST;
    h->name = name;
    return true;
}

/* parse_tls - "none", "may", "encrypt", "verify", "dane" */
static bool parse_tls(const char *s, enum tls_policy *out)
{
    static const enum tls_policy pols[] = { TLS_NONE, TLS_MAY, TLS_ENCRYPT, TLS_VERIFY, TLS_DANE };
    for (size_t i = 0; i < ARRAY_LEN(pols); i++)
        if (strcmp(s, tls_policy_name(pols[i])) == 0) {
            *out = pols[i];
            return true;
        }
    return false;
}

/* route_option - "port=N" or "tls=POLICY"; false (err empty) if tok is not an option */
static bool route_option(struct route *r, const char *tok, char *err, size_t errsz)
{
    err[0] = '\0';
    if (strncmp(tok, "port=", 5) == 0) {
        if (r->port != 0)
            str_fmt(err, errsz, "port= given twice");
        else if (!conf_parse_port(tok + 5, &r->port))
            str_fmt(err, errsz, "invalid port \"%.40s\"", tok + 5);
        return true;
    }
    if (strncmp(tok, "tls=", 4) == 0) {
        if (r->tls != TLS_UNSET)
            str_fmt(err, errsz, "tls= given twice");
        else if (!parse_tls(tok + 4, &r->tls))
            str_fmt(err, errsz, "tls= must be none, may, encrypt, verify or dane, not \"%.40s\"", tok + 4);
        return true;
    }
    if (strchr(tok, '=') != NULL)
        str_fmt(err, errsz, "unknown route option \"%.40s\" (expected port= or tls=)", tok);
    return err[0] != '\0';
}

/* route_token - one token after the pattern: an option or a next hop */
static bool route_token(struct route *r, const char *tok, char *err, size_t errsz)
{
    if (route_option(r, tok, err, errsz))
        return err[0] == '\0';
    if (r->nhops == ROUTE_MAX_HOPS) {
        str_fmt(err, errsz, "more than %d next hops", ROUTE_MAX_HOPS);
        return false;
    }
    struct hop_spec h;
    if (!parse_hop(tok, &h, err, errsz))
        return false;
    r->hops = xreallocarray(r->hops, r->nhops + 1, sizeof(*r->hops));
    r->hops[r->nhops++] = h;
    return true;
}

/* route_pattern - compile the domain pattern as a one-item domain list */
static bool route_pattern(struct conf_parser *p, struct route *r, const char *pat)
{
    r->pattern = xstrdup(pat);
    if (pat[0] == '!' || strchr(pat, ':') != NULL) {
        conf_error(p, p->line, "route \"%s\": the pattern must be one domain, \"*.domain\", "
                   "\"+name\" or \"*\"", pat);
        return false;
    }
    char what[CONF_ERR_MAX];
    str_fmt(what, sizeof(what), "route \"%s\"", pat);
    return conf_compile_list(p, &r->domains, LIST_DOMAIN, pat, what, p->line);
}

/* conf_route_line - one route: pattern, next hops, options */
void conf_route_line(struct conf_parser *p, const char *line)
{
    struct conf *c = p->c;
    struct route r;
    char err[CONF_ERR_MAX];
    char *copy = xstrdup(line), *save = NULL;
    memset(&r, 0, sizeof(r));
    r.line = p->line;
    bool ok = route_pattern(p, &r, strtok_r(copy, " \t", &save));
    for (char *tok = strtok_r(NULL, " \t", &save); tok && ok; tok = strtok_r(NULL, " \t", &save))
        if (!(ok = route_token(&r, tok, err, sizeof(err))))
            conf_error(p, p->line, "route \"%s\": %s", r.pattern, err);
    if (ok && r.nhops == 0) {
        conf_error(p, p->line, "route \"%s\": no next hop (expected mx, a host or [ip])", r.pattern);
        ok = false;
    }
    free(copy);
    if (!ok) {
        conf_route_free(&r);
        return;
    }
    c->routes = xreallocarray(c->routes, c->nroutes + 1, sizeof(*c->routes));
    c->routes[c->nroutes++] = r;
}

/* conf_route_free - what a route holds */
void conf_route_free(struct route *r)
{
    free(r->pattern);
    list_free(&r->domains);
    for (size_t i = 0; i < r->nhops; i++)
        free(r->hops[i].name);
    free(r->hops);
}
