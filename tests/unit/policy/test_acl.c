/* test_acl.c - ACL evaluation with Exim's semantics: verbs, conditions, modifiers, verify
 * hooks (synchronous, asynchronous, re-entrant, cancelled) and delays on an event base. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <fcntl.h>

#include "conf_testutil.h"
#include "core/core.h"
#include "policy/policy.h"

static char logdir[64];

/* mainlog - what has been logged since the last call */
static char *mainlog(void)
{
    static off_t seen;
    char path[128];
    struct sbuf b;
    char buf[4096];
    ssize_t n;
    str_fmt(path, sizeof(path), "%s/mainlog", logdir);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    lseek(fd, seen, SEEK_SET);
    sbuf_init(&b);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        sbuf_add(&b, buf, (size_t)n);
    close(fd);
    seen += (off_t)b.len;
    return sbuf_steal(&b);
}

static int group_setup(void **state)
{
    (void)state;
    str_copy(logdir, "/tmp/tandem-acl-XXXXXX", sizeof(logdir));
    if (mkdtemp(logdir) == NULL || !log_open(logdir))
        return -1;
    free(mainlog());
    return 0;
}

static int group_teardown(void **state)
{
    char path[128];
    (void)state;
    const char *names[] = { "mainlog", "rejectlog", "paniclog" };
    for (size_t i = 0; i < ARRAY_LEN(names); i++) {
        str_fmt(path, sizeof(path), "%s/%s", logdir, names[i]);
        unlink(path);
    }
    rmdir(logdir);
    return 0;
}

/* An ACL section, loaded: the configuration and its ACL called "a". */
struct fixture {
    struct conf *conf;
    const struct acl *acl;
};

static struct fixture load_acl(const char *stmts)
{
    struct sbuf text, errs;
    struct fixture fx;
    sbuf_init(&text);
    sbuf_printf(&text, "domainlist local = example.org : *.example.org\n"
                       "hostlist friends = 192.0.2.0/24 : ::1\n"
                       "addresslist bad = spam@* : *@spam.example\n"
                       "begin acl\na:\n%s", stmts);
    fx.conf = tu_load(text.s, &errs);
    if (fx.conf == NULL)
        fail_msg("ACL did not load:\n%s", errs.s);
    fx.acl = conf_find_acl(fx.conf, "a");
    sbuf_free(&text);
    sbuf_free(&errs);
    return fx;
}

/* What the verify hook sees and does. */
struct hook {
    int calls, cancels;
    enum verify_what what;
    struct callout_opts opts;
    bool async;               /* keep the run for a later acl_verify_done */
    enum verify_result res;
    const char *reply;
    struct acl_run *pending;
};

static void hook_verify(void *arg, struct acl_run *run, enum verify_what what,
                        const struct callout_opts *opts)
{
    struct hook *h = arg;
    h->calls++;
    h->what = what;
    h->opts = *opts;
    if (h->async)
        h->pending = run;
    else
        acl_verify_done(run, h->res, h->reply); /* re-entrant: before verify() returns */
}

static void hook_cancel(void *arg, struct acl_run *run)
{
    struct hook *h = arg;
    assert_ptr_equal(run, h->pending);
    h->cancels++;
}

static const struct acl_hooks hooks = { .verify = hook_verify, .cancel = hook_cancel };

static const struct acl_vars rcpt_vars = {
    .sender_host_address = "192.0.2.9",
    .sender_helo_name = "client.example",
    .sender_address = "alice@sender.example",
    .local_part = "bob",
    .domain = "example.org",
    .primary_hostname = "mx.tandem.example",
};

/* Results of one synchronous evaluation. */
struct result {
    enum acl_result result;
    char *message, *log_message, *verify_reply, *headers;
    bool cutthrough, callout;
    struct cutthrough_opts cut;
};

static struct result outcome_copy(const struct acl_outcome *o)
{
    struct result r = {
        .result = o->result,
        .message = o->message ? xstrdup(o->message) : NULL,
        .log_message = o->log_message ? xstrdup(o->log_message) : NULL,
        .verify_reply = o->verify_reply ? xstrdup(o->verify_reply) : NULL,
        .headers = xstrdup(o->headers.s ? o->headers.s : ""),
        .cutthrough = o->cutthrough,
        .callout = o->verified_recipient_callout,
        .cut = o->cut,
    };
    return r;
}

