/* test_smtp_out.c - the pure parts of the outbound engine: EHLO keyword parsing, MAIL and RCPT
 * lines with ESMTP parameters per offered extension (SIZE, BODY, SMTPUTF8, DSN), refusal of
 * arguments that could split a command, names of states and commands, the log host form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "outbound/smtp_out_int.h"
#include "route/route.h"

static void ehlo(const char *text, unsigned *exts, uint64_t *size)
{
    so_parse_ehlo(text, strlen(text), exts, size);
}

static void test_ehlo_keywords(void **state)
{
    (void)state;
    unsigned e;
    uint64_t size;
    ehlo("mx.test greets you\nPIPELINING\nSIZE 52428800\n8BITMIME\nSMTPUTF8\nDSN\nCHUNKING\n"
         "STARTTLS\nENHANCEDSTATUSCODES\nAUTH PLAIN LOGIN\nX-UNKNOWN", &e, &size);
    assert_int_equal(e, EXT_PIPELINING | EXT_SIZE | EXT_8BITMIME | EXT_SMTPUTF8 | EXT_DSN |
                        EXT_CHUNKING | EXT_STARTTLS | EXT_ENHANCEDSTATUSCODES);
    assert_int_equal(size, 52428800);
    ehlo("mx.test\npipelining\nsize\nstarttls", &e, &size); /* case-insensitive; SIZE alone */
    assert_int_equal(e, EXT_PIPELINING | EXT_SIZE | EXT_STARTTLS);
    assert_int_equal(size, 0);
}

static void test_ehlo_edge_cases(void **state)
{
    (void)state;
    unsigned e;
    uint64_t size;
    ehlo("PIPELINING STARTTLS SIZE 10", &e, &size); /* the first line is the server's name */
    assert_int_equal(e, 0);
    ehlo("", &e, &size);
    assert_int_equal(e, 0);
    ehlo("mx\nPIPELININGX\nSTARTTLSY\nDSN2\n", &e, &size); /* whole keywords only */
    assert_int_equal(e, 0);
    ehlo("mx\nSIZE 99999999999999999999999", &e, &size); /* overflow: no limit known */
    assert_int_equal(e, EXT_SIZE);
    assert_int_equal(size, 0);
    ehlo("mx\nSIZE 12x", &e, &size);
    assert_int_equal(size, 0);
    ehlo("mx\nSIZE 18446744073709551609", &e, &size);
    assert_int_equal(size, 18446744073709551609ULL);
    ehlo("mx\n\n\nDSN", &e, &size); /* empty lines */
    assert_int_equal(e, EXT_DSN);
}

static char *mail_line(const struct mail_out *m, unsigned exts)
{
    struct sbuf b;
    sbuf_init(&b);
    if (!so_fmt_mail(&b, m, exts)) {
        sbuf_free(&b);
        return NULL;
    }
    return sbuf_steal(&b);
}

static char *rcpt_line(const char *r, unsigned notify, const char *orcpt, unsigned exts)
{
    struct sbuf b;
    sbuf_init(&b);
    if (!so_fmt_rcpt(&b, r, notify, orcpt, exts)) {
        sbuf_free(&b);
        return NULL;
    }
    return sbuf_steal(&b);
}

