/* conf_dnsl.c - the value of a dnslists condition, as in Exim: a colon-separated list of DNS
 * list zones, each optionally restricted to some returned addresses ("zone=127.0.0.2,127.0.0.3",
 * "zone=127.0.0.0/24", "zone&0.0.0.4", "zone!=127.0.0.10"), and the +include_unknown,
 * +exclude_unknown and +defer_unknown items; plus matching returned addresses against them. */
#include "conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define DNSL_ITEM_MAX 1024   /* longest item */
#define DNSL_ZONE_MAX 179    /* 253 minus a reversed IPv6 address (72) and its dot */

/* fail - an error message, false */
static bool fail(char *err, size_t errsz, const char *what, const char *item)
{
    str_fmt(err, errsz, "%s: \"%.80s\"", what, item);
    return false;
}

/* zone_ok - a DNS name: letters, digits, '-' and '_' in non-empty labels of at most 63 */
static bool zone_ok(const char *z, size_t len)
{
    if (len == 0 || len > DNSL_ZONE_MAX || z[0] == '.' || z[len - 1] == '.')
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        if (z[i] == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (isalnum((unsigned char)z[i]) || z[i] == '-' || z[i] == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return true;
}

/* parse_value - "a.b.c.d" or, for '=', "a.b.c.d/len" */
static bool parse_value(const char *s, bool allow_net, struct dnsl_value *v)
{
    char buf[32];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    struct in_addr a;
    if (alen >= sizeof(buf) || (slash && !allow_net))
        return false;
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    if (inet_pton(AF_INET, buf, &a) != 1)
        return false;
    v->addr = ntohl(a.s_addr);
    v->prefix = 32;
    if (slash) {
        size_t n = strspn(slash + 1, "0123456789");
        if (n == 0 || n > 2 || slash[1 + n] != '\0' || atoi(slash + 1) > 32)
            return false;
        v->prefix = (unsigned)atoi(slash + 1);
        uint32_t mask = v->prefix ? 0xffffffffu << (32 - v->prefix) : 0;
        v->addr &= mask;
    }
    return true;
}

/* parse_values - the comma-separated addresses after the operator */
static bool parse_values(struct dnsl_zone *z, const char *s, const char *item, char *err,
                         size_t errsz)
{
    char buf[DNSL_ITEM_MAX];
    str_copy(buf, s, sizeof(buf));
    for (char *save = NULL, *v = strtok_r(buf, ",", &save); v; v = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*v))
            v++;
        size_t vl = strlen(v);
        while (vl > 0 && isspace((unsigned char)v[vl - 1]))
            v[--vl] = '\0';
        if (z->nvals == DNSL_VALUES_MAX)
            return fail(err, errsz, "too many addresses after the zone", item);
        struct dnsl_value val;
        if (!parse_value(v, z->match == DNSL_EQUAL, &val))
            return fail(err, errsz, z->match == DNSL_EQUAL
                        ? "expected IPv4 addresses or nets (127.0.0.2, 127.0.0.0/24)"
                        : "expected IPv4 bit masks (0.0.0.4)", item);
        z->vals = xreallocarray(z->vals, z->nvals + 1, sizeof(*z->vals));
        z->vals[z->nvals++] = val;
    }
    if (z->nvals == 0)
        return fail(err, errsz, "no address after the zone's operator", item);
    return true;
}

/* parse_operator - "=", "==", "&", "=&", each optionally after '!'; returns its length */
static size_t parse_operator(const char *s, struct dnsl_zone *z)
{
    size_t n = 0;
    if (s[n] == '!') {
        z->invert = true;
        n++;
    }
    if (s[n] == '=' && s[n + 1] == '=') {
        z->match = DNSL_EQUAL;
        z->all = true;
        return n + 2;
    }
    if (s[n] == '=' && s[n + 1] == '&') {
        z->match = DNSL_BITS;
        z->all = true;
        return n + 2;
    }
    if (s[n] == '=' || s[n] == '&') {
        z->match = s[n] == '=' ? DNSL_EQUAL : DNSL_BITS;
        return n + 1;
    }
    return 0;
}

