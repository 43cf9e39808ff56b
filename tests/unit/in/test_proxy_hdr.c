/* test_proxy_hdr.c - the PROXY protocol header parser (HAProxy v1 and v2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "core/core.h"
#include "in/in.h"

#define TEST(name) static void name(void **state)
#define UNUSED (void)state
#define S(lit) (const uint8_t *)lit, sizeof(lit) - 1

static const uint8_t SIG[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

/* v2 - build a v2 header: command byte, family byte, declared length, payload */
static size_t v2(uint8_t *out, uint8_t cmd, uint8_t fam, uint16_t len, const uint8_t *p, size_t plen)
{
    memcpy(out, SIG, 12);
    out[12] = cmd;
    out[13] = fam;
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    if (plen)
        memcpy(out + 16, p, plen);
    return 16 + plen;
}

static const char *ip_of(const struct sockaddr_storage *ss, char *buf, size_t sz)
{
    sockaddr_ip((const struct sockaddr *)ss, buf, sz);
    return buf;
}

static int port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

TEST(v1_tcp4)
{
    struct proxy_hdr h;
    const char *why;
    char ip[64];
    UNUSED;
    assert_int_equal(proxy_parse(S("PROXY TCP4 198.51.100.7 127.0.0.1 40000 25\r\nEHLO"), &h, &why), PROXY_OK);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.len, strlen("PROXY TCP4 198.51.100.7 127.0.0.1 40000 25\r\n"));
    assert_false(h.local);
    assert_string_equal(ip_of(&h.src, ip, sizeof(ip)), "198.51.100.7");
    assert_string_equal(ip_of(&h.dst, ip, sizeof(ip)), "127.0.0.1");
    assert_int_equal(port_of(&h.src), 40000);
    assert_int_equal(port_of(&h.dst), 25);
}

TEST(v1_tcp6_and_unknown)
{
    struct proxy_hdr h;
    const char *why;
    char ip[64];
    UNUSED;
    assert_int_equal(proxy_parse(S("PROXY TCP6 2001:db8::7 ::1 1 65535\r\n"), &h, &why), PROXY_OK);
    assert_string_equal(ip_of(&h.src, ip, sizeof(ip)), "2001:db8::7");
    assert_int_equal(port_of(&h.dst), 65535);
    assert_int_equal(proxy_parse(S("PROXY UNKNOWN\r\n"), &h, &why), PROXY_OK);
    assert_true(h.local);
    assert_int_equal(proxy_parse(S("PROXY UNKNOWN whatever follows 1 2\r\n"), &h, &why), PROXY_OK);
    assert_true(h.local);
}

TEST(v1_incomplete_needs_more)
{
    struct proxy_hdr h;
    const char *why;
    const char *full = "PROXY TCP4 198.51.100.7 127.0.0.1 40000 25\r\n";
    UNUSED;
    for (size_t n = 0; n < strlen(full); n++)
        assert_int_equal(proxy_parse((const uint8_t *)full, n, &h, &why), PROXY_NEED_MORE);
    assert_int_equal(proxy_parse(S("PROX"), &h, &why), PROXY_NEED_MORE);
}

TEST(v1_malformed)
{
    static const char *const bad[] = {
        "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",    /* double space */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",    /* trailing space */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",       /* a field missing */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",   /* one too many */
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",    /* leading zero */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", /* port out of range */
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
        "PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n",
        "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",         /* family mismatch */
        "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",     /* unknown family */
        "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",       /* bare LF */
        "PROXY \r\n",
        "PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n",
        "EHLO client.test\r\n",
        "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
    };
    struct proxy_hdr h;
    const char *why;
    UNUSED;
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        assert_int_equal(proxy_parse((const uint8_t *)bad[i], strlen(bad[i]), &h, &why), PROXY_BAD);
        assert_non_null(why);
    }
    assert_int_equal(proxy_parse((const uint8_t *)"PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n", 33, &h, &why),
                     PROXY_BAD);
}

TEST(v1_oversized)
{
    uint8_t buf[200];
    struct proxy_hdr h;
    const char *why;
    UNUSED;
    memcpy(buf, "PROXY TCP4 ", 11);
    memset(buf + 11, '1', sizeof(buf) - 11);
    assert_int_equal(proxy_parse(buf, PROXY_V1_MAX - 1, &h, &why), PROXY_NEED_MORE);
    assert_int_equal(proxy_parse(buf, PROXY_V1_MAX, &h, &why), PROXY_BAD);
    assert_string_equal(why, "v1 header longer than 107 bytes");
    assert_int_equal(proxy_read_limit(buf, PROXY_V1_MAX), 0);
}