static void result_free(struct result *r)
{
    free(r->message);
    free(r->log_message);
    free(r->verify_reply);
    free(r->headers);
}

/* run - evaluate stmts (synchronously) with vars and a verify hook */
static struct result run_with(const char *stmts, enum acl_stage stage, const struct acl_vars *vars,
                              struct hook *h)
{
    struct fixture fx = load_acl(stmts);
    struct acl_run *run = acl_run_new(fx.acl, stage, vars, h ? &hooks : NULL, h, NULL, NULL, NULL);
    if (!acl_run_start(run))
        fail_msg("evaluation did not complete synchronously");
    struct result r = outcome_copy(acl_run_outcome(run));
    acl_run_free(run);
    conf_free(fx.conf);
    return r;
}

static enum acl_result verdict(const char *stmts, const struct acl_vars *vars)
{
    struct result r = run_with(stmts, ACL_RCPT, vars, NULL);
    result_free(&r);
    return r.result;
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(acl_result_name(ACL_ACCEPT), "accept");
    assert_string_equal(acl_result_name(ACL_DENY), "deny");
    assert_string_equal(acl_result_name(ACL_DEFER), "defer");
    assert_string_equal(acl_result_name(ACL_DISCARD), "discard");
    assert_string_equal(acl_result_name(ACL_DROP), "drop");
    assert_string_equal(acl_stage_name(ACL_CONNECT), "connect");
    assert_string_equal(acl_stage_name(ACL_HELO), "helo");
    assert_string_equal(acl_stage_name(ACL_MAIL), "mail");
    assert_string_equal(acl_stage_name(ACL_RCPT), "rcpt");
    assert_string_equal(acl_stage_name(ACL_PREDATA), "predata");
    assert_string_equal(acl_stage_name(ACL_DATA), "data");
    assert_string_equal(acl_stage_name(ACL_NSTAGES), "?");
}

/* verdict_case - ACL statements, what the session looks like, and the verdict they must give */
struct verdict_case {
    const char *stmts;
    const struct acl_vars *vars;
    enum acl_result want;
};

/* run_verdicts - every row of t gives its verdict; a failure names "name[i]" */
static void run_verdicts(const struct verdict_case *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        enum acl_result got = verdict(t[i].stmts, t[i].vars);
        if (got != t[i].want)
            fail_msg("%s[%zu]: %s, want %s; the ACL:\n%s", name, i, acl_result_name(got),
                     acl_result_name(t[i].want), t[i].stmts);
    }
}
#define RUN_VERDICTS(table) run_verdicts((table), ARRAY_LEN(table), #table)

static const struct verdict_case verb_cases[] = {
    { "accept\n", &rcpt_vars, ACL_ACCEPT },
    { "deny\n", &rcpt_vars, ACL_DENY },
    { "defer\n", &rcpt_vars, ACL_DEFER },
    { "discard\n", &rcpt_vars, ACL_DISCARD },
    { "drop\n", &rcpt_vars, ACL_DROP },
    { "require\naccept\n", &rcpt_vars, ACL_ACCEPT },
    { "warn\naccept\n", &rcpt_vars, ACL_ACCEPT },
    { "warn\n", &rcpt_vars, ACL_DENY },   /* falls off the end */
    { "require\n", &rcpt_vars, ACL_DENY },
    { "", &rcpt_vars, ACL_DENY },         /* an empty ACL */
    /* the first statement whose conditions all hold decides */
    { "deny hosts = 10.0.0.0/8\naccept hosts = 192.0.2.0/24\ndeny\n", &rcpt_vars, ACL_ACCEPT },
};

static void test_verbs(void **state)
{
    (void)state;
    RUN_VERDICTS(verb_cases);
}

static void test_null_acl(void **state)
{
    (void)state;
    for (int s = 0; s < ACL_NSTAGES; s++) {
        struct acl_run *run = acl_run_new(NULL, (enum acl_stage)s, &rcpt_vars, NULL, NULL, NULL,
                                          NULL, NULL);
        assert_true(acl_run_start(run));
        assert_int_equal(acl_run_outcome(run)->result, s == ACL_RCPT ? ACL_DENY : ACL_ACCEPT);
        acl_run_free(run);
    }
    acl_run_free(NULL);
}

