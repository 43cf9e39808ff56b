/* test_list.c - Exim-style list parsing and matching: domains, hosts, addresses, local parts,
 * negation, named lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/core.h"

static char err[512];

/* parse - a list that must parse */
static struct list parse(enum list_kind kind, const char *text)
{
    struct list l;
    err[0] = '\0';
    if (!list_parse(&l, kind, text, NULL, 0, err, sizeof(err)))
        fail_msg("list \"%s\" did not parse: %s", text, err);
    return l;
}

/* parse_err - a list that must not parse; returns the error */
static const char *parse_err(enum list_kind kind, const char *text)
{
    struct list l;
    err[0] = '\0';
    if (list_parse(&l, kind, text, NULL, 0, err, sizeof(err))) {
        list_free(&l);
        fail_msg("list \"%s\" parsed but should not", text);
    }
    assert_int_equal(l.n, 0);
    return err;
}

static bool dom(const char *text, const char *domain)
{
    struct list l = parse(LIST_DOMAIN, text);
    bool m = (list_check_domain(&l, domain, NULL) == LIST_MATCH);
    list_free(&l);
    return m;
}

static bool host(const char *text, const char *ip, const char *name)
{
    struct list l = parse(LIST_HOST, text);
    bool m = (list_check_host(&l, ip, name, NULL) == LIST_MATCH);
    list_free(&l);
    return m;
}

static bool addr(const char *text, const char *address)
{
    struct list l = parse(LIST_ADDRESS, text);
    bool m = (list_check_address(&l, address, NULL) == LIST_MATCH);
    list_free(&l);
    return m;
}

static void test_split_items(void **state)
{
    (void)state;
    struct list l = parse(LIST_DOMAIN, "");
    assert_int_equal(l.n, 0);
    list_free(&l);
    l = parse(LIST_DOMAIN, "   ");
    assert_int_equal(l.n, 0);
    list_free(&l);
    l = parse(LIST_DOMAIN, ":"); /* one empty item; the trailing one is dropped */
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].text, "");
    list_free(&l);
    l = parse(LIST_DOMAIN, "a.example :");
    assert_int_equal(l.n, 1);
    list_free(&l);
    l = parse(LIST_DOMAIN, " a.example : : b.example ");
    assert_int_equal(l.n, 3);
    assert_string_equal(l.items[0].text, "a.example");
    assert_string_equal(l.items[1].text, "");
    assert_string_equal(l.items[2].text, "b.example");
    list_free(&l);
    l = parse(LIST_DOMAIN, "a::b"); /* doubled separator is a literal one */
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].text, "a:b");
    list_free(&l);
    l = parse(LIST_DOMAIN, "<; a.example ; b.example:c");
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[1].text, "b.example:c");
    list_free(&l);
    l = parse(LIST_DOMAIN, "!  a.example : ! b.example");
    assert_true(l.items[0].negate);
    assert_string_equal(l.items[0].text, "a.example");
    list_free(&l);
}

static void test_item_types(void **state)
{
    (void)state;
    struct list l = parse(LIST_HOST, "* : 10.0.0.0/8 : *.example.org : mx.example.org");
    assert_int_equal(l.items[0].type, ITEM_ANY);
    assert_int_equal(l.items[1].type, ITEM_CIDR);
    assert_int_equal(l.items[1].prefix, 96 + 8);
    assert_int_equal(l.items[2].type, ITEM_SUFFIX);
    assert_int_equal(l.items[3].type, ITEM_LITERAL);
    list_free(&l);
    l = parse(LIST_ADDRESS, "a@b.example : *@b.example : a@* : b.example : *");
    assert_int_equal(l.items[0].type, ITEM_LITERAL);
    assert_int_equal(l.items[1].type, ITEM_SUFFIX);
    assert_int_equal(l.items[2].type, ITEM_SUFFIX);
    assert_int_equal(l.items[3].type, ITEM_LITERAL);
    assert_int_equal(l.items[4].type, ITEM_ANY);
    list_free(&l);
}

/* match_case - a domain or address list, a subject and whether the list matches it */
struct match_case {
    const char *list, *subject;
    bool match;
};

/* host_case - a host list, a client's IP address and verified name (NULL: none), and whether
 * the list matches the client */
struct host_case {
    const char *list, *ip, *name;
    bool match;
};

