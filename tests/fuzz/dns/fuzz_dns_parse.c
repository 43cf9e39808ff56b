/* fuzz_dns_parse.c - libFuzzer target for DNS answer parsing (dns_parse.c): arbitrary packets
 * as MX, A and AAAA answers.  Properties: no crash or out-of-bounds read (ASan); counts within
 * the limits; MX host names lower-case, without a trailing dot, terminated; addresses of the
 * asked family; TXT texts terminated within their bound, their length right; OK exactly when
 * something was found; then the MX ordering is sorted. */
#include <arpa/nameser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_mx(const struct dns_mx *mx, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strnlen(mx[i].host, sizeof(mx[i].host));
        if (len == sizeof(mx[i].host) || (len && mx[i].host[len - 1] == '.') || mx[i].pref > 65535)
            abort();
        for (size_t j = 0; j < len; j++)
            if (mx[i].host[j] >= 'A' && mx[i].host[j] <= 'Z')
                abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dns_mx mx[DNS_MX_MAX];
    struct sockaddr_storage a[DNS_ADDR_MAX];
    size_t n = 99;
    enum dns_status st = dns_parse_mx(data, size, mx, DNS_MX_MAX, &n);
    if (n > DNS_MX_MAX || (st == DNS_OK) != (n > 0))
        abort();
    check_mx(mx, n);
    dns_mx_order(mx, n, NULL);
    for (size_t i = 1; i < n; i++)
        if (mx[i - 1].pref > mx[i].pref)
            abort();
    static const int types[] = { ns_t_a, ns_t_aaaa };
    for (size_t t = 0; t < 2; t++) {
        st = dns_parse_addr(data, size, types[t], a, DNS_ADDR_MAX, &n);
        if (n > DNS_ADDR_MAX || (st == DNS_OK) != (n > 0))
            abort();
        for (size_t i = 0; i < n; i++)
            if (a[i].ss_family != (types[t] == ns_t_a ? AF_INET : AF_INET6))
                abort();
    }
    struct dns_txt txt[DNS_TXT_MAX];
    st = dns_parse_txt(data, size, txt, DNS_TXT_MAX, &n);
    if (n > DNS_TXT_MAX || (st == DNS_OK) != (n > 0))
        abort();
    for (size_t i = 0; i < n; i++)
        if (txt[i].len >= DNS_TXT_LEN || txt[i].text[txt[i].len] != '\0' ||
            strlen(txt[i].text) > txt[i].len)
            abort();
    (void)dns_parse_status(data, size, ns_t_mx);
    return 0;
}