/* rcpt_vars for another recipient, from the null sender, with a verified host name. */
static const struct acl_vars carol_vars = {
    .sender_host_address = "192.0.2.9",
    .sender_helo_name = "client.example",
    .sender_address = "",
    .local_part = "bob",
    .domain = "example.org",
    .recipient = "Carol@Example.org",
    .primary_hostname = "mx.tandem.example",
    .sender_host_name = "client.friends.example",
};

/* No remote host (a local submission), outside RCPT. */
static const struct acl_vars local_vars = { .sender_address = "a@b.example" };

static const struct verdict_case condition_cases[] = {
    { "accept hosts = +friends\n", &rcpt_vars, ACL_ACCEPT },
    { "accept !hosts = +friends\n", &rcpt_vars, ACL_DENY },
    { "accept hosts = !+friends\n", &rcpt_vars, ACL_DENY },
    { "accept domains = +local\n", &rcpt_vars, ACL_ACCEPT },
    { "accept domains = other.example\n", &rcpt_vars, ACL_DENY },
    { "accept local_parts = BOB : postmaster\n", &rcpt_vars, ACL_ACCEPT },
    { "accept senders = *@sender.example\n", &rcpt_vars, ACL_ACCEPT },
    { "accept senders = +bad\n", &rcpt_vars, ACL_DENY },
    { "accept recipients = bob@+local\n", &rcpt_vars, ACL_ACCEPT }, /* built from lp@domain */
    { "accept recipients = bob@other.example\n", &rcpt_vars, ACL_DENY },
    /* all conditions must hold (an "and"); repeated conditions are allowed */
    { "accept hosts = +friends\n domains = +local\n senders = !+bad\n", &rcpt_vars, ACL_ACCEPT },
    { "accept hosts = +friends\n domains = x.example\n", &rcpt_vars, ACL_DENY },
    { "accept recipients = carol@example.org\n", &carol_vars, ACL_ACCEPT },
    { "accept senders = :\n", &carol_vars, ACL_ACCEPT }, /* the null sender */
    { "accept hosts = *.friends.example\n", &carol_vars, ACL_ACCEPT },
    /* no remote host: only "" and "*" match */
    { "accept hosts = :\n", &local_vars, ACL_ACCEPT },
    { "accept hosts = 0.0.0.0/0\n", &local_vars, ACL_DENY },
    /* unknown variables are empty: a domains condition outside RCPT */
    { "accept domains = *.example.org\n", &local_vars, ACL_DENY },
    { "accept domains = :\n", &local_vars, ACL_ACCEPT },
    { "accept domains = *\n", NULL, ACL_ACCEPT },
};

static void test_conditions(void **state)
{
    (void)state;
    RUN_VERDICTS(condition_cases);
}

static void test_require_and_messages(void **state)
{
    (void)state;
    /* require: the message seen before the failing condition is used */
    struct result r = run_with("require message = Can't verify sender\n"
                               "        hosts = 10.0.0.0/8\n"
                               "        message = never used\n"
                               "accept\n", ACL_RCPT, &rcpt_vars, NULL);
    assert_int_equal(r.result, ACL_DENY);
    assert_string_equal(r.message, "Can't verify sender");
    result_free(&r);
    /* deny: the last message, even after the conditions; variables expanded */
    r = run_with("deny   message = first\n"
                 "       hosts = +friends\n"
                 "       message = 550 no relay for $local_part@${domain} from [$sender_host_address]\n"
                 "       log_message = H=$sender_helo_name F=<$sender_address> on $primary_hostname\n",
                 ACL_RCPT, &rcpt_vars, NULL);
    assert_int_equal(r.result, ACL_DENY);
    assert_string_equal(r.message, "550 no relay for bob@example.org from [192.0.2.9]");
    assert_string_equal(r.log_message, "H=client.example F=<alice@sender.example> on mx.tandem.example");
    result_free(&r);
    /* a statement that does not fire leaves no message behind; accept carries its own */
    r = run_with("deny message = not me\n hosts = 10.0.0.0/8\n"
                 "accept message = 250 welcome $message_id\n", ACL_RCPT, &rcpt_vars, NULL);
    assert_int_equal(r.result, ACL_ACCEPT);
    assert_string_equal(r.message, "250 welcome ");
    assert_null(r.log_message);
    result_free(&r);
    /* an empty expansion is ignored; falling off the end has no message */
    r = run_with("deny message = $message_id\n", ACL_RCPT, &rcpt_vars, NULL);
    assert_null(r.message);
    result_free(&r);
    r = run_with("deny message = x\n hosts = 10.0.0.0/8\n", ACL_RCPT, &rcpt_vars, NULL);
    assert_int_equal(r.result, ACL_DENY);
    assert_null(r.message);
    result_free(&r);
}

