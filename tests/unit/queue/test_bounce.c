/* test_bounce.c - delivery status notifications: the RFC 3464 structure (parsed back: boundary,
 * parts, fields), what is returned for each RET, ENVID and ORCPT, line limits, and who is told
 * (NOTIFY, never the null sender), including the DSN written into a spool. */
#include "spool_fixture.h"

#include "conf/conf.h"
#include "queue/bounce.h"
#include "queue/dsn.h"

#define HDRS "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: hello\r\n" \
             "Message-ID: <m1@example.org>\r\n"
#define BODY "Hi Bob,\r\nthe body.\r\n"
#define MX1 "mx1.example.net [192.0.2.7]:25"

/* A parsed MIME entity: its header fields (unfolded, "Name: value") and its body. */
struct entity {
    char *fields[64];
    size_t nfields;
    char *body;
};

struct parsed {
    struct entity top;
    struct entity parts[8];
    size_t nparts;
    bool closed;          /* the closing boundary was seen */
    char boundary[256];
};

/* mem_read - dsn_source over a memory buffer */
struct mem {
    const char *p;
    size_t len, off;
};

static long mem_read(void *arg, void *buf, size_t n)
{
    struct mem *m = arg;
    size_t k = m->len - m->off < n ? m->len - m->off : n;
    memcpy(buf, m->p + m->off, k);
    m->off += k;
    return (long)k;
}

/* parse_entity - header fields (continuation lines joined) and body of text */
static void parse_entity(const char *text, struct entity *e)
{
    const char *end = strstr(text, "\r\n\r\n");
    const char *p = text;
    memset(e, 0, sizeof(*e));
    assert_non_null(end);
    while (p < end + 2) {
        const char *eol = strstr(p, "\r\n");
        if (*p == ' ' || *p == '\t') {
            assert_true(e->nfields > 0);
            char *prev = e->fields[e->nfields - 1];
            size_t a = strlen(prev), b = (size_t)(eol - p);
            prev = realloc(prev, a + b + 1);
            memcpy(prev + a, p, b);
            prev[a + b] = '\0';
            e->fields[e->nfields - 1] = prev;
        } else {
            assert_true(e->nfields < 64);
            e->fields[e->nfields++] = strndup(p, (size_t)(eol - p));
        }
        p = eol + 2;
    }
    e->body = strdup(end + 4);
}

static void free_entity(struct entity *e)
{
    for (size_t i = 0; i < e->nfields; i++)
        free(e->fields[i]);
    free(e->body);
}

static void free_parsed(struct parsed *m)
{
    free_entity(&m->top);
    for (size_t i = 0; i < m->nparts; i++)
        free_entity(&m->parts[i]);
}

/* field - the value of a header field (case-insensitive name), NULL if absent */
static const char *field(const struct entity *e, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < e->nfields; i++)
        if (strncasecmp(e->fields[i], name, n) == 0 && e->fields[i][n] == ':')
            return e->fields[i] + n + 1 + (e->fields[i][n + 1] == ' ');
    return NULL;
}

/* check_lines - every line ends in CRLF, no bare CR or LF, none longer than 998 */
static void check_lines(const char *s, size_t len)
{
    size_t linelen = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\r') {
            assert_true(i + 1 < len && s[i + 1] == '\n');
            assert_true(linelen <= DSN_LINE_MAX);
            linelen = 0;
            i++;
        } else {
            assert_true(s[i] != '\n');
            linelen++;
        }
    }
    assert_int_equal(linelen, 0);
}

