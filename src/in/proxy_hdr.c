/* proxy_hdr.c - the PROXY protocol header (HAProxy's, versions 1 and 2), parsed from the bytes
 * a load balancer sends before anything else.  Pure: no I/O, no allocation.
 *
 * v1: "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or "PROXY UNKNOWN ...\r\n", 107 bytes at most.
 * v2: a 12-byte signature, version/command, family/protocol, a 16-bit length, then the
 * addresses and optional TLVs (ignored).  LOCAL (v2) and UNKNOWN (v1) carry no client: the
 * connection's own addresses stand. */
#include "in.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "core/core.h"

static const uint8_t v2_sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };
static const char v1_prefix[] = "PROXY ";

#define V2_FIXED 16
#define V1_FAM_TCP4 "TCP4"
#define V1_FAM_TCP6 "TCP6"

/* bad - record why the header is refused */
static enum proxy_result bad(const char **why, const char *text)
{
    *why = text;
    return PROXY_BAD;
}

/* prefix_of - the have bytes are a prefix of (or start with) pattern */
static bool prefix_of(const uint8_t *buf, size_t have, const void *pattern, size_t plen)
{
    return memcmp(buf, pattern, have < plen ? have : plen) == 0;
}

size_t proxy_read_limit(const uint8_t *buf, size_t have)
{
    if (have >= V2_FIXED && memcmp(buf, v2_sig, sizeof(v2_sig)) == 0) {
        size_t total = V2_FIXED + ((size_t)buf[14] << 8 | buf[15]);
        if (total > PROXY_V2_MAX)
            return 0;
        return total > have ? total - have : 0;
    }
    if (have < V2_FIXED && prefix_of(buf, have, v2_sig, sizeof(v2_sig)))
        return V2_FIXED - have;
    return have < PROXY_V1_MAX ? PROXY_V1_MAX - have : 0;
}

bool proxy_looks_like_header(const uint8_t *buf, size_t have)
{
    if (have == 0)
        return false;
    return prefix_of(buf, have, v2_sig, sizeof(v2_sig)) ||
           prefix_of(buf, have, v1_prefix, sizeof(v1_prefix) - 1);
}

/* v1_port - a decimal port, 0 to 65535, no sign, no leading zero */
static bool v1_port(const char *s, uint16_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || strspn(s, "0123456789") != n || (n > 1 && s[0] == '0'))
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned long)(s[i] - '0');
    if (v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

/* v1_addr - an address of the family the header named, written canonically enough for
 * inet_pton, into a sockaddr with the port */
static bool v1_addr(const char *text, const char *port, bool v6, struct sockaddr_storage *ss)
{
    uint16_t p;
    memset(ss, 0, sizeof(*ss));
    if (!v1_port(port, &p))
        return false;
    if (v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(p);
        return inet_pton(AF_INET6, text, &s6->sin6_addr) == 1;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(p);
    return inet_pton(AF_INET, text, &s4->sin_addr) == 1;
}

/* parse_v1 - the text form; buf holds at least the prefix */
static enum proxy_result parse_v1(const uint8_t *buf, size_t have, struct proxy_hdr *h,
                                  const char **why)
{
    char line[PROXY_V1_MAX + 1];
    const uint8_t *lf = memchr(buf, '\n', have < PROXY_V1_MAX ? have : PROXY_V1_MAX);
    if (lf == NULL)
        return have >= PROXY_V1_MAX ? bad(why, "v1 header longer than 107 bytes") : PROXY_NEED_MORE;
    size_t len = (size_t)(lf - buf) + 1;
    if (len < 2 || lf[-1] != '\r')
        return bad(why, "v1 header not ended by CRLF");
    memcpy(line, buf, len - 2);
    line[len - 2] = '\0';
    if (strlen(line) != len - 2)
        return bad(why, "NUL in v1 header");
    h->len = len;
    h->version = 1;
    char *f[7], *save = NULL;
    size_t n = 0;
    for (char *t = line; n < 7; t = NULL) {
        char *tok = strtok_r(t, " ", &save);
        if (tok == NULL)
            break;
        f[n++] = tok;
    }
    if (n >= 2 && strcmp(f[1], "UNKNOWN") == 0) {
        h->local = true;    /* the balancer could not tell: use the connection's addresses */
        return PROXY_OK;
    }
    /* Exactly single spaces: the tokens must rebuild the line's length. */
    size_t rebuilt = n > 0 ? n - 1 : 0;
    for (size_t i = 0; i < n; i++)
        rebuilt += strlen(f[i]);
    if (n != 6 || rebuilt != len - 2)
        return bad(why, "v1 header malformed");
    bool v6 = strcmp(f[1], V1_FAM_TCP6) == 0;
    if (!v6 && strcmp(f[1], V1_FAM_TCP4) != 0)
        return bad(why, "v1 header: unknown address family");
    if (!v1_addr(f[2], f[4], v6, &h->src) || !v1_addr(f[3], f[5], v6, &h->dst))
        return bad(why, "v1 header: invalid address or port");
    return PROXY_OK;
}

/* v2_set - a sockaddr from raw address and port bytes */
static void v2_set(struct sockaddr_storage *ss, int family, const uint8_t *addr, const uint8_t *port)
{
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, addr, 4);
        memcpy(&s4->sin_port, port, 2);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, addr, 16);
        memcpy(&s6->sin6_port, port, 2);
    }
}

