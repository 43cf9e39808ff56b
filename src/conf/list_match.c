/* list_match.c - match domains, hosts, addresses and local parts against parsed lists,
 * with Exim's semantics for negated items, named lists and lookups (which may defer). */
#include "conf.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "lookup_int.h"

#define MATCH_DEPTH_MAX 32 /* bounds recursion even for lists not checked by list_names_check */

/* What is being matched; which fields are used depends on the list kind. */
struct subject {
    const char *s;        /* domain, local part or address */
    const char *hostname; /* host lists: verified name or NULL */
    bool no_host;         /* host lists: no remote host at all */
    bool ip_ok;           /* host lists: addr holds the client address */
    bool ipv4;            /* host lists: the client address is IPv4 (or IPv4-mapped) */
    uint8_t addr[16];
    const char **why;     /* where to say why a lookup deferred, or NULL */
};

static enum list_result match_list(const struct list *l, const struct subject *sj, int depth);

/* yes - a bool as a list result */
static inline enum list_result yes(bool b)
{
    return b ? LIST_MATCH : LIST_NO_MATCH;
}

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
    case ITEM_LOOKUP:
        break;
    }
    return false;
}

/* address_item - one address-list item: "", "lp@dom", "*@dom", "lp@*", "lp@+domains", "dom" */
static enum list_result address_item(const struct list_item *it, const struct subject *sj,
                                     int depth)
{
    const char *pat = it->text, *addr = sj->s;
    if (pat[0] == '\0' || addr[0] == '\0')
        return yes(pat[0] == '\0' && addr[0] == '\0');
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
                return LIST_NO_MATCH;
        } else if (sllen != pllen || strncasecmp(addr, pat, sllen) != 0) {
            return LIST_NO_MATCH;
        }
    }
    if (it->ref != NULL) {
        struct subject dsj = { .s = sdom, .why = sj->why };
        return match_list(&it->ref->list, &dsj, depth + 1);
    }
    return yes(pattern_match(pdom, sdom));
}

/* lower_key - a ++ b, lower-cased, into key; false when it does not fit */
static bool lower_key(char key[LOOKUP_KEY_MAX], size_t *klen, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la + lb >= LOOKUP_KEY_MAX)
        return false;
    memcpy(key, a, la);
    memcpy(key + la, b, lb + 1);
    for (size_t i = 0; i < la + lb; i++)
        if (key[i] >= 'A' && key[i] <= 'Z')
            key[i] = (char)(key[i] + 32);
    *klen = la + lb;
    return true;
}

/* lookup_key - look a+b up in the item's file */
static enum list_result lookup_key(const struct list_item *it, const struct subject *sj,
                                   const char *a, const char *b)
{
    char key[LOOKUP_KEY_MAX];
    size_t klen;
    if (!lower_key(key, &klen, a, b))
        return LIST_NO_MATCH; /* longer than any address or name: cannot be a key we write */
    switch (lookup_find(it->lookup, key, klen)) {
    case LOOKUP_FOUND: return LIST_MATCH;
    case LOOKUP_NOT_FOUND: return LIST_NO_MATCH;
    case LOOKUP_DEFER: break;
    }
    if (sj->why != NULL)
        *sj->why = lookup_error(it->lookup);
    return LIST_DEFER;
}

/* net_key - the client's network for a netN- lookup: "192.0.2.0/24", IPv6 as eight
 * dot-separated groups of four hex digits ("2001.0db8.0000....0000/32", Exim's form, free of
 * colons); N is capped at 32 for IPv4 */
static bool net_key(const struct subject *sj, unsigned n, char *buf, size_t sz)
{
    uint8_t m[16];
    unsigned base = sj->ipv4 ? 96 : 0;
    if (sj->ipv4 && n > 32)
        n = 32;
    memcpy(m, sj->addr, sizeof(m));
    for (unsigned bit = base + n; bit < 128; bit++)
        m[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
    if (sj->ipv4)
        return str_fmt(buf, sz, "%u.%u.%u.%u/%u", m[12], m[13], m[14], m[15], n);
    return str_fmt(buf, sz, "%02x%02x.%02x%02x.%02x%02x.%02x%02x.%02x%02x.%02x%02x.%02x%02x.%02x%02x/%u",
                   m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8], m[9], m[10], m[11],
                   m[12], m[13], m[14], m[15], n);
}

/* host_ip_key - the client's address as a net- lookup key (IPv4 dotted, IPv6 as inet_ntop
 * writes it), or its network for netN- */
