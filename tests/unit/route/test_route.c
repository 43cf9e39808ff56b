/* test_route.c - the pure parts of routing and DNS: answer parsing (MX, A, AAAA, rcodes,
 * malformed packets), MX ordering with shuffled equal preferences, loops to self, hop
 * de-duplication, hop keys, ports and TLS policies, status replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/core.h"
#include "dns/dns.h"
#include "route/route.h"

/* ---- a tiny DNS packet builder --------------------------------------------------------- */
struct pkt {
    unsigned char b[1024];
    size_t n;
};

static void put8(struct pkt *p, unsigned v) { p->b[p->n++] = (unsigned char)v; }
static void put16(struct pkt *p, unsigned v) { put8(p, v >> 8); put8(p, v & 0xff); }

/* put_name - labels of "a.b.c" (no compression) */
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

/* start - header (rcode, flags) and the question for qname/qtype; returns offset of qname */
static size_t start(struct pkt *p, unsigned rcode, unsigned ancount, const char *qname, unsigned qtype)
{
    p->n = 0;
    put16(p, 0x1234);
    put16(p, 0x8180 | rcode); /* response, RD, RA */
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

/* rr_head - an answer owned by the question name (a compression pointer), type, TTL 0 */
static void rr_head(struct pkt *p, size_t qname_at, unsigned type, unsigned rdlen)
{
    put16(p, 0xc000 | (unsigned)qname_at);
    put16(p, type);
    put16(p, 1);
    put16(p, 0);
    put16(p, 0);
    put16(p, rdlen);
}

static void add_mx(struct pkt *p, size_t qat, unsigned pref, const char *host)
{
    struct pkt name = { .n = 0 };
    put_name(&name, host);
    rr_head(p, qat, 15, (unsigned)(2 + name.n));
    put16(p, pref);
    memcpy(p->b + p->n, name.b, name.n);
    p->n += name.n;
}

static void add_a(struct pkt *p, size_t qat, const char *ip)
{
    rr_head(p, qat, 1, 4);
    inet_pton(AF_INET, ip, p->b + p->n);
    p->n += 4;
}

static void add_aaaa(struct pkt *p, size_t qat, const char *ip)
{
    rr_head(p, qat, 28, 16);
    inet_pton(AF_INET6, ip, p->b + p->n);
    p->n += 16;
}

/* ---- DNS answers ------------------------------------------------------------------------ */

static void test_parse_mx(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_mx mx[DNS_MX_MAX];
    size_t n;
    size_t q = start(&p, 0, 3, "example.test", 15);
    add_mx(&p, q, 20, "MX2.Example.TEST");
    add_mx(&p, q, 10, "mx1.example.test");
    rr_head(&p, q, 16, 4); /* a TXT in the answer is ignored */
    put8(&p, 3);
    put8(&p, 'a');
    put8(&p, 'b');
    put8(&p, 'c');
    assert_int_equal(dns_parse_mx(p.b, p.n, mx, DNS_MX_MAX, &n), DNS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(mx[0].host, "mx2.example.test");
    assert_int_equal(mx[0].pref, 20);
    assert_string_equal(mx[1].host, "mx1.example.test");
    assert_int_equal(dns_parse_status(p.b, p.n, 15), DNS_OK);
    assert_int_equal(dns_parse_status(p.b, p.n, 1), DNS_NODATA);
    /* the limit is respected */
    assert_int_equal(dns_parse_mx(p.b, p.n, mx, 1, &n), DNS_OK);
    assert_int_equal(n, 1);
}

static void test_parse_null_mx_and_compression(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_mx mx[4];
    size_t n;
    size_t q = start(&p, 0, 2, "nullmx.test", 15);
    add_mx(&p, q, 0, "");
    rr_head(&p, q, 15, 4); /* exchange = pointer to the question name */
    put16(&p, 5);
    put16(&p, 0xc000 | (unsigned)q);
    assert_int_equal(dns_parse_mx(p.b, p.n, mx, 4, &n), DNS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(mx[0].host, "");
    assert_int_equal(mx[0].pref, 0);
    assert_string_equal(mx[1].host, "nullmx.test");
}

static void test_parse_rcodes(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_mx mx[4];
    struct sockaddr_storage a[4];
    size_t n;
    start(&p, 3, 0, "none.test", 15);
    assert_int_equal(dns_parse_mx(p.b, p.n, mx, 4, &n), DNS_NXDOMAIN);
    start(&p, 2, 0, "broken.test", 15);
    assert_int_equal(dns_parse_mx(p.b, p.n, mx, 4, &n), DNS_TEMPFAIL);
    start(&p, 5, 0, "refused.test", 1);
    assert_int_equal(dns_parse_addr(p.b, p.n, 1, a, 4, &n), DNS_TEMPFAIL);
    start(&p, 0, 0, "nodata.test", 15);
    assert_int_equal(dns_parse_mx(p.b, p.n, mx, 4, &n), DNS_NODATA);
    assert_int_equal(n, 0);
    start(&p, 0, 0, "tc.test", 15);
    p.b[2] |= 0x02; /* truncated */
    assert_int_equal(dns_parse_mx(p.b, p.n, mx, 4, &n), DNS_TEMPFAIL);
}

static void test_parse_malformed(void **state)
{
    (void)state;
    struct pkt p;
    struct dns_mx mx[4];
    struct sockaddr_storage a[4];
    size_t n;
    assert_int_equal(dns_parse_mx(NULL, 0, mx, 4, &n), DNS_TEMPFAIL);
    assert_int_equal(dns_parse_mx((const unsigned char *)"abc", 3, mx, 4, &n), DNS_TEMPFAIL);
    size_t q = start(&p, 0, 1, "x.test", 15);
    add_mx(&p, q, 10, "mx.x.test");
    for (size_t cut = 1; cut < p.n; cut++) /* every truncation is a failure, never a read past */
        assert_int_not_equal(dns_parse_mx(p.b, cut, mx, 4, &n), DNS_OK);
    q = start(&p, 0, 1, "x.test", 15);
    rr_head(&p, q, 15, 2); /* MX rdata too short */
    put16(&p, 10);
    assert_int_equal(dns_parse_mx(p.b, p.n, mx, 4, &n), DNS_TEMPFAIL);
    q = start(&p, 0, 1, "x.test", 15);
    rr_head(&p, q, 15, 4); /* compression loop */
    put16(&p, 10);
    put16(&p, 0xc000 | (unsigned)p.n); /* points at itself */
    assert_int_equal(dns_parse_mx(p.b, p.n, mx, 4, &n), DNS_TEMPFAIL);
    q = start(&p, 0, 1, "x.test", 1);
    rr_head(&p, q, 1, 3); /* A with 3 bytes */
    put8(&p, 1);
    put8(&p, 2);
    put8(&p, 3);
    assert_int_equal(dns_parse_addr(p.b, p.n, 1, a, 4, &n), DNS_TEMPFAIL);
}

static void test_parse_addr(void **state)
{
    (void)state;
    struct pkt p;
    struct sockaddr_storage a[4];
    size_t n;
    char ip[64];
    size_t q = start(&p, 0, 3, "h.test", 1);
    add_a(&p, q, "192.0.2.1");
    add_a(&p, q, "192.0.2.2");
    add_aaaa(&p, q, "2001:db8::1");
    assert_int_equal(dns_parse_addr(p.b, p.n, 1, a, 4, &n), DNS_OK);
    assert_int_equal(n, 2);
    inet_ntop(AF_INET, &((struct sockaddr_in *)&a[1])->sin_addr, ip, sizeof(ip));
    assert_string_equal(ip, "192.0.2.2");
    assert_int_equal(((struct sockaddr_in *)&a[1])->sin_port, 0);
    assert_int_equal(dns_parse_addr(p.b, p.n, 28, a, 4, &n), DNS_OK);
    assert_int_equal(n, 1);
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a[0])->sin6_addr, ip, sizeof(ip));
    assert_string_equal(ip, "2001:db8::1");
}

/* ---- MX order ------------------------------------------------------------------------- */

static unsigned zero_rnd(unsigned below)
{
    (void)below;
    return 0;
}

static void test_mx_order_ascending(void **state)
{
    (void)state;
    struct dns_mx mx[5] = { { "c", 30 }, { "a", 10 }, { "d", 40 }, { "b", 20 }, { "e", 5 } };
    dns_mx_order(mx, 5, zero_rnd);
    assert_string_equal(mx[0].host, "e");
    assert_string_equal(mx[1].host, "a");
    assert_string_equal(mx[2].host, "b");
    assert_string_equal(mx[3].host, "c");
    assert_string_equal(mx[4].host, "d");
    dns_mx_order(mx, 0, NULL); /* nothing to do, no crash */
}

static void test_mx_order_shuffles_equal_preferences(void **state)
{
    (void)state;
    bool seen[3][3] = { { false } };
    for (int round = 0; round < 200; round++) {
        struct dns_mx mx[5] = { { "x", 10 }, { "y", 10 }, { "z", 10 }, { "first", 1 }, { "last", 99 } };
        dns_mx_order(mx, 5, NULL);
        assert_string_equal(mx[0].host, "first");
        assert_string_equal(mx[4].host, "last");
        for (int i = 1; i <= 3; i++) {
            assert_int_equal(mx[i].pref, 10);
            seen[i - 1][mx[i].host[0] - 'x'] = true;
        }
    }
    for (int i = 0; i < 3; i++) /* every host was seen in every position */
        for (int j = 0; j < 3; j++)
            assert_true(seen[i][j]);
}

/* ---- next hops ------------------------------------------------------------------------ */

static struct sockaddr_storage ss(const char *ip, uint16_t port)
{
    struct sockaddr_storage a;
    struct next_hop h;
    assert_true(route_parse_ip(ip, &a));
    hop_fill(&h, "", &a, port, 0, false, TLS_NONE);
    return h.addr;
}

static struct conf *conf_with_listeners(const char *const *listen, size_t n)
{
    struct conf *c = xcalloc(1, sizeof(*c));
    c->listen = xcalloc(n ? n : 1, sizeof(*c->listen));
    c->nlisten = n;
    for (size_t i = 0; i < n; i++) {
        char buf[64];
        str_copy(buf, listen[i], sizeof(buf));
        char *colon = strrchr(buf, ':');
        *colon = '\0';
        c->listen[i].ss = ss(buf, (uint16_t)atoi(colon + 1));
    }
    return c;
}

static void conf_done(struct conf *c)
{
    free(c->listen);
    free(c);
}

static void test_self_exact_listener(void **state)
{
    (void)state;
    static const char *const l[] = { "127.0.0.1:2525", "[::1]:2526" };
    struct conf *c = conf_with_listeners(l, 2);
    struct sockaddr_storage a;
    a = ss("127.0.0.1", 0);
    assert_true(route_is_self(c, &a, 2525, NULL, 0));
    assert_false(route_is_self(c, &a, 2526, NULL, 0));
    a = ss("127.0.0.2", 0);
    assert_false(route_is_self(c, &a, 2525, NULL, 0)); /* other loopbacks are ordinary hosts */
    a = ss("::1", 0);
    assert_true(route_is_self(c, &a, 2526, NULL, 0));
    a = ss("::ffff:127.0.0.1", 0);
    assert_true(route_is_self(c, &a, 2525, NULL, 0)); /* v4-mapped is the same address */
    conf_done(c);
}

static void test_self_wildcard_listener(void **state)
{
    (void)state;
    static const char *const l[] = { "0.0.0.0:25", "[::]:587" };
    struct conf *c = conf_with_listeners(l, 2);
    struct sockaddr_storage locals[2] = { ss("192.0.2.10", 0), ss("2001:db8::10", 0) };
    struct sockaddr_storage a;
    a = ss("127.0.0.1", 0);
    assert_true(route_is_self(c, &a, 25, locals, 2));
    a = ss("192.0.2.10", 0);
    assert_true(route_is_self(c, &a, 25, locals, 2));
    assert_false(route_is_self(c, &a, 26, locals, 2));
    a = ss("192.0.2.11", 0);
    assert_false(route_is_self(c, &a, 25, locals, 2));
    a = ss("127.0.0.2", 0);
    assert_false(route_is_self(c, &a, 25, locals, 2));
    a = ss("2001:db8::10", 0);
    assert_true(route_is_self(c, &a, 587, locals, 2));
    a = ss("::1", 0);
    assert_true(route_is_self(c, &a, 587, locals, 2));
    conf_done(c);
}

static void test_filter_hops(void **state)
{
    (void)state;
    static const char *const l[] = { "127.0.0.1:2525" };
    struct conf *c = conf_with_listeners(l, 1);
    struct next_hop hops[5];
    struct sockaddr_storage a;
    a = ss("127.0.0.1", 0);
    hop_fill(&hops[0], "me", &a, 2525, 10, false, TLS_MAY);
    a = ss("192.0.2.1", 0);
    hop_fill(&hops[1], "one", &a, 25, 10, false, TLS_MAY);
    hop_fill(&hops[2], "one-again", &a, 25, 20, false, TLS_MAY); /* same address and port */
    hop_fill(&hops[3], "one-other-port", &a, 26, 20, false, TLS_MAY);
    a = ss("127.0.0.1", 0);
    hop_fill(&hops[4], "me-other-port", &a, 2600, 30, false, TLS_MAY);
    size_t n = 5;
    assert_int_equal(route_filter_hops(c, hops, &n, NULL, 0), 1);
    assert_int_equal(n, 3);
    assert_string_equal(hops[0].name, "one");
    assert_string_equal(hops[1].name, "one-other-port");
    assert_string_equal(hops[2].name, "me-other-port");
    conf_done(c);
}

static void test_hop_fill_and_keys(void **state)
{
    (void)state;
    struct next_hop h;
    char key[80];
    struct sockaddr_storage a = ss("[2001:db8::1]", 0);
    hop_fill(&h, "mx.test", &a, 2525, 5, false, TLS_VERIFY);
    assert_string_equal(h.ip, "2001:db8::1");
    assert_int_equal(h.port, 2525);
    assert_int_equal(h.addrlen, sizeof(struct sockaddr_in6));
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&h.addr)->sin6_port), 2525);
    hop_addr_key(&h, key, sizeof(key));
    assert_string_equal(key, "[2001:db8::1]:2525");
    a = ss("192.0.2.7", 0);
    hop_fill(&h, "192.0.2.7", &a, 25, 0, true, TLS_NONE);
    hop_addr_key(&h, key, sizeof(key));
    assert_string_equal(key, "192.0.2.7:25");
    assert_false(route_parse_ip("mx.test", &a));
    assert_false(route_parse_ip("[192.0.2.300]", &a));
    assert_true(route_parse_ip("[IPv6:::1]", &a));
}