/* run_matches - match (dom or addr) gives every row's answer; a failure names "name[i]" */
static void run_matches(bool (*match)(const char *, const char *), const struct match_case *t,
                        size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (match(t[i].list, t[i].subject) != t[i].match)
            fail_msg("%s[%zu]: \"%s\" %s \"%s\"", name, i, t[i].list,
                     t[i].match ? "does not match" : "matches", t[i].subject);
}
#define RUN_MATCHES(match, table) run_matches((match), (table), ARRAY_LEN(table), #table)

/* run_hosts - host() gives every row's answer; a failure names "name[i]" */
static void run_hosts(const struct host_case *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (host(t[i].list, t[i].ip, t[i].name) != t[i].match)
            fail_msg("%s[%zu]: \"%s\" %s %s (%s)", name, i, t[i].list,
                     t[i].match ? "does not match" : "matches", t[i].ip ? t[i].ip : "no host",
                     t[i].name ? t[i].name : "no name");
}
#define RUN_HOSTS(table) run_hosts((table), ARRAY_LEN(table), #table)

static const struct match_case domain_cases[] = {
    { "example.org", "EXAMPLE.org", true },
    { "example.org", "www.example.org", false },
    { "*.example.org", "www.Example.ORG", true },
    { "*.example.org", "example.org", false },
    { "*key.ex", "donkey.ex", true }, /* Exim: any suffix, not only whole labels */
    { "*", "anything.example", true },
    { "", "example.org", false },
    { "a.example : b.example", "c.example", false },
    { "a.example : b.example", "b.example", true },
};

static void test_domains(void **state)
{
    (void)state;
    RUN_MATCHES(dom, domain_cases);
}

static const struct match_case negation_cases[] = {
    /* Exim's examples: first match decides; a list ending in a negative item ends in "*" */
    { "!a.b.c : *.b.c", "a.b.c", false },
    { "!a.b.c : *.b.c", "x.b.c", true },
    { "!a.b.c : *.b.c", "x.y", false },
    { "!a.b.c", "x.y", true },
    { "!a.b.c", "a.b.c", false },
    { "!*", "x.y", false },
    { "a.example : !b.example", "c.example", true },
    { "a.example : !b.example", "a.example", true },
};

static void test_negation(void **state)
{
    (void)state;
    RUN_MATCHES(dom, negation_cases);
}

static const struct host_case ipv4_cases[] = {
    { "192.0.2.7", "192.0.2.7", NULL, true },
    { "192.0.2.7", "192.0.2.8", NULL, false },
    { "10.11.42.0/24", "10.11.42.255", NULL, true },
    { "10.11.42.0/24", "10.11.43.0", NULL, false },
    { "192.168.23.236/31", "192.168.23.237", NULL, true },
    { "192.168.23.236/31", "192.168.23.238", NULL, false },
    { "10.1.2.3/8", "10.200.0.1", NULL, true }, /* host bits are ignored */
    { "0.0.0.0/0", "203.0.113.9", NULL, true },
    { "0.0.0.0/0", "2001:db8::1", NULL, false },
    { "10.0.0.0/8", "::ffff:10.1.2.3", NULL, true }, /* v4-mapped client */
    { "10.0.0.0/8", "not-an-ip", NULL, false },
};

static void test_hosts_ipv4(void **state)
{
    (void)state;
    RUN_HOSTS(ipv4_cases);
}

static const struct host_case ipv6_cases[] = {
    { "127.0.0.1 : ::1", "::1", NULL, true }, /* as written */
    { "127.0.0.1 : ::::1", "::1", NULL, true }, /* Exim's doubled colons */
    { "<; 127.0.0.1 ; ::1", "::1", NULL, true }, /* Exim's separator change */
    { "::1/128", "::1", NULL, true },
    { "3ffe::ffff::836f::::/48", "3ffe:ffff:836f:1::9", NULL, true },
    { "2001:db8::/32 : 10.0.0.1", "2001:DB8:ffff::1", NULL, true },
    { "2001:db8::/32 : 10.0.0.1", "10.0.0.1", NULL, true },
    { "2001:db8::/32", "2001:db9::1", NULL, false },
    { "fe80::/10", "fe80::1%eth0", NULL, true },
    { "!::1", "::1", NULL, false },
    { "!::1", "::2", NULL, true },
    /* Exim: an IPv6 item never matches an IPv4 client, nor an IPv4 item an IPv6 one */
    { "::ffff:0:0/96", "192.0.2.1", NULL, false },
    { "::/0", "192.0.2.1", NULL, false },
    { "::/0", "2001:db8::1", NULL, true },
    { "0.0.0.0/0", "::1", NULL, false },
};