/* parse_dsn - split a DSN at its boundary into its parts */
static void parse_dsn(const char *msg, struct parsed *m)
{
    char delim[300];
    memset(m, 0, sizeof(*m));
    check_lines(msg, strlen(msg));
    parse_entity(msg, &m->top);
    const char *ct = field(&m->top, "Content-Type");
    assert_non_null(ct);
    assert_non_null(strstr(ct, "multipart/report"));
    assert_non_null(strstr(ct, "report-type=delivery-status"));
    const char *b = strstr(ct, "boundary=\"");
    assert_non_null(b);
    b += 10;
    size_t blen = strcspn(b, "\"");
    memcpy(m->boundary, b, blen);
    str_fmt(delim, sizeof(delim), "\r\n--%s", m->boundary);
    const char *p = strstr(m->top.body, delim);   /* after the preamble */
    assert_non_null(p);
    for (;;) {
        p += strlen(delim);
        if (strncmp(p, "--", 2) == 0) {
            m->closed = true;
            break;
        }
        assert_true(strncmp(p, "\r\n", 2) == 0);
        p += 2;
        const char *next = strstr(p, delim);
        assert_non_null(next);
        char *part = strndup(p, (size_t)(next - p) + 2);
        assert_true(m->nparts < 8);
        parse_entity(part, &m->parts[m->nparts++]);
        free(part);
        p = next;
    }
}

/* original_env - an envelope as received from a client */
static void original_env(struct envelope *env, enum dsn_ret ret, const char *envid)
{
    envelope_init(env);
    str_copy(env->id, "1AbCdE-FgHiJk-LM", sizeof(env->id));
    env->arrival = 1700000000;
    envelope_set(&env->sender, "alice@example.org");
    envelope_add_rcpt(env, "bob@example.net", 0, "rfc822;bob+2Bold@example.net");
    envelope_add_rcpt(env, "carol@example.net", DSN_NOTIFY_SUCCESS, NULL);
    env->ret = ret;
    envelope_set(&env->envid, envid);
}

/* result - a delivery outcome: the deciding reply (code 0 and ecode "": none) and the host */
static struct dlv_result result(enum dlv_outcome outcome, int code, const char *ecode,
                                const char *text, const char *host)
{
    struct dlv_result r;
    memset(&r, 0, sizeof(r));
    r.outcome = outcome;
    r.code = code;
    str_copy(r.ecode, ecode, sizeof(r.ecode));
    str_copy(r.text, text, sizeof(r.text));
    str_copy(r.host, host, sizeof(r.host));
    return r;
}

/* fail_550 - the failure most tests report: a 550 5.1.1 from mx1 */
static struct dlv_result fail_550(void)
{
    return result(DLV_FAILED, 550, "5.1.1", "550 5.1.1 <bob@example.net>: no such user", MX1);
}

/* A DSN under test: the original envelope, the outcome reported for one of its recipients
 * (the entry e: recipient 0 failed, unless the test changes it), and the DSN built from them,
 * parsed back. */
struct dsn_case {
    struct envelope env;
    struct dlv_result res;
    struct dsn_entry e;
    struct dsn_output out;
    struct parsed m;
};

#define LAST_ATTEMPT 1700000400

/* case_init - the message as received with ret, its recipient 0 failed with res */
static void case_init(struct dsn_case *c, enum dsn_ret ret, struct dlv_result res)
{
    memset(c, 0, sizeof(*c));
    original_env(&c->env, ret, NULL);
    c->res = res;
    c->e = (struct dsn_entry){ &c->env.rcpts[0], DSN_FAILED, &c->res, 0, false };
}

/* case_build_only - build the DSN over content (any earlier one is freed), do not parse it */
static void case_build_only(struct dsn_case *c, const char *content, size_t len)
{
    free_parsed(&c->m);
    memset(&c->m, 0, sizeof(c->m));
    sbuf_free(&c->out.msg);
    struct mem m = { content, len, 0 };
    struct dsn_source src = { mem_read, &m };
    struct dsn_report r = { "tandem.test", &c->env, &c->e, 1, 1700000500, 0x1234, 5 * 86400 };
    dsn_build(&r, &src, &c->out);
}

/* case_build - build the DSN over content and parse it back into c->m */
static void case_build(struct dsn_case *c, const char *content, size_t len)
{
    case_build_only(c, content, len);
    parse_dsn(c->out.msg.s, &c->m);
}