static struct route_result *result_of(const char *const *ips, const uint16_t *ports, size_t n,
                                      enum tls_policy tls)
{
    struct route_result *r = xcalloc(1, sizeof(*r));
    r->hops = xcalloc(n ? n : 1, sizeof(*r->hops));
    r->nhops = n;
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage a = ss(ips[i], 0);
        hop_fill(&r->hops[i], ips[i], &a, ports[i], 0, true, tls);
    }
    return r;
}

static void test_hops_key(void **state)
{
    (void)state;
    static const char *const ab[] = { "192.0.2.1", "192.0.2.2" }, *const ba[] = { "192.0.2.2", "192.0.2.1" };
    static const uint16_t p25[] = { 25, 25 }, p26[] = { 25, 26 };
    char k1[256], k2[256];
    struct route_result *r1 = result_of(ab, p25, 2, TLS_MAY), *r2 = result_of(ab, p25, 2, TLS_MAY);
    route_hops_key(r1, k1, sizeof(k1));
    route_hops_key(r2, k2, sizeof(k2));
    assert_string_equal(k1, k2);
    route_result_free(r2);
    r2 = result_of(ba, p25, 2, TLS_MAY); /* order matters */
    route_hops_key(r2, k2, sizeof(k2));
    assert_string_not_equal(k1, k2);
    route_result_free(r2);
    r2 = result_of(ab, p26, 2, TLS_MAY); /* ports matter */
    route_hops_key(r2, k2, sizeof(k2));
    assert_string_not_equal(k1, k2);
    route_result_free(r2);
    r2 = result_of(ab, p25, 2, TLS_VERIFY); /* policies matter */
    route_hops_key(r2, k2, sizeof(k2));
    assert_string_not_equal(k1, k2);
    /* too long for the buffer: a hash keeps different lists apart */
    char s1[40], s2[40];
    route_hops_key(r1, s1, sizeof(s1));
    route_hops_key(r2, s2, sizeof(s2));
    assert_int_equal(strlen(s1), sizeof(s1) - 1);
    assert_string_not_equal(s1, s2);
    route_hops_key(r1, s2, sizeof(s2));
    assert_string_equal(s1, s2);
    route_result_free(r1);
    route_result_free(r2);
}

