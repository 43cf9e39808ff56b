/* test_dns_rr.c - TLSA and TXT answers (dns_rr.c): records in answer order, other types
 * skipped, rcodes, overlong TLSA data skipped, short records and broken packets refused,
 * TXT character-strings joined and truncated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"

struct pkt {
    unsigned char b[16384];
    size_t n;
};

static void put8(struct pkt *p, unsigned v) { p->b[p->n++] = (unsigned char)v; }
static void put16(struct pkt *p, unsigned v) { put8(p, v >> 8); put8(p, v & 0xff); }

static void put_name(struct pkt *p, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t n = dot ? (size_t)(dot - name) : strlen(name);
        put8(p, (unsigned)n);
        memcpy(p->b + p->n, name, n);
        p->n += n;
        name += n + (dot != NULL);
    }
    put8(p, 0);
}

/* start - header and question; returns the offset of the question name */
static size_t start(struct pkt *p, unsigned rcode, unsigned ancount, const char *qname, unsigned qtype)
{
    p->n = 0;
    put16(p, 0x1234);
    put16(p, 0x8180 | rcode);
    put16(p, 1);
    put16(p, ancount);
    put16(p, 0);
    put16(p, 0);
    size_t at = p->n;
    put_name(p, qname);
    put16(p, qtype);
    put16(p, 1);
    return at;
}

static void rr_head(struct pkt *p, size_t qat, unsigned type, unsigned rdlen)
{
    put16(p, 0xc000 | (unsigned)qat);
    put16(p, type);
    put16(p, 1);
    put16(p, 0);
    put16(p, 60);
    put16(p, rdlen);
}

static void add_tlsa(struct pkt *p, size_t qat, unsigned u, unsigned s, unsigned m, size_t len,
                     unsigned char fill)
{
    rr_head(p, qat, 52, (unsigned)(3 + len));
    put8(p, u);
    put8(p, s);
    put8(p, m);
    memset(p->b + p->n, fill, len);
    p->n += len;
}

