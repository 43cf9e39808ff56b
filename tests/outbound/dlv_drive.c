/* dlv_drive.c - queue a message in a scratch spool and run delivery_start on it, for
 * tests/outbound/test_delivery.py.  Uses a real configuration file (routes, dns_servers,
 * timeouts, tls_outbound_ca) and logs to its log_directory; retry hints are kept in memory
 * (seeded with --retry-block): the weak stubs below keep the archive's LMDB hints out.
 * Usage: dlv_drive -c CONF [--sender S] [--rcpt R]... [--body-size N] [--body FILE]
 *          [--messages K] [--no-cache] [--retry-block IP:PORT]... [--ignore-retry]
 *          [--8bit] [--smtputf8] [--dsn] [--corrupt] */
#include <event2/event.h>
#include <getopt.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/core.h"
#include "dns/dns.h"
#include "outbound/outbound.h"
#include "smtp/smtp.h"
#include "store/store.h"

/* ---- in-memory retry hints (weak: the real LMDB ones win when linked) -------------------- */
struct mem_hint {
    char key[80];
    struct retry_rec rec;
};
static struct mem_hint mem_hints[64];
static size_t nmem_hints;

static struct mem_hint *mem_find(const char *key)
{
    for (size_t i = 0; i < nmem_hints; i++)
        if (strcmp(mem_hints[i].key, key) == 0)
            return &mem_hints[i];
    return NULL;
}

__attribute__((weak)) bool hints_retry_get(struct hints *h, const char *key, struct retry_rec *r)
{
    (void)h;
    struct mem_hint *m = mem_find(key);
    if (m)
        *r = m->rec;
    return m != NULL;
}

__attribute__((weak)) bool hints_retry_put(struct hints *h, const char *key, const struct retry_rec *r)
{
    (void)h;
    struct mem_hint *m = mem_find(key);
    if (m == NULL && nmem_hints < ARRAY_LEN(mem_hints)) {
        m = &mem_hints[nmem_hints++];
        str_copy(m->key, key, sizeof(m->key));
    }
    if (m)
        m->rec = *r;
    return m != NULL;
}

__attribute__((weak)) bool hints_retry_del(struct hints *h, const char *key)
{
    (void)h;
    struct mem_hint *m = mem_find(key);
    if (m)
        *m = mem_hints[--nmem_hints];
    return true;
}

/* ---- the driver ----------------------------------------------------------------------- */
struct drive {
    struct delivery_env de;
    struct envelope env;
    int remaining;
    bool ignore_retry;
    const char *body;
    size_t body_len;
};

static const char *const outcome_names[] = { "not-tried", "delivered", "deferred", "failed" };

static void queue_message(struct drive *dr)
{
    struct spool_writer *w = spool_create(dr->de.conf->spool_directory, &dr->env);
    if (w == NULL || !spool_write(w, dr->body, dr->body_len) || !spool_commit(w, &dr->env, false))
        fatal("cannot queue the message");
    printf("queued %s\n", dr->env.id);
}

static void start(struct drive *dr);

static void done(void *arg, struct dlv_result *res)
{
    struct drive *dr = arg;
    for (size_t i = 0; i < dr->env.nrcpts; i++)
        printf("result %s %zu %s %d %s [%s] %s%s\n", dr->env.id, i, outcome_names[res[i].outcome],
               res[i].code, res[i].ecode[0] ? res[i].ecode : "-", res[i].host, res[i].text,
               res[i].relayed_without_dsn ? " (no DSN)" : "");
    printf("cached %zu\n", conn_cache_count(dr->de.cache));
    for (size_t i = 0; i < nmem_hints; i++)
        printf("hint %s failures=%u wait=%ld %s\n", mem_hints[i].key, mem_hints[i].rec.failures,
               (long)(mem_hints[i].rec.next_try - time(NULL)), mem_hints[i].rec.last_error);
    if (--dr->remaining > 0) {
        start(dr);
    } else {
        conn_cache_free(dr->de.cache); /* QUITs what is cached; the loop then runs dry */
        dr->de.cache = NULL;
    }
}