static void case_free(struct dsn_case *c)
{
    free_parsed(&c->m);
    sbuf_free(&c->out.msg);
    envelope_free(&c->env);
}

/* The original message: its header section only, or whole. */
#define HEAD_ONLY HDRS "\r\n", strlen(HDRS "\r\n")
#define WHOLE HDRS "\r\n" BODY, strlen(HDRS "\r\n" BODY)

static void test_failure_structure(void **state)
{
    struct dsn_case c;
    (void)state;
    case_init(&c, DSN_RET_UNSET, fail_550());
    c.e.last_attempt = LAST_ATTEMPT;
    case_build(&c, WHOLE);
    const struct parsed *m = &c.m;
    assert_string_equal(field(&m->top, "From"), "Mail Delivery System <MAILER-DAEMON@tandem.test>");
    assert_string_equal(field(&m->top, "To"), "<alice@example.org>");
    assert_string_equal(field(&m->top, "Subject"),
                        "Mail delivery failed: returning message to sender");
    assert_string_equal(field(&m->top, "Auto-Submitted"), "auto-replied");
    assert_string_equal(field(&m->top, "MIME-Version"), "1.0");
    assert_non_null(field(&m->top, "Date"));
    assert_non_null(strstr(field(&m->top, "Message-ID"), "@tandem.test>"));
    assert_true(m->closed);
    assert_int_equal(m->nparts, 3);
    /* 1: the explanation */
    assert_non_null(strstr(field(&m->parts[0], "Content-Type"), "text/plain"));
    assert_non_null(strstr(m->parts[0].body, "<bob@example.net>"));
    assert_non_null(strstr(m->parts[0].body, "no such user"));
    assert_non_null(strstr(m->parts[0].body, "mx1.example.net"));
    /* 2: the machine-readable report: per-message fields, a blank line, per-recipient fields */
    assert_string_equal(field(&m->parts[1], "Content-Type"), "message/delivery-status");
    struct entity report, rcpt;
    parse_entity(m->parts[1].body, &report);
    assert_string_equal(field(&report, "Reporting-MTA"), "dns; tandem.test");
    assert_non_null(field(&report, "Arrival-Date"));
    assert_null(field(&report, "Original-Envelope-Id"));
    parse_entity(strstr(m->parts[1].body, "\r\n\r\n") + 4, &rcpt);
    assert_string_equal(field(&rcpt, "Final-Recipient"), "rfc822; bob@example.net");
    assert_string_equal(field(&rcpt, "Original-Recipient"), "rfc822; bob+old@example.net");
    assert_string_equal(field(&rcpt, "Action"), "failed");
    assert_string_equal(field(&rcpt, "Status"), "5.1.1");
    assert_string_equal(field(&rcpt, "Remote-MTA"), "dns; mx1.example.net");
    assert_string_equal(field(&rcpt, "Diagnostic-Code"),
                        "smtp; 550 5.1.1 <bob@example.net>: no such user");
    assert_non_null(field(&rcpt, "Last-Attempt-Date"));
    /* 3: no RET: the header section only */
    assert_string_equal(field(&m->parts[2], "Content-Type"), "text/rfc822-headers");
    assert_non_null(strstr(m->parts[2].body, "Subject: hello\r\n"));
    assert_null(strstr(m->parts[2].body, "the body"));
    assert_false(c.out.full_returned);
    assert_false(c.out.eight_bit);
    free_entity(&report);
    free_entity(&rcpt);
    case_free(&c);
}

/* returned - the DSN of a failure with RET ret over content (the part returned is third) */
static void returned(struct dsn_case *c, enum dsn_ret ret, const char *content, size_t len)
{
    case_init(c, ret, fail_550());
    c->e.last_attempt = LAST_ATTEMPT;
    case_build(c, content, len);
}