static bool host_ip_key(const struct subject *sj, int net, char *buf, size_t sz)
{
    const uint8_t *a = sj->addr;
    if (net != LOOKUP_BY_IP)
        return net_key(sj, (unsigned)net, buf, sz);
    if (sj->ipv4)
        return str_fmt(buf, sz, "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
    return inet_ntop(AF_INET6, a, buf, (socklen_t)sz) != NULL;
}

/* lookup_item - look the subject up as the list's kind keys it: domains and local parts as
 * they are, addresses whole and then as "*@domain" (the null sender never), hosts by verified
 * name or (net-) by address */
static enum list_result lookup_item(const struct list *l, const struct list_item *it,
                                    const struct subject *sj)
{
    char ip[80];
    const char *at;
    enum list_result r;
    switch (l->kind) {
    case LIST_DOMAIN:
    case LIST_LOCAL_PART:
        return lookup_key(it, sj, sj->s, "");
    case LIST_ADDRESS:
        if (sj->s[0] == '\0')
            return LIST_NO_MATCH;
        r = lookup_key(it, sj, sj->s, "");
        if (r != LIST_NO_MATCH || (at = strrchr(sj->s, '@')) == NULL)
            return r;
        return lookup_key(it, sj, "*", at);
    case LIST_HOST:
        break;
    }
    if (it->lookup_net == LOOKUP_BY_NAME) {
        if (sj->hostname == NULL || sj->hostname[0] == '\0')
            return LIST_NO_MATCH;
        char name[LOOKUP_KEY_MAX];
        str_copy(name, sj->hostname, sizeof(name));
        size_t n = strlen(name);
        if (n > 0 && name[n - 1] == '.')
            name[n - 1] = '\0';
        return lookup_key(it, sj, name, "");
    }
    if (!sj->ip_ok || !host_ip_key(sj, it->lookup_net, ip, sizeof(ip)))
        return LIST_NO_MATCH;
    return lookup_key(it, sj, ip, "");
}

/* item_match - does one item (ignoring its negation) match the subject */
static enum list_result item_match(const struct list *l, const struct list_item *it,
                                   const struct subject *sj, int depth)
{
    if (it->type == ITEM_NAMED)
        return it->ref != NULL ? match_list(&it->ref->list, sj, depth + 1) : LIST_NO_MATCH;
    if (it->type == ITEM_LOOKUP)
        return lookup_item(l, it, sj);
    switch (l->kind) {
    case LIST_HOST:
        return yes(host_item(it, sj));
    case LIST_ADDRESS:
        return address_item(it, sj, depth);
    case LIST_DOMAIN:
    case LIST_LOCAL_PART:
        break;
    }
    return yes(it->type == ITEM_ANY || pattern_match(it->text, sj->s));
}

/* match_list - first matching item decides; a list ending in a negated item ends in "*"; a
 * lookup that defers before anything decided makes the whole check defer (Exim) */
static enum list_result match_list(const struct list *l, const struct subject *sj, int depth)
{
    if (depth > MATCH_DEPTH_MAX)
        return LIST_NO_MATCH;
    for (size_t i = 0; i < l->n; i++) {
        enum list_result r = item_match(l, &l->items[i], sj, depth);
        if (r == LIST_DEFER)
            return LIST_DEFER;
        if (r == LIST_MATCH)
            return l->items[i].negate ? LIST_NO_MATCH : LIST_MATCH;
    }
    return yes(l->n > 0 && l->items[l->n - 1].negate);
}

const char *list_result_name(enum list_result r)
{
    static const char *const names[] = { "no match", "match", "defer" };
    return (unsigned)r < ARRAY_LEN(names) ? names[r] : "?";
}

enum list_result list_check_domain(const struct list *l, const char *domain, const char **why)
{
    struct subject sj = { .s = domain ? domain : "", .why = why };
    return match_list(l, &sj, 0);
}

enum list_result list_check_local_part(const struct list *l, const char *local_part,
                                       const char **why)
{
    struct subject sj = { .s = local_part ? local_part : "", .why = why };
    return match_list(l, &sj, 0);
}

enum list_result list_check_address(const struct list *l, const char *address, const char **why)
{
    struct subject sj = { .s = address ? address : "", .why = why };
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

/* list_check_host - the client by address (CIDR, net- lookups) or verified name */
enum list_result list_check_host(const struct list *l, const char *ip, const char *hostname,
                                 const char **why)
{
    struct subject sj = { .s = "", .hostname = hostname, .why = why };
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
        if ((it->type == ITEM_LITERAL && it->text[0] != '\0') || it->type == ITEM_SUFFIX ||
            (it->type == ITEM_LOOKUP && it->lookup_net == LOOKUP_BY_NAME))
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