static void start(struct drive *dr)
{
    bool attempt[64];
    queue_message(dr);
    for (size_t i = 0; i < dr->env.nrcpts; i++)
        attempt[i] = true;
    delivery_start(&dr->de, &dr->env, attempt, dr->ignore_retry, NULL, done, dr);
}

/* make_body - headers and a body of about n bytes, with lines that need dot-stuffing */
static char *make_body(size_t n, size_t *len)
{
    struct sbuf b;
    sbuf_init(&b);
    sbuf_addstr(&b, "Received: from test by dlv_drive\r\nSubject: test\r\n\r\n");
    for (size_t i = 0; b.len < n; i++)
        sbuf_printf(&b, "%sline %zu of the body\r\n", i % 5 == 0 ? "." : "", i);
    *len = b.len;
    return sbuf_steal(&b);
}

static void block_host(const char *key)
{
    struct retry_rec r = { time(NULL) - 60, time(NULL) - 60, time(NULL) + 3600, 1, "test block" };
    hints_retry_put(NULL, key, &r);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "sender", 1, NULL, 's' }, { "rcpt", 1, NULL, 'r' }, { "body-size", 1, NULL, 'n' },
        { "messages", 1, NULL, 'm' }, { "no-cache", 0, NULL, 'C' }, { "retry-block", 1, NULL, 'b' },
        { "ignore-retry", 0, NULL, 'i' }, { "8bit", 0, NULL, '8' }, { "smtputf8", 0, NULL, 'u' },
        { "dsn", 0, NULL, 'd' }, { NULL, 0, NULL, 0 },
    };
    struct drive dr;
    const char *conf_path = NULL;
    size_t body_size = 2000;
    bool cache = true;
    int ch;
    memset(&dr, 0, sizeof(dr));
    envelope_init(&dr.env);
    envelope_set(&dr.env.sender, "sender@origin.test");
    dr.remaining = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': conf_path = optarg; break;
        case 's': envelope_set(&dr.env.sender, optarg); break;
        case 'r': envelope_add_rcpt(&dr.env, optarg, dr.env.ret ? DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE : 0,
                                    dr.env.ret ? "rfc822;x+40y.test" : NULL); break;
        case 'n': body_size = (size_t)atol(optarg); break;
        case 'm': dr.remaining = atoi(optarg); break;
        case 'C': cache = false; break;
        case 'b': block_host(optarg); break;
        case 'i': dr.ignore_retry = true; break;
        case '8': dr.env.body = BODY_8BITMIME; break;
        case 'u': dr.env.smtputf8 = true; break;
        case 'd': dr.env.ret = DSN_RET_HDRS; envelope_set(&dr.env.envid, "env+2Bid"); break;
        default: return 64;
        }
    }
    struct sbuf errs;
    sbuf_init(&errs);
    struct conf *c = conf_path ? conf_load(conf_path, &errs) : NULL;
    if (c == NULL) {
        fprintf(stderr, "%s", errs.s ? errs.s : "no configuration\n");
        return 1;
    }
    char err[256];
    if (!spool_init_dirs(c->spool_directory, err, sizeof(err)) || !log_open(c->log_directory))
        fatalx("spool/log: %s", err);
    char *body = make_body(body_size, &dr.body_len);
    dr.body = body;
    dr.env.size = dr.body_len;
    envelope_set(&dr.env.protocol, "esmtp");
    dr.de.base = event_base_new();
    dr.de.conf = c;
    dr.de.dns = dns_new(dr.de.base, c->dns_servers, c->dnssec_trust_anchor);
    dr.de.client_tls = tls_client_ctx(c->tls_outbound_ca, err, sizeof(err));
    dr.de.cache = cache ? conn_cache_new(dr.de.base, 2, 8) : NULL;
    dr.de.hints = (struct hints *)mem_hints; /* only the in-memory stubs above look at it */
    dr.de.tlsp = tlsp_new(dr.de.base, c, dr.de.dns, NULL);
    start(&dr);
    event_base_dispatch(dr.de.base);
    printf("exit\n");
    tlsp_free(dr.de.tlsp);
    dns_free(dr.de.dns);
    SSL_CTX_free(dr.de.client_tls);
    event_base_free(dr.de.base);
    envelope_free(&dr.env);
    free(body);
    conf_free(c);
    return 0;
}