static void test_hosts_ipv6(void **state)
{
    (void)state;
    RUN_HOSTS(ipv6_cases);
    struct list l = parse(LIST_HOST, "::1 : 10.0.0.1 : ! fe80::/10");
    assert_int_equal(l.n, 3);
    assert_string_equal(l.items[0].text, "::1");
    assert_true(l.items[2].negate);
    assert_string_equal(l.items[2].text, "fe80::/10");
    list_free(&l);
}

static const struct host_case host_name_cases[] = {
    { "mx.example.org", "192.0.2.1", "MX.example.org.", true },
    { "mx.example.org", "192.0.2.1", NULL, false },
    { "*.example.org", "192.0.2.1", "a.b.example.org", true },
    { "*.example.org", "192.0.2.1", NULL, false },
    /* "" matches only when there is no remote host; "*" matches any host or none */
    { ":", NULL, NULL, true },
    { ":", "", NULL, true },
    { ":", "192.0.2.1", NULL, false },
    { "*", NULL, NULL, true },
    { "10.0.0.0/8", NULL, NULL, false },
};

static void test_hosts_names(void **state)
{
    (void)state;
    RUN_HOSTS(host_name_cases);
}

static void test_host_errors(void **state)
{
    (void)state;
    assert_non_null(strstr(parse_err(LIST_HOST, "10.0.0.0/33"), "invalid IP address"));
    assert_non_null(strstr(parse_err(LIST_HOST, "300.1.1.1"), "invalid IP address"));
    assert_non_null(strstr(parse_err(LIST_HOST, "::1/129"), "invalid IP address"));
    assert_non_null(strstr(parse_err(LIST_HOST, "10.0.0.1/"), "invalid IP address"));
    assert_non_null(strstr(parse_err(LIST_HOST, "10.0.0.1/-1"), "invalid IP address"));
    assert_non_null(strstr(parse_err(LIST_HOST, "bad!host"), "invalid host name"));
    assert_non_null(strstr(parse_err(LIST_HOST, "a.example b.example"), "white space"));
    assert_non_null(strstr(parse_err(LIST_HOST, "net-dbm;/x"), "unknown lookup type"));
    assert_non_null(strstr(parse_err(LIST_HOST, "@[]"), "\"@\""));
    assert_non_null(strstr(parse_err(LIST_HOST, "+nolist"), "hostlist \"nolist\" is not defined"));
}

