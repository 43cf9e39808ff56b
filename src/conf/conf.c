/* conf.c - load, free and query the configuration. */
#include "conf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"
#include "lookup_int.h"

#define CONF_MAX_ERRORS 100 /* errors reported; the rest are counted */

void conf_error(struct conf_parser *p, int line, const char *fmt, ...)
{
    char msg[CONF_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    str_vfmt(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    p->errv = xreallocarray(p->errv, p->nerrs + 1, sizeof(*p->errv));
    p->errv[p->nerrs] = (struct conf_err){ .line = line, .seq = p->nerrs, .msg = xstrdup(msg) };
    p->nerrs++;
}

/* err_cmp - by line, then in the order found */
static int err_cmp(const void *a, const void *b)
{
    const struct conf_err *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* report_errors - "FILE:LINE: message" lines in line order, at most CONF_MAX_ERRORS */
static void report_errors(struct conf_parser *p, struct sbuf *errs)
{
    if (p->nerrs == 0)
        return;
    qsort(p->errv, p->nerrs, sizeof(*p->errv), err_cmp);
    for (size_t i = 0; i < p->nerrs; i++) {
        if (i < CONF_MAX_ERRORS)
            sbuf_printf(errs, "%s:%d: %s\n", p->path, p->errv[i].line, p->errv[i].msg);
        free(p->errv[i].msg);
    }
    if (p->nerrs > CONF_MAX_ERRORS)
        sbuf_printf(errs, "%s:0: %zu more errors not shown\n", p->path, p->nerrs - CONF_MAX_ERRORS);
    free(p->errv);
}

/* parser_free - what the parser still holds after an early stop */
static void parser_free(struct conf_parser *p)
{
    for (size_t i = 0; i < p->npending; i++)
        free(p->pending[i].text);
    for (int k = 0; k < 3; k++)
        free(p->list_text[k]);
}

/* conf_load - read, validate and cross-check a configuration file */
struct conf *conf_load(const char *path, struct sbuf *errs)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        sbuf_printf(errs, "%s:0: cannot open: %s\n", path, strerror(errno));
        return NULL;
    }
    struct conf *c = xcalloc(1, sizeof(*c));
    struct conf_parser p;
    memset(&p, 0, sizeof(p));
    c->path = xstrdup(path);
    c->lookups = lookup_set_new();
    p.c = c;
    p.path = path;
    conf_read(&p, f);
    if (ferror(f))
        conf_error(&p, 0, "read error: %s", strerror(errno));
    fclose(f);
    conf_options_finish(&p);
    conf_acl_check_stages(&p);
    parser_free(&p);
    report_errors(&p, errs);
    if (p.nerrs == 0)
        return c;
    conf_free(c);
    return NULL;
}

/* named_free - an array of named lists */
static void named_free(struct named_list *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        list_free(&v[i].list);
    }
    free(v);
}

/* strings_free - the conf's own strings */
static void strings_free(struct conf *c)
{
    char *strs[] = { c->path, c->hostname, c->spool_directory, c->log_directory, c->user,
                     c->tls_certificate, c->tls_privatekey, c->dnssec_trust_anchor,
                     c->tls_outbound_ca, c->helo_data, c->transaction_log, c->hints_backend,
                     c->spamd.host };
    for (size_t i = 0; i < ARRAY_LEN(strs); i++)
        free(strs[i]);
    for (int s = 0; s < ACL_NSTAGES; s++)
        free(c->acl_names[s]);
    for (size_t i = 0; c->dns_servers != NULL && c->dns_servers[i] != NULL; i++)
        free(c->dns_servers[i]);
    free(c->dns_servers);
}

/* conf_free - release a configuration and everything it owns */
void conf_free(struct conf *c)
{
    if (c == NULL)
        return;
    strings_free(c);
    for (size_t i = 0; i < c->nlisten; i++)
        free(c->listen[i].text);
    free(c->listen);
    if (c->metrics_listen)
        free(c->metrics_listen->text);
    free(c->metrics_listen);
    list_free(&c->hosts_proxy);
    free(c->retry_intervals);
    list_free(&c->tls_advertise_hosts);
    list_free(&c->chunking_advertise_hosts);
    list_free(&c->dsn_advertise_hosts);
    list_free(&c->pipelining_advertise_hosts);
    named_free(c->domainlists, c->ndomainlists);
    named_free(c->hostlists, c->nhostlists);
    named_free(c->addresslists, c->naddresslists);
    for (size_t i = 0; i < c->nroutes; i++)
        conf_route_free(&c->routes[i]);
    free(c->routes);
    for (size_t i = 0; i < c->nacls; i++)
        acl_free(&c->acls[i]);
    free(c->acls);
    lookup_set_free(c->lookups);   /* after the lists that point into it */
    free(c);
}

const struct named_list *conf_find_list(const struct conf *c, enum list_kind kind, const char *name)
{
    struct list_names names;
    const struct named_list *v = NULL;
    size_t n = 0;
    conf_list_names(c, &names);
    if (kind == LIST_DOMAIN) {
        v = names.domains;
        n = names.ndomains;
    } else if (kind == LIST_HOST) {
        v = names.hosts;
        n = names.nhosts;
    } else if (kind == LIST_ADDRESS) {
        v = names.addresses;
        n = names.naddresses;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return &v[i];
    return NULL;
}

const struct acl *conf_find_acl(const struct conf *c, const char *name)
{
    for (size_t i = 0; i < c->nacls; i++)
        if (c->acls[i].name != NULL && strcmp(c->acls[i].name, name) == 0)
            return &c->acls[i];
    return NULL;
}

/* conf_route_find - the first route whose pattern matches domain; a lookup that defers
 * before one matched defers the routing */
enum list_result conf_route_find(const struct conf *c, const char *domain,
                                 const struct route **r, const char **why)
{
    *r = NULL;
    for (size_t i = 0; i < c->nroutes; i++) {
        enum list_result m = list_check_domain(&c->routes[i].domains, domain, why);
        if (m == LIST_MATCH)
            *r = &c->routes[i];
        if (m != LIST_NO_MATCH)
            return m;
    }
    return LIST_NO_MATCH;
}

const char *tls_policy_name(enum tls_policy p)
{
    static const char *const names[] = { "unset", "none", "may", "encrypt", "verify", "dane" };
    return (unsigned)p < ARRAY_LEN(names) ? names[p] : "?";
}

struct conf *conf_load_or_report(const char *path)
{
    struct sbuf errs;
    sbuf_init(&errs);
    struct conf *c = conf_load(path, &errs);
    if (c == NULL)
        fputs(errs.s ? errs.s : "configuration error\n", stderr);
    sbuf_free(&errs);
    return c;
}

void conf_lookups_open(const struct conf *c)
{
    lookup_set_open(c->lookups);
}

void conf_lookups_check(const struct conf *c, struct sbuf *out)
{
    lookup_set_check(c->lookups, c->path, out);
}

bool conf_needs_host_names(const struct conf *c)
{
    if (list_has_host_names(&c->tls_advertise_hosts) || list_has_host_names(&c->dsn_advertise_hosts) ||
        list_has_host_names(&c->chunking_advertise_hosts) ||
        list_has_host_names(&c->pipelining_advertise_hosts))
        return true;
    for (size_t a = 0; a < c->nacls; a++)
        for (size_t s = 0; s < c->acls[a].n; s++)
            for (size_t i = 0; i < c->acls[a].stmts[s].n; i++) {
                const struct acl_item *it = &c->acls[a].stmts[s].items[i];
                if (it->kind == COND_HOSTS && list_has_host_names(&it->list))
                    return true;
            }
    return false;
}
