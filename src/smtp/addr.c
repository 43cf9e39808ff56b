/* addr.c - RFC 5321 mailboxes and paths (with RFC 6531 UTF-8): parse, validate, split.
 *
 * Everything a peer writes in an address is data: '%', '!', '$', '{', '|' and backquotes
 * are legal atext and are carried literally, never interpreted. */
#include "smtp.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"

#define LABEL_MAX 63
#define V6_TAG "IPv6:"
#define V6_TAG_LEN 5

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* is_atext - RFC 5322 atext (ASCII): letters, digits and !#$%&'*+-/=?^_`{|}~ */
static bool is_atext(unsigned char c)
{
    return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* utf8_seq - length of the valid UTF-8 sequence at p (avail bytes), 0 if invalid */
static size_t utf8_seq(const unsigned char *p, size_t avail)
{
    size_t n;
    uint32_t cp, min;
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2, cp = p[0] & 0x1fu, min = 0x80;
    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3, cp = p[0] & 0x0fu, min = 0x800;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4, cp = p[0] & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[k] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

bool utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* check_8bit - 8-bit bytes need SMTPUTF8 and must then be valid UTF-8 */
static enum addr_err check_8bit(const char *s, size_t len, bool utf8_ok)
{
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] >= 0x80)
            return utf8_ok && utf8_valid(s, len) ? ADDR_OK : ADDR_ERR_UTF8;
    }
    return ADDR_OK;
}

/* scan_dot_string - length of the dot-string local part before '@', 0 if malformed */
static size_t scan_dot_string(const unsigned char *s, size_t len, bool utf8)
{
    bool need_atom = true; /* at the start or just after a dot */
    size_t i;
    for (i = 0; i < len && s[i] != '@'; i++) {
        if (s[i] == '.') {
            if (need_atom)
                return 0;
            need_atom = true;
        } else if (is_atext(s[i]) || (utf8 && s[i] >= 0x80)) {
            need_atom = false;
        } else {
            return 0;
        }
    }
    return need_atom ? 0 : i;
}

/* scan_quoted - length of the quoted-string at s (quotes included), 0 if malformed */
static size_t scan_quoted(const unsigned char *s, size_t len, bool utf8)
{
    for (size_t i = 1; i < len; i++) {
        unsigned char c = s[i];
        if (c == '"')
            return i + 1;
        if (c == '\\') {
            if (i + 1 >= len || s[i + 1] < 32 || s[i + 1] > 126)
                return 0;
            i++;
        } else if (!((c >= 32 && c <= 126) || (utf8 && c >= 0x80))) {
            return 0;
        }
    }
    return 0;
}

/* check_labels - dot-separated LDH labels (U-labels too when utf8), none over 63 */
static bool check_labels(const unsigned char *s, size_t len, bool utf8)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.') {
            if (!(is_alnum(s[i]) || s[i] == '-' || (utf8 && s[i] >= 0x80)))
                return false;
            continue;
        }
        size_t n = i - start;
        if (n == 0 || n > LABEL_MAX || s[start] == '-' || s[i - 1] == '-')
            return false;
        start = i + 1;
    }
    return true;
}

/* check_literal - "[IPv4]" or "[IPv6:addr]", validated by inet_pton */
static bool check_literal(const char *s, size_t len)
{
    char buf[64];
    unsigned char bin[16];
    int af = AF_INET;
    if (len < 3 || s[0] != '[' || s[len - 1] != ']')
        return false;
    s++, len -= 2;
    if (len > V6_TAG_LEN && strncasecmp(s, V6_TAG, V6_TAG_LEN) == 0) {
        af = AF_INET6;
        s += V6_TAG_LEN, len -= V6_TAG_LEN;
    }
    if (len >= sizeof(buf) || memchr(s, '\0', len) != NULL)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(af, buf, bin) == 1;
}

/* check_domain - a domain name, or an address literal when allowed */
static enum addr_err check_domain(const char *s, size_t len, bool utf8, bool allow_literal)
{
    if (len == 0)
        return ADDR_ERR_SYNTAX;
    if (len > ADDR_DOMAIN_MAX)
        return ADDR_ERR_DOMAIN_LEN;
    if (s[0] == '[')
        return allow_literal && check_literal(s, len) ? ADDR_OK : ADDR_ERR_SYNTAX;
    return check_labels((const unsigned char *)s, len, utf8) ? ADDR_OK : ADDR_ERR_SYNTAX;
}

/* copy_domain - store a validated domain: lower-cased, "IPv6:" tag in canonical case */
static void copy_domain(struct mailbox *mb, const char *s, size_t len)
{
    size_t i = 0;
    mb->domain_is_literal = s[0] == '[';
    if (mb->domain_is_literal && len > V6_TAG_LEN + 1 &&
        strncasecmp(s + 1, V6_TAG, V6_TAG_LEN) == 0) {
        mb->domain[0] = '[';
        memcpy(mb->domain + 1, V6_TAG, V6_TAG_LEN);
        i = V6_TAG_LEN + 1;
    }
    for (; i < len; i++)
        mb->domain[i] = ascii_lower(s[i]);
    mb->domain[len] = '\0';
}

