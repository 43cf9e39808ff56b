/* fuzz_dns_rr.c - libFuzzer target for the TLSA and TXT answer parsers (dns_rr.c): arbitrary
 * packets.  Properties: no crash, out-of-bounds read or leak (ASan); counts within the limits;
 * OK with records, or NODATA/NXDOMAIN/TEMPFAIL with none (TLSA may be OK with none: every
 * record too long); TLSA data within DNS_TLSA_DATA_MAX; TXT text terminated at its length,
 * shorter than DNS_TXT_LEN. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dns_tlsa t[DNS_TLSA_MAX];
    struct dns_txt txt[DNS_TXT_MAX];
    size_t n = 99;
    enum dns_status st = dns_parse_tlsa(data, size, t, DNS_TLSA_MAX, &n);
    if (n > DNS_TLSA_MAX || (st != DNS_OK && n != 0))
        abort();
    for (size_t i = 0; i < n; i++) {
        if (t[i].len > DNS_TLSA_DATA_MAX || t[i].data == NULL)
            abort();
        volatile unsigned char last = t[i].len ? t[i].data[t[i].len - 1] : 0;  /* readable */
        (void)last;
    }
    dns_tlsa_free(t, n);
    n = 99;
    st = dns_parse_txt(data, size, txt, DNS_TXT_MAX, &n);
    if (n > DNS_TXT_MAX || (st == DNS_OK) != (n > 0))
        abort();
    for (size_t i = 0; i < n; i++)
        if (txt[i].len >= DNS_TXT_LEN || txt[i].text[txt[i].len] != '\0')
            abort();
    return 0;
}