static void test_control_chars_in_values(void **state)
{
    (void)state;
    struct acl_vars v = rcpt_vars;
    v.sender_helo_name = "evil\r\n250 ok\x01";
    struct result r = run_with("deny message = bad HELO $sender_helo_name\n", ACL_RCPT, &v, NULL);
    assert_string_equal(r.message, "bad HELO evil??250 ok?");
    result_free(&r);
}

static void test_warn_and_logwrite(void **state)
{
    (void)state;
    free(mainlog());
    struct acl_vars v = rcpt_vars;
    v.message_id = "1tQxyz-000abc-Zz";
    struct result r = run_with("warn   logwrite = reached $local_part\n"
                               "       hosts = 10.0.0.0/8\n"
                               "       logwrite = not reached\n"
                               "warn   log_message = suspicious $sender_address\n"
                               "       hosts = +friends\n"
                               "warn   log_message = not logged\n"
                               "       hosts = 10.0.0.0/8\n"
                               "accept\n", ACL_DATA, &v, NULL);
    assert_int_equal(r.result, ACL_ACCEPT);
    assert_null(r.log_message);
    result_free(&r);
    char *log = mainlog();
    assert_non_null(strstr(log, " 1tQxyz-000abc-Zz reached bob\n"));
    assert_non_null(strstr(log, " 1tQxyz-000abc-Zz H=(client.example) [192.0.2.9] "
                               "Warning: suspicious alice@sender.example\n"));
    assert_null(strstr(log, "not reached"));
    assert_null(strstr(log, "not logged"));
    free(log);
}

static void test_add_header(void **state)
{
    (void)state;
    /* add_header acts as soon as it is reached, whatever the verb; duplicates once */
    struct result r = run_with("accept add_header = X-First: $domain\n"
                               "       hosts = 10.0.0.0/8\n"
                               "       add_header = X-Never: 1\n"
                               "warn   add_header = X-First: $domain\n"
                               "       add_header = not a header\n"
                               "       message = X-Legacy: warn message\n"
                               "warn   message = X-Not: conditions failed\n"
                               "       hosts = 10.0.0.0/8\n"
                               "deny   add_header = X-Deny: yes\n", ACL_RCPT, &rcpt_vars, NULL);
    assert_int_equal(r.result, ACL_DENY);
    assert_string_equal(r.headers, "X-First: example.org\r\n"
                                   "X-ACL-Warn: not a header\r\n"
                                   "X-Legacy: warn message\r\n"
                                   "X-Deny: yes\r\n");
    result_free(&r);
}

static void test_control(void **state)
{
    (void)state;
    struct result r = run_with("accept control = cutthrough_delivery/defer=pass/split=spool\n",
                               ACL_RCPT, &rcpt_vars, NULL);
    assert_true(r.cutthrough);
    assert_int_equal(r.cut.defer, CUT_DEFER_PASS);
    assert_int_equal(r.cut.split, CUT_SPLIT_SPOOL);
    result_free(&r);
    /* Exim: a control takes effect when reached, even if the statement then fails */
    r = run_with("accept control = cutthrough_delivery\n hosts = 10.0.0.0/8\naccept\n",
                 ACL_RCPT, &rcpt_vars, NULL);
    assert_true(r.cutthrough);
    assert_int_equal(r.cut.defer, CUT_DEFER_SPOOL);
    result_free(&r);
    r = run_with("accept hosts = 10.0.0.0/8\n control = cutthrough_delivery\naccept\n",
                 ACL_RCPT, &rcpt_vars, NULL);
    assert_false(r.cutthrough);
    result_free(&r);
}

