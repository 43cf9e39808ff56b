/* test_conf.c - configuration loading: defaults, every option type, syntax (comments,
 * continuations, quotes), named lists, routes, ACL compilation, and every error form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "conf_testutil.h"

/* load - text that must load */
static struct conf *load(const char *text)
{
    struct sbuf errs;
    struct conf *c = tu_load(text, &errs);
    if (c == NULL)
        fail_msg("config did not load:\n%s", errs.s ? errs.s : "");
    sbuf_free(&errs);
    return c;
}

/* route_for - the route for domain, which must not defer */
static const struct route *route_for(const struct conf *c, const char *domain)
{
    const struct route *r;
    assert_int_not_equal(conf_route_find(c, domain, &r, NULL), LIST_DEFER);
    return r;
}

/* expect_errors - text must fail with exactly these error lines ("F:LINE: msg\n"...) */
static void expect_errors(const char *text, const char *want)
{
    char *got = tu_errors(text);
    if (got == NULL)
        fail_msg("config loaded but should fail with:\n%s", want);
    assert_string_equal(got, want);
    free(got);
}

/* conf_error - a configuration text that must fail with one error, at line, containing want */
struct conf_error {
    const char *text;
    int line;
    const char *want;
};

/* expect_error - where names the case; its text fails with its one error */
static void expect_error(const struct conf_error *e, const char *where)
{
    char *got = tu_errors(e->text);
    char prefix[32];
    if (got == NULL)
        fail_msg("%s: config loaded but should fail with: %s", where, e->want);
    str_fmt(prefix, sizeof(prefix), "F:%d: ", e->line);
    if (strncmp(got, prefix, strlen(prefix)) != 0 || strstr(got, e->want) == NULL ||
        strchr(got, '\n') != got + strlen(got) - 1)
        fail_msg("%s: got:\n%swanted one error at line %d containing: %s\nconfig:\n%s", where, got,
                 e->line, e->want, e->text);
    free(got);
}

/* run_conf_errors - expect_error on every row of t, named "name[i]" */
static void run_conf_errors(const struct conf_error *t, size_t n, const char *name)
{
    char where[64];
    for (size_t i = 0; i < n; i++) {
        str_fmt(where, sizeof(where), "%s[%zu]", name, i);
        expect_error(&t[i], where);
    }
}
#define RUN_CONF_ERRORS(table) run_conf_errors((table), ARRAY_LEN(table), #table)

static void test_defaults(void **state)
{
    (void)state;
    struct conf *c = load("");
    char host[256];
    gethostname(host, sizeof(host));
    assert_string_equal(c->hostname, host);
    assert_string_equal(c->helo_data, host);
    assert_int_equal(c->nlisten, 1);
    assert_string_equal(c->listen[0].text, "127.0.0.1:2525");
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&c->listen[0].ss;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), 2525);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001);
    assert_false(c->listen[0].implicit_tls);
    assert_string_equal(c->spool_directory, "./var/spool");
    assert_string_equal(c->log_directory, "./var/log");
    assert_null(c->user);
    assert_int_equal(c->workers, 0);
    assert_int_equal(c->message_size_limit, 50 * 1024 * 1024);
    assert_int_equal(c->recipients_max, 1000);
    assert_int_equal(c->smtp_accept_max, 1000);
    assert_int_equal(c->smtp_accept_max_per_host, 50);
    assert_int_equal(c->smtp_receive_timeout, 300);
    assert_null(c->tls_certificate);
    assert_null(c->tls_privatekey);
    assert_true((list_check_host(&c->tls_advertise_hosts, "192.0.2.1", NULL, NULL) == LIST_MATCH));
    assert_null(c->dns_servers);
    assert_null(c->dnssec_trust_anchor);
    assert_int_equal(c->remote_port, 25);
    assert_int_equal(c->tls_outbound, TLS_MAY);
    assert_null(c->tls_outbound_ca);
    assert_int_equal(c->callout_timeout, 30);
    assert_int_equal(c->cutthrough_data_timeout, 60);
    assert_int_equal(c->callout_cache_positive, 86400);
    assert_int_equal(c->callout_cache_negative, 7200);
    static const unsigned retry[] = { 300, 900, 1800, 3600, 7200, 14400 };
    assert_int_equal(c->nretry_intervals, 6);
    assert_memory_equal(c->retry_intervals, retry, sizeof(retry));
    assert_int_equal(c->retry_give_up, 5 * 86400);
    assert_true((list_check_host(&c->chunking_advertise_hosts, "::1", NULL, NULL) == LIST_MATCH));
    assert_true((list_check_host(&c->dsn_advertise_hosts, "::1", NULL, NULL) == LIST_MATCH));
    assert_true((list_check_host(&c->pipelining_advertise_hosts, "::1", NULL, NULL) == LIST_MATCH));
    assert_int_equal(c->received_headers_max, 30);
    assert_int_equal(c->smtp_line_length_max, 2048);
    assert_int_equal(c->smtp_max_errors, 10);
    assert_int_equal(c->smtp_data_min_rate, 256);
    assert_int_equal(c->bare_newline, BARE_NEWLINE_REJECT);
    assert_int_equal(c->remote_max_parallel, 20);
    assert_int_equal(c->callout_max_per_host, 5);
    assert_int_equal(c->connect_timeout, 30);
    assert_int_equal(c->data_timeout, 300);
    assert_int_equal(c->shutdown_timeout, 30);
    for (int s = 0; s < ACL_NSTAGES; s++) {
        assert_null(c->acl_names[s]);
        assert_null(c->acl_for_stage[s]);
    }
    assert_int_equal(c->nroutes, 0);
    assert_int_equal(c->nacls, 0);
    assert_null(route_for(c, "example.org"));
    conf_free(c);
}

