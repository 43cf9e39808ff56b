/* list_match.c - match domains, hosts, addresses and local parts against parsed lists,
 * with Exim's semantics for negated items and named lists. */
#include "conf.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"

#define MATCH_DEPTH_MAX 32 /* bounds recursion even for lists not checked by list_names_check */

/* What is being matched; which fields are used depends on the list kind. */
struct subject {
    const char *s;        /* domain, local part or address */
    const char *hostname; /* host lists: verified name or NULL */
    bool no_host;         /* host lists: no remote host at all */
    bool ip_ok;           /* host lists: addr holds the client address */
    bool ipv4;            /* host lists: the client address is IPv4 (or IPv4-mapped) */
    uint8_t addr[16];
};

static bool match_list(const struct list *l, const struct subject *sj, int depth);

/* suffix_match - s ends with suffix, ignoring case */
static bool suffix_match(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcasecmp(s + ls - lx, suffix) == 0;
}

/* pattern_match - a domain or local part against "*", "*suffix" or a literal */
static bool pattern_match(const char *pattern, const char *s)
{
    if (pattern[0] == '*')
        return suffix_match(s, pattern + 1);
    return strcasecmp(pattern, s) == 0;
}

/* name_eq - host names compare caselessly, a trailing dot on the subject ignored */
static bool name_eq(const char *pattern, const char *name)
{
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '.')
        n--;
    return strlen(pattern) == n && strncasecmp(pattern, name, n) == 0;
}

/* cidr_match - the first prefix bits of a and net agree */
static bool cidr_match(const uint8_t a[16], const uint8_t net[16], unsigned prefix)
{
    unsigned full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, net, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

/* host_item - one host-list item against the client */
static bool host_item(const struct list_item *it, const struct subject *sj)
{
    switch (it->type) {
    case ITEM_ANY:
        return true;
    case ITEM_CIDR:   /* as in Exim, IPv4 items match IPv4 clients only, IPv6 items IPv6 */
        return sj->ip_ok && sj->ipv4 == (strchr(it->text, ':') == NULL) &&
               cidr_match(sj->addr, it->addr, it->prefix);
    case ITEM_LITERAL:
        if (it->text[0] == '\0')
            return sj->no_host;
        return sj->hostname != NULL && name_eq(it->text, sj->hostname);
    case ITEM_SUFFIX:
        return sj->hostname != NULL && suffix_match(sj->hostname, it->text + 1);
    case ITEM_NAMED:
        break;
    }
    return false;
}

/* address_item - one address-list item: "", "lp@dom", "*@dom", "lp@*", "lp@+domains", "dom" */
static bool address_item(const struct list_item *it, const char *addr, int depth)
{
    const char *pat = it->text;
    if (pat[0] == '\0' || addr[0] == '\0')
        return pat[0] == '\0' && addr[0] == '\0';
    const char *sat = strrchr(addr, '@');
    const char *sdom = sat ? sat + 1 : "";
    size_t sllen = sat ? (size_t)(sat - addr) : strlen(addr);
    const char *pat_at = strrchr(pat, '@');
    const char *pdom = pat_at ? pat_at + 1 : pat;
    if (pat_at != NULL) {
        size_t pllen = (size_t)(pat_at - pat);
        if (pat[0] == '*') {
            size_t cl = pllen - 1;
            if (sllen < cl || strncasecmp(addr + sllen - cl, pat + 1, cl) != 0)
                return false;
        } else if (sllen != pllen || strncasecmp(addr, pat, sllen) != 0) {
            return false;
        }
    }
    if (it->ref != NULL) {
        struct subject dsj = { .s = sdom };
        return match_list(&it->ref->list, &dsj, depth + 1);
    }
    return pattern_match(pdom, sdom);
}

/* item_match - does one item (ignoring its negation) match the subject */
static bool item_match(const struct list *l, const struct list_item *it, const struct subject *sj,
                       int depth)
{
    if (it->type == ITEM_NAMED)
        return it->ref != NULL && match_list(&it->ref->list, sj, depth + 1);
    switch (l->kind) {
    case LIST_HOST:
        return host_item(it, sj);
    case LIST_ADDRESS:
        return address_item(it, sj->s, depth);
    case LIST_DOMAIN:
    case LIST_LOCAL_PART:
        break;
    }
    return it->type == ITEM_ANY || pattern_match(it->text, sj->s);
}

/* match_list - first matching item decides; a list ending in a negated item ends in "*" */
static bool match_list(const struct list *l, const struct subject *sj, int depth)
{
    if (depth > MATCH_DEPTH_MAX)
        return false;
    for (size_t i = 0; i < l->n; i++)
        if (item_match(l, &l->items[i], sj, depth))
            return !l->items[i].negate;
    return l->n > 0 && l->items[l->n - 1].negate;
}

bool list_match_domain(const struct list *l, const char *domain)
{
    struct subject sj = { .s = domain ? domain : "" };
    return match_list(l, &sj, 0);
}

bool list_match_local_part(const struct list *l, const char *local_part)
{
    struct subject sj = { .s = local_part ? local_part : "" };
    return match_list(l, &sj, 0);
}

bool list_match_address(const struct list *l, const char *address)
{
    struct subject sj = { .s = address ? address : "" };
    return match_list(l, &sj, 0);
}

/* subject_ip - parse the client address (IPv4, IPv6, IPv6 with a %zone) into sj */
static void subject_ip(struct subject *sj, const char *ip)
{
    char buf[64];
    struct in_addr a4;
    str_copy(buf, ip, sizeof(buf));
    buf[strcspn(buf, "%")] = '\0';
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        memset(sj->addr, 0, 10);
        sj->addr[10] = sj->addr[11] = 0xff;
        memcpy(sj->addr + 12, &a4, 4);
        sj->ip_ok = sj->ipv4 = true;
    } else {
        sj->ip_ok = inet_pton(AF_INET6, buf, sj->addr) == 1;
        static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        sj->ipv4 = sj->ip_ok && memcmp(sj->addr, mapped, sizeof(mapped)) == 0;
    }
}

/* list_match_host - the client by address (CIDR) or verified name */
bool list_match_host(const struct list *l, const char *ip, const char *hostname)
{
    struct subject sj = { .s = "", .hostname = hostname };
    if (ip == NULL || ip[0] == '\0')
        sj.no_host = true;
    else
        subject_ip(&sj, ip);
    return match_list(l, &sj, 0);
}

/* has_names - host-name items in l, following named lists (bounded, as their nesting is) */
static bool has_names(const struct list *l, int depth)
{
    if (l == NULL || depth > 32)
        return false;
    for (size_t i = 0; i < l->n; i++) {
        const struct list_item *it = &l->items[i];
        if ((it->type == ITEM_LITERAL && it->text[0] != '\0') || it->type == ITEM_SUFFIX)
            return true;
        if (it->type == ITEM_NAMED && it->ref && has_names(&it->ref->list, depth + 1))
            return true;
    }
    return false;
}

bool list_has_host_names(const struct list *l)
{
    return l->kind == LIST_HOST && has_names(l, 0);
}