enum addr_err addr_parse_mailbox(const char *s, size_t len, bool utf8_ok, struct mailbox *mb)
{
    const unsigned char *u = (const unsigned char *)s;
    memset(mb, 0, sizeof(*mb));
    if (len > 0 && s[0] == '@')
        return memchr(s, ':', len) ? ADDR_ERR_SOURCE_ROUTE : ADDR_ERR_SYNTAX;
    enum addr_err e = check_8bit(s, len, utf8_ok);
    if (e != ADDR_OK)
        return e;
    size_t llen = len > 0 && s[0] == '"' ? scan_quoted(u, len, utf8_ok)
                                         : scan_dot_string(u, len, utf8_ok);
    if (llen == 0 || llen >= len || s[llen] != '@')
        return ADDR_ERR_SYNTAX;
    if (llen > ADDR_LOCAL_MAX)
        return ADDR_ERR_LOCAL_LEN;
    e = check_domain(s + llen + 1, len - llen - 1, utf8_ok, true);
    if (e != ADDR_OK)
        return e;
    memcpy(mb->local, s, llen);
    mb->local[llen] = '\0';
    copy_domain(mb, s + llen + 1, len - llen - 1);
    return ADDR_OK;
}

/* path_close - offset of the '>' closing the path content at s (quote-aware), -1 if none */
static long path_close(const char *s)
{
    bool quoted = false;
    for (long i = 0; s[i] != '\0'; i++) {
        if (quoted && s[i] == '\\') {
            if (s[i + 1] == '\0')
                return -1;
            i++;
        } else if (s[i] == '"') {
            quoted = !quoted;
        } else if (s[i] == '>' && !quoted) {
            return i;
        }
    }
    return -1;
}

/* skip_route - validate a source route "@a,@b:" at s; return its length, 0 if malformed */
static size_t skip_route(const char *s, size_t len, bool utf8)
{
    size_t i = 0;
    for (;;) {
        if (i >= len || s[i] != '@')
            return 0;
        size_t start = ++i;
        while (i < len && s[i] != ',' && s[i] != ':')
            i++;
        if (i >= len || check_domain(s + start, i - start, utf8, true) != ADDR_OK)
            return 0;
        if (s[i++] == ':')
            return i;
    }
}

enum addr_err addr_parse_path(const char *s, bool empty_ok, bool utf8_ok, char *out, size_t outsz,
                              const char **end)
{
    if (s[0] != '<')
        return ADDR_ERR_SYNTAX;
    long close = path_close(s + 1);
    if (close < 0)
        return ADDR_ERR_SYNTAX;
    const char *c = s + 1;
    size_t clen = (size_t)close, route = 0;
    if (clen == 0) {
        if (!empty_ok || outsz == 0)
            return ADDR_ERR_SYNTAX;
        out[0] = '\0';
        *end = c + 1;
        return ADDR_OK;
    }
    enum addr_err e = check_8bit(c, clen, utf8_ok);
    if (e != ADDR_OK)
        return e;
    if (c[0] == '@' && (route = skip_route(c, clen, utf8_ok)) == 0)
        return ADDR_ERR_SYNTAX;
    struct mailbox mb;
    e = addr_parse_mailbox(c + route, clen - route, utf8_ok, &mb);
    if (e != ADDR_OK)
        return e == ADDR_ERR_SOURCE_ROUTE ? ADDR_ERR_SYNTAX : e; /* a second route */
    if (clen + 2 > ADDR_PATH_MAX || !str_fmt(out, outsz, "%s@%s", mb.local, mb.domain))
        return ADDR_ERR_PATH_LEN;
    *end = c + clen + 1;
    return ADDR_OK;
}

bool addr_split(const char *addr, char *local, size_t lsz, char *domain, size_t dsz)
{
    const char *at = strrchr(addr, '@');
    if (at == NULL)
        return false;
    size_t llen = (size_t)(at - addr), dlen = strlen(at + 1);
    if (llen >= lsz || dlen >= dsz)
        return false;
    memcpy(local, addr, llen);
    local[llen] = '\0';
    for (size_t i = 0; i <= dlen; i++)
        domain[i] = ascii_lower(at[1 + i]);
    return true;
}

bool addr_valid_domain(const char *d, bool allow_literal)
{
    return check_domain(d, strlen(d), false, allow_literal) == ADDR_OK;
}

const char *addr_err_text(enum addr_err e)
{
    switch (e) {
    case ADDR_OK: return "ok";
    case ADDR_ERR_SYNTAX: return "address syntax error";
    case ADDR_ERR_LOCAL_LEN: return "local part too long";
    case ADDR_ERR_DOMAIN_LEN: return "domain too long";
    case ADDR_ERR_PATH_LEN: return "path too long";
    case ADDR_ERR_SOURCE_ROUTE: return "source route not allowed here";
    case ADDR_ERR_UTF8: return "non-ASCII address without SMTPUTF8, or invalid UTF-8";
    }
    return "unknown address error";
}