static void test_every_option(void **state)
{
    (void)state;
    struct conf *c = load(
        "hostname = mx.example.org\n"
        "listen = 0.0.0.0:25 [::1]:2525 127.0.0.1:465/tls [::]:587/tls\n"
        "spool_directory = /var/spool/tandem\n"
        "log_directory = syslog\n"
        "user = nobody\n"
        "workers = 4\n"
        "message_size_limit = 10K\n"
        "recipients_max = 7\n"
        "smtp_accept_max = 8\n"
        "smtp_accept_max_per_host = 9\n"
        "smtp_receive_timeout = 1h30m\n"
        "tls_certificate = \"/etc/tls/cert with space.pem\"\n"
        "tls_privatekey = ./key.pem\n"
        "tls_advertise_hosts = !192.0.2.0/24 : *\n"
        "dns_servers = 127.0.0.1:5353 : 192.0.2.53 [::1]:53 ::1 [2001:db8::1]\n"
        "dnssec_trust_anchor = ./root.key\n"
        "remote_port = 2525\n"
        "tls_outbound = verify\n"
        "tls_outbound_ca = ./ca.pem\n"
        "helo_data = [192.0.2.1]\n"
        "callout_timeout = 10s\n"
        "cutthrough_data_timeout = 2m\n"
        "callout_cache_positive = 1d\n"
        "callout_cache_negative = 0\n"
        "retry_intervals = 1m,2m 1w\n"
        "retry_give_up = 2w\n"
        "chunking_advertise_hosts =\n"
        "dsn_advertise_hosts = :\n"
        "pipelining_advertise_hosts = 127.0.0.1\n"
        "received_headers_max = 50\n"
        "smtp_line_length_max = 1000\n"
        "smtp_max_errors = 3\n"
        "smtp_data_min_rate = 2k\n"
        "bare_newline = space\n"
        "remote_max_parallel = 100\n"
        "callout_max_per_host = 2\n"
        "connect_timeout = 5s\n"
        "data_timeout = 10m\n"
        "shutdown_timeout = 0s\n");
    assert_string_equal(c->hostname, "mx.example.org");
    assert_int_equal(c->nlisten, 4);
    assert_string_equal(c->listen[1].text, "[::1]:2525");
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&c->listen[1].ss;
    assert_int_equal(s6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(s6->sin6_port), 2525);
    assert_int_equal(c->listen[1].sslen, sizeof(struct sockaddr_in6));
    assert_true(c->listen[2].implicit_tls);
    assert_string_equal(c->listen[2].text, "127.0.0.1:465/tls");
    assert_true(c->listen[3].implicit_tls);
    assert_string_equal(c->spool_directory, "/var/spool/tandem");
    assert_string_equal(c->log_directory, "syslog");
    assert_string_equal(c->user, "nobody");
    assert_int_equal(c->workers, 4);
    assert_int_equal(c->message_size_limit, 10240);
    assert_int_equal(c->recipients_max, 7);
    assert_int_equal(c->smtp_accept_max, 8);
    assert_int_equal(c->smtp_accept_max_per_host, 9);
    assert_int_equal(c->smtp_receive_timeout, 5400);
    assert_string_equal(c->tls_certificate, "/etc/tls/cert with space.pem");
    assert_string_equal(c->tls_privatekey, "./key.pem");
    assert_false((list_check_host(&c->tls_advertise_hosts, "192.0.2.9", NULL, NULL) == LIST_MATCH));
    assert_true((list_check_host(&c->tls_advertise_hosts, "198.51.100.9", NULL, NULL) == LIST_MATCH));
    const char *dns[] = { "127.0.0.1:5353", "192.0.2.53", "[::1]:53", "::1", "[2001:db8::1]" };
    for (size_t i = 0; i < ARRAY_LEN(dns); i++)
        assert_string_equal(c->dns_servers[i], dns[i]);
    assert_null(c->dns_servers[ARRAY_LEN(dns)]);
    assert_string_equal(c->dnssec_trust_anchor, "./root.key");
    assert_int_equal(c->remote_port, 2525);
    assert_int_equal(c->tls_outbound, TLS_VERIFY);
    assert_string_equal(c->tls_outbound_ca, "./ca.pem");
    assert_string_equal(c->helo_data, "[192.0.2.1]");
    assert_int_equal(c->callout_timeout, 10);
    assert_int_equal(c->cutthrough_data_timeout, 120);
    assert_int_equal(c->callout_cache_positive, 86400);
    assert_int_equal(c->callout_cache_negative, 0);
    assert_int_equal(c->nretry_intervals, 3);
    assert_int_equal(c->retry_intervals[2], 604800);
    assert_int_equal(c->retry_give_up, 1209600);
    assert_int_equal(c->chunking_advertise_hosts.n, 0);
    assert_false((list_check_host(&c->chunking_advertise_hosts, "127.0.0.1", NULL, NULL) == LIST_MATCH));
    assert_false((list_check_host(&c->dsn_advertise_hosts, "127.0.0.1", NULL, NULL) == LIST_MATCH));
    assert_true((list_check_host(&c->dsn_advertise_hosts, NULL, NULL, NULL) == LIST_MATCH));
    assert_true((list_check_host(&c->pipelining_advertise_hosts, "127.0.0.1", NULL, NULL) == LIST_MATCH));
    assert_false((list_check_host(&c->pipelining_advertise_hosts, "127.0.0.2", NULL, NULL) == LIST_MATCH));
    assert_int_equal(c->received_headers_max, 50);
    assert_int_equal(c->smtp_line_length_max, 1000);
    assert_int_equal(c->smtp_max_errors, 3);
    assert_int_equal(c->smtp_data_min_rate, 2048);
    assert_int_equal(c->bare_newline, BARE_NEWLINE_SPACE);
    assert_int_equal(c->remote_max_parallel, 100);
    assert_int_equal(c->callout_max_per_host, 2);
    assert_int_equal(c->connect_timeout, 5);
    assert_int_equal(c->data_timeout, 600);
    assert_int_equal(c->shutdown_timeout, 0);
    conf_free(c);
}

