/* list.c - parse Exim-style colon-separated lists of domains, hosts, addresses and local
 * parts into items; named-list references are resolved at parse time. */
#include "conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "lookup_int.h"

#define LIST_ITEM_MAX 1024 /* longest item accepted, in bytes */
#define LIST_DEPTH_MAX 16  /* deepest chain of named-list references */

static const char *const kind_names[] = { "domainlist", "hostlist", "addresslist", "localpartlist" };

/* list_separator - skip leading blanks and Exim's "<c" prefix, which makes c the separator */
static char list_separator(const char **sp)
{
    const char *s = *sp;
    char sep = ':';
    while (isspace((unsigned char)*s))
        s++;
    if (s[0] == '<' && s[1] != '\0' && ispunct((unsigned char)s[1])) {
        sep = s[1];
        s += 2;
    }
    *sp = s;
    return sep;
}

/* next_item - copy the next item into buf (a doubled separator is a literal one, blanks at
 * either end are dropped); 1 = item, 0 = end of list, -1 = item too long */
static int next_item(const char **sp, char sep, char *buf, size_t bufsz)
{
    const char *s = *sp;
    size_t n = 0;
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        if (*s == sep) {
            if (s[1] != sep)
                break;
            s++;
        }
        if (n + 1 >= bufsz)
            return -1;
        buf[n++] = *s;
    }
    if (*s == sep)
        s++;
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        n--;
    buf[n] = '\0';
    *sp = s;
    return 1;
}

/* find_named - look a name up among named lists */
static const struct named_list *find_named(const struct named_list *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return &v[i];
    return NULL;
}

/* resolve_named - point it at the named list "+name" of the given kind */
static bool resolve_named(struct list_item *it, enum list_kind kind, const char *name,
                          const struct list_names *names, char *err, size_t errsz)
{
    const struct named_list *nl = NULL;
    if (names != NULL) {
        if (kind == LIST_DOMAIN)
            nl = find_named(names->domains, names->ndomains, name);
        else if (kind == LIST_HOST)
            nl = find_named(names->hosts, names->nhosts, name);
        else if (kind == LIST_ADDRESS)
            nl = find_named(names->addresses, names->naddresses, name);
    }
    if (kind == LIST_LOCAL_PART) {
        str_fmt(err, errsz, "named lists cannot be used in local part lists: \"+%s\"", name);
        return false;
    }
    if (nl == NULL) {
        str_fmt(err, errsz, "%s \"%s\" is not defined", kind_names[kind], name);
        return false;
    }
    it->ref = nl;
    return true;
}

/* list_parse_ip - parse an IPv4 or IPv6 address into the 128-bit space (IPv4 mapped);
 * returns the address family, or 0 if s is not an address */
static int list_parse_ip(const char *s, uint8_t out[16])
{
    struct in_addr a4;
    if (inet_pton(AF_INET, s, &a4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        return AF_INET;
    }
    return inet_pton(AF_INET6, s, out) == 1 ? AF_INET6 : 0;
}

/* parse_cidr - "addr" or "addr/len" into a masked network and a 128-bit prefix length */
static bool parse_cidr(const char *s, uint8_t addr[16], unsigned *prefix)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    unsigned len = 128;
    if (alen >= sizeof(buf))
        return false;
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    int af = list_parse_ip(buf, addr);
    if (af == 0)
        return false;
    unsigned max = af == AF_INET ? 32 : 128;
    if (slash != NULL) {
        const char *p = slash + 1;
        if (!isdigit((unsigned char)*p) || strlen(p) > 3 || strspn(p, "0123456789") != strlen(p))
            return false;
        len = (unsigned)atoi(p);
        if (len > max)
            return false;
        if (af == AF_INET)
            len += 96;
    }
    for (unsigned bit = len; bit < 128; bit++)
        addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
    *prefix = len;
    return true;
}

/* name_chars_ok - host/domain pattern characters: letters, digits, '-', '.', '_' */
static bool name_chars_ok(const char *s)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.' && *s != '_')
            return false;
    return true;
}

/* unsupported - reject Exim item forms tandem does not implement */
static bool unsupported(const char *text, char *err, size_t errsz)
{
    const char *why = NULL;
    if (text[0] == '^')
        why = "regular expressions are not supported";
    else if (text[0] == '/')
        why = "file names in lists are not supported";
    else if (strchr(text, ';') != NULL)
        why = "a lookup is a whole item, TYPE;/path (lsearch, cdb)";
    else if (strcmp(text, "@") == 0 || strncmp(text, "@[", 2) == 0 || strncmp(text, "@mx_", 4) == 0)
        why = "\"@\" items are not supported";
    else if (text[strcspn(text, " \t")] != '\0')
        why = "white space inside an item (missing ':'?)";
    if (why == NULL)
        return false;
    str_fmt(err, errsz, "%s: \"%s\"", why, text);
    return true;
}