static void test_verify_sync(void **state)
{
    (void)state;
    struct hook h = { .res = VERIFY_OK };
    struct result r = run_with("require verify = recipient\naccept\n", ACL_RCPT, &rcpt_vars, &h);
    assert_int_equal(r.result, ACL_ACCEPT);
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.what, VERIFY_RECIPIENT);
    assert_false(h.opts.enabled);
    assert_null(r.verify_reply);
    result_free(&r);

    h = (struct hook){ .res = VERIFY_FAIL, .reply = "550-5.1.1 <bob@example.org>: no such user\r\n"
                                                    "550 5.1.1 try again never" };
    r = run_with("require message = rejected: $acl_verify_message\n"
                 "        verify = sender\n", ACL_MAIL, &rcpt_vars, &h);
    assert_int_equal(r.result, ACL_DENY);
    assert_int_equal(h.what, VERIFY_SENDER);
    assert_string_equal(r.verify_reply, h.reply);
    assert_string_equal(r.message, "rejected: 550 5.1.1 <bob@example.org>: no such user try again never");
    result_free(&r);

    /* negated: deny !verify = recipient denies when verification fails */
    h = (struct hook){ .res = VERIFY_FAIL, .reply = "550 5.1.1 unknown" };
    r = run_with("deny !verify = recipient\naccept\n", ACL_RCPT, &rcpt_vars, &h);
    assert_int_equal(r.result, ACL_DENY);
    assert_string_equal(r.verify_reply, "550 5.1.1 unknown");
    assert_null(r.message);
    result_free(&r);
    h = (struct hook){ .res = VERIFY_OK };
    r = run_with("deny !verify = helo\naccept\n", ACL_HELO, &rcpt_vars, &h);
    assert_int_equal(r.result, ACL_ACCEPT);
    assert_int_equal(h.what, VERIFY_HELO);
    result_free(&r);
}

static void test_verify_defer(void **state)
{
    (void)state;
    /* a deferred verification makes the ACL defer, negated or not; messages are not used */
    struct hook h = { .res = VERIFY_DEFER, .reply = "451 4.4.3 try later" };
    struct result r = run_with("require message = no\n verify = recipient/callout\naccept\n",
                               ACL_RCPT, &rcpt_vars, &h);
    assert_int_equal(r.result, ACL_DEFER);
    assert_string_equal(r.verify_reply, "451 4.4.3 try later");
    assert_null(r.message);
    result_free(&r);
    r = run_with("deny !verify = recipient/callout\naccept\n", ACL_RCPT, &rcpt_vars, &h);
    assert_int_equal(r.result, ACL_DEFER);
    result_free(&r);
    /* defer_ok: a deferred callout counts as verified */
    r = run_with("require verify = recipient/callout=5s,defer_ok\naccept\n", ACL_RCPT, &rcpt_vars, &h);
    assert_int_equal(r.result, ACL_ACCEPT);
    assert_null(r.verify_reply);
    assert_true(h.opts.defer_ok);
    assert_int_equal(h.opts.timeout, 5);
    result_free(&r);
    /* defer_ok does not turn a failure into success */
    h.res = VERIFY_FAIL;
    r = run_with("require verify = recipient/callout=defer_ok\naccept\n", ACL_RCPT, &rcpt_vars, &h);
    assert_int_equal(r.result, ACL_DENY);
    result_free(&r);
    /* in warn, a defer skips the statement and the ACL goes on */
    free(mainlog());
    h.res = VERIFY_DEFER;
    r = run_with("warn verify = sender\n log_message = never\naccept\n", ACL_MAIL, &rcpt_vars, &h);
    assert_int_equal(r.result, ACL_ACCEPT);
    result_free(&r);
    char *log = mainlog();
    assert_non_null(strstr(log, "ACL \"warn\" statement skipped: condition test deferred"));
    assert_null(strstr(log, "never"));
    free(log);
    /* no hooks (or no verify hook): verification defers */
    r = run_with("require verify = recipient\naccept\n", ACL_RCPT, &rcpt_vars, NULL);
    assert_int_equal(r.result, ACL_DEFER);
    assert_null(r.verify_reply);
    result_free(&r);
    struct fixture fx = load_acl("require verify = helo\naccept\n");
    static const struct acl_hooks empty_hooks = { .verify = NULL };
    struct acl_run *run = acl_run_new(fx.acl, ACL_HELO, &rcpt_vars, &empty_hooks, NULL, NULL, NULL, NULL);
    assert_true(acl_run_start(run));
    assert_int_equal(acl_run_outcome(run)->result, ACL_DEFER);
    acl_run_free(run);
    conf_free(fx.conf);
}