static void test_tls_policies(void **state)
{
    (void)state;
    const char *names[] = { "none", "may", "encrypt", "verify", "dane" };
    enum tls_policy pols[] = { TLS_NONE, TLS_MAY, TLS_ENCRYPT, TLS_VERIFY, TLS_DANE };
    for (size_t i = 0; i < ARRAY_LEN(names); i++) {
        char text[64];
        str_fmt(text, sizeof(text), "tls_outbound = %s\n", names[i]);
        struct conf *c = load(text);
        assert_int_equal(c->tls_outbound, pols[i]);
        assert_string_equal(tls_policy_name(pols[i]), names[i]);
        conf_free(c);
    }
    assert_string_equal(tls_policy_name(TLS_UNSET), "unset");
    struct conf *c = load("begin routes\nx.example mx tls=dane\n");
    assert_int_equal(c->routes[0].tls, TLS_DANE);
    conf_free(c);
}

static void test_syntax(void **state)
{
    (void)state;
    struct conf *c = load(
        "# a comment line\n"
        "   # an indented comment\n"
        "\n"
        "hostname = mx.example.org   # a trailing comment\n"
        "spool_directory = /var/spool/a#b\n"
        "log_directory = \"/var/log/x # not a comment\"\n"
        "listen = 127.0.0.1:25 \\\n"
        "         127.0.0.1:26 \\\n"
        "# a comment inside a continuation is skipped\n"
        "         127.0.0.1:27\r\n"
        "recipients_max=12\n"
        "\tworkers\t=\tauto\n"
        "user = \"quoted\\\"name\"\n");
    assert_string_equal(c->hostname, "mx.example.org");
    assert_string_equal(c->spool_directory, "/var/spool/a#b");
    assert_string_equal(c->log_directory, "/var/log/x # not a comment");
    assert_int_equal(c->nlisten, 3);
    assert_string_equal(c->listen[2].text, "127.0.0.1:27");
    assert_int_equal(c->recipients_max, 12);
    assert_int_equal(c->workers, 0);
    assert_string_equal(c->user, "quoted\"name");
    conf_free(c);
}

static void test_continuation_line_numbers(void **state)
{
    (void)state;
    /* the error is reported at the first line of the continued line */
    expect_errors("hostname = a.example\n"
                  "listen = 127.0.0.1:25 \\\n"
                  "   bogus\n"
                  "recipients_max = x\n",
                  "F:2: listen: \"bogus\": expected addr:port\n"
                  "F:4: recipients_max: \"x\" is not a number from 1 to 1000000\n");
    /* a blank line ends a continuation */
    expect_errors("listen = 127.0.0.1:25 \\\n"
                  "\n"
                  "bogus_option = 1\n",
                  "F:3: unknown option \"bogus_option\"\n");
}

static void test_default_config_file(void **state)
{
    (void)state;
    struct sbuf errs;
    sbuf_init(&errs);
    struct conf *c = conf_load("etc/tandem.conf", &errs);
    if (c == NULL)
        fail_msg("etc/tandem.conf:\n%s", errs.s);
    sbuf_free(&errs);
    assert_string_equal(c->listen[0].text, "127.0.0.1:2525");
    assert_string_equal(c->spool_directory, "./var/spool");
    assert_string_equal(c->log_directory, "./var/log");
    const struct named_list *rt = conf_find_list(c, LIST_DOMAIN, "relay_to_domains");
    const struct named_list *rf = conf_find_list(c, LIST_HOST, "relay_from_hosts");
    assert_non_null(rt);
    assert_non_null(rf);
    assert_true((list_check_host(&rf->list, "127.0.0.1", NULL, NULL) == LIST_MATCH));
    assert_true((list_check_host(&rf->list, "::1", NULL, NULL) == LIST_MATCH));
    assert_false((list_check_host(&rf->list, "192.0.2.1", NULL, NULL) == LIST_MATCH));
    assert_string_equal(c->acl_names[ACL_RCPT], "check_rcpt");
    assert_ptr_equal(c->acl_for_stage[ACL_RCPT], conf_find_acl(c, "check_rcpt"));
    const struct route *r = route_for(c, "anything.example");
    assert_non_null(r);
    assert_int_equal(r->hops[0].kind, HOP_MX);
    conf_free(c);
}