static void test_parse_errors(void **state)
{
    (void)state;
    char big[2000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_non_null(strstr(parse_err(LIST_DOMAIN, big), "longer than"));
    assert_non_null(strstr(parse_err(LIST_DOMAIN, "^reg.*ex$"), "regular expressions"));
    assert_non_null(strstr(parse_err(LIST_DOMAIN, "/etc/domains"), "file names"));
    assert_non_null(strstr(parse_err(LIST_DOMAIN, "@"), "\"@\""));
    assert_non_null(strstr(parse_err(LIST_DOMAIN, "user@example.org"), "\"@\" in a domain"));
    assert_non_null(strstr(parse_err(LIST_ADDRESS, "@example.org"), "empty local part"));
    assert_non_null(strstr(parse_err(LIST_LOCAL_PART, "+x"), "local part lists"));
    assert_non_null(strstr(parse_err(LIST_DOMAIN, "ok.example : +missing"), "domainlist"));
}

static const struct match_case address_cases[] = {
    { "Jbc@Askone.example", "jbc@askone.EXAMPLE", true },
    { "jbc@askone.example", "jbd@askone.example", false },
    { "*@askone.example", "anyone@askone.example", true },
    { "*@askone.example", "anyone@other.example", false },
    { "postmaster@*", "postmaster@anywhere.example", true },
    { "*-request@lists.example", "foo-request@lists.example", true },
    { "*-request@lists.example", "foo@lists.example", false },
    { "*@*.spamming.site", "x@mx.spamming.site", true },
    { "enemy.example : *.enemy.example", "a@b.enemy.example", true }, /* domain only */
    { "enemy.example", "a@enemy.example", true },
    { "a@b@c.example", "a@b@c.example", true },
    { "user", "user", false }, /* a pattern without @ is a domain; "user" has none */
    { "user@x.example", "user", false },
};

static void test_addresses(void **state)
{
    (void)state;
    RUN_MATCHES(addr, address_cases);
}

static void test_null_sender(void **state)
{
    (void)state;
    /* the null sender <> matches only an empty item ("senders = :") */
    assert_true(addr(":", ""));
    assert_false(addr(":", "a@b.example"));
    assert_false(addr("*", ""));
    assert_false(addr("*@*", ""));
    assert_true(addr("*", "a@b.example"));
    assert_true(addr("!:", "a@b.example"));
    assert_false(addr("!:", ""));
    struct list l = parse(LIST_ADDRESS, ":");
    assert_true((list_check_address(&l, NULL, NULL) == LIST_MATCH));
    list_free(&l);
}

static void test_local_parts(void **state)
{
    (void)state;
    struct list l = parse(LIST_LOCAL_PART, "postmaster : *-request : !root : abuse");
    assert_true((list_check_local_part(&l, "PostMaster", NULL) == LIST_MATCH));
    assert_true((list_check_local_part(&l, "list-request", NULL) == LIST_MATCH));
    assert_false((list_check_local_part(&l, "root", NULL) == LIST_MATCH));
    assert_true((list_check_local_part(&l, "abuse", NULL) == LIST_MATCH));
    assert_false((list_check_local_part(&l, "fred", NULL) == LIST_MATCH));
    list_free(&l);
}

/* named - define named lists of every kind for the tests below */
static struct named_list doms[3], hosts[1], addrs[1];

static void define(struct named_list *nl, const char *name, enum list_kind kind, const char *text,
                   const struct list_names *names)
{
    nl->name = xstrdup(name);
    if (!list_parse_names(&nl->list, kind, text, names, err, sizeof(err)))
        fail_msg("%s: %s", name, err);
}

static int named_setup(void **state)
{
    (void)state;
    static struct list_names names = { doms, hosts, addrs, 3, 1, 1, NULL, 0 };
    define(&doms[0], "dom1", LIST_DOMAIN, "!a.b", &names);
    define(&doms[1], "dom2", LIST_DOMAIN, "+dom1 : *.b", &names);
    define(&doms[2], "local", LIST_DOMAIN, "example.org : *.example.org", &names);
    define(&hosts[0], "relay", LIST_HOST, "127.0.0.1 : ::1 : 10.0.0.0/8", &names);
    define(&addrs[0], "bad", LIST_ADDRESS, "spam@*", &names);
    *state = &names;
    return 0;
}

static int named_teardown(void **state)
{
    (void)state;
    struct named_list *all[] = { &doms[0], &doms[1], &doms[2], &hosts[0], &addrs[0] };
    for (size_t i = 0; i < ARRAY_LEN(all); i++) {
        free(all[i]->name);
        list_free(&all[i]->list);
    }
    return 0;
}

static void test_named(void **state)
{
    const struct list_names *names = *state;
    struct list l;
    /* Exim's warning: negation inside a referenced list does not propagate */
    assert_true((list_check_domain(&doms[1].list, "x.y", NULL) == LIST_MATCH));
    assert_true(list_parse_names(&l, LIST_DOMAIN, "! +local", names, err, sizeof(err)));
    assert_false((list_check_domain(&l, "www.example.org", NULL) == LIST_MATCH));
    assert_true((list_check_domain(&l, "other.example", NULL) == LIST_MATCH));
    list_free(&l);
    assert_true(list_parse_names(&l, LIST_HOST, "+relay", names, err, sizeof(err)));
    assert_true((list_check_host(&l, "::1", NULL, NULL) == LIST_MATCH));
    assert_true((list_check_host(&l, "10.9.9.9", NULL, NULL) == LIST_MATCH));
    assert_false((list_check_host(&l, "192.0.2.1", NULL, NULL) == LIST_MATCH));
    list_free(&l);
    assert_true(list_parse_names(&l, LIST_ADDRESS, "+bad : *@+local", names, err, sizeof(err)));
    assert_true((list_check_address(&l, "spam@anywhere.example", NULL) == LIST_MATCH));
    assert_true((list_check_address(&l, "fred@www.example.org", NULL) == LIST_MATCH));
    assert_false((list_check_address(&l, "fred@other.example", NULL) == LIST_MATCH));
    assert_int_equal(l.items[1].ref, &doms[2]);
    list_free(&l);
    /* "+name" in an address list names an address list, "*@+name" a domain list */
    assert_false(list_parse_names(&l, LIST_ADDRESS, "+local", names, err, sizeof(err)));
    assert_non_null(strstr(err, "addresslist \"local\" is not defined"));
    assert_false(list_parse_names(&l, LIST_ADDRESS, "*@+relay", names, err, sizeof(err)));
    assert_non_null(strstr(err, "domainlist \"relay\" is not defined"));
    const struct named_list *bad = NULL;
    assert_true(list_names_check(names, &bad));
}

/* define_chain - n domain lists named n0..n(n-1); texts[i] is list i (names set first) */
static void define_chain(struct named_list *v, size_t n, char texts[][32])
{
    struct list_names names = { .domains = v, .ndomains = n };
    for (size_t i = 0; i < n; i++) {
        char name[8];
        str_fmt(name, sizeof(name), "n%zu", i);
        v[i].name = xstrdup(name);
    }
    for (size_t i = 0; i < n; i++)
        if (!list_parse_names(&v[i].list, LIST_DOMAIN, texts[i], &names, err, sizeof(err)))
            fail_msg("n%zu: %s", i, err);
}

static void free_chain(struct named_list *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        list_free(&v[i].list);
    }
}