/* lookup_defer - a lookup whose file is missing: the condition defers, negated or not, in
 * every list condition; in warn the statement is skipped; the reason is logged */
static void test_lookup_defer(void **state)
{
    (void)state;
    char stmts[512], dir[64];
    str_copy(dir, "/tmp/tandem-acl-lk-XXXXXX", sizeof(dir));
    assert_non_null(mkdtemp(dir));
    static const char *const conds[] = { "recipients = lsearch;%s/none",
                                         "!recipients = lsearch;%s/none",
                                         "senders = cdb;%s/none.cdb", "domains = lsearch;%s/none",
                                         "local_parts = lsearch;%s/none",
                                         "hosts = net-lsearch;%s/none" };
    for (size_t i = 0; i < ARRAY_LEN(conds); i++) {
        char cond[128];
        str_fmt(cond, sizeof(cond), conds[i], dir);
        str_fmt(stmts, sizeof(stmts), "deny message = listed\n %s\naccept\n", cond);
        struct result r = run_with(stmts, ACL_RCPT, &rcpt_vars, NULL);
        assert_int_equal(r.result, ACL_DEFER);
        assert_null(r.message);
        assert_non_null(r.log_message);
        assert_non_null(strstr(r.log_message, "/none"));
        assert_non_null(strstr(r.log_message, "cannot open"));
        result_free(&r);
    }
    /* an earlier statement that decides never reaches the lookup */
    str_fmt(stmts, sizeof(stmts), "accept domains = example.org\ndeny recipients = lsearch;%s/none\n",
            dir);
    assert_int_equal(verdict(stmts, &rcpt_vars), ACL_ACCEPT);
    /* warn: skipped, with the reason */
    free(mainlog());
    str_fmt(stmts, sizeof(stmts), "warn recipients = lsearch;%s/none\naccept\n", dir);
    assert_int_equal(verdict(stmts, &rcpt_vars), ACL_ACCEPT);
    char *log = mainlog();
    assert_non_null(strstr(log, "ACL \"warn\" statement skipped: condition test deferred: lsearch;"));
    free(log);
    /* the file appears: the lookup answers (a fresh configuration reads it at once) */
    char path[128];
    str_fmt(path, sizeof(path), "%s/none", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("bob@example.org\n", f);
    fclose(f);
    str_fmt(stmts, sizeof(stmts), "deny recipients = lsearch;%s/none\naccept\n", dir);
    assert_int_equal(verdict(stmts, &rcpt_vars), ACL_DENY);
    unlink(path);
    rmdir(dir);
}

static void test_verify_warn_message(void **state)
{
    (void)state;
    free(mainlog());
    struct hook h = { .res = VERIFY_FAIL, .reply = "550 5.7.1 sender rejected" };
    struct result r = run_with("warn   !verify = sender\n"
                               "       log_message = sender verify failed: $acl_verify_message\n"
                               "accept\n", ACL_MAIL, &rcpt_vars, &h);
    assert_int_equal(r.result, ACL_ACCEPT);
    result_free(&r);
    char *log = mainlog();
    assert_non_null(strstr(log, "Warning: sender verify failed: 550 5.7.1 sender rejected\n"));
    free(log);
}

/* Exim: a warn statement's failed verification is not the reply of a later refusal (the
 * statement clears it), but an accept's is (implicit deny after "accept verify = ..."). */
static void test_verify_reply_after_warn(void **state)
{
    (void)state;
    struct hook h = { .res = VERIFY_FAIL, .reply = "550 5.1.2 Unrouteable address" };
    struct result r = run_with("warn   !verify = recipient\n"
                               "deny   local_parts = bob\n", ACL_RCPT, &rcpt_vars, &h);
    assert_int_equal(r.result, ACL_DENY);
    assert_null(r.verify_reply);
    result_free(&r);
    r = run_with("warn   !verify = recipient\n"
                 "deny   message = was: $acl_verify_message\n", ACL_RCPT, &rcpt_vars, &h);
    assert_string_equal(r.message, "was: 550 5.1.2 Unrouteable address");
    result_free(&r);
    r = run_with("accept verify = recipient\n", ACL_RCPT, &rcpt_vars, &h);
    assert_int_equal(r.result, ACL_DENY);
    assert_string_equal(r.verify_reply, "550 5.1.2 Unrouteable address");
    result_free(&r);
}

static void test_callout_options(void **state)
{
    (void)state;
    struct hook h = { .res = VERIFY_OK };
    struct result r = run_with("require verify = recipient/callout=10s,random,no_cache,use_postmaster\n"
                               "accept\n", ACL_RCPT, &rcpt_vars, &h);
    assert_true(h.opts.enabled && h.opts.random && h.opts.no_cache && h.opts.use_postmaster);
    assert_false(h.opts.use_sender);
    assert_int_equal(h.opts.timeout, 10);
    assert_true(r.callout);
    result_free(&r);
    /* an ACL that sets cutthrough_delivery calls out with the real sender */
    r = run_with("require verify = recipient/callout\n"
                 "accept  control = cutthrough_delivery\n", ACL_RCPT, &rcpt_vars, &h);
    assert_true(h.opts.use_sender);
    assert_true(r.callout && r.cutthrough);
    result_free(&r);
    r = run_with("require verify = sender/callout\naccept\n", ACL_MAIL, &rcpt_vars, &h);
    assert_false(r.callout); /* a sender callout is not the recipient's connection */
    result_free(&r);
}

/* Completion of an asynchronous evaluation. */
struct done {
    int calls;
    enum acl_result result;
    struct event_base *base;
    bool free_in_done;
};

static void on_done(void *arg, struct acl_run *run)
{
    struct done *d = arg;
    d->calls++;
    d->result = acl_run_outcome(run)->result;
    if (d->base != NULL)
        event_base_loopbreak(d->base);
    if (d->free_in_done)
        acl_run_free(run);
}

static void test_verify_async(void **state)
{
    (void)state;
    struct fixture fx = load_acl("require verify = sender\n"
                                 "deny    !verify = recipient/callout\n"
                                 "        message = $acl_verify_message\n"
                                 "accept\n");
    struct hook h = { .async = true };
    struct done d = { 0 };
    struct acl_run *run = acl_run_new(fx.acl, ACL_RCPT, &rcpt_vars, &hooks, &h, NULL, on_done, &d);
    assert_false(acl_run_start(run));
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.what, VERIFY_SENDER);
    assert_int_equal(d.calls, 0);
    acl_verify_done(h.pending, VERIFY_OK, NULL); /* resumes, then waits on the second verify */
    assert_int_equal(h.calls, 2);
    assert_int_equal(h.what, VERIFY_RECIPIENT);
    assert_int_equal(d.calls, 0);
    acl_verify_done(h.pending, VERIFY_FAIL, "550 5.1.1 no mailbox here");
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.result, ACL_DENY);
    assert_string_equal(acl_run_outcome(run)->message, "550 5.1.1 no mailbox here");
    /* a stray completion is ignored (and logged to the panic log) */
    acl_verify_done(run, VERIFY_OK, NULL);
    assert_int_equal(d.calls, 1);
    acl_run_free(run);

    /* the done callback may free the run */
    d = (struct done){ .free_in_done = true };
    run = acl_run_new(fx.acl, ACL_RCPT, &rcpt_vars, &hooks, &h, NULL, on_done, &d);
    assert_false(acl_run_start(run));
    acl_verify_done(h.pending, VERIFY_OK, NULL);
    acl_verify_done(h.pending, VERIFY_OK, NULL);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.result, ACL_ACCEPT);
    conf_free(fx.conf);
}