static void test_ret_hdrs_and_full(void **state)
{
    struct dsn_case c;
    (void)state;
    returned(&c, DSN_RET_HDRS, WHOLE);
    assert_string_equal(field(&c.m.parts[2], "Content-Type"), "text/rfc822-headers");
    assert_null(strstr(c.m.parts[2].body, "the body"));
    case_free(&c);
    returned(&c, DSN_RET_FULL, WHOLE);
    assert_string_equal(field(&c.m.parts[2], "Content-Type"), "message/rfc822");
    assert_non_null(strstr(c.m.parts[2].body, "Subject: hello\r\nMessage-ID: <m1@example.org>\r\n"
                                              "\r\nHi Bob,\r\nthe body.\r\n"));
    assert_true(c.out.full_returned);
    assert_non_null(strstr(c.m.parts[0].body, "A copy of your message is attached"));
    case_free(&c);
}

static void test_ret_full_too_big_returns_headers(void **state)
{
    struct dsn_case c;
    struct sbuf big;
    (void)state;
    sbuf_init(&big);
    sbuf_addstr(&big, HDRS "\r\n");
    while (big.len <= DSN_RETURN_FULL_MAX)
        sbuf_addstr(&big, "01234567890123456789012345678901234567890123456789\r\n");
    returned(&c, DSN_RET_FULL, big.s, big.len);
    assert_string_equal(field(&c.m.parts[2], "Content-Type"), "text/rfc822-headers");
    assert_false(c.out.full_returned);
    assert_non_null(strstr(c.m.parts[0].body, "larger than 100K"));
    assert_true(c.out.msg.len < 8192);
    case_free(&c);
    sbuf_free(&big);
}

static void test_ret_full_long_line_returns_headers(void **state)
{
    struct dsn_case c;
    struct sbuf msg;
    (void)state;
    sbuf_init(&msg);
    sbuf_addstr(&msg, HDRS "\r\n");
    for (int i = 0; i < 1200; i++)
        sbuf_addch(&msg, 'x');
    sbuf_addstr(&msg, "\r\n");
    returned(&c, DSN_RET_FULL, msg.s, msg.len);   /* parse_dsn checks line lengths */
    assert_string_equal(field(&c.m.parts[2], "Content-Type"), "text/rfc822-headers");
    assert_non_null(strstr(c.m.parts[0].body, "cannot be returned unchanged"));
    case_free(&c);
    sbuf_free(&msg);
}

static void test_long_header_line_is_cut(void **state)
{
    struct dsn_case c;
    struct sbuf msg;
    (void)state;
    sbuf_init(&msg);
    sbuf_addstr(&msg, "X-Long: ");
    for (int i = 0; i < 2000; i++)
        sbuf_addch(&msg, 'y');
    sbuf_addstr(&msg, "\r\n" HDRS "\r\n" BODY);
    returned(&c, DSN_RET_UNSET, msg.s, msg.len);
    assert_non_null(strstr(c.m.parts[2].body, "Subject: hello"));
    case_free(&c);
    sbuf_free(&msg);
}

static void test_envid_and_hostile_xtext(void **state)
{
    struct dsn_case c;
    struct entity report;
    (void)state;
    case_init(&c, DSN_RET_UNSET, fail_550());
    envelope_set(&c.env.envid, "QQ314159+2Bx");
    case_build(&c, HEAD_ONLY);
    parse_entity(c.m.parts[1].body, &report);
    assert_string_equal(field(&report, "Original-Envelope-Id"), "QQ314159+x");
    free_entity(&report);
    /* an ENVID decoding to a line break stays encoded: no header injection */
    envelope_set(&c.env.envid, "a+0D+0AX-Injected:+20yes");
    case_build_only(&c, HEAD_ONLY);
    assert_null(strstr(c.out.msg.s, "\r\nX-Injected"));
    assert_non_null(strstr(c.out.msg.s, "Original-Envelope-Id: a+0D+0AX-Injected:+20yes\r\n"));
    case_free(&c);
}

