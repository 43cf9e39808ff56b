/* test_spam_reply.c - rspamd's /checkv2 replies into verdicts: real replies (GTUBE, ham), the
 * report line, the spam test, Exim's $spam_score/_int/_bar forms, and bad replies refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/core.h"
#include "policy/policy.h"

static const char GTUBE_REPLY[] =
    "{\"is_skipped\":true,\"score\":15.0,\"required_score\":15.0,\"action\":\"reject\","
    "\"symbols\":{\"GTUBE\":{\"name\":\"GTUBE\",\"score\":0.0,\"metric_score\":0.0}},"
    "\"messages\":{\"smtp_message\":\"Gtube pattern\"},\"message-id\":\"undef\",\"time_real\":0.1}";
static const char HAM_REPLY[] =
    "{\"is_skipped\":false,\"score\":0.0,\"required_score\":15.0,\"action\":\"no action\","
    "\"symbols\":{},\"messages\":{},\"message-id\":\"undef\",\"time_real\":0.0003}";

static void parse_ok(const char *body, struct spam_verdict *v)
{
    char err[200];
    if (!spam_reply_parse(body, strlen(body), v, err, sizeof(err)))
        fail_msg("spam_reply_parse: %s", err);
}

static void test_real_replies(void **state)
{
    (void)state;
    struct spam_verdict v;
    char score[32], si[32], bar[64];
    parse_ok(GTUBE_REPLY, &v);
    assert_true(v.score == 15.0 && v.required == 15.0 && v.skipped);
    assert_string_equal(v.action, "reject");
    assert_string_equal(v.report, "action=reject score=15.00/15.00 symbols: GTUBE(0.00)");
    assert_true(spam_is_spam(&v));
    spam_vars(&v, score, si, bar);
    assert_string_equal(score, "15.0");
    assert_string_equal(si, "150");
    assert_string_equal(bar, "+++++++++++++++");
    parse_ok(HAM_REPLY, &v);
    assert_string_equal(v.action, "no action");
    assert_false(spam_is_spam(&v));
    spam_vars(&v, score, si, bar);
    assert_string_equal(score, "0.0");
    assert_string_equal(si, "0");
    assert_string_equal(bar, "/");
}

static void test_spam_test_and_vars(void **state)
{
    (void)state;
    struct spam_verdict v;
    char score[32], si[32], bar[64];
    parse_ok("{\"score\":6.5,\"required_score\":6,\"action\":\"add header\","
             "\"symbols\":{\"A\":{\"score\":4.5},\"B\\u0001x\":{\"score\":2}}}", &v);
    assert_true(spam_is_spam(&v));                   /* over the threshold */
    assert_string_equal(v.report, "action=add header score=6.50/6.00 symbols: A(4.50), B?x(2.00)");
    parse_ok("{\"score\":-3.7,\"required_score\":15,\"action\":\"no action\"}", &v);
    spam_vars(&v, score, si, bar);
    assert_string_equal(score, "-3.7");
    assert_string_equal(si, "-37");
    assert_string_equal(bar, "---");
    parse_ok("{\"score\":1e300,\"required_score\":15,\"action\":\"reject\"}", &v);
    spam_vars(&v, score, si, bar);
    assert_int_equal(strlen(bar), 50);
    assert_string_equal(si, "1000000000");
    parse_ok("{\"score\":1,\"required_score\":15,\"action\":\"soft reject\\r\\nX\"}", &v);
    assert_string_equal(v.action, "soft reject??X");
    assert_false(spam_is_spam(&v));
}

static void test_bad_replies(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        { "", "not JSON" }, { "{", "not JSON" }, { "[1,2]", "without score" },
        { "{\"score\":\"high\",\"required_score\":1,\"action\":\"x\"}", "without score" },
        { "{\"score\":1,\"action\":\"x\"}", "without score" },
        { "{\"score\":1,\"required_score\":1}", "without score" },
        { "{\"error\":\"Message is empty\"}", "Message is empty" },
        { "{\"score\":1,\"score\":2,\"required_score\":1,\"action\":\"x\"}", "not JSON" },
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct spam_verdict v;
        char err[200] = "";
        if (spam_reply_parse(bad[i][0], strlen(bad[i][0]), &v, err, sizeof(err)))
            fail_msg("accepted: %s", bad[i][0]);
        if (strstr(err, bad[i][1]) == NULL)
            fail_msg("%s: %s (wanted %s)", bad[i][0], err, bad[i][1]);
    }
}

static void test_long_report_bounded(void **state)
{
    (void)state;
    struct sbuf b;
    sbuf_init(&b);
    sbuf_addstr(&b, "{\"score\":20,\"required_score\":15,\"action\":\"reject\",\"symbols\":{");
    for (int i = 0; i < 500; i++)
        sbuf_printf(&b, "%s\"SYMBOL_NUMBER_%d\":{\"score\":1}", i ? "," : "", i);
    sbuf_addstr(&b, "}}");
    struct spam_verdict v;
    parse_ok(b.s, &v);
    assert_true(strlen(v.report) < SPAM_REPORT_MAX);
    assert_non_null(strstr(v.report, "SYMBOL_NUMBER_0(1.00)"));
    sbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_replies),
        cmocka_unit_test(test_spam_test_and_vars),
        cmocka_unit_test(test_bad_replies),
        cmocka_unit_test(test_long_report_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