static void test_ports_and_policies(void **state)
{
    (void)state;
    struct conf c;
    struct route r;
    memset(&c, 0, sizeof(c));
    memset(&r, 0, sizeof(r));
    assert_int_equal(route_hop_port(&c, NULL, 0), 25);
    c.remote_port = 2525;
    assert_int_equal(route_hop_port(&c, &r, 0), 2525);
    r.port = 2600;
    assert_int_equal(route_hop_port(&c, &r, 0), 2600);
    assert_int_equal(route_hop_port(&c, &r, 2700), 2700);
    assert_int_equal(route_tls_policy(&c, &r), TLS_MAY);
    c.tls_outbound = TLS_ENCRYPT;
    assert_int_equal(route_tls_policy(&c, &r), TLS_ENCRYPT);
    r.tls = TLS_NONE;
    assert_int_equal(route_tls_policy(&c, &r), TLS_NONE);
}

static void test_status_replies(void **state)
{
    (void)state;
    static const struct { enum route_status st; int code; const char *ecode; } t[] = {
        { ROUTE_UNROUTABLE, 550, "5.1.2" }, { ROUTE_NULL_MX, 550, "5.1.10" },
        { ROUTE_NO_DOMAIN, 550, "5.1.2" }, { ROUTE_TEMPFAIL, 451, "4.4.3" },
        { ROUTE_NO_HOSTS, 451, "4.4.4" }, { ROUTE_LOOKUP_DEFER, 451, "4.4.3" },
    };
    for (size_t i = 0; i < ARRAY_LEN(t); i++) {
        int code;
        const char *ecode;
        route_status_reply(t[i].st, &code, &ecode);
        assert_int_equal(code, t[i].code);
        assert_string_equal(ecode, t[i].ecode);
        assert_string_not_equal(route_status_name(t[i].st), "?");
    }
    assert_string_equal(route_status_name((enum route_status)99), "?");
    assert_string_equal(dns_status_name(DNS_NODATA), "nodata");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_mx),
        cmocka_unit_test(test_parse_null_mx_and_compression),
        cmocka_unit_test(test_parse_rcodes),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_mx_order_ascending),
        cmocka_unit_test(test_mx_order_shuffles_equal_preferences),
        cmocka_unit_test(test_self_exact_listener),
        cmocka_unit_test(test_self_wildcard_listener),
        cmocka_unit_test(test_filter_hops),
        cmocka_unit_test(test_hop_fill_and_keys),
        cmocka_unit_test(test_hops_key),
        cmocka_unit_test(test_ports_and_policies),
        cmocka_unit_test(test_status_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