static void test_named_lists(void **state)
{
    (void)state;
    struct conf *c = load(
        "tls_advertise_hosts = +later\n" /* refers to a list defined further down */
        "domainlist local = example.org : *.example.org\n"
        "domainlist all = +local : other.example\n"
        "hostlist later = 192.0.2.0/24\n"
        "addresslist bad = spam@* : *@+local\n"
        "hostlist local = 10.0.0.1\n" /* kinds have separate names */
        "domainlist empty =\n");
    assert_int_equal(c->ndomainlists, 3);
    assert_int_equal(c->nhostlists, 2);
    assert_int_equal(c->naddresslists, 1);
    const struct named_list *all = conf_find_list(c, LIST_DOMAIN, "all");
    assert_true((list_check_domain(&all->list, "www.example.org", NULL) == LIST_MATCH));
    assert_true((list_check_domain(&all->list, "other.example", NULL) == LIST_MATCH));
    assert_int_equal(all->line, 3);
    assert_true((list_check_host(&c->tls_advertise_hosts, "192.0.2.200", NULL, NULL) == LIST_MATCH));
    const struct named_list *bad = conf_find_list(c, LIST_ADDRESS, "bad");
    assert_true((list_check_address(&bad->list, "x@mail.example.org", NULL) == LIST_MATCH));
    assert_ptr_equal(conf_find_list(c, LIST_HOST, "local")->list.items[0].type, ITEM_CIDR);
    assert_null(conf_find_list(c, LIST_ADDRESS, "local"));
    assert_null(conf_find_list(c, LIST_LOCAL_PART, "local"));
    assert_int_equal(conf_find_list(c, LIST_DOMAIN, "empty")->list.n, 0);
    conf_free(c);
}

static void test_routes(void **state)
{
    (void)state;
    struct conf *c = load(
        "domainlist backup = b1.example : b2.example\n"
        "begin routes\n"
        "# domain pattern   next hops                                  options\n"
        "example.org        mx1.example.org  [192.0.2.7]:2525  tls=verify\n"
        "*.example.org      relay.example:26 [::1]:2526 [2001:db8::1] port=587 tls=none\n"
        "+backup            mx   port=2525\n"
        "ip.example         [192.0.2.8]\n"
        "*                  mx   MX\n");
    assert_int_equal(c->nroutes, 5);
    const struct route *r = route_for(c, "EXAMPLE.org");
    assert_string_equal(r->pattern, "example.org");
    assert_int_equal(r->line, 4);
    assert_int_equal(r->nhops, 2);
    assert_int_equal(r->hops[0].kind, HOP_HOST);
    assert_string_equal(r->hops[0].name, "mx1.example.org");
    assert_int_equal(r->hops[0].port, 0);
    assert_int_equal(r->hops[1].kind, HOP_IP);
    assert_string_equal(r->hops[1].name, "192.0.2.7");
    assert_int_equal(r->hops[1].port, 2525);
    assert_int_equal(r->tls, TLS_VERIFY);
    assert_int_equal(r->port, 0);
    r = route_for(c, "a.example.org");
    assert_int_equal(r->nhops, 3);
    assert_string_equal(r->hops[0].name, "relay.example");
    assert_int_equal(r->hops[0].port, 26);
    assert_string_equal(r->hops[1].name, "::1");
    assert_int_equal(r->hops[1].port, 2526);
    assert_int_equal(r->hops[2].kind, HOP_IP);
    assert_int_equal(r->hops[2].port, 0);
    assert_int_equal(r->port, 587);
    assert_int_equal(r->tls, TLS_NONE);
    r = route_for(c, "b2.example");
    assert_string_equal(r->pattern, "+backup");
    assert_int_equal(r->hops[0].kind, HOP_MX);
    assert_null(r->hops[0].name);
    assert_int_equal(r->port, 2525);
    assert_int_equal(r->tls, TLS_UNSET);
    r = route_for(c, "elsewhere.example");
    assert_string_equal(r->pattern, "*");
    assert_int_equal(r->nhops, 2);
    conf_free(c);
    c = load("begin routes\nexample.org mx\n");
    assert_null(route_for(c, "other.example")); /* unroutable */
    conf_free(c);
}

