/* test_conn_limits.c - the shared connection tables: counts per address stay exact through
 * any order of opens and closes, an address leaves the table with its last connection, the
 * table grows and shrinks, and a worker's table never fills up with past clients. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "in/in.h"

#define MAX_CONNS 100
#define PER_HOST 3

/* addr - the text form of client number i (127.0.0.0/8, or IPv6 for odd i when mixed) */
static const char *addr(unsigned i, bool mixed, char *buf, size_t sz)
{
    if (mixed && (i & 1))
        snprintf(buf, sz, "2001:db8::%x:%x", i >> 16, i & 0xffff);
    else
        snprintf(buf, sz, "127.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    return buf;
}

/* test_many_past_clients - 100,000 distinct addresses come and go through one worker: the
 * per-host limit still holds for the next one, and the table is back to its minimum */
static void test_many_past_clients(void **state)
{
    (void)state;
    struct conn_limits *cl = conn_limits_create(4, MAX_CONNS);
    char ip[64];
    unsigned naddr, slots;
    for (unsigned i = 1; i <= 100000; i++) {
        addr(i, true, ip, sizeof(ip));
        assert_null(conn_limits_check(cl, 0, ip, MAX_CONNS, PER_HOST));
        conn_limits_add(cl, 0, ip);
        conn_limits_remove(cl, 0, ip);
    }
    conn_limits_table_size(cl, 0, &naddr, &slots);
    assert_int_equal(naddr, 0);
    assert_int_equal(slots, 64);
    for (unsigned i = 0; i < PER_HOST; i++) {
        assert_null(conn_limits_check(cl, 0, "127.200.0.1", MAX_CONNS, PER_HOST));
        conn_limits_add(cl, i % 2, "127.200.0.1");
    }
    assert_string_equal(conn_limits_check(cl, 2, "127.200.0.1", MAX_CONNS, PER_HOST),
                        "Too many concurrent SMTP connections from this IP address");
}

/* test_random_model - random opens and closes against a plain array of counts */
static void test_random_model(void **state)
{
    (void)state;
    enum { NADDR = 300, STEPS = 200000 };
    unsigned model[NADDR] = { 0 }, open = 0, maxslots = 0;
    struct conn_limits *cl = conn_limits_create(1, 1000);
    char ip[64];
    srandom(7);
    for (unsigned step = 0; step < STEPS; step++) {
        unsigned i = (unsigned)random() % NADDR;
        addr(i * 7919, true, ip, sizeof(ip));
        bool close = model[i] > 0 && (open > 400 || random() % 2);
        if (close) {
            conn_limits_remove(cl, 0, ip);
            model[i]--, open--;
        } else {
            conn_limits_add(cl, 0, ip);
            model[i]++, open++;
        }
        unsigned j = (unsigned)random() % NADDR;
        assert_int_equal(conn_limits_host_count(cl, addr(j * 7919, true, ip, sizeof(ip))), model[j]);
        unsigned naddr, slots;
        conn_limits_table_size(cl, 0, &naddr, &slots);
        if (slots > maxslots)
            maxslots = slots;
    }
    for (unsigned i = 0; i < NADDR; i++)
        assert_int_equal(conn_limits_host_count(cl, addr(i * 7919, true, ip, sizeof(ip))), model[i]);
    for (unsigned i = 0; i < NADDR; i++)
        while (model[i]--)
            conn_limits_remove(cl, 0, addr(i * 7919, true, ip, sizeof(ip)));
    unsigned naddr, slots;
    conn_limits_table_size(cl, 0, &naddr, &slots);
    assert_int_equal(naddr, 0);
    assert_int_equal(slots, 64);
    assert_true(maxslots >= 512 && maxslots <= 1024);   /* grew with up to 300 addresses */
}

/* test_full_table_refuses - a worker whose table is full refuses rather than not counting */
static void test_full_table_refuses(void **state)
{
    (void)state;
    struct conn_limits *cl = conn_limits_create(1, 10);   /* 64 slots: room for 32 */
    char ip[64];
    unsigned i;
    for (i = 0; conn_limits_check(cl, 0, addr(i, false, ip, sizeof(ip)), 0, 1) == NULL; i++)
        conn_limits_add(cl, 0, ip);
    assert_int_equal(i, 32);
    assert_string_equal(conn_limits_check(cl, 0, "127.9.9.9", 0, 1),
                        "Too many concurrent SMTP connections");
    conn_limits_remove(cl, 0, addr(3, false, ip, sizeof(ip)));
    assert_null(conn_limits_check(cl, 0, "127.9.9.9", 0, 1));
    assert_string_equal(conn_limits_check(cl, 0, addr(4, false, ip, sizeof(ip)), 0, 1),
                        "Too many concurrent SMTP connections from this IP address");
}

/* test_reset_worker - a replaced worker's connections no longer count */
static void test_reset_worker(void **state)
{
    (void)state;
    struct conn_limits *cl = conn_limits_create(2, 100);
    char ip[64];
    for (unsigned i = 0; i < 50; i++)
        conn_limits_add(cl, 1, addr(i, false, ip, sizeof(ip)));
    conn_limits_add(cl, 0, "127.0.0.1");
    assert_int_equal(conn_limits_host_count(cl, "127.0.0.1"), 2);
    conn_limits_reset_worker(cl, 1);
    assert_int_equal(conn_limits_host_count(cl, "127.0.0.1"), 1);
    assert_null(conn_limits_check(cl, 0, "127.0.0.2", 2, 1));
    assert_string_equal(conn_limits_check(cl, 0, "127.0.0.2", 1, 1),
                        "Too many concurrent SMTP connections");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_past_clients),
        cmocka_unit_test(test_random_model),
        cmocka_unit_test(test_full_table_refuses),
        cmocka_unit_test(test_reset_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
