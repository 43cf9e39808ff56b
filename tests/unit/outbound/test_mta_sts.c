/* test_mta_sts.c - the pure parts of MTA-STS (mta_sts_parse.c): the TXT record grammar, the
 * policy file (fields, duplicates, limits, line ends, errors), MX pattern matching, and the
 * cache record round trip through real hints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outbound/tls_policy_int.h"
#include "store/store.h"

static bool txt(const char *s, char id[STS_ID_MAX + 1])
{
    return sts_parse_txt(s, strlen(s), id);
}

static void test_txt_record(void **state)
{
    (void)state;
    char id[STS_ID_MAX + 1];
    assert_true(txt("v=STSv1; id=20160831085700Z;", id));
    assert_string_equal(id, "20160831085700Z");
    assert_true(txt("v=STSv1;id=abc", id));
    assert_string_equal(id, "abc");
    assert_true(txt("v=STSv1; ext=x.y; id=1 ; id=2", id));   /* the first id counts */
    assert_string_equal(id, "1");
    assert_true(txt("v=STSv1\t;\tid=7;  ", id));
    assert_false(txt("v=STSv1;", id));                        /* no id */
    assert_false(txt("v=STSv1; id=", id));
    assert_false(txt("v=STSv1; id=a-b", id));                 /* ALPHA / DIGIT only */
    assert_false(txt("v=STSv1; id=123456789012345678901234567890123", id)); /* 33 */
    assert_true(txt("v=STSv1; id=12345678901234567890123456789012", id));   /* 32 */
    assert_false(txt("v=STSv2; id=1", id));
    assert_false(txt("v=STSv1 id=1", id));
    assert_false(txt("id=1; v=STSv1", id));
    assert_false(txt("v=STSv1; id=1; bad", id));
    assert_false(txt("v=STSv1; id=1; x=a=b", id));
    assert_true(sts_txt_is_sts("v=STSv1junk", 11));
    assert_false(sts_txt_is_sts("v=spf1", 6));
}

static bool pol(const char *s, struct sts_policy *p, char *why)
{
    return sts_parse_policy(s, strlen(s), p, why, 200);
}

static void test_policy(void **state)
{
    (void)state;
    struct sts_policy p;
    char why[200];
    assert_true(pol("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
                    "mx: *.Example.NET\r\nmax_age: 604800\r\n", &p, why));
    assert_int_equal(p.mode, STS_ENFORCE);
    assert_int_equal(p.max_age, 604800);
    assert_int_equal(p.nmx, 2);
    assert_string_equal(p.mx[1], "*.example.net");
    assert_true(pol("version: STSv1\nmode: testing\nmx:mx.test\nmax_age:86400\nextra_field: some value", &p, why));
    assert_int_equal(p.mode, STS_TESTING);
    assert_true(pol("version: STSv1\nmode: none\nmax_age: 9999999999\n\n", &p, why)); /* no mx */
    assert_int_equal(p.mode, STS_NONE);
    assert_int_equal(p.max_age, STS_MAX_AGE_MAX);
    assert_true(pol("version: STSv1\nmode: enforce\nmode: none\nmx: a.test\nmax_age: 5\n", &p, why));
    assert_int_equal(p.mode, STS_ENFORCE);                    /* the first mode counts */
    assert_true(pol("mx: a.test  \nmax_age: 5\t\nmode: testing\nversion: STSv1", &p, why));

    assert_false(pol("version: STSv1\nmode: enforce\nmax_age: 86400\n", &p, why));
    assert_string_equal(why, "no mx patterns");
    assert_false(pol("version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 1\n", &p, why));
    assert_false(pol("version: STSv1\nmode: strict\nmx: a.test\nmax_age: 1\n", &p, why));
    assert_false(pol("version: STSv1\nmode: enforce\nmx: a.test\n", &p, why));
    assert_string_equal(why, "version, mode or max_age is missing");
    assert_false(pol("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 12345678901\n", &p, why));
    assert_false(pol("version: STSv1\nmode: enforce\nmx: a..test\nmax_age: 1\n", &p, why));
    assert_false(pol("version: STSv1\nmode: enforce\nmx: a.*.test\nmax_age: 1\n", &p, why));
    assert_false(pol("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 1\ngarbage\n", &p, why));
    assert_false(pol("version: STSv1\rmode: enforce\nmx: a.test\nmax_age: 1\n", &p, why));
    assert_false(pol("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 1\nx:\n", &p, why));
    assert_false(sts_parse_policy("version: STSv1\0\nmode: none\nmax_age: 1\n", 36, &p, why, sizeof(why)));
    assert_false(pol("", &p, why));
}

static void test_mx_match(void **state)
{
    (void)state;
    struct sts_policy p;
    char why[200], list[200];
    assert_true(pol("version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\n"
                    "max_age: 1\n", &p, why));
    assert_true(sts_mx_match(&p, "mail.example.com"));
    assert_true(sts_mx_match(&p, "MAIL.Example.COM."));
    assert_true(sts_mx_match(&p, "mx1.example.net"));
    assert_false(sts_mx_match(&p, "example.net"));            /* "*." needs one more label */
    assert_false(sts_mx_match(&p, "a.b.example.net"));        /* and only one */
    assert_false(sts_mx_match(&p, "other.example.com"));
    assert_false(sts_mx_match(&p, ".example.net"));
    assert_false(sts_mx_match(&p, ""));
    sts_mx_list(&p, list, sizeof(list));
    assert_string_equal(list, "mail.example.com, *.example.net");
}

static void test_cache_round_trip(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_mta_sts.XXXXXX", err[300];
    assert_non_null(mkdtemp(dir));
    struct hints *h = hints_open(dir, err, sizeof(err));
    assert_non_null(h);
    struct sts_policy p, got;
    char why[200];
    assert_true(pol("version: STSv1\nmode: enforce\nmx: a.test\nmx: *.b.test\nmax_age: 3600\n", &p, why));
    str_copy(p.id, "id42", sizeof(p.id));
    p.fetched = 1000;
    assert_false(sts_cache_get(h, "Example.TEST", &got));
    sts_cache_put(h, "Example.TEST.", &p);
    assert_true(sts_cache_get(h, "example.test", &got));
    assert_string_equal(got.id, "id42");
    assert_int_equal(got.mode, STS_ENFORCE);
    assert_int_equal(got.max_age, 3600);
    assert_int_equal(got.fetched, 1000);
    assert_int_equal(got.nmx, 2);
    assert_string_equal(got.mx[1], "*.b.test");
    assert_true(sts_policy_fresh(&got, 1000 + 3599));
    assert_false(sts_policy_fresh(&got, 1000 + 3600));
    assert_false(sts_policy_fresh(&got, 999));                /* a clock that went back */
    assert_true(hints_put(h, HINTS_MTA_STS, "bad.test", "\x01\x02", 2));   /* malformed */
    assert_false(sts_cache_get(h, "bad.test", &got));
    hints_close(h);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_txt_record),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_mx_match),
        cmocka_unit_test(test_cache_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