/* init_domain_item - "*", "*suffix", "+name" or a literal domain (also local parts) */
static bool init_domain_item(struct list_item *it, enum list_kind kind, const char *text,
                             const struct list_names *names, char *err, size_t errsz)
{
    if (strcmp(text, "*") == 0)
        it->type = ITEM_ANY;
    else if (text[0] == '+') {
        it->type = ITEM_NAMED;
        return resolve_named(it, kind, text + 1, names, err, errsz);
    } else
        it->type = text[0] == '*' ? ITEM_SUFFIX : ITEM_LITERAL;
    if (kind == LIST_DOMAIN && strchr(text, '@') != NULL) {
        str_fmt(err, errsz, "\"@\" in a domain: \"%s\"", text);
        return false;
    }
    return true;
}

/* init_host_item - "", "*", IP, CIDR, "*suffix" name pattern, host name, "+name" */
static bool init_host_item(struct list_item *it, const char *text, const struct list_names *names,
                           char *err, size_t errsz)
{
    if (text[0] == '+') {
        it->type = ITEM_NAMED;
        return resolve_named(it, LIST_HOST, text + 1, names, err, errsz);
    }
    if (strcmp(text, "*") == 0) {
        it->type = ITEM_ANY;
        return true;
    }
    bool ipish = strchr(text, ':') != NULL || strchr(text, '/') != NULL ||
                 (text[0] != '\0' && strspn(text, "0123456789.") == strlen(text));
    if (ipish) {
        it->type = ITEM_CIDR;
        if (parse_cidr(text, it->addr, &it->prefix))
            return true;
        str_fmt(err, errsz, "invalid IP address or network: \"%s\"", text);
        return false;
    }
    it->type = text[0] == '*' ? ITEM_SUFFIX : ITEM_LITERAL;
    if (name_chars_ok(text[0] == '*' ? text + 1 : text))
        return true;
    str_fmt(err, errsz, "invalid host name pattern: \"%s\"", text);
    return false;
}

/* init_address_item - "", "+name", "user@domain", "*@domain", "user@*", "*suffix@+dom", "domain" */
static bool init_address_item(struct list_item *it, const char *text, const struct list_names *names,
                              char *err, size_t errsz)
{
    if (text[0] == '+') {
        it->type = ITEM_NAMED;
        return resolve_named(it, LIST_ADDRESS, text + 1, names, err, errsz);
    }
    const char *at = strrchr(text, '@');
    const char *dom = at ? at + 1 : text;
    bool wild = text[0] == '*' || dom[0] == '*';
    it->type = strcmp(text, "*") == 0 ? ITEM_ANY : wild ? ITEM_SUFFIX : ITEM_LITERAL;
    if (at != NULL && dom[0] == '+')
        return resolve_named(it, LIST_DOMAIN, dom + 1, names, err, errsz);
    if (text[0] == '\0' || !at || at != text)
        return true;
    str_fmt(err, errsz, "empty local part: \"%s\"", text);
    return false;
}

/* item_init - classify one item's text for the list's kind */
static bool item_init(struct list_item *it, enum list_kind kind, const char *text,
                      const struct list_names *names, char *err, size_t errsz)
{
    it->text = xstrdup(text);
    if (list_is_lookup(text))
        return list_lookup_item(it, kind, text, names, err, errsz);
    if (unsupported(text, err, errsz))
        return false;
    switch (kind) {
    case LIST_HOST:
        return init_host_item(it, text, names, err, errsz);
    case LIST_ADDRESS:
        return init_address_item(it, text, names, err, errsz);
    case LIST_DOMAIN:
    case LIST_LOCAL_PART:
        break;
    }
    return init_domain_item(it, kind, text, names, err, errsz);
}

/* add_item - append one parsed item (text as written, '!' handled here) */
static bool add_item(struct list *l, const char *raw, const struct list_names *names,
                     char *err, size_t errsz)
{
    struct list_item it;
    memset(&it, 0, sizeof(it));
    if (raw[0] == '!') {
        it.negate = true;
        for (raw++; isspace((unsigned char)*raw); raw++)
            ;
    }
    bool ok = item_init(&it, l->kind, raw, names, err, errsz);
    l->items = xreallocarray(l->items, l->n + 1, sizeof(*l->items));
    l->items[l->n++] = it; /* kept even on error so list_free releases its text */
    return ok;
}

/* bare_ipv6_item - in a colon-separated host list, an IPv6 address or network written with
 * single colons ("::1", "2001:db8::/32", "!fe80::/10") followed by a blank, a separator or
 * the end is one item.  Exim would need "::::1" there; both work, and no Exim-escaped
 * address is a valid address as written.  1 = item taken, 0 = not such an item. */