static void check_mail(const struct mail_out *m, unsigned exts, const char *want)
{
    char *got = mail_line(m, exts);
    if (want == NULL) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_mail_params(void **state)
{
    (void)state;
    const unsigned all = EXT_SIZE | EXT_8BITMIME | EXT_SMTPUTF8 | EXT_DSN;
    struct mail_out m = { "a@b.test", 1234, true, true, DSN_RET_FULL, "id+2B1" };
    check_mail(&m, all, "MAIL FROM:<a@b.test> SIZE=1234 BODY=8BITMIME SMTPUTF8 RET=FULL ENVID=id+2B1\r\n");
    check_mail(&m, 0, "MAIL FROM:<a@b.test>\r\n");
    check_mail(&m, EXT_SIZE, "MAIL FROM:<a@b.test> SIZE=1234\r\n");
    m.ret = DSN_RET_HDRS;
    m.envid = NULL;
    check_mail(&m, EXT_DSN, "MAIL FROM:<a@b.test> RET=HDRS\r\n");
    struct mail_out null_sender = { "", 0, false, false, DSN_RET_UNSET, NULL };
    check_mail(&null_sender, all, "MAIL FROM:<>\r\n");
    struct mail_out evil = { "a@b\r\nRCPT TO:<x@y>", 0, false, false, DSN_RET_UNSET, NULL };
    check_mail(&evil, all, NULL);
    struct mail_out bad_envid = { "a@b", 0, false, false, DSN_RET_UNSET, "x y" };
    check_mail(&bad_envid, all, NULL);
}

static void test_rcpt_params(void **state)
{
    (void)state;
    char *l = rcpt_line("u@x.test", DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY,
                        "rfc822;u+40x.test", EXT_DSN);
    assert_string_equal(l, "RCPT TO:<u@x.test> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;u+40x.test\r\n");
    free(l);
    l = rcpt_line("u@x.test", DSN_NOTIFY_NEVER, NULL, EXT_DSN);
    assert_string_equal(l, "RCPT TO:<u@x.test> NOTIFY=NEVER\r\n");
    free(l);
    l = rcpt_line("u@x.test", DSN_NOTIFY_DELAY, "rfc822;u+40x.test", 0); /* no DSN offered */
    assert_string_equal(l, "RCPT TO:<u@x.test>\r\n");
    free(l);
    l = rcpt_line("\"john doe\"@x.test", 0, NULL, EXT_DSN);
    assert_string_equal(l, "RCPT TO:<\"john doe\"@x.test>\r\n");
    free(l);
    assert_null(rcpt_line("u@x.test\n", 0, NULL, 0));
    assert_null(rcpt_line("u@x.test", 0, "rfc822;a b", EXT_DSN));
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(so_cmd_name(SOC_DOT), "end of data");
    assert_string_equal(so_cmd_name(SOC_RCPT), "RCPT");
    assert_string_equal(so_cmd_name((enum smtp_out_cmd)42), "?");
    assert_string_equal(so_state_name(SO_HANDSHAKE), "TLS handshake");
    assert_string_equal(so_state_name((enum so_state)42), "?");
}

static void test_log_host(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct next_hop h;
    struct sockaddr_storage a;
    struct smtp_out_opts o = { .helo = "me.test", .tls = TLS_NONE, .connect_timeout = 1,
                               .command_timeout = 1, .data_timeout = 1 };
    struct smtp_out_cbs cbs = { NULL, NULL, NULL, NULL };
    char buf[300];
    assert_true(route_parse_ip("192.0.2.5", &a));
    hop_fill(&h, "mx.test", &a, 2525, 10, false, TLS_NONE);
    struct smtp_out *so = smtp_out_new(base, &h, &o, &cbs, NULL);
    smtp_out_log_host(so, buf, sizeof(buf));
    assert_string_equal(buf, "H=mx.test [192.0.2.5]:2525");
    assert_false(smtp_out_is_ready(so));
    assert_null(smtp_out_tls_info(so));
    smtp_out_free(so);
    hop_fill(&h, "192.0.2.5", &a, 25, 0, true, TLS_NONE);
    so = smtp_out_new(base, &h, &o, &cbs, NULL);
    smtp_out_log_host(so, buf, sizeof(buf));
    assert_string_equal(buf, "H=[192.0.2.5]:25");
    smtp_out_free(so);
    hop_fill(&h, "bad\"name\n", &a, 25, 0, false, TLS_NONE); /* peer-derived names are escaped */
    so = smtp_out_new(base, &h, &o, &cbs, NULL);
    smtp_out_log_host(so, buf, sizeof(buf));
    assert_string_equal(buf, "H=bad\\x22name\\x0a [192.0.2.5]:25");
    smtp_out_free(so);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ehlo_keywords),
        cmocka_unit_test(test_ehlo_edge_cases),
        cmocka_unit_test(test_mail_params),
        cmocka_unit_test(test_rcpt_params),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_log_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
