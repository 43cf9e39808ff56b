/* test_edge_conf.c - the policy conditions' configuration: dnslists values and their matching,
 * ratelimit values, spam and encrypted, spamd_address, and the stage checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "conf_testutil.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static struct conf *load(const char *text)
{
    struct sbuf errs;
    struct conf *c = tu_load(text, &errs);
    if (c == NULL)
        fail_msg("config did not load:\n%s", errs.s ? errs.s : "");
    sbuf_free(&errs);
    return c;
}

/* expect_error - loading fails with one error at line containing want */
static void expect_error(const char *text, int line, const char *want)
{
    char *got = tu_errors(text);
    char prefix[32];
    if (got == NULL)
        fail_msg("config loaded but should fail with: %s", want);
    str_fmt(prefix, sizeof(prefix), "F:%d: ", line);
    if (strncmp(got, prefix, strlen(prefix)) != 0 || strstr(got, want) == NULL)
        fail_msg("got:\n%swanted an error at line %d containing: %s", got, line, want);
    free(got);
}

/* parse_ok - a dnslists value that must parse */
static void parse_ok(struct dnsl_spec *s, const char *text)
{
    char err[200];
    if (!dnsl_parse(s, text, err, sizeof(err)))
        fail_msg("dnsl_parse(%s): %s", text, err);
}

static void parse_bad(const char *text, const char *want)
{
    struct dnsl_spec s;
    char err[200] = "";
    if (dnsl_parse(&s, text, err, sizeof(err)))
        fail_msg("dnsl_parse(%s) should fail", text);
    if (strstr(err, want) == NULL)
        fail_msg("dnsl_parse(%s): %s (wanted %s)", text, err, want);
}

static void test_dnsl_parse(void **state)
{
    (void)state;
    struct dnsl_spec s;
    parse_ok(&s, " Bl.Example.TEST : +include_unknown : wl.test=127.0.0.2, 127.0.0.3 : "
                 "+defer_unknown : n.test=127.0.0.0/24 : b.test&0.0.0.4 : c.test!=&0.0.0.1 : d.test==127.0.0.5");
    assert_int_equal(s.n, 6);
    assert_string_equal(s.zones[0].zone, "bl.example.test");
    assert_int_equal(s.zones[0].match, DNSL_ANY_RECORD);
    assert_int_equal(s.zones[0].unknown, DNSL_EXCLUDE_UNKNOWN);
    assert_string_equal(s.zones[1].zone, "wl.test");
    assert_int_equal(s.zones[1].unknown, DNSL_INCLUDE_UNKNOWN);
    assert_int_equal(s.zones[1].nvals, 2);
    assert_int_equal(s.zones[1].vals[1].addr, IP(127, 0, 0, 3));
    assert_int_equal(s.zones[2].vals[0].prefix, 24);
    assert_int_equal(s.zones[2].unknown, DNSL_DEFER_UNKNOWN);
    assert_int_equal(s.zones[3].match, DNSL_BITS);
    assert_true(s.zones[4].invert && s.zones[4].all && s.zones[4].match == DNSL_BITS);
    dnsl_free(&s);
    parse_ok(&s, "d.test==127.0.0.5");
    assert_true(s.zones[0].all && s.zones[0].match == DNSL_EQUAL && !s.zones[0].invert);
    dnsl_free(&s);
    parse_bad("", "no DNS list zone");
    parse_bad("bl.test/$sender_address", "explicit keys");
    parse_bad("a.test,b.test=127.0.0.2", "merged lists");
    parse_bad("bl..test", "invalid DNS list zone");
    parse_bad("bl test", "invalid DNS list zone");
    parse_bad("bl.test=", "no address");
    parse_bad("bl.test=127.0.0.300", "IPv4 addresses");
    parse_bad("bl.test=::1", "no address");           /* ":" separates zones */
    parse_bad("bl.test=fe80", "IPv4 addresses");
    parse_bad("bl.test&127.0.0.0/8", "bit masks");
    parse_bad("bl.test=127.0.0.0/33", "IPv4 addresses");
    parse_bad("+nonsense : bl.test", "unknown option");
    parse_bad("bl.test?x", "invalid DNS list zone");
}