static int bare_ipv6_item(const char **sp, char *buf, size_t bufsz)
{
    const char *s = *sp + strspn(*sp, " \t\r\n");
    size_t neg = *s == '!' ? 1 + strspn(s + 1, " \t") : 0;
    const char *tok = s + neg;
    size_t len = strcspn(tok, " \t\r\n");
    char ip[64];
    uint8_t addr[16];
    unsigned prefix;
    if (len == 0 || len >= sizeof(ip) || memchr(tok, ':', len) == NULL || len + 2 > bufsz)
        return 0;
    memcpy(ip, tok, len);
    ip[len] = '\0';
    const char *after = tok + len + strspn(tok + len, " \t\r\n");
    if (!parse_cidr(ip, addr, &prefix) || (*after != '\0' && *after != ':'))
        return 0;
    str_fmt(buf, bufsz, "%s%s", neg ? "!" : "", ip);
    *sp = *after != '\0' ? after + 1 : after;
    return 1;
}

/* take_item - the next item: a bare IPv6 address (host lists) or an Exim item */
static int take_item(const char **sp, char sep, bool v6, char *buf, size_t bufsz)
{
    if (v6 && bare_ipv6_item(sp, buf, bufsz))
        return 1;
    return next_item(sp, sep, buf, bufsz);
}

/* list_parse_names - split text into items and classify each for the kind */
bool list_parse_names(struct list *l, enum list_kind kind, const char *text,
                      const struct list_names *names, char *err, size_t errsz)
{
    char buf[LIST_ITEM_MAX];
    const char *s = text;
    int r;
    memset(l, 0, sizeof(*l));
    l->kind = kind;
    char sep = list_separator(&s);
    bool v6 = kind == LIST_HOST && sep == ':';
    while ((r = take_item(&s, sep, v6, buf, sizeof(buf))) > 0) {
        if (!add_item(l, buf, names, err, errsz)) {
            list_free(l);
            return false;
        }
    }
    if (r < 0) {
        str_fmt(err, errsz, "list item longer than %d bytes", LIST_ITEM_MAX - 1);
        list_free(l);
        return false;
    }
    return true;
}

/* list_parse - list_parse_names with only same-kind named lists */
bool list_parse(struct list *l, enum list_kind kind, const char *text,
                const struct named_list *named, size_t nnamed, char *err, size_t errsz)
{
    struct list_names names;
    memset(&names, 0, sizeof(names));
    if (kind == LIST_DOMAIN) {
        names.domains = named;
        names.ndomains = nnamed;
    } else if (kind == LIST_HOST) {
        names.hosts = named;
        names.nhosts = nnamed;
    } else if (kind == LIST_ADDRESS) {
        names.addresses = named;
        names.naddresses = nnamed;
    }
    return list_parse_names(l, kind, text, &names, err, errsz);
}

/* list_free - release the items (named lists referred to are not owned) */
void list_free(struct list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].text);
        if (l->items[i].lookup_owned)
            lookup_free(l->items[i].lookup);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* Loop detection over all named lists: a memoized depth-first walk (linear in the number of
 * references, however they share sublists). */
struct ref_walk {
    const struct list_names *names;
    int *depth[3]; /* per kind and index: 0 = unvisited, -1 = on the path, n = depth */
};

/* walk_slot - the depth slot of a named list, found by which array holds it */
static int *walk_slot(struct ref_walk *w, const struct named_list *nl)
{
    const struct named_list *base[3] = { w->names->domains, w->names->hosts, w->names->addresses };
    size_t n[3] = { w->names->ndomains, w->names->nhosts, w->names->naddresses };
    for (int k = 0; k < 3; k++) {
        uintptr_t p = (uintptr_t)nl, b = (uintptr_t)base[k];
        if (n[k] > 0 && p >= b && p < b + n[k] * sizeof(*nl))
            return &w->depth[k][(p - b) / sizeof(*nl)];
    }
    return NULL;
}

/* walk_depth - how deep the references below nl go; -1 on a loop or excessive depth */
static int walk_depth(struct ref_walk *w, const struct named_list *nl)
{
    int *slot = walk_slot(w, nl);
    if (slot == NULL || *slot > 0)
        return slot ? *slot : 1;
    if (*slot < 0)
        return -1;
    *slot = -1;
    int d = 1;
    for (size_t i = 0; i < nl->list.n; i++) {
        const struct named_list *r = nl->list.items[i].ref;
        int sub = r ? walk_depth(w, r) : 0;
        if (sub < 0)
            return -1;
        if (sub + 1 > d)
            d = sub + 1;
    }
    if (d > LIST_DEPTH_MAX)
        return -1;
    *slot = d;
    return d;
}

/* list_names_check - find loops and over-deep nesting among named lists */
bool list_names_check(const struct list_names *names, const struct named_list **bad_list)
{
    struct ref_walk w = { .names = names };
    const struct named_list *all[3] = { names->domains, names->hosts, names->addresses };
    size_t n[3] = { names->ndomains, names->nhosts, names->naddresses };
    bool ok = true;
    for (int k = 0; k < 3; k++)
        w.depth[k] = xcalloc(n[k] + 1, sizeof(int));
    for (int k = 0; k < 3 && ok; k++)
        for (size_t i = 0; i < n[k] && ok; i++)
            if (walk_depth(&w, &all[k][i]) < 0) {
                ok = false;
                *bad_list = &all[k][i];
            }
    for (int k = 0; k < 3; k++)
        free(w.depth[k]);
    return ok;
}