static void test_verify_cancel(void **state)
{
    (void)state;
    struct fixture fx = load_acl("require verify = recipient/callout\naccept\n");
    struct hook h = { .async = true };
    struct done d = { 0 };
    struct acl_run *run = acl_run_new(fx.acl, ACL_RCPT, &rcpt_vars, &hooks, &h, NULL, on_done, &d);
    assert_false(acl_run_start(run));
    acl_run_free(run); /* the session went away while the callout was running */
    assert_int_equal(h.cancels, 1);
    assert_int_equal(d.calls, 0);
    conf_free(fx.conf);
}

static void test_delay(void **state)
{
    (void)state;
    struct fixture fx = load_acl("warn   delay = 1s\n"
                                 "       add_header = X-Delayed: yes\n"
                                 "accept delay = 0s\n");
    struct event_base *base = event_base_new();
    struct done d = { .base = base };
    struct acl_run *run = acl_run_new(fx.acl, ACL_CONNECT, &rcpt_vars, NULL, NULL, base, on_done, &d);
    uint64_t t0 = now_mono_ms();
    assert_false(acl_run_start(run));
    assert_int_equal(d.calls, 0);
    event_base_dispatch(base);
    uint64_t elapsed = now_mono_ms() - t0;
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.result, ACL_ACCEPT);
    assert_true(elapsed >= 990 && elapsed < 3000);
    assert_string_equal(acl_run_outcome(run)->headers.s, "X-Delayed: yes\r\n");
    acl_run_free(run);

    /* without an event base there is no waiting (as under exim -bh) */
    run = acl_run_new(fx.acl, ACL_CONNECT, &rcpt_vars, NULL, NULL, NULL, on_done, &d);
    assert_true(acl_run_start(run));
    acl_run_free(run);

    /* freeing a run during its delay cancels the timer */
    run = acl_run_new(fx.acl, ACL_CONNECT, &rcpt_vars, NULL, NULL, base, on_done, &d);
    assert_false(acl_run_start(run));
    acl_run_free(run);
    assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 1); /* nothing left pending */
    assert_int_equal(d.calls, 1);
    event_base_free(base);
    conf_free(fx.conf);
}