static void test_dnsl_match(void **state)
{
    (void)state;
    struct dnsl_spec s;
    uint32_t two[] = { IP(127, 0, 0, 2), IP(127, 0, 0, 3) };
    uint32_t one[] = { IP(127, 0, 0, 2) };
    parse_ok(&s, "any.test : eq.test=127.0.0.2 : all.test==127.0.0.2 : net.test=127.0.0.0/30 : "
                 "bits.test&0.0.0.2 : none.test!=127.0.0.2 : notall.test!==127.0.0.2 : "
                 "other.test=127.0.1.0/24");
    assert_true(dnsl_values_match(&s.zones[0], two, 2));
    assert_false(dnsl_values_match(&s.zones[0], two, 0));
    assert_true(dnsl_values_match(&s.zones[1], two, 2));
    assert_false(dnsl_values_match(&s.zones[2], two, 2));   /* 127.0.0.3 is not listed */
    assert_true(dnsl_values_match(&s.zones[2], one, 1));
    assert_true(dnsl_values_match(&s.zones[3], two, 2));
    assert_true(dnsl_values_match(&s.zones[4], two, 2));    /* 2 & 2, 3 & 2 */
    assert_false(dnsl_values_match(&s.zones[5], two, 2));   /* one matches */
    assert_true(dnsl_values_match(&s.zones[6], two, 2));    /* 127.0.0.3 does not */
    assert_false(dnsl_values_match(&s.zones[6], one, 1));
    assert_false(dnsl_values_match(&s.zones[7], two, 2));
    dnsl_free(&s);
}

static void test_ratelimit_parse(void **state)
{
    (void)state;
    struct ratelimit_spec r;
    char err[200];
    assert_true(ratelimit_parse(&r, "100 / 1h / per_rcpt / $sender_host_address", err, sizeof(err)));
    assert_true(r.limit == 100.0 && r.period == 3600 && r.per == RATE_PER_RCPT);
    assert_int_equal(r.mode, RATE_LEAKY);
    assert_false(r.mode_given);
    assert_int_equal(r.key.n, 1);
    assert_string_equal(r.limit_text, "100");
    assert_string_equal(r.period_text, "1h");
    ratelimit_free(&r);
    assert_true(ratelimit_parse(&r, "2M/1d/per_byte/strict/count=2.5/user-$sender_address/x",
                                err, sizeof(err)));
    assert_true(r.limit == 2.0 * 1024 * 1024 && r.per == RATE_PER_BYTE && r.mode == RATE_STRICT);
    assert_true(r.mode_given && r.count_given && r.count == 2.5);
    assert_int_equal(r.key.n, 3);                          /* "user-", var, "/x" */
    assert_string_equal(r.key.segs[2].literal, "/x");
    ratelimit_free(&r);
    assert_true(ratelimit_parse(&r, "0/5m", err, sizeof(err)));
    assert_true(r.per == RATE_PER_MAIL && r.key.n == 0 && r.count == 1.0);
    ratelimit_free(&r);
    assert_true(ratelimit_parse(&r, "10 / 1m / readonly", err, sizeof(err)));
    assert_true(r.mode == RATE_READONLY && !r.mode_given);
    ratelimit_free(&r);
    static const char *const bad[][2] = {
        { "", "the limit" }, { "x/1h", "the limit" }, { "-1/1h", "the limit" },
        { "10", "the period" }, { "10/0s", "the period" }, { "10/soon", "the period" },
        { "10/1h/per_rcpt/per_mail", "conflicting per_" }, { "10/1h/leaky/strict", "conflicting update" },
        { "10/1h/per_addr", "not supported" }, { "10/1h/unique=$domain", "not supported" },
        { "10/1h/count=x", "positive number" }, { "10/1h/$nosuchvar", "unknown variable" },
        { "inf/1h", "the limit" },
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        if (ratelimit_parse(&r, bad[i][0], err, sizeof(err)))
            fail_msg("ratelimit_parse(%s) should fail", bad[i][0]);
        if (strstr(err, bad[i][1]) == NULL)
            fail_msg("ratelimit_parse(%s): %s (wanted %s)", bad[i][0], err, bad[i][1]);
    }
    assert_true(ratelimit_counts_in(RATE_PER_RCPT, ACL_RCPT));
    assert_true(ratelimit_counts_in(RATE_PER_RCPT, ACL_DATA));
    assert_false(ratelimit_counts_in(RATE_PER_RCPT, ACL_MAIL));
    assert_false(ratelimit_counts_in(RATE_PER_MAIL, ACL_CONNECT));
    assert_true(ratelimit_counts_in(RATE_PER_CONN, ACL_CONNECT));
}