static void test_acl_compile(void **state)
{
    (void)state;
    struct conf *c = load(
        "hostlist relay_from_hosts = 127.0.0.1\n"
        "domainlist relay_to_domains = example.org\n"
        "acl_smtp_rcpt = check_rcpt\n"
        "acl_smtp_connect = check-connect\n"
        "begin acl\n"
        "check_rcpt:\n"
        "  accept  hosts   = +relay_from_hosts\n"
        "  deny    message = relay not permitted\n"
        "          !domains = +relay_to_domains\n"
        "  require verify  = recipient/callout=10s,defer_ok,use_sender,use_postmaster,random,no_cache\n"
        "  warn    verify = sender/callout\n"
        "          log_message = \"sender $sender_address: ${acl_verify_message}\"\n"
        "          logwrite = \\$5 for $local_part@$domain\n"
        "          add_header = X-Checked: $primary_hostname\n"
        "          delay = 1m30s\n"
        "  accept  control = cutthrough_delivery/defer=pass/split=spool\n"
        "          local_parts = postmaster : *-request\n"
        "          ! senders = :\n"
        "          recipients = *@example.org\n"
        "  defer\n"
        "  discard verify = helo\n"
        "  drop    control = cutthrough_delivery\n"
        "check-connect:\n"
        "  accept\n"
        "empty_acl:\n");
    assert_int_equal(c->nacls, 3);
    const struct acl *a = c->acl_for_stage[ACL_RCPT];
    assert_non_null(a);
    assert_string_equal(a->name, "check_rcpt");
    assert_int_equal(a->line, 6);
    assert_int_equal(a->n, 8);
    assert_ptr_equal(c->acl_for_stage[ACL_CONNECT], conf_find_acl(c, "check-connect"));
    assert_null(c->acl_for_stage[ACL_MAIL]);
    assert_int_equal(conf_find_acl(c, "empty_acl")->n, 0);
    assert_null(conf_find_acl(c, "nope"));

    const struct acl_stmt *st = &a->stmts[0];
    assert_int_equal(st->verb, VERB_ACCEPT);
    assert_int_equal(st->line, 7);
    assert_int_equal(st->n, 1);
    assert_int_equal(st->items[0].kind, COND_HOSTS);
    assert_false(st->items[0].negate);

    st = &a->stmts[1];
    assert_int_equal(st->verb, VERB_DENY);
    assert_int_equal(st->n, 2);
    assert_int_equal(st->items[0].kind, MOD_MESSAGE);
    assert_int_equal(st->items[0].text.n, 1);
    assert_string_equal(st->items[0].text.segs[0].literal, "relay not permitted");
    assert_int_equal(st->items[1].kind, COND_DOMAINS);
    assert_true(st->items[1].negate);
    assert_int_equal(st->items[1].line, 9);

    st = &a->stmts[2];
    assert_int_equal(st->verb, VERB_REQUIRE);
    const struct acl_item *v = &st->items[0];
    assert_int_equal(v->kind, COND_VERIFY);
    assert_int_equal(v->verify, VERIFY_RECIPIENT);
    assert_true(v->callout.enabled);
    assert_int_equal(v->callout.timeout, 10);
    assert_true(v->callout.defer_ok && v->callout.use_sender && v->callout.use_postmaster);
    assert_true(v->callout.random && v->callout.no_cache);

    st = &a->stmts[3];
    assert_int_equal(st->verb, VERB_WARN);
    assert_int_equal(st->n, 5);
    assert_int_equal(st->items[0].verify, VERIFY_SENDER);
    assert_true(st->items[0].callout.enabled);
    assert_int_equal(st->items[0].callout.timeout, 0);
    assert_false(st->items[0].callout.defer_ok);
    const struct acl_text *t = &st->items[1].text; /* quotes stripped, ${name} form */
    assert_int_equal(t->n, 4);
    assert_string_equal(t->segs[0].literal, "sender ");
    assert_true(t->segs[1].is_var);
    assert_int_equal(t->segs[1].var, VAR_SENDER_ADDRESS);
    assert_string_equal(t->segs[2].literal, ": ");
    assert_int_equal(t->segs[3].var, VAR_ACL_VERIFY_MESSAGE);
    t = &st->items[2].text;
    assert_int_equal(t->n, 4);
    assert_string_equal(t->segs[0].literal, "$5 for ");
    assert_int_equal(t->segs[1].var, VAR_LOCAL_PART);
    assert_string_equal(t->segs[2].literal, "@");
    assert_int_equal(t->segs[3].var, VAR_DOMAIN);
    assert_int_equal(st->items[3].kind, MOD_ADD_HEADER);
    assert_int_equal(st->items[4].kind, MOD_DELAY);
    assert_int_equal(st->items[4].delay, 90);

    st = &a->stmts[4];
    assert_int_equal(st->items[0].kind, MOD_CONTROL);
    assert_int_equal(st->items[0].cut.defer, CUT_DEFER_PASS);
    assert_int_equal(st->items[0].cut.split, CUT_SPLIT_SPOOL);
    assert_int_equal(st->items[1].kind, COND_LOCAL_PARTS);
    assert_int_equal(st->items[1].list.kind, LIST_LOCAL_PART);
    assert_int_equal(st->items[2].kind, COND_SENDERS);
    assert_true(st->items[2].negate);
    assert_int_equal(st->items[2].list.kind, LIST_ADDRESS);
    assert_int_equal(st->items[3].kind, COND_RECIPIENTS);

    assert_int_equal(a->stmts[5].verb, VERB_DEFER);
    assert_int_equal(a->stmts[5].n, 0);
    assert_int_equal(a->stmts[6].verb, VERB_DISCARD);
    assert_int_equal(a->stmts[6].items[0].verify, VERIFY_HELO);
    assert_false(a->stmts[6].items[0].callout.enabled);
    assert_int_equal(a->stmts[7].verb, VERB_DROP);
    assert_int_equal(a->stmts[7].items[0].cut.defer, CUT_DEFER_SPOOL);
    assert_int_equal(a->stmts[7].items[0].cut.split, CUT_SPLIT_DEFER);
    conf_free(c);
}

static void test_acl_text_forms(void **state)
{
    (void)state;
    struct conf *c = load("begin acl\n"
                          "a:\n"
                          "  deny message = \n"
                          "       message = ${domain}x$sender_helo_name$message_id.\n"
                          "       message = $sender_host_address$primary_hostname\n");
    const struct acl_stmt *st = &c->acls[0].stmts[0];
    assert_int_equal(st->items[0].text.n, 0);
    const struct acl_text *t = &st->items[1].text;
    assert_int_equal(t->n, 5);
    assert_int_equal(t->segs[0].var, VAR_DOMAIN);
    assert_string_equal(t->segs[1].literal, "x");
    assert_int_equal(t->segs[2].var, VAR_SENDER_HELO_NAME);
    assert_int_equal(t->segs[3].var, VAR_MESSAGE_ID);
    assert_string_equal(t->segs[4].literal, ".");
    t = &st->items[2].text;
    assert_int_equal(t->n, 2);
    assert_int_equal(t->segs[0].var, VAR_SENDER_HOST_ADDRESS);
    assert_int_equal(t->segs[1].var, VAR_PRIMARY_HOSTNAME);
    conf_free(c);
}