static void test_timed_out_failure(void **state)
{
    struct dsn_case c;
    (void)state;
    case_init(&c, DSN_RET_UNSET,
              result(DLV_DEFERRED, 451, "4.3.0", "451 4.3.0 mailbox busy", MX1));
    c.e.last_attempt = LAST_ATTEMPT;
    c.e.timed_out = true;
    case_build(&c, HEAD_ONLY);
    assert_non_null(strstr(c.m.parts[0].body, "retry timeout exceeded"));
    assert_non_null(strstr(c.m.parts[0].body, "within 5d"));
    assert_non_null(strstr(c.m.parts[1].body, "Action: failed\r\nStatus: 4.3.0\r\n"));
    assert_non_null(
        strstr(c.m.parts[1].body, "Diagnostic-Code: smtp; 451 4.3.0 mailbox busy\r\n"));
    /* a connection that never answered: no SMTP reply to quote */
    c.res = result(DLV_DEFERRED, 0, "", "connect to 192.0.2.7:25: Connection refused", "");
    case_build_only(&c, HEAD_ONLY);
    assert_non_null(strstr(c.out.msg.s, "Status: 4.4.7\r\n"));
    assert_non_null(strstr(c.out.msg.s, "Diagnostic-Code: X-Tandem; connect to 192.0.2.7:25: "
                                        "Connection refused\r\n"));
    case_free(&c);
}

static void test_relayed_notice(void **state)
{
    struct dsn_case c;
    (void)state;
    case_init(&c, DSN_RET_UNSET, result(DLV_DELIVERED, 250, "", "250 2.0.0 queued as X", MX1));
    c.res.relayed_without_dsn = true;
    c.e = (struct dsn_entry){ &c.env.rcpts[1], DSN_RELAYED, &c.res, LAST_ATTEMPT, false };
    case_build(&c, WHOLE);
    assert_string_equal(field(&c.m.top, "Subject"), "Delivery Status Notification (relayed)");
    assert_non_null(strstr(c.m.parts[1].body, "Final-Recipient: rfc822; carol@example.net\r\n"));
    assert_non_null(strstr(c.m.parts[1].body, "Action: relayed\r\nStatus: 2.0.0\r\n"));
    assert_non_null(strstr(c.m.parts[0].body, "does not support\r\ndelivery notifications"));
    case_free(&c);
}

static void test_bare_cr_and_nul_in_content(void **state)
{
    struct dsn_case c;
    static const char msg[] = "Subject: a\rb\r\nX-Nul: a\0b\r\n\r\nbody\rmore\r\n";
    (void)state;
    returned(&c, DSN_RET_FULL, msg, sizeof(msg) - 1);   /* parse_dsn checks lines */
    assert_string_equal(field(&c.m.parts[2], "Content-Type"), "text/rfc822-headers");
    assert_non_null(strstr(c.m.parts[2].body, "Subject: a b\r\nX-Nul: a b\r\n"));
    case_free(&c);
}

static void test_line_breaks_in_values_cannot_forge_fields(void **state)
{
    struct dsn_case c;
    (void)state;
    case_init(&c, DSN_RET_UNSET, fail_550());
    str_copy(c.res.text, "550 x\r\nAction: delivered", sizeof(c.res.text));
    envelope_set(&c.env.rcpts[0].addr, "bob@example.net\r\nX-Evil: 1");
    case_build(&c, HEAD_ONLY);
    assert_null(strstr(c.out.msg.s, "\r\nAction: delivered"));
    assert_null(strstr(c.out.msg.s, "\r\nX-Evil"));
    case_free(&c);
}

static void test_remote_mta_of_an_ip_literal(void **state)
{
    struct dsn_case c;
    (void)state;
    case_init(&c, DSN_RET_UNSET, fail_550());
    str_copy(c.res.host, "[192.0.2.7]:2525", sizeof(c.res.host));
    case_build_only(&c, HEAD_ONLY);
    assert_non_null(strstr(c.out.msg.s, "\r\nRemote-MTA: dns; [192.0.2.7]\r\n"));
    case_free(&c);
}

