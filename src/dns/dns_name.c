/* dns_name.c - DNS names built from addresses: the reversed form used under in-addr.arpa and
 * ip6.arpa, and by DNS lists. */
#include "dns.h"

#include <arpa/inet.h>
#include <string.h>

#include "core/core.h"

bool dns_reversed_ip(const char *ip, char *out, size_t sz)
{
    unsigned char a[16];
    static const char hex[] = "0123456789abcdef";
    if (inet_pton(AF_INET, ip, a) == 1)
        return str_fmt(out, sz, "%u.%u.%u.%u", a[3], a[2], a[1], a[0]);
    if (inet_pton(AF_INET6, ip, a) != 1 || sz < 64)
        return false;
    size_t o = 0;
    for (int i = 15; i >= 0; i--) {
        out[o++] = hex[a[i] & 15];
        out[o++] = '.';
        out[o++] = hex[a[i] >> 4];
        out[o++] = i > 0 ? '.' : '\0';
    }
    return true;
}