/* parse_zone - "zone[op values]" */
static bool parse_zone(struct dnsl_zone *z, const char *item, char *err, size_t errsz)
{
    size_t zl = strcspn(item, "=&!/,");
    if (item[zl] == '/')
        return fail(err, errsz, "explicit keys after '/' are not supported", item);
    if (item[zl] == ',')
        return fail(err, errsz, "merged lists (\"a,b=...\") are not supported", item);
    if (!zone_ok(item, zl))
        return fail(err, errsz, "invalid DNS list zone", item);
    z->zone = xstrndup(item, zl);
    str_lower(z->zone);
    if (item[zl] == '\0')
        return true;
    size_t ol = parse_operator(item + zl, z);
    if (ol == 0)
        return fail(err, errsz, "expected =, ==, &, =& (or !=, ...) after the zone", item);
    return parse_values(z, item + zl + ol, item, err, errsz);
}

/* next_item - the next colon-separated item, blanks trimmed; false at the end */
static bool next_item(const char **sp, char *buf, size_t bufsz, bool *too_long)
{
    const char *s = *sp + strspn(*sp, " \t:");
    if (*s == '\0')
        return false;
    size_t n = strcspn(s, ":");
    *sp = s + n;
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    *too_long = n >= bufsz;
    str_copy(buf, s, n + 1 < bufsz ? n + 1 : bufsz);
    return true;
}

/* unknown_item - "+include_unknown" and friends; false if it is not one */
static bool unknown_item(const char *item, enum dnsl_unknown *u)
{
    static const char *const names[] = { "+exclude_unknown", "+include_unknown", "+defer_unknown" };
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        if (strcmp(item, names[i]) == 0) {
            *u = (enum dnsl_unknown)i;
            return true;
        }
    return false;
}

bool dnsl_parse(struct dnsl_spec *spec, const char *text, char *err, size_t errsz)
{
    char item[DNSL_ITEM_MAX];
    bool too_long;
    enum dnsl_unknown unknown = DNSL_EXCLUDE_UNKNOWN;
    memset(spec, 0, sizeof(*spec));
    while (next_item(&text, item, sizeof(item), &too_long)) {
        if (too_long) {
            dnsl_free(spec);
            return fail(err, errsz, "item too long", item);
        }
        if (item[0] == '+') {
            if (!unknown_item(item, &unknown)) {
                dnsl_free(spec);
                return fail(err, errsz, "unknown option (+include_unknown, +exclude_unknown, "
                            "+defer_unknown)", item);
            }
            continue;
        }
        if (spec->n == DNSL_ZONES_MAX) {
            dnsl_free(spec);
            return fail(err, errsz, "too many zones", item);
        }
        spec->zones = xreallocarray(spec->zones, spec->n + 1, sizeof(*spec->zones));
        struct dnsl_zone *z = &spec->zones[spec->n++];
        memset(z, 0, sizeof(*z));
        z->unknown = unknown;
        if (!parse_zone(z, item, err, errsz)) {
            dnsl_free(spec);
            return false;
        }
    }
    if (spec->n == 0) {
        str_fmt(err, errsz, "no DNS list zone given");
        return false;
    }
    return true;
}

void dnsl_free(struct dnsl_spec *spec)
{
    for (size_t i = 0; i < spec->n; i++) {
        free(spec->zones[i].zone);
        free(spec->zones[i].vals);
    }
    free(spec->zones);
    spec->zones = NULL;
    spec->n = 0;
}

/* value_match - does one returned address match one configured value */
static bool value_match(const struct dnsl_zone *z, const struct dnsl_value *v, uint32_t a)
{
    if (z->match == DNSL_BITS)
        return (a & v->addr) == v->addr;
    uint32_t mask = v->prefix ? 0xffffffffu << (32 - v->prefix) : 0;
    return (a & mask) == v->addr;
}

/* addr_matches - does a returned address match any configured value */
static bool addr_matches(const struct dnsl_zone *z, uint32_t a)
{
    for (size_t i = 0; i < z->nvals; i++)
        if (value_match(z, &z->vals[i], a))
            return true;
    return false;
}

bool dnsl_values_match(const struct dnsl_zone *z, const uint32_t *addrs, size_t n)
{
    if (n == 0)
        return false;
    if (z->match == DNSL_ANY_RECORD)
        return true;
    size_t hits = 0;
    for (size_t i = 0; i < n; i++)
        hits += addr_matches(z, addrs[i]);
    bool m = z->all ? hits == n : hits > 0;
    return m != z->invert;
}