static const struct conf_error option_errors[] = {
    { "frobnicate = 1\n", 1, "unknown option \"frobnicate\"" },
    { "\n\nhostname\n", 3, "syntax error: expected \"option = value\"" },
    { "= 5\n", 1, "syntax error" },
    { "hostname = a b\n", 1, "hostname: invalid host name \"a b\"" },
    { "hostname =\n", 1, "hostname: invalid host name \"\"" },
    { "helo_data = [300.1.1.1]\n", 1, "helo_data: invalid host name" },
    { "listen = 127.0.0.1\n", 1, "listen: \"127.0.0.1\": expected addr:port" },
    { "listen = ::1:25\n", 1, "listen: \"::1:25\": write IPv6 addresses as [addr]:port" },
    { "listen = [::1]\n", 1, "listen: \"[::1]\": expected addr:port" },
    { "listen = 127.0.0.1:0\n", 1, "listen: \"127.0.0.1:0\": invalid port" },
    { "listen = 127.0.0.1:65536\n", 1, "invalid port" },
    { "listen = localhost:25\n", 1, "listen: \"localhost:25\": not a numeric IP address" },
    { "listen = [127.0.0.1]:25\n", 1, "not a numeric IP address" },
    { "listen = 127.0.0.1:25 127.0.0.1:25/tls\n", 1, "listen: \"127.0.0.1:25/tls\" given twice" },
    { "listen =\n", 1, "listen: no address given" },
    { "spool_directory =\n", 1, "spool_directory: empty value" },
    { "user = \"nobody\n", 1, "user: unterminated quoted string" },
    { "workers = 0\n", 1, "workers: expected \"auto\" or a number from 1 to 1024" },
    { "workers = lots\n", 1, "workers: expected \"auto\"" },
    { "message_size_limit = 50Q\n", 1, "message_size_limit: invalid size \"50Q\"" },
    { "message_size_limit = -1\n", 1, "message_size_limit: invalid size" },
    { "recipients_max = 0\n", 1, "recipients_max: \"0\" is not a number from 1 to 1000000" },
    { "smtp_accept_max = 12abc\n", 1, "smtp_accept_max: \"12abc\" is not a number" },
    { "smtp_accept_max_per_host = 99999999999\n", 1, "smtp_accept_max_per_host:" },
    { "smtp_line_length_max = 100\n", 1, "smtp_line_length_max: \"100\" is not a number from 512" },
    { "smtp_receive_timeout = 5 minutes\n", 1, "smtp_receive_timeout: invalid time \"5 minutes\"" },
    { "callout_timeout = 0s\n", 1, "callout_timeout: time \"0s\" must be at least 1s" },
    { "retry_intervals =\n", 1, "retry_intervals: no time given" },
    { "retry_intervals = 5m 0\n", 1, "retry_intervals: time \"0\" must be at least 1s" },
    { "retry_intervals = 5m x\n", 1, "retry_intervals: invalid time \"x\"" },
    { "tls_advertise_hosts = 10.0.0.0/40\n", 1,
      "tls_advertise_hosts: invalid IP address or network: \"10.0.0.0/40\"" },
    { "dsn_advertise_hosts = +nosuch\n", 1,
      "dsn_advertise_hosts: hostlist \"nosuch\" is not defined" },
    { "dns_servers = localhost\n", 1,
      "dns_servers: \"localhost\" is not ip, ip:port or [ipv6]:port" },
    { "dns_servers = 127.0.0.1:99999\n", 1, "dns_servers: \"127.0.0.1:99999\"" },
    { "dns_servers = [::1]:x\n", 1, "dns_servers: \"[::1]:x\"" },
    { "dns_servers = :\n", 1, "dns_servers: no server given" },
    { "remote_port = 0\n", 1, "remote_port: invalid port \"0\"" },
    { "tls_outbound = always\n", 1,
      "tls_outbound: expected none, may, encrypt, verify or dane, not \"always\"" },
    { "bare_newline = allow\n", 1, "bare_newline: expected reject or space, not \"allow\"" },
    { "acl_smtp_rcpt = bad name\n", 1, "acl_smtp_rcpt: invalid ACL name \"bad name\"" },
    { "acl_smtp_data = nowhere\n", 1, "acl_smtp_data: ACL \"nowhere\" is not defined" },
    { "tls_privatekey = k.pem\n", 1, "tls_privatekey: set without tls_certificate" },
    { "recipients_max = 5\nrecipients_max = 6\n", 2,
      "recipients_max: set twice (first at line 1)" },
};

static void test_option_errors(void **state)
{
    (void)state;
    RUN_CONF_ERRORS(option_errors);
}

static void test_many_errors_in_order(void **state)
{
    (void)state;
    /* every error is reported, in line order, even those found after the whole file */
    expect_errors("acl_smtp_rcpt = missing\n"
                  "hostname = bad host\n"
                  "hostlist h = +undefined\n"
                  "foo = bar\n"
                  "begin routes\n"
                  "x.example mx tls=maybe\n"
                  "begin acl\n"
                  "a:\n"
                  "  deny message = $nope\n",
                  "F:1: acl_smtp_rcpt: ACL \"missing\" is not defined\n"
                  "F:2: hostname: invalid host name \"bad host\"\n"
                  "F:3: hostlist h: hostlist \"undefined\" is not defined\n"
                  "F:4: unknown option \"foo\"\n"
                  "F:6: route \"x.example\": tls= must be none, may, encrypt, verify or dane, not \"maybe\"\n"
                  "F:9: message: unknown variable \"$nope\"\n");
}