/* parse_v2 - the binary form; buf holds at least the signature's first bytes */
static enum proxy_result parse_v2(const uint8_t *buf, size_t have, struct proxy_hdr *h,
                                  const char **why)
{
    if (have < V2_FIXED)
        return PROXY_NEED_MORE;
    size_t plen = (size_t)buf[14] << 8 | buf[15];
    if (V2_FIXED + plen > PROXY_V2_MAX)
        return bad(why, "v2 header too long");
    if ((buf[12] & 0xF0) != 0x20)
        return bad(why, "v2 header: unknown version");
    unsigned cmd = buf[12] & 0x0F, fam = buf[13];
    if (cmd > 1)
        return bad(why, "v2 header: unknown command");
    if (have < V2_FIXED + plen)
        return PROXY_NEED_MORE;
    h->len = V2_FIXED + plen;
    h->version = 2;
    const uint8_t *a = buf + V2_FIXED;
    if (cmd == 0) {             /* LOCAL: the balancer's own connection (a health check) */
        h->local = true;
        return PROXY_OK;
    }
    switch (fam) {
    case 0x00:                  /* UNSPEC: no address carried */
        h->local = true;
        return PROXY_OK;
    case 0x11:                  /* TCP over IPv4 */
        if (plen < 12)
            return bad(why, "v2 header: IPv4 address block truncated");
        v2_set(&h->src, AF_INET, a, a + 8);
        v2_set(&h->dst, AF_INET, a + 4, a + 10);
        return PROXY_OK;
    case 0x21:                  /* TCP over IPv6 */
        if (plen < 36)
            return bad(why, "v2 header: IPv6 address block truncated");
        v2_set(&h->src, AF_INET6, a, a + 32);
        v2_set(&h->dst, AF_INET6, a + 16, a + 34);
        return PROXY_OK;
    default:                    /* UDP, UNIX sockets, or no family the spec defines */
        return bad(why, "v2 header: unsupported address family or protocol");
    }
}

enum proxy_result proxy_parse(const uint8_t *buf, size_t have, struct proxy_hdr *h,
                              const char **why)
{
    memset(h, 0, sizeof(*h));
    *why = NULL;
    if (have == 0)
        return PROXY_NEED_MORE;
    if (prefix_of(buf, have, v2_sig, sizeof(v2_sig)))
        return have < sizeof(v2_sig) ? PROXY_NEED_MORE : parse_v2(buf, have, h, why);
    if (prefix_of(buf, have, v1_prefix, sizeof(v1_prefix) - 1))
        return have < sizeof(v1_prefix) - 1 ? PROXY_NEED_MORE : parse_v1(buf, have, h, why);
    return bad(why, "not a PROXY protocol header");
}

const char *proxy_result_name(enum proxy_result r)
{
    static const char *names[] = { "need-more", "ok", "bad" };
    return (unsigned)r < ARRAY_LEN(names) ? names[r] : "?";
}
