/* so_drive.c - drive the smtp_out engine against a scripted server, for the integration
 * tests in tests/outbound/test_smtp_out.py.  Prints one line per event on stdout:
 *   ready exts=PIPELINING,SIZE size=N tls=INFO|none verified=yes|no fellback=yes|no
 *   reply CMD CODE [ECODE] TEXT        failed KIND [CODE] TEXT        drained        done
 * Usage: so_drive --ip IP --port N [--name HOST] [--literal] [--tls POLICY] [--ca FILE]
 *          [--timeouts CONNECT,COMMAND,DATA] [--mail ADDR] [--rcpt ADDR]... [--body FILE]
 *          [--body-size N] [--bdat N] [--messages K] [--8bit] [--smtputf8] [--dsn]
 *          [--free-on-reply CMD] */
#include <arpa/inet.h>
#include <event2/event.h>
#include <getopt.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "outbound/outbound.h"
#include "route/route.h"

struct drive {
    struct event_base *base;
    struct smtp_out *so;
    const char *mail;
    const char *rcpts[64];
    size_t nrcpts;
    char *body;
    size_t body_len, body_off;
    size_t bdat_chunk;
    int messages;
    bool body_8bit, smtputf8, dsn;
    const char *free_on;
    int rcpt_ok;
};

static const char *const fail_names[] = { "CONNECT", "GREETING", "EHLO", "TLS", "TIMEOUT", "LOST", "PROTOCOL" };
static const char *const cmd_names[] = { "MAIL", "RCPT", "DATA", "BDAT", "DOT", "RSET", "QUIT", "NOOP" };

static void print_exts(unsigned e)
{
    static const char *const names[] = { "PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "DSN",
                                         "CHUNKING", "STARTTLS", "ENHANCEDSTATUSCODES" };
    const char *sep = "";
    printf("exts=");
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        if (e & (1u << i)) {
            printf("%s%s", sep, names[i]);
            sep = ",";
        }
}

static void send_body(struct drive *dr)
{
    while (dr->body_off < dr->body_len && smtp_out_body_pending(dr->so) < 256 * 1024) {
        size_t n = dr->body_len - dr->body_off;
        if (n > 16384)
            n = 16384;
        smtp_out_body(dr->so, dr->body + dr->body_off, n);
        dr->body_off += n;
    }
    if (dr->body_off == dr->body_len)
        smtp_out_dot(dr->so, NULL);
}

static void send_bdat(struct drive *dr)
{
    while (dr->body_off < dr->body_len || dr->body_len == 0) {
        size_t n = dr->body_len - dr->body_off;
        if (n > dr->bdat_chunk)
            n = dr->bdat_chunk;
        bool last = dr->body_off + n == dr->body_len;
        smtp_out_bdat(dr->so, dr->body + dr->body_off, n, last, NULL);
        dr->body_off += n;
        if (last)
            break;
    }
}

static void start_txn(struct drive *dr)
{
    struct mail_out m = { dr->mail, dr->body_len, dr->body_8bit, dr->smtputf8,
                          dr->dsn ? DSN_RET_HDRS : DSN_RET_UNSET, dr->dsn ? "abc+2Bdef" : NULL };
    dr->rcpt_ok = 0;
    dr->body_off = 0;
    smtp_out_mail(dr->so, &m, NULL);
    for (size_t i = 0; i < dr->nrcpts; i++)
        smtp_out_rcpt(dr->so, dr->rcpts[i], dr->dsn ? DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE : 0,
                      dr->dsn ? "rfc822;x+40y" : NULL, NULL);
    if (dr->bdat_chunk)
        send_bdat(dr);
    else
        smtp_out_data(dr->so, NULL);
}

static void on_ready(void *arg, struct smtp_out *so)
{
    struct drive *dr = arg;
    char host[400];
    const char *tls = smtp_out_tls_info(so);
    smtp_out_log_host(so, host, sizeof(host));
    printf("ready ");
    print_exts(smtp_out_exts(so));
    printf(" size=%llu tls=%s verified=%s fellback=%s host=%s\n",
           (unsigned long long)smtp_out_size_limit(so), tls ? tls : "none",
           smtp_out_tls_verified(so) ? "yes" : "no", smtp_out_tls_fell_back(so) ? "yes" : "no", host);
    if (dr->mail)
        start_txn(dr);
    else
        smtp_out_quit(so);
}

static void next_or_quit(struct drive *dr)
{
    if (--dr->messages > 0 && smtp_out_is_ready(dr->so)) {
        start_txn(dr);
    } else {
        printf("done ready=%s\n", smtp_out_is_ready(dr->so) ? "yes" : "no");
        smtp_out_quit(dr->so);
        dr->so = NULL;
    }
}

static void on_reply(void *arg, struct smtp_out *so, enum smtp_out_cmd cmd, void *tag,
                     const struct smtp_reply *r)
{
    struct drive *dr = arg;
    (void)tag;
    printf("reply %s %d %s %s\n", cmd_names[cmd], r->code, r->ecode[0] ? r->ecode : "-",
           r->text.s ? r->text.s : "");
    fflush(stdout);
    if (dr->free_on && strcmp(dr->free_on, cmd_names[cmd]) == 0) {
        printf("freeing\n");
        smtp_out_free(so);
        dr->so = NULL;
        return;
    }
    if (cmd == SOC_RCPT && r->code / 100 == 2)
        dr->rcpt_ok++;
    if (cmd == SOC_DATA && r->code == 354)
        send_body(dr);
    else if (cmd == SOC_DATA)
        smtp_out_dot(so, NULL);
    else if (cmd == SOC_DOT || (cmd == SOC_BDAT && dr->body_off == dr->body_len &&
                                so && smtp_out_is_ready(so)))
        next_or_quit(dr);
}