static const struct conf_error named_list_errors[] = {
    { "domainlist = a\n", 1, "domainlist: expected \"domainlist NAME = items\"" },
    { "hostlist bad name = a\n", 1, "hostlist: expected \"hostlist NAME = items\"" },
    { "addresslist x\n", 1, "addresslist: expected" },
    { "domainlist d = a\ndomainlist d = b\n", 2,
      "domainlist \"d\" is defined twice (first at line 1)" },
    { "domainlist d = +e\n", 1, "domainlist d: domainlist \"e\" is not defined" },
    { "hostlist h = 1.2.3.4 : host name\n", 1, "hostlist h: white space inside an item" },
    { "addresslist a = *@+nodom\n", 1, "addresslist a: domainlist \"nodom\" is not defined" },
    { "domainlist a = +b\ndomainlist b = x : +a\n", 1, "named list \"a\" refers to itself" },
    { "begin routes\ndomainlist d = x\n", 2,
      "domainlist: named lists must be defined before the first \"begin\"" },
};

static void test_named_list_errors(void **state)
{
    (void)state;
    RUN_CONF_ERRORS(named_list_errors);
}

static const struct conf_error section_errors[] = {
    { "begin\n", 1, "unknown section \"begin \" (expected routes or acl)" },
    { "begin transports\nanything goes here\n", 1, "unknown section \"begin transports\"" },
    { "begin routes\n* mx\nbegin routes\n", 3, "section \"routes\" begins twice" },
    { "begin acl\nbegin routes\nbegin acl\n", 3, "section \"acl\" begins twice" },
    /* main options after a begin are not main options */
    { "begin routes\nhostname = x\n", 2,
      "hostname: main options must come before the first \"begin\"" },
    { "begin acl\na:\n  accept\nacl_smtp_rcpt = a\n", 4, "acl_smtp_rcpt: main options must come" },
};

static void test_section_errors(void **state)
{
    (void)state;
    RUN_CONF_ERRORS(section_errors);
}

static const struct conf_error route_errors[] = {
    { "begin routes\nexample.org\n", 2,
      "route \"example.org\": no next hop (expected mx, a host or [ip])" },
    { "begin routes\nexample.org port=25\n", 2, "no next hop" },
    { "begin routes\nx mx port=0\n", 2, "route \"x\": invalid port \"0\"" },
    { "begin routes\nx mx port=25 port=26\n", 2, "route \"x\": port= given twice" },
    { "begin routes\nx mx tls=maybe\n", 2,
      "route \"x\": tls= must be none, may, encrypt, verify or dane, not \"maybe\"" },
    { "begin routes\nx mx tls=none tls=may\n", 2, "tls= given twice" },
    { "begin routes\nx mx retries=3\n", 2, "route \"x\": unknown route option \"retries=3\"" },
    { "begin routes\nx mx:25\n", 2, "route \"x\": \"mx:25\": an mx hop takes no port (use port=)" },
    { "begin routes\nx h.example:0\n", 2, "route \"x\": invalid next hop \"h.example:0\"" },
    { "begin routes\nx bad_host!\n", 2, "invalid next hop \"bad_host!\"" },
    { "begin routes\nx ::1:25\n", 2,
      "route \"x\": \"::1:25\": write IPv6 next hops as [addr]:port" },
    { "begin routes\nx [192.0.2.300]\n", 2, "route \"x\": \"192.0.2.300\" is not an IP address" },
    { "begin routes\nx [192.0.2.1\n", 2, "invalid IP literal \"[192.0.2.1\"" },
    { "begin routes\nx [192.0.2.1]:99999\n", 2, "invalid port in \"[192.0.2.1]:99999\"" },
    { "begin routes\nx [192.0.2.1]25\n", 2, "invalid port in" },
    { "begin routes\n!x mx\n", 2, "route \"!x\": the pattern must be one domain" },
    { "begin routes\na:b mx\n", 2, "the pattern must be one domain" },
    { "begin routes\n+nope mx\n", 2, "route \"+nope\": domainlist \"nope\" is not defined" },
    { "begin routes\n^re mx\n", 2, "route \"^re\": regular expressions are not supported" },
};

static void test_route_errors(void **state)
{
    (void)state;
    RUN_CONF_ERRORS(route_errors);
}