TEST(v2_families)
{
    uint8_t b[200], p4[12] = { 192, 0, 2, 1, 127, 0, 0, 1, 0x9c, 0x40, 0, 25 }, p6[36] = { 0x20, 0x01, 0x0d, 0xb8 };
    struct proxy_hdr h;
    const char *why;
    char ip[64];
    UNUSED;
    p6[31] = 1;
    p6[32] = 0;
    p6[33] = 7;
    size_t n = v2(b, 0x21, 0x11, 12, p4, 12);
    assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_OK);
    assert_string_equal(ip_of(&h.src, ip, sizeof(ip)), "192.0.2.1");
    assert_int_equal(port_of(&h.src), 40000);
    assert_int_equal(h.len, 28);
    n = v2(b, 0x21, 0x21, 36, p6, 36);
    assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_OK);
    assert_string_equal(ip_of(&h.src, ip, sizeof(ip)), "2001:db8::");
    assert_int_equal(port_of(&h.src), 7);
    n = v2(b, 0x20, 0x00, 0, NULL, 0);                  /* LOCAL */
    assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_OK);
    assert_true(h.local);
    n = v2(b, 0x21, 0x00, 0, NULL, 0);                  /* UNSPEC */
    assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_OK);
    assert_true(h.local);
    static const uint8_t unsupported[] = { 0x12, 0x22, 0x31, 0x32, 0x41, 0x13, 0xff };
    for (size_t i = 0; i < sizeof(unsupported); i++) {
        n = v2(b, 0x21, unsupported[i], 12, p4, 12);
        assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_BAD);
    }
}

TEST(v2_truncated_oversized_versions)
{
    uint8_t b[PROXY_V2_MAX + 100], p[PROXY_V2_MAX] = { 0 };
    struct proxy_hdr h;
    const char *why;
    UNUSED;
    size_t n = v2(b, 0x21, 0x11, 12, p, 12);
    for (size_t k = 0; k < n; k++)                      /* every prefix needs more */
        assert_int_equal(proxy_parse(b, k, &h, &why), PROXY_NEED_MORE);
    n = v2(b, 0x21, 0x11, 4, p, 4);
    assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_BAD);
    assert_string_equal(why, "v2 header: IPv4 address block truncated");
    n = v2(b, 0x21, 0x21, 12, p, 12);
    assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_BAD);
    n = v2(b, 0x21, 0x11, PROXY_V2_MAX - 16 + 1, p, 0);
    assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_BAD);
    assert_string_equal(why, "v2 header too long");
    assert_int_equal(proxy_read_limit(b, 16), 0);
    n = v2(b, 0x21, 0x11, PROXY_V2_MAX - 16, p, PROXY_V2_MAX - 16);   /* the longest allowed */
    assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_OK);
    n = v2(b, 0x11, 0x11, 12, p, 12);
    assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_BAD);          /* version 1 in v2 */
    n = v2(b, 0x22, 0x11, 12, p, 12);
    assert_int_equal(proxy_parse(b, n, &h, &why), PROXY_BAD);          /* command 2 */
}

TEST(read_limit_never_passes_the_header)
{
    uint8_t b[64] = { 0 }, p[12] = { 0 };
    UNUSED;
    assert_int_equal(proxy_read_limit(b, 0), 16);
    size_t n = v2(b, 0x21, 0x11, 12, p, 12);
    assert_int_equal(proxy_read_limit(b, 10), 6);
    assert_int_equal(proxy_read_limit(b, 16), 12);
    assert_int_equal(proxy_read_limit(b, n), 0);
    memcpy(b, "PROXY TCP4 ", 11);
    assert_int_equal(proxy_read_limit(b, 11), PROXY_V1_MAX - 11);
}

TEST(looks_like_header)
{
    UNUSED;
    assert_true(proxy_looks_like_header(S("PROXY TCP4 1")));
    assert_true(proxy_looks_like_header(SIG, 12));
    assert_true(proxy_looks_like_header(SIG, 3));
    assert_false(proxy_looks_like_header(S("EHLO x")));
    assert_false(proxy_looks_like_header(S("")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(v1_tcp4),           cmocka_unit_test(v1_tcp6_and_unknown),
        cmocka_unit_test(v1_incomplete_needs_more), cmocka_unit_test(v1_malformed),
        cmocka_unit_test(v1_oversized),      cmocka_unit_test(v2_families),
        cmocka_unit_test(v2_truncated_oversized_versions),
        cmocka_unit_test(read_limit_never_passes_the_header), cmocka_unit_test(looks_like_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