static void test_named_loops(void **state)
{
    (void)state;
    struct named_list v[20];
    char texts[20][32] = { "x.example : +n1", "+n0" };
    const struct named_list *bad = NULL;
    memset(v, 0, sizeof(v));
    define_chain(v, 2, texts);
    struct list_names names = { .domains = v, .ndomains = 2 };
    assert_false(list_names_check(&names, &bad));
    assert_non_null(bad);
    assert_false((list_check_domain(&v[0].list, "y.example", NULL) == LIST_MATCH)); /* bounded, no crash */
    free_chain(v, 2);
    /* a chain 20 deep is refused, one 10 deep is fine */
    for (int i = 0; i < 20; i++)
        str_fmt(texts[i], sizeof(texts[i]), i < 19 ? "+n%d" : "leaf.example", i + 1);
    define_chain(v, 20, texts);
    names.ndomains = 20;
    bad = NULL;
    assert_false(list_names_check(&names, &bad));
    names.domains = &v[10];
    names.ndomains = 10;
    assert_true(list_names_check(&names, &bad));
    assert_true((list_check_domain(&v[10].list, "leaf.example", NULL) == LIST_MATCH));
    assert_true((list_check_domain(&v[0].list, "leaf.example", NULL) == LIST_MATCH)); /* 20 deep still matches */
    free_chain(v, 20);
}

static void test_list_parse_same_kind(void **state)
{
    (void)state;
    struct named_list nl = { .name = "relay" };
    struct list l;
    assert_true(list_parse(&nl.list, LIST_HOST, "192.0.2.0/24", NULL, 0, err, sizeof(err)));
    assert_true(list_parse(&l, LIST_HOST, "!+relay : *", &nl, 1, err, sizeof(err)));
    assert_false((list_check_host(&l, "192.0.2.9", NULL, NULL) == LIST_MATCH));
    assert_true((list_check_host(&l, "198.51.100.1", NULL, NULL) == LIST_MATCH));
    list_free(&l);
    list_free(&nl.list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_items),
        cmocka_unit_test(test_item_types),
        cmocka_unit_test(test_domains),
        cmocka_unit_test(test_negation),
        cmocka_unit_test(test_hosts_ipv4),
        cmocka_unit_test(test_hosts_ipv6),
        cmocka_unit_test(test_hosts_names),
        cmocka_unit_test(test_host_errors),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_null_sender),
        cmocka_unit_test(test_local_parts),
        cmocka_unit_test_setup_teardown(test_named, named_setup, named_teardown),
        cmocka_unit_test(test_named_loops),
        cmocka_unit_test(test_list_parse_same_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