static void test_boundary_not_in_content(void **state)
{
    struct dsn_case c;
    char content[512];
    (void)state;
    case_init(&c, DSN_RET_FULL, fail_550());
    /* the boundary the first nonce would give, planted in the message */
    str_fmt(content, sizeof(content), HDRS "\r\n--=_tandem_%s_%016llx\r\n", c.env.id, 0x1234ull);
    case_build(&c, content, strlen(content));
    assert_int_equal(c.m.nparts, 3);
    assert_null(strstr(content, c.m.boundary));
    case_free(&c);
}

static void test_eight_bit_content(void **state)
{
    struct dsn_case c;
    const char *msg = "Subject: caf\xc3\xa9\r\n\r\nna\xc3\xafve\r\n";
    (void)state;
    returned(&c, DSN_RET_FULL, msg, strlen(msg));
    assert_true(c.out.eight_bit);
    assert_string_equal(field(&c.m.top, "Content-Transfer-Encoding"), "8bit");
    assert_string_equal(field(&c.m.parts[2], "Content-Transfer-Encoding"), "8bit");
    case_free(&c);
}

/* Who is told: NOTIFY (none: failures only), the action, and never the null sender. */
static const struct {
    const char *sender;
    unsigned notify;
    enum dsn_action action;
    bool wanted;
} notify_rules[] = {
    { "a@x", 0, DSN_FAILED, true },
    { "a@x", 0, DSN_RELAYED, false },
    { "a@x", DSN_NOTIFY_NEVER, DSN_FAILED, false },
    { "a@x", DSN_NOTIFY_NEVER, DSN_RELAYED, false },
    { "a@x", DSN_NOTIFY_SUCCESS, DSN_FAILED, false },
    { "a@x", DSN_NOTIFY_SUCCESS, DSN_RELAYED, true },
    { "a@x", DSN_NOTIFY_DELAY, DSN_FAILED, false },
    { "a@x", DSN_NOTIFY_FAILURE, DSN_FAILED, true },
    { "a@x", DSN_NOTIFY_FAILURE, DSN_RELAYED, false },
    { "a@x", DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE, DSN_FAILED, true },
    { "a@x", DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE, DSN_RELAYED, true },
    { "", DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE, DSN_FAILED, false },
    { "", DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE, DSN_RELAYED, false },
};

static void test_notify_rules(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(notify_rules); i++) {
        struct rcpt r;
        memset(&r, 0, sizeof(r));
        r.notify = notify_rules[i].notify;
        if (bounce_wanted(notify_rules[i].sender, &r, notify_rules[i].action) !=
            notify_rules[i].wanted)
            fail_msg("notify_rules[%zu]: sender <%s> NOTIFY %#x %s: want %s", i,
                     notify_rules[i].sender, notify_rules[i].notify,
                     notify_rules[i].action == DSN_FAILED ? "failed" : "relayed",
                     notify_rules[i].wanted ? "a DSN" : "none");
    }
}

/* spool_conf - a configuration that is enough for bounce_send */
static struct conf spool_conf(const char *dir)
{
    struct conf c;
    memset(&c, 0, sizeof(c));
    c.hostname = "tandem.test";
    c.spool_directory = (char *)dir;
    c.retry_give_up = 5 * 86400;
    return c;
}

/* spool_original - commit the original message into the spool */
static void spool_original(const char *dir, struct envelope *env, enum dsn_ret ret,
                           const char *sender)
{
    const char *content = HDRS "\r\n" BODY;
    original_env(env, ret, NULL);
    envelope_set(&env->sender, sender);
    assert_true(commit_msg(dir, env, content, strlen(content), 0));
}

