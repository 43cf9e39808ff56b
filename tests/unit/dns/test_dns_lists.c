/* test_dns_lists.c - the pure DNS pieces DNS lists use: TXT answers (strings joined, truncated,
 * malformed ones refused) and addresses reversed for lookups (IPv4 octets, IPv6 nibbles). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/nameser.h>
#include <string.h>

#include "core/core.h"
#include "dns/dns.h"

/* A reply to "x.test" with the given answers, each (type, rdata). */
struct pkt {
    unsigned char b[4096];
    size_t len;
};

static void put16(struct pkt *p, unsigned v)
{
    p->b[p->len++] = (unsigned char)(v >> 8);
    p->b[p->len++] = (unsigned char)v;
}

static void put(struct pkt *p, const void *d, size_t n)
{
    memcpy(p->b + p->len, d, n);
    p->len += n;
}

static void begin(struct pkt *p, unsigned rcode, unsigned nans)
{
    static const unsigned char qname[] = "\1x\4test";
    p->len = 0;
    put16(p, 0x1234);
    put16(p, 0x8180 | rcode);
    put16(p, 1);
    put16(p, nans);
    put16(p, 0);
    put16(p, 0);
    put(p, qname, sizeof(qname));          /* includes the root's 0 */
    put16(p, ns_t_txt);
    put16(p, ns_c_in);
}

static void answer(struct pkt *p, unsigned type, const void *rd, size_t rdlen)
{
    put16(p, 0xc00c);
    put16(p, type);
    put16(p, ns_c_in);
    put16(p, 0);
    put16(p, 60);
    put16(p, (unsigned)rdlen);
    put(p, rd, rdlen);
}

static void test_txt(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_txt t[DNS_TXT_MAX];
    size_t n = 99;
    begin(&p, 0, 3);
    answer(&p, ns_t_a, "\177\0\0\2", 4);
    answer(&p, ns_t_txt, "\5Hello\6 world", 13);
    answer(&p, ns_t_txt, "\3two", 4);
    assert_int_equal(dns_parse_txt(p.b, p.len, t, DNS_TXT_MAX, &n), DNS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(t[0].text, "Hello world");
    assert_int_equal(t[0].len, 11);
    assert_string_equal(t[1].text, "two");
    /* max respected */
    assert_int_equal(dns_parse_txt(p.b, p.len, t, 1, &n), DNS_OK);
    assert_int_equal(n, 1);
    /* no TXT: NODATA; NXDOMAIN; SERVFAIL */
    begin(&p, 0, 1);
    answer(&p, ns_t_a, "\177\0\0\2", 4);
    assert_int_equal(dns_parse_txt(p.b, p.len, t, DNS_TXT_MAX, &n), DNS_NODATA);
    begin(&p, 3, 0);
    assert_int_equal(dns_parse_txt(p.b, p.len, t, DNS_TXT_MAX, &n), DNS_NXDOMAIN);
    begin(&p, 2, 0);
    assert_int_equal(dns_parse_txt(p.b, p.len, t, DNS_TXT_MAX, &n), DNS_TEMPFAIL);
    /* a string longer than its rdata: malformed, nothing kept */
    begin(&p, 0, 2);
    answer(&p, ns_t_txt, "\3one", 4);
    answer(&p, ns_t_txt, "\11short", 6);
    assert_int_equal(dns_parse_txt(p.b, p.len, t, DNS_TXT_MAX, &n), DNS_TEMPFAIL);
    assert_int_equal(n, 0);
    /* an empty rdata is malformed too; a truncated packet is TEMPFAIL */
    begin(&p, 0, 1);
    answer(&p, ns_t_txt, "", 0);
    assert_int_equal(dns_parse_txt(p.b, p.len, t, DNS_TXT_MAX, &n), DNS_TEMPFAIL);
    assert_int_equal(dns_parse_txt(p.b, 5, t, DNS_TXT_MAX, &n), DNS_TEMPFAIL);
    /* longer than DNS_TXT_LEN: kept truncated */
    unsigned char big[6 * 256];
    size_t bl = 0;
    for (int s = 0; s < 6; s++) {
        big[bl++] = 255;
        memset(big + bl, 'a' + s, 255);
        bl += 255;
    }
    begin(&p, 0, 1);
    answer(&p, ns_t_txt, big, bl);
    assert_int_equal(dns_parse_txt(p.b, p.len, t, DNS_TXT_MAX, &n), DNS_OK);
    assert_true(t[0].truncated);
    assert_int_equal(t[0].len, DNS_TXT_LEN - 1);
    assert_int_equal(strlen(t[0].text), DNS_TXT_LEN - 1);
}

static void test_reversed_ip(void **state)
{
    (void)state;
    char out[80];
    assert_true(dns_reversed_ip("192.0.2.17", out, sizeof(out)));
    assert_string_equal(out, "17.2.0.192");
    assert_true(dns_reversed_ip("2001:db8::1", out, sizeof(out)));
    assert_string_equal(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
    assert_int_equal(strlen(out), 63);
    assert_false(dns_reversed_ip("not an ip", out, sizeof(out)));
    assert_false(dns_reversed_ip("", out, sizeof(out)));
    assert_false(dns_reversed_ip("::1", out, 40));          /* too small */
    assert_false(dns_reversed_ip("1.2.3.4", out, 7));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_txt),
        cmocka_unit_test(test_reversed_ip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
