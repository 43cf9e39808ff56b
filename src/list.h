/* list.h - Exim-style colon-separated lists: domains, hosts, addresses; named lists. */
#ifndef TANDEM_LIST_H
#define TANDEM_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum list_kind { LIST_DOMAIN, LIST_HOST, LIST_ADDRESS, LIST_LOCAL_PART };

enum list_item_type {
    ITEM_ANY,      /* "*" */
    ITEM_LITERAL,  /* exact, case-insensitive (domains, host names, addresses) */
    ITEM_SUFFIX,   /* "*.example.org": any subdomain; for addresses "*@domain" / "user@*" forms */
    ITEM_CIDR,     /* IPv4/IPv6 address or network (host lists only) */
    ITEM_NAMED,    /* "+name": refers to a named list of the same kind */
};

struct named_list;

struct list_item {
    enum list_item_type type;
    bool negate;
    char *text;                   /* the item as written (without '!') */
    uint8_t addr[16];             /* ITEM_CIDR: network, IPv4 as ::ffff:a.b.c.d */
    unsigned prefix;              /* ITEM_CIDR: prefix length in the 128-bit space */
    const struct named_list *ref; /* ITEM_NAMED */
};

struct list {
    enum list_kind kind;
    struct list_item *items;
    size_t n;
};

struct named_list {
    char *name;
    struct list list;
    int line;
};

/* Parse "a : !b : +name" into l.  Named references are resolved against the given named
 * lists (which must be of the same kind).  On error returns false with a message in err. */
bool list_parse(struct list *l, enum list_kind kind, const char *text,
                const struct named_list *named, size_t nnamed, char *err, size_t errsz);
void list_free(struct list *l);

/* The named lists a list may refer to, by kind: an address list's "+name" is a named address
 * list, but its "user@+name" / "*@+name" is a named domain list (as in Exim).  Local part
 * lists have no named lists.  Any pointer may be NULL with its count 0. */
struct list_names {
    const struct named_list *domains, *hosts, *addresses;
    size_t ndomains, nhosts, naddresses;
};
bool list_parse_names(struct list *l, enum list_kind kind, const char *text,
                      const struct list_names *names, char *err, size_t errsz);

/* Check that named lists never refer to themselves, directly or not, and that chains of
 * references are at most 16 deep; on failure *bad_list is one list on the loop. */
bool list_names_check(const struct list_names *names, const struct named_list **bad_list);

/* Matching, Exim semantics: items are tried in order and the first that matches decides
 * (a negated item that matches means "no match"); no item matching means "no match",
 * except that a list whose last item is negated behaves as if followed by "*".
 * Hosts: ip NULL or "" means no remote host (only "" and "*" match); hostname is the
 * verified reverse-DNS name, NULL if unknown (name patterns then do not match).
 * Addresses: "" is the null sender, matched only by an empty item. */
bool list_match_domain(const struct list *l, const char *domain);
bool list_match_host(const struct list *l, const char *ip, const char *hostname);
bool list_match_address(const struct list *l, const char *address);
/* Does a host list have host-name items (which need the client's reverse-DNS name)? */
bool list_has_host_names(const struct list *l);
bool list_match_local_part(const struct list *l, const char *local_part);

#endif