static void on_failed(void *arg, struct smtp_out *so, const struct so_failure *f)
{
    struct drive *dr = arg;
    if (f->reply)
        printf("failed %s %d %s\n", fail_names[f->kind], f->reply->code, f->text);
    else
        printf("failed %s - %s\n", fail_names[f->kind], f->text);
    printf("fellback=%s\n", smtp_out_tls_fell_back(so) ? "yes" : "no");
    smtp_out_free(so);
    dr->so = NULL;
}

static void on_drained(void *arg, struct smtp_out *so)
{
    struct drive *dr = arg;
    (void)so;
    printf("drained\n");
    if (dr->body_off < dr->body_len)
        send_body(dr);
}

static void load_body(struct drive *dr, const char *path, long gen)
{
    if (path) {
        FILE *f = fopen(path, "rb");
        if (f == NULL)
            fatal("%s", path);
        struct sbuf b;
        sbuf_init(&b);
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
            sbuf_add(&b, buf, n);
        fclose(f);
        dr->body_len = b.len;
        dr->body = sbuf_steal(&b);
    } else if (gen > 0) {
        dr->body = xmalloc((size_t)gen);
        for (long i = 0; i < gen; i++)
            dr->body[i] = (i % 64 == 62) ? '\r' : (i % 64 == 63) ? '\n' : (i % 64 == 0) ? '.' : 'a' + (char)(i % 26);
        dr->body_len = (size_t)gen;
    }
}

static enum tls_policy parse_policy(const char *s)
{
    static const char *const names[] = { "", "none", "may", "encrypt", "verify" };
    for (size_t i = 1; i < ARRAY_LEN(names); i++)
        if (strcmp(s, names[i]) == 0)
            return (enum tls_policy)i;
    fatalx("bad policy %s", s);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "ip", 1, NULL, 'i' }, { "port", 1, NULL, 'p' }, { "name", 1, NULL, 'n' },
        { "literal", 0, NULL, 'l' }, { "tls", 1, NULL, 't' }, { "ca", 1, NULL, 'c' },
        { "timeouts", 1, NULL, 'T' }, { "mail", 1, NULL, 'm' }, { "rcpt", 1, NULL, 'r' },
        { "body", 1, NULL, 'b' }, { "body-size", 1, NULL, 's' }, { "bdat", 1, NULL, 'B' },
        { "messages", 1, NULL, 'M' }, { "8bit", 0, NULL, '8' }, { "smtputf8", 0, NULL, 'u' },
        { "dsn", 0, NULL, 'd' }, { "free-on-reply", 1, NULL, 'f' }, { NULL, 0, NULL, 0 },
    };
    struct drive dr = { .messages = 1 };
    const char *ip = "127.0.0.1", *name = NULL, *ca = NULL, *bodyfile = NULL;
    unsigned port = 25, tc = 5, tcmd = 5, td = 10;
    long gen = 0;
    bool literal = false;
    enum tls_policy pol = TLS_NONE;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'i': ip = optarg; break;
        case 'p': port = (unsigned)atoi(optarg); break;
        case 'n': name = optarg; break;
        case 'l': literal = true; break;
        case 't': pol = parse_policy(optarg); break;
        case 'c': ca = optarg; break;
        case 'T': if (sscanf(optarg, "%u,%u,%u", &tc, &tcmd, &td) != 3) return 64; break;
        case 'm': dr.mail = optarg; break;
        case 'r': if (dr.nrcpts < ARRAY_LEN(dr.rcpts)) dr.rcpts[dr.nrcpts++] = optarg; break;
        case 'b': bodyfile = optarg; break;
        case 's': gen = atol(optarg); break;
        case 'B': dr.bdat_chunk = (size_t)atol(optarg); break;
        case 'M': dr.messages = atoi(optarg); break;
        case '8': dr.body_8bit = true; break;
        case 'u': dr.smtputf8 = true; break;
        case 'd': dr.dsn = true; break;
        case 'f': dr.free_on = optarg; break;
        default: return 64;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    load_body(&dr, bodyfile, gen);
    struct next_hop hop;
    memset(&hop, 0, sizeof(hop));
    struct sockaddr_in *sin = (struct sockaddr_in *)&hop.addr;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &sin->sin_addr) != 1)
        return 64;
    hop.addrlen = sizeof(*sin);
    str_copy(hop.ip, ip, sizeof(hop.ip));
    str_copy(hop.name, name ? name : ip, sizeof(hop.name));
    hop.port = (uint16_t)port;
    hop.is_literal = literal || name == NULL;
    hop.tls = pol;

    struct conf c;
    memset(&c, 0, sizeof(c));
    c.tls_outbound_ca = (char *)ca;
    char err[256];
    SSL_CTX *ctx = pol > TLS_NONE ? tls_client_ctx(c.tls_outbound_ca, err, sizeof(err)) : NULL;
    if (pol > TLS_NONE && ctx == NULL)
        fatalx("%s", err);
    dr.base = event_base_new();
    struct smtp_out_opts o = { .helo = "client.test", .tls = pol, .ssl_ctx = ctx,
                               .connect_timeout = tc, .command_timeout = tcmd, .data_timeout = td };
    struct smtp_out_cbs cbs = { on_ready, on_reply, on_failed, on_drained };
    dr.so = smtp_out_new(dr.base, &hop, &o, &cbs, &dr);
    smtp_out_connect(dr.so);
    event_base_dispatch(dr.base);
    printf("exit\n");
    event_base_free(dr.base);
    if (ctx)
        SSL_CTX_free(ctx);
    free(dr.body);
    return 0;
}
