/* util.c - allocation, bounded strings, growable buffers, size/time parsing. */
#include "core.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* xmalloc - malloc that never returns NULL */
void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        fatal("malloc %zu", n);
    return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (p == NULL)
        fatal("calloc %zu*%zu", nmemb, size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        fatal("realloc %zu", n);
    return q;
}

/* xreallocarray - realloc with multiplication overflow check */
void *xreallocarray(void *p, size_t nmemb, size_t size)
{
    if (size && nmemb > SIZE_MAX / size)
        fatalx("reallocarray overflow %zu*%zu", nmemb, size);
    return xrealloc(p, nmemb * size);
}

char *xstrdup(const char *s)
{
    return xmemdup(s, strlen(s) + 1);
}

char *xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void *xmemdup(const void *p, size_t n)
{
    void *q = xmalloc(n);
    if (n)
        memcpy(q, p, n);
    return q;
}

size_t str_copy(char *dst, const char *src, size_t size)
{
    size_t len = strlen(src);
    if (size) {
        size_t n = len < size - 1 ? len : size - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}

bool str_vfmt(char *dst, size_t size, const char *fmt, va_list ap)
{
    int n = vsnprintf(dst, size, fmt, ap);
    return n >= 0 && (size_t)n < size;
}

bool str_fmt(char *dst, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool ok = str_vfmt(dst, size, fmt, ap);
    va_end(ap);
    return ok;
}

bool str_ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

bool str_iprefix(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

void str_lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* str_sanitize - escape control characters, 8-bit bytes, backslash and quote as \xNN */
size_t str_sanitize(char *out, size_t outsz, const char *in, size_t inlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i;
    if (outsz == 0)
        return 0;
    for (i = 0; i < inlen; i++) {
        unsigned char c = (unsigned char)in[i];
        bool plain = c >= 0x20 && c < 0x7f && c != '\\' && c != '"';
        size_t need = plain ? 1 : 4;
        if (o + need >= outsz)
            break;
        if (plain) {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return i;
}

/* utf8_seq_len - length of the valid UTF-8 sequence at p (0 if none): no overlongs,
 * surrogates or code points above U+10FFFF */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
    size_t len;
    unsigned cp;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2, cp = p[0] & 0x1f;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3, cp = p[0] & 0x0f;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4, cp = p[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/* utf8_unsafe - a code point that must not reach a log line as it is: the C1 controls
 * (U+0080-U+009F, NEL among them), the line and paragraph separators (U+2028, U+2029), which
 * tools splitting on Unicode line breaks take for the end of a line, and the bidirectional
 * overrides and isolates (U+202A-U+202E, U+2066-U+2069), which make a line read otherwise */
static bool utf8_unsafe(const unsigned char *p, size_t len)
{
    unsigned cp = len == 2 ? (unsigned)(p[0] & 0x1f) << 6 | (p[1] & 0x3f)
                : len == 3 ? (unsigned)(p[0] & 0x0f) << 12 | (unsigned)(p[1] & 0x3f) << 6 | (p[2] & 0x3f)
                           : 0x10000;
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

size_t str_sanitize_utf8(char *out, size_t outsz, const char *in, size_t inlen)
{
    size_t o = 0, i = 0;
    if (outsz == 0)
        return 0;
    while (i < inlen) {
        const unsigned char *p = (const unsigned char *)in + i;
        size_t seq = p[0] >= 0x80 ? utf8_seq_len(p, inlen - i) : 0;
        if (seq == 0 || utf8_unsafe(p, seq)) {
            char esc[20];                         /* each byte as \xNN */
            size_t n = seq ? seq : 1;
            str_sanitize(esc, sizeof(esc), in + i, n);
            size_t elen = strlen(esc);
            if (o + elen >= outsz)
                break;
            memcpy(out + o, esc, elen);
            o += elen;
            i += n;
            continue;
        }
        if (o + seq >= outsz)
            break;
        memcpy(out + o, in + i, seq);
        o += seq;
        i += seq;
    }
    out[o] = '\0';
    return i;
}

void sbuf_init(struct sbuf *b)
{
    b->s = NULL;
    b->len = b->cap = 0;
}

void sbuf_free(struct sbuf *b)
{
    free(b->s);
    sbuf_init(b);
}

void sbuf_reset(struct sbuf *b)
{
    b->len = 0;
    if (b->s)
        b->s[0] = '\0';
}

/* sbuf_grow - make room for n more bytes plus the terminating NUL */
static void sbuf_grow(struct sbuf *b, size_t n)
{
    if (n > SIZE_MAX / 2 - b->len)
        fatalx("sbuf overflow");
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->s = xrealloc(b->s, cap);
    b->cap = cap;
}

void sbuf_add(struct sbuf *b, const void *p, size_t n)
{
    sbuf_grow(b, n);
    if (n)
        memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void sbuf_addstr(struct sbuf *b, const char *s)
{
    sbuf_add(b, s, strlen(s));
}

void sbuf_addch(struct sbuf *b, char c)
{
    sbuf_add(b, &c, 1);
}

void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        fatalx("sbuf_printf: bad format");
    sbuf_grow(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *sbuf_steal(struct sbuf *b)
{
    char *s = b->s ? b->s : xstrdup("");
    sbuf_init(b);
    return s;
}

/* parse_size - "50M" style sizes with 1024-based suffixes */
bool parse_size(const char *s, uint64_t *out)
{
    uint64_t v = 0, mult = 1;
    if (!isdigit((unsigned char)*s))
        return false;
    for (; isdigit((unsigned char)*s); s++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    switch (*s) {
    case '\0': break;
    case 'k': case 'K': mult = 1024ULL; s++; break;
    case 'm': case 'M': mult = 1024ULL * 1024; s++; break;
    case 'g': case 'G': mult = 1024ULL * 1024 * 1024; s++; break;
    default: return false;
    }
    if (*s != '\0' || (v && v > UINT64_MAX / mult))
        return false;
    *out = v * mult;
    return true;
}

/* parse_time - "1h30m" style durations; a bare number means seconds */
bool parse_time(const char *s, unsigned *out_seconds)
{
    uint64_t total = 0;
    if (*s == '\0')
        return false;
    while (*s) {
        uint64_t v = 0, unit;
        if (!isdigit((unsigned char)*s))
            return false;
        for (; isdigit((unsigned char)*s); s++) {
            v = v * 10 + (uint64_t)(*s - '0');
            if (v > UINT32_MAX)
                return false;
        }
        switch (*s) {
        case '\0': unit = 1; break;
        case 's': unit = 1; s++; break;
        case 'm': unit = 60; s++; break;
        case 'h': unit = 3600; s++; break;
        case 'd': unit = 86400; s++; break;
        case 'w': unit = 604800; s++; break;
        default: return false;
        }
        total += v * unit;
        if (total > UINT32_MAX)
            return false;
    }
    *out_seconds = (unsigned)total;
    return true;
}

void fmt_age(char *buf, size_t sz, long s)
{
    if (s < 0)
        s = 0;
    if (s < 60)
        str_fmt(buf, sz, "%lds", s);
    else if (s < 3600)
        str_fmt(buf, sz, "%ldm", s / 60);
    else if (s < 86400 * 2)
        str_fmt(buf, sz, "%ldh", s / 3600);
    else
        str_fmt(buf, sz, "%ldd", s / 86400);
}

void fmt_size(char *buf, size_t sz, uint64_t n)
{
    if (n < 1024)
        str_fmt(buf, sz, "%llu", (unsigned long long)n);
    else if (n < 1024 * 1024)
        str_fmt(buf, sz, "%.1fK", (double)n / 1024);
    else
        str_fmt(buf, sz, "%.1fM", (double)n / (1024 * 1024));
}

uint64_t now_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int fd_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int fd_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    return fl < 0 ? -1 : fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

void sockaddr_ip(const struct sockaddr *sa, char *ip, size_t sz)
{
    str_copy(ip, "?", sz);
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, (socklen_t)sz);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, &a->s6_addr[12], ip, (socklen_t)sz);
        else
            inet_ntop(AF_INET6, a, ip, (socklen_t)sz);
    }
}

uint64_t now_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* child_exit - _exit(), or exit() in the leak-checking sanitizer build (see core.h) */
void child_exit(int status)
{
#ifdef TANDEM_LEAK_CHECK
    exit(status);
#else
    _exit(status);
#endif
}