static void test_tlsa(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_tlsa t[DNS_TLSA_MAX];
    size_t n = 99;
    size_t q = start(&p, 0, 4, "_25._tcp.mx.test", 52);
    add_tlsa(&p, q, 3, 1, 1, 32, 0xab);
    rr_head(&p, q, 16, 3);                        /* a TXT in between is skipped */
    put8(&p, 2);
    put8(&p, 'h');
    put8(&p, 'i');
    add_tlsa(&p, q, 2, 0, 2, 64, 0xcd);
    add_tlsa(&p, q, 3, 0, 0, DNS_TLSA_DATA_MAX + 1, 0x01);   /* too long: skipped */
    assert_int_equal(dns_parse_tlsa(p.b, p.n, t, DNS_TLSA_MAX, &n), DNS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(t[0].usage, 3);
    assert_int_equal(t[0].selector, 1);
    assert_int_equal(t[0].mtype, 1);
    assert_int_equal(t[0].len, 32);
    assert_int_equal(t[0].data[31], 0xab);
    assert_int_equal(t[1].usage, 2);
    assert_int_equal(t[1].mtype, 2);
    assert_int_equal(t[1].len, 64);
    dns_tlsa_free(t, n);
    assert_null(t[0].data);

    q = start(&p, 0, 1, "_25._tcp.mx.test", 52);  /* no data at all: kept, empty (found by fuzzing) */
    add_tlsa(&p, q, 3, 1, 1, 0, 0);
    assert_int_equal(dns_parse_tlsa(p.b, p.n, t, DNS_TLSA_MAX, &n), DNS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(t[0].len, 0);
    dns_tlsa_free(t, n);

    q = start(&p, 0, 1, "_25._tcp.mx.test", 52);  /* only an overlong record: OK, none kept */
    add_tlsa(&p, q, 3, 0, 0, DNS_TLSA_DATA_MAX + 1, 0x01);
    assert_int_equal(dns_parse_tlsa(p.b, p.n, t, DNS_TLSA_MAX, &n), DNS_OK);
    assert_int_equal(n, 0);
}

static void test_tlsa_status_and_damage(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_tlsa t[DNS_TLSA_MAX];
    size_t n = 99;
    start(&p, 3, 0, "_25._tcp.mx.test", 52);
    assert_int_equal(dns_parse_tlsa(p.b, p.n, t, DNS_TLSA_MAX, &n), DNS_NXDOMAIN);
    start(&p, 0, 0, "_25._tcp.mx.test", 52);
    assert_int_equal(dns_parse_tlsa(p.b, p.n, t, DNS_TLSA_MAX, &n), DNS_NODATA);
    start(&p, 2, 0, "_25._tcp.mx.test", 52);
    assert_int_equal(dns_parse_tlsa(p.b, p.n, t, DNS_TLSA_MAX, &n), DNS_TEMPFAIL);
    size_t q = start(&p, 0, 2, "_25._tcp.mx.test", 52);
    add_tlsa(&p, q, 3, 1, 1, 32, 0xab);
    rr_head(&p, q, 52, 2);                        /* shorter than its fixed fields */
    put16(&p, 0x0301);
    assert_int_equal(dns_parse_tlsa(p.b, p.n, t, DNS_TLSA_MAX, &n), DNS_TEMPFAIL);
    assert_int_equal(n, 0);
    q = start(&p, 0, 1, "_25._tcp.mx.test", 52);
    add_tlsa(&p, q, 3, 1, 1, 32, 0xab);
    assert_int_equal(dns_parse_tlsa(p.b, p.n - 5, t, DNS_TLSA_MAX, &n), DNS_TEMPFAIL); /* cut */
    assert_int_equal(n, 0);
    assert_int_equal(dns_parse_tlsa(NULL, 0, t, DNS_TLSA_MAX, &n), DNS_TEMPFAIL);
}

/* add_txt - one TXT record of the given character-strings */
static void add_txt(struct pkt *p, size_t qat, const char *const *strs, size_t k)
{
    size_t len = 0;
    for (size_t i = 0; i < k; i++)
        len += 1 + strlen(strs[i]);
    rr_head(p, qat, 16, (unsigned)len);
    for (size_t i = 0; i < k; i++) {
        put8(p, (unsigned)strlen(strs[i]));
        memcpy(p->b + p->n, strs[i], strlen(strs[i]));
        p->n += strlen(strs[i]);
    }
}

static void test_txt(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_txt t[DNS_TXT_MAX];
    size_t n = 99;
    static const char *const one[] = { "v=STSv1; ", "id=20240101;" };
    static const char *const two[] = { "other" };
    size_t q = start(&p, 0, 2, "_mta-sts.x.test", 16);
    add_txt(&p, q, one, 2);
    add_txt(&p, q, two, 1);
    assert_int_equal(dns_parse_txt(p.b, p.n, t, DNS_TXT_MAX, &n), DNS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(t[0].text, "v=STSv1; id=20240101;");
    assert_int_equal(t[0].len, strlen("v=STSv1; id=20240101;"));
    assert_false(t[0].truncated);
    assert_string_equal(t[1].text, "other");

    char big[256];                                /* 5 x 255 bytes: more than DNS_TXT_LEN */
    memset(big, 'a', 255);
    big[255] = '\0';
    const char *const many[] = { big, big, big, big, big };
    q = start(&p, 0, 1, "x.test", 16);
    add_txt(&p, q, many, 5);
    assert_int_equal(dns_parse_txt(p.b, p.n, t, DNS_TXT_MAX, &n), DNS_OK);
    assert_true(t[0].truncated);
    assert_int_equal(t[0].len, DNS_TXT_LEN - 1);
    assert_int_equal(strlen(t[0].text), DNS_TXT_LEN - 1);

    q = start(&p, 0, 1, "x.test", 16);            /* a string longer than its record */
    rr_head(&p, q, 16, 3);
    put8(&p, 9);
    put8(&p, 'a');
    put8(&p, 'b');
    assert_int_equal(dns_parse_txt(p.b, p.n, t, DNS_TXT_MAX, &n), DNS_TEMPFAIL);
    assert_int_equal(n, 0);
    start(&p, 0, 0, "x.test", 16);
    assert_int_equal(dns_parse_txt(p.b, p.n, t, DNS_TXT_MAX, &n), DNS_NODATA);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tlsa),
        cmocka_unit_test(test_tlsa_status_and_damage),
        cmocka_unit_test(test_txt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