static void test_send_into_spool(void **state)
{
    const char *dir = fixture_dir(state);
    struct conf c = spool_conf(dir);
    struct envelope orig, got;
    struct dlv_result res = fail_550();
    char id[MSGID_LEN + 1], buf[16384];
    spool_original(dir, &orig, DSN_RET_FULL, "alice@example.org");
    struct dsn_entry e = { &orig.rcpts[0], DSN_FAILED, &res, 1700000400, false };
    assert_true(bounce_send(&c, &orig, &e, 1, id));
    assert_true(msgid_valid(id));
    assert_int_equal(spool_read_envelope(dir, id, &got), 0);
    assert_string_equal(got.sender, "");
    assert_int_equal(got.nrcpts, 1);
    assert_string_equal(got.rcpts[0].addr, "alice@example.org");
    assert_int_equal(got.rcpts[0].notify, DSN_NOTIFY_NEVER);
    assert_string_equal(got.protocol, "local");
    assert_non_null(got.message_id);
    struct spool_reader *r = spool_open_content(dir, id);
    long n = spool_read_content(r, buf, sizeof(buf) - 1);
    spool_close_content(r);
    assert_true(n > 0 && (uint64_t)n == got.size);
    buf[n] = '\0';
    struct parsed m;
    parse_dsn(buf, &m);
    assert_int_equal(m.nparts, 3);
    assert_string_equal(field(&m.parts[2], "Content-Type"), "message/rfc822");
    assert_non_null(strstr(m.parts[2].body, "the body"));   /* read back from the spool */
    free_parsed(&m);
    envelope_free(&got);
    envelope_free(&orig);
}

/* sends_nothing - bounce_send about entries succeeds without a DSN: only orig is spooled */
static void sends_nothing(const struct conf *c, const struct envelope *orig,
                          const struct dsn_entry *entries, size_t n)
{
    char id[MSGID_LEN + 1] = "x", **ids;
    assert_true(bounce_send(c, orig, entries, n, id));
    assert_string_equal(id, "");
    size_t nids = spool_list(c->spool_directory, &ids);
    assert_int_equal(nids, 1);   /* only the original */
    spool_list_free(ids, nids);
}

static void test_no_bounce_to_null_sender(void **state)
{
    const char *dir = fixture_dir(state);
    struct conf c = spool_conf(dir);
    struct envelope orig;
    struct dlv_result res = fail_550();
    spool_original(dir, &orig, DSN_RET_UNSET, "");
    struct dsn_entry e = { &orig.rcpts[0], DSN_FAILED, &res, 0, false };
    sends_nothing(&c, &orig, &e, 1);
    envelope_free(&orig);
}

static void test_nothing_wanted_sends_nothing(void **state)
{
    const char *dir = fixture_dir(state);
    struct conf c = spool_conf(dir);
    struct envelope orig;
    struct dlv_result res = fail_550();
    spool_original(dir, &orig, DSN_RET_UNSET, "alice@example.org");
    orig.rcpts[0].notify = DSN_NOTIFY_NEVER;
    struct dsn_entry e[2] = { { &orig.rcpts[0], DSN_FAILED, &res, 0, false },
                              { &orig.rcpts[1], DSN_FAILED, &res, 0, false } };  /* SUCCESS only */
    sends_nothing(&c, &orig, e, 2);
    envelope_free(&orig);
}

#define SPOOL_TEST(t) \
    cmocka_unit_test_setup_teardown(t, spool_fixture_setup, spool_fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failure_structure),
        cmocka_unit_test(test_ret_hdrs_and_full),
        cmocka_unit_test(test_ret_full_too_big_returns_headers),
        cmocka_unit_test(test_ret_full_long_line_returns_headers),
        cmocka_unit_test(test_long_header_line_is_cut),
        cmocka_unit_test(test_envid_and_hostile_xtext),
        cmocka_unit_test(test_timed_out_failure),
        cmocka_unit_test(test_relayed_notice),
        cmocka_unit_test(test_bare_cr_and_nul_in_content),
        cmocka_unit_test(test_line_breaks_in_values_cannot_forge_fields),
        cmocka_unit_test(test_remote_mta_of_an_ip_literal),
        cmocka_unit_test(test_boundary_not_in_content),
        cmocka_unit_test(test_eight_bit_content),
        cmocka_unit_test(test_notify_rules),
        SPOOL_TEST(test_send_into_spool),
        SPOOL_TEST(test_no_bounce_to_null_sender),
        SPOOL_TEST(test_nothing_wanted_sends_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
