/* list_lookup.c - list items that are lookups, as Exim writes them: "lsearch;/path",
 * "cdb;/path", and in host lists "net-TYPE;/path" (keyed by the client's address) and
 * "netN-TYPE;/path" (by its network).  Parsing only: lookup.c reads the files. */
#include "lookup_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* lookup_type_len - the length of "TYPE" when text is "TYPE;...", as Exim tells a lookup
 * (letters, digits, '-', '*', '@' before the ';'), else 0 */
static size_t lookup_type_len(const char *text)
{
    size_t n = strspn(text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-*@");
    return n > 0 && text[n] == ';' ? n : 0;
}

/* lookup_net_prefix - host lists: "net-" (by address) or "netN-" (by network); returns the
 * length of the prefix (0 when there is none, -1 when it is malformed) and sets *net */
static int lookup_net_prefix(const char *type, int *net)
{
    if (strncmp(type, "net", 3) != 0 || strchr(type, '-') == NULL)
        return 0;
    const char *p = type + 3, *dash = strchr(type, '-');
    if (p == dash) {
        *net = LOOKUP_BY_IP;
        return 4;
    }
    size_t digits = strspn(p, "0123456789");
    if (p + digits != dash || digits > 3 || atoi(p) > 128)
        return -1;
    *net = atoi(p);
    return (int)(dash + 1 - type);
}

/* lookup_type_of - "lsearch" or "cdb" after any net prefix (host lists only); false if not */
static bool lookup_type_of(const char *text, size_t tlen, enum list_kind kind,
                           enum lookup_type *lt, int *net)
{
    char type[32];
    int pre = 0;
    if (tlen >= sizeof(type))
        return false;
    memcpy(type, text, tlen);
    type[tlen] = '\0';
    *net = LOOKUP_BY_NAME;
    if (kind == LIST_HOST && (pre = lookup_net_prefix(type, net)) < 0)
        return false;
    if (strcmp(type + pre, "lsearch") == 0)
        *lt = LOOKUP_LSEARCH;
    else if (strcmp(type + pre, "cdb") == 0)
        *lt = LOOKUP_CDB;
    else
        return false;
    return true;
}

bool list_is_lookup(const char *text)
{
    return lookup_type_len(text) > 0;
}

/* list_lookup_item - "lsearch;/path" or "cdb;/path" (host lists: "net-", "netN-" first) */
bool list_lookup_item(struct list_item *it, enum list_kind kind, const char *text,
                      const struct list_names *names, char *err, size_t errsz)
{
    size_t tlen = lookup_type_len(text);
    enum lookup_type lt;
    int net;
    if (!lookup_type_of(text, tlen, kind, &lt, &net)) {
        str_fmt(err, errsz, "unknown lookup type \"%.*s\" (tandem has lsearch and cdb%s)",
                (int)tlen, text, kind == LIST_HOST ? "; host lists also net-TYPE and netN-TYPE" : "");
        return false;
    }
    const char *path = text + tlen + 1;
    path += strspn(path, " \t");
    if (path[0] != '/') {
        str_fmt(err, errsz, "lookup file must be an absolute path: \"%s\"", text);
        return false;
    }
    it->type = ITEM_LOOKUP;
    it->lookup_net = net;
    it->lookup_owned = names == NULL || names->lookups == NULL;
    it->lookup = lookup_get(it->lookup_owned ? NULL : names->lookups, lt, path,
                            names ? names->line : 0);
    return true;
}