static void test_delay_then_async_verify(void **state)
{
    (void)state;
    struct fixture fx = load_acl("deny  delay = 1s\n"
                                 "      !verify = recipient\n"
                                 "      message = unknown user\n"
                                 "accept\n");
    struct event_base *base = event_base_new();
    struct hook h = { .res = VERIFY_FAIL, .reply = "550 no" }; /* synchronous after the delay */
    struct done d = { .base = base };
    struct acl_run *run = acl_run_new(fx.acl, ACL_RCPT, &rcpt_vars, &hooks, &h, base, on_done, &d);
    assert_false(acl_run_start(run));
    event_base_dispatch(base);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.result, ACL_DENY);
    assert_string_equal(acl_run_outcome(run)->message, "unknown user");
    acl_run_free(run);
    event_base_free(base);
    conf_free(fx.conf);
}

static void test_vars_are_copied(void **state)
{
    (void)state;
    struct fixture fx = load_acl("require verify = recipient\n"
                                 "deny message = $local_part@$domain\n");
    char lp[16] = "bob";
    struct acl_vars v = rcpt_vars;
    v.local_part = lp;
    struct hook h = { .async = true };
    struct done d = { 0 };
    struct acl_run *run = acl_run_new(fx.acl, ACL_RCPT, &v, &hooks, &h, NULL, on_done, &d);
    assert_false(acl_run_start(run));
    str_copy(lp, "changed", sizeof(lp)); /* the session reuses its buffer meanwhile */
    acl_verify_done(h.pending, VERIFY_OK, NULL);
    assert_string_equal(acl_run_outcome(run)->message, "bob@example.org");
    acl_run_free(run);
    conf_free(fx.conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_verbs),
        cmocka_unit_test(test_null_acl),
        cmocka_unit_test(test_conditions),
        cmocka_unit_test(test_require_and_messages),
        cmocka_unit_test(test_control_chars_in_values),
        cmocka_unit_test(test_warn_and_logwrite),
        cmocka_unit_test(test_add_header),
        cmocka_unit_test(test_control),
        cmocka_unit_test(test_verify_sync),
        cmocka_unit_test(test_verify_defer),
        cmocka_unit_test(test_verify_warn_message),
        cmocka_unit_test(test_verify_reply_after_warn),
        cmocka_unit_test(test_callout_options),
        cmocka_unit_test(test_lookup_defer),
        cmocka_unit_test(test_verify_async),
        cmocka_unit_test(test_verify_cancel),
        cmocka_unit_test(test_delay),
        cmocka_unit_test(test_delay_then_async_verify),
        cmocka_unit_test(test_vars_are_copied),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