static const struct conf_error acl_errors[] = {
    { "begin acl\naccept hosts = *\n", 2, "\"accept\" before any ACL name (expected \"name:\")" },
    { "begin acl\n  hosts = *\n", 2, "\"hosts\" before any ACL name" },
    { "begin acl\na:\n  hosts = *\n", 3,
      "\"hosts\" without a verb (accept, deny, defer, discard, drop, require or warn)" },
    { "begin acl\na:\nb:\na:\n", 4, "ACL \"a\" defined twice (first at line 2)" },
    { "begin acl\na:\n  accept frobs = 1\n", 3, "unknown ACL condition or modifier \"frobs\"" },
    { "begin acl\na:\n  accept endpass\n", 3,
      "syntax error: expected \"[!]name = value\", got \"endpass\"" },
    { "begin acl\na:\n  accept\n  something odd\n", 4, "syntax error" },
    { "begin acl\na:\n  deny !message = x\n", 3,
      "\"!\" negates conditions only, and message is a modifier" },
    { "begin acl\na:\n  deny hosts = 1.2.3.4/99\n", 3, "hosts: invalid IP address or network" },
    { "begin acl\na:\n  deny domains = +nolist\n", 3,
      "domains: domainlist \"nolist\" is not defined" },
    { "begin acl\na:\n  deny senders = +nolist\n", 3,
      "senders: addresslist \"nolist\" is not defined" },
    { "begin acl\na:\n  deny local_parts = +x\n", 3,
      "local_parts: named lists cannot be used in local part lists" },
    { "begin acl\na:\n  deny verify = everything\n", 3,
      "verify: expected helo, sender or recipient, not \"everything\"" },
    { "begin acl\na:\n  deny verify = helo/callout\n", 3,
      "verify: verify = helo takes no options" },
    { "begin acl\na:\n  deny verify = sender/defer_ok\n", 3,
      "verify: unknown verify option \"defer_ok\"" },
    { "begin acl\na:\n  deny verify = sender/callout/callout\n", 3,
      "only one option (callout) may follow \"sender\"" },
    { "begin acl\na:\n  deny verify = recipient/callout=10s,,defer_ok\n", 3,
      "verify: invalid callout option \"\"" },
    { "begin acl\na:\n  deny verify = recipient/callout=0s\n", 3, "invalid callout option \"0s\"" },
    { "begin acl\na:\n  deny verify = recipient/callout=fast\n", 3,
      "invalid callout option \"fast\"" },
    { "begin acl\na:\n  accept control = freeze\n", 3,
      "control: unknown control \"freeze\" (only cutthrough_delivery is supported)" },
    { "begin acl\na:\n  accept control = cutthrough_delivery/defer=later\n", 3,
      "control: unknown cutthrough_delivery option \"defer=later\"" },
    { "begin acl\na:\n  accept control = cutthrough_delivery/\n", 3,
      "unknown cutthrough_delivery option \"\"" },
    { "begin acl\na:\n  accept delay = soon\n", 3, "delay: invalid time \"soon\"" },
    { "begin acl\na:\n  deny message = $bogus\n", 3, "message: unknown variable \"$bogus\"" },
    { "begin acl\na:\n  deny message = ${bogus}\n", 3, "message: unknown variable \"$bogus\"" },
    { "begin acl\na:\n  deny message = ${if eq{a}{b}}\n", 3,
      "message: string expansions are not supported: \"${if eq{a}{b}}\"" },
    { "begin acl\na:\n  deny message = ${domain\n", 3, "string expansions are not supported" },
    { "begin acl\na:\n  deny log_message = costs 5$\n", 3,
      "log_message: a lone '$' (write \\$ for a dollar sign)" },
    { "begin acl\na:\n  warn logwrite = \"unterminated\n", 3,
      "logwrite: unterminated quoted string" },
    { "begin acl\na:\n  warn add_header = $h_subject:\n", 3,
      "add_header: unknown variable \"$h_subject\"" },
};

static void test_acl_errors(void **state)
{
    (void)state;
    RUN_CONF_ERRORS(acl_errors);
}

static void test_acl_error_recovery(void **state)
{
    (void)state;
    /* one error for statements before any ACL name, then parsing resumes at the next name */
    expect_errors("begin acl\n"
                  "accept hosts = *\n"
                  "  hosts = 1.2.3.4\n"
                  "deny\n"
                  "a:\n"
                  "  deny message = $x\n",
                  "F:2: \"accept\" before any ACL name (expected \"name:\")\n"
                  "F:6: message: unknown variable \"$x\"\n");
}

static void test_file_errors(void **state)
{
    (void)state;
    struct sbuf errs;
    sbuf_init(&errs);
    assert_null(conf_load("/nonexistent/tandem.conf", &errs));
    assert_string_equal(errs.s, "/nonexistent/tandem.conf:0: cannot open: No such file or directory\n");
    sbuf_free(&errs);
    /* a NUL byte in a line */
    const char *path = tu_write("hostname = a.example\n");
    FILE *f = fopen(path, "a");
    fputs("listen = 127.0.0.1:25", f);
    fputc('\0', f);
    fputs("x\n", f);
    fclose(f);
    sbuf_init(&errs);
    assert_null(conf_load(path, &errs));
    assert_non_null(strstr(errs.s, ":2: NUL byte in line\n"));
    sbuf_free(&errs);
    unlink(path);
}

static void test_long_line(void **state)
{
    (void)state;
    struct sbuf text;
    sbuf_init(&text);
    sbuf_addstr(&text, "hostname = a.example\nhostlist h = ");
    for (int i = 0; i < 8000; i++)
        sbuf_addstr(&text, "10.0.0.1 : \\\n");
    sbuf_addstr(&text, "10.0.0.2\nfoo = 1\n");
    expect_errors(text.s, "F:2: line longer than 65536 bytes\nF:8003: unknown option \"foo\"\n");
    sbuf_free(&text);
}

static void test_error_cap(void **state)
{
    (void)state;
    struct sbuf text;
    sbuf_init(&text);
    for (int i = 0; i < 150; i++)
        sbuf_addstr(&text, "bogus = 1\n");
    char *got = tu_errors(text.s);
    size_t lines = 0;
    for (const char *s = got; *s; s++)
        lines += *s == '\n';
    assert_int_equal(lines, 101);
    assert_non_null(strstr(got, "F:0: 50 more errors not shown\n"));
    free(got);
    sbuf_free(&text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_option),
        cmocka_unit_test(test_tls_policies),
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_continuation_line_numbers),
        cmocka_unit_test(test_default_config_file),
        cmocka_unit_test(test_named_lists),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_acl_compile),
        cmocka_unit_test(test_acl_text_forms),
        cmocka_unit_test(test_option_errors),
        cmocka_unit_test(test_many_errors_in_order),
        cmocka_unit_test(test_named_list_errors),
        cmocka_unit_test(test_section_errors),
        cmocka_unit_test(test_route_errors),
        cmocka_unit_test(test_acl_errors),
        cmocka_unit_test(test_acl_error_recovery),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_error_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
