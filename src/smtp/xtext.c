/* xtext.c - RFC 3461 section 4 xtext: the encoding of DSN ENVID and ORCPT values.
 * xchar is any of 33..126 but '+' and '='; anything else is "+XX" with upper-case hex. */
#include "smtp.h"

#include <string.h>

static const char hexdig[] = "0123456789ABCDEF";

static bool is_xchar(unsigned char c)
{
    return c >= 33 && c <= 126 && c != '+' && c != '=';
}

/* hexval - value of an upper-case hex digit, -1 otherwise (lower case is not xtext) */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* xtext_step - decode one xtext unit at s[i]: the byte in *c, the unit's length, 0 if bad */
static size_t xtext_step(const char *s, size_t len, size_t i, unsigned char *c)
{
    if (s[i] != '+') {
        *c = (unsigned char)s[i];
        return is_xchar(*c) ? 1 : 0;
    }
    if (len - i < 3)
        return 0;
    int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
    if (hi < 0 || lo < 0)
        return 0;
    *c = (unsigned char)(hi << 4 | lo);
    return 3;
}

bool xtext_valid(const char *s, size_t len)
{
    unsigned char c;
    for (size_t i = 0, n; i < len; i += n) {
        if ((n = xtext_step(s, len, i, &c)) == 0)
            return false;
    }
    return true;
}

bool xtext_decode(const char *s, size_t len, char *out, size_t outsz)
{
    size_t o = 0;
    unsigned char c;
    if (outsz == 0)
        return false;
    for (size_t i = 0, n; i < len; i += n) {
        if ((n = xtext_step(s, len, i, &c)) == 0 || c == '\0' || o + 1 >= outsz)
            return false;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return true;
}

bool xtext_encode(const char *s, size_t len, char *out, size_t outsz)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t need = is_xchar(c) ? 1 : 3;
        if (o + need >= outsz)
            return false;
        if (need == 1) {
            out[o++] = (char)c;
        } else {
            out[o++] = '+';
            out[o++] = hexdig[c >> 4];
            out[o++] = hexdig[c & 15];
        }
    }
    if (outsz == 0)
        return false;
    out[o] = '\0';
    return true;
}