#define HEAD "spamd_address = 127.0.0.1:11333 variant=rspamd\nacl_smtp_rcpt = r\nacl_smtp_data = d\nbegin acl\n"

static void test_acl_items(void **state)
{
    (void)state;
    struct conf *c = load(HEAD "r:\n  deny dnslists = bl.test : wl.test=127.0.0.2\n"
                          "  deny ratelimit = 3 / 1h / per_rcpt / strict / $sender_host_address\n"
                          "  accept encrypted = *\n"
                          "  accept message = $dnslist_domain $dnslist_value $dnslist_text $sender_rate "
                          "$sender_rate_limit $sender_rate_period $tls_in_cipher $dnslist_matched\n"
                          "d:\n  deny spam = nobody:true/defer_ok\n"
                          "  warn spam = nobody\n    add_header = X-Spam: $spam_score $spam_score_int "
                          "$spam_bar $spam_action $spam_report\n");
    const struct acl *r = c->acl_for_stage[ACL_RCPT], *d = c->acl_for_stage[ACL_DATA];
    assert_int_equal(r->stmts[0].items[0].kind, COND_DNSLISTS);
    assert_int_equal(r->stmts[0].items[0].dnsl.n, 2);
    assert_int_equal(r->stmts[1].items[0].kind, COND_RATELIMIT);
    assert_int_equal(r->stmts[2].items[0].kind, COND_ENCRYPTED);
    assert_int_equal(d->stmts[0].items[0].kind, COND_SPAM);
    assert_true(d->stmts[0].items[0].spam.always_true && d->stmts[0].items[0].spam.defer_ok);
    assert_string_equal(d->stmts[0].items[0].spam.name, "nobody");
    assert_false(d->stmts[1].items[0].spam.always_true || d->stmts[1].items[0].spam.defer_ok);
    assert_string_equal(c->spamd.host, "127.0.0.1");
    assert_int_equal(c->spamd.port, 11333);
    assert_int_equal(c->spamd.tmo, 120);
    assert_int_equal(c->dnslist_timeout, 5);
    conf_free(c);
    c = load("spamd_address = ::1 11333 variant=rspamd tmo=10s\n");
    assert_string_equal(c->spamd.host, "::1");
    assert_int_equal(c->spamd.tmo, 10);
    conf_free(c);
    c = load("spamd_address = [::1]:11333 variant=rspamd\ndnslist_timeout = 2s\n");
    assert_string_equal(c->spamd.host, "::1");
    assert_int_equal(c->dnslist_timeout, 2);
    conf_free(c);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("spamd_address = 127.0.0.1:11333\n", 1, "variant=rspamd");
    expect_error("spamd_address = localhost:11333 variant=rspamd\n", 1, "numeric IP");
    expect_error("spamd_address = 127.0.0.1 variant=rspamd\n", 1, "port");
    expect_error("spamd_address = 127.0.0.1:11333 variant=rspamd retry=5s\n", 1, "unknown option");
    expect_error(HEAD "r:\n  accept\nd:\n  deny spam = nobody/later\n", 8, "only /defer_ok");
    expect_error(HEAD "r:\n  accept\nd:\n  deny spam = :true\n", 8, "expected a name");
    expect_error(HEAD "r:\n  deny spam = nobody\nd:\n  accept\n", 6, "data ACL only");
    expect_error("acl_smtp_data = d\nbegin acl\nd:\n  deny spam = nobody\n", 4,
                 "spamd_address is not set");
    expect_error("acl_smtp_mail = m\n" HEAD "r:\n  deny ratelimit = 1/1h/per_rcpt/x\n  accept\n"
                 "d:\n  accept\nm:\n  deny ratelimit = 1 / 1h / per_rcpt / strict\n  accept\n",
                 12, "cannot count");
    expect_error("acl_smtp_rcpt = r\nbegin acl\nr:\n  deny dnslists = bl.test/1.2.3.4\n", 4,
                 "dnslists: explicit keys");
    expect_error("acl_smtp_rcpt = r\nbegin acl\nr:\n  deny ratelimit = lots/1h\n", 4, "ratelimit:");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dnsl_parse),
        cmocka_unit_test(test_dnsl_match),
        cmocka_unit_test(test_ratelimit_parse),
        cmocka_unit_test(test_acl_items),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
