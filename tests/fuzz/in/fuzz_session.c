/* fuzz_session.c - libFuzzer target for the whole inbound SMTP session: a real smtp_session
 * (smtp_session_start on one end of a socketpair, in-process libevent loop, a configuration
 * loaded from a file with ACLs, relaying allowed for the client, a spool and logs in a
 * scratch directory) fed the input as the client's byte stream.
 *
 * Input: byte 0 = flags (below), byte 1 seeds the chunk sizes (its top bit: implicit TLS, as
 * on a "/tls" listener), the rest is the client stream,
 * written in pseudo-random chunks while the replies are drained.  After the last chunk the
 * client half-closes (or closes) and the session must end within a bounded number of loop
 * turns.  Properties checked on every input:
 *  - no crash, leak (LeakSanitizer), hang (bounded loop) or event left registered;
 *  - every reply line is "DDD[ -]printable text CRLF", at most 512 bytes, code 2xx..5xx;
 *  - every message given "250 ... id=ID" is in input/ exactly once (unless nothing was to be
 *    spooled: --no-deliver mode or an ACL discard, which the main log says), reads back as a
 *    sound spool file, and nothing is in input/ that was not acknowledged;
 *  - tmp/ is empty once the session has ended (no partial message is ever left behind);
 *  - every log line is printable (control characters never reach the logs) and valid UTF-8. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <dirent.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "conf/conf.h"
#include "core/core.h"
#include "in/in.h"
#include "in/smtp_in.h"
#include "smtp/smtp.h"
#include "store/store.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
    F_LINES = 1,        /* write at most one line at a time and let the session answer it */
    F_CONF_B = 2,       /* the second configuration (bare_newline = space, no ACLs, no TLS) */
    F_BANNER = 4,       /* wait for the banner before sending (else: an early talker) */
    F_NO_DELIVER = 8,   /* `tandem session --no-deliver`: nothing is spooled */
    F_IPV6 = 16,        /* the client is ::1 (not in the relay host list) */
    F_INTERACTIVE = 32, /* `tandem session`: no synchronization checks */
    F_CLOSE = 64,       /* at the end, close the socket instead of half-closing it */
    F_LAZY = 128,       /* small socket buffers, replies read only now and then: the
                         * session's output backs up and it stops taking input */
};

#define MAX_REPLY_LINE 512
#define QUIET_TURNS 4       /* loop turns without output that count as "answered" */

static char dir[64];
static char spooldir[128], logdir[128];
static struct conf *confs[2];
static struct ssl_ctx_st *tls_ctx;
static struct event_base *base;

/* ---- set-up ---- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
        abort();
}

/* make_cert - a throw-away self-signed certificate, so that STARTTLS is offered */
static void make_cert(const char *cert, const char *key)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (pk == NULL || x == NULL)
        abort();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
    X509_set_pubkey(x, pk);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz.test", -1, -1, 0);
    X509_set_issuer_name(x, n);
    if (X509_sign(x, pk, EVP_sha256()) == 0)
        abort();
    FILE *f = fopen(cert, "w"), *g = fopen(key, "w");
    if (f == NULL || g == NULL || !PEM_write_X509(f, x) ||
        !PEM_write_PrivateKey(g, pk, NULL, NULL, 0, NULL, NULL))
        abort();
    fclose(f);
    fclose(g);
    X509_free(x);
    EVP_PKEY_free(pk);
}

static const char conf_a[] =
    "hostname = fuzz.test\n"
    "listen = 127.0.0.1:1\n"
    "spool_directory = %1$s/spool\n"
    "log_directory = %1$s/log\n"
    "message_size_limit = 16K\n"
    "recipients_max = 4\n"
    "smtp_max_errors = 8\n"
    "received_headers_max = 3\n"
    "smtp_line_length_max = 512\n"
    "tls_certificate = %1$s/cert.pem\n"
    "tls_privatekey = %1$s/key.pem\n"
    "domainlist local_domains = example.test : *.example.test\n"
    "hostlist trusted = 192.0.2.0/24\n"
    "acl_smtp_connect = c_connect\n"
    "acl_smtp_helo = c_helo\n"
    "acl_smtp_mail = c_mail\n"
    "acl_smtp_rcpt = c_rcpt\n"
    "acl_smtp_predata = c_predata\n"
    "acl_smtp_data = c_data\n"
    "begin routes\n"
    "example.test  [127.0.0.2]:2599\n"
    "*  [127.0.0.2]:2599\n"
    "begin acl\n"
    "c_connect:\n"
    "  accept\n"
    "c_helo:\n"
    "  warn    logwrite = helo $sender_helo_name from $sender_host_address\n"
    "  accept\n"
    "c_mail:\n"
    "  deny    senders = deny@x.test\n"
    "          message = 550 5.7.1 no $sender_address\n"
    "  drop    senders = drop@x.test\n"
    "  defer   senders = defer@x.test\n"
    "  warn    log_message = sender <$sender_address>\n"
    "          add_header = X-Sender: $sender_address\n"
    "  accept\n"
    "c_rcpt:\n"
    "  deny    local_parts = deny\n"
    "          message = refused $local_part at $domain\n"
    "          log_message = refused <$local_part@$domain> from <$sender_address>\n"
    "  discard local_parts = discard\n"
    "  defer   local_parts = defer\n"
    "  drop    local_parts = drop\n"
    "  require verify = recipient\n"
    "  accept  hosts = +trusted\n"
    "  accept  domains = +local_domains\n"
    "          add_header = X-Rcpt: $local_part\n"
    "  deny    message = relay not permitted\n"
    "c_predata:\n"
    "  deny    senders = nodata@x.test\n"
    "  accept\n"
    "c_data:\n"
    "  deny    senders = baddata@x.test\n"
    "          message = 550 5.6.0 no\n"
    "  discard senders = discard@x.test\n"
    "  warn    add_header = X-Checked: $message_id $sender_address\n"
    "  accept\n";

static const char conf_b[] =
    "hostname = fuzz.test\n"
    "listen = 127.0.0.1:1\n"
    "spool_directory = %1$s/spool\n"
    "log_directory = %1$s/log\n"
    "bare_newline = space\n"
    "message_size_limit = 1M\n"
    "smtp_max_errors = 100\n"
    "pipelining_advertise_hosts = !192.0.2.0/24\n"
    "chunking_advertise_hosts = ::1\n"
    "dsn_advertise_hosts =\n"
    "acl_smtp_rcpt = r\n"
    "begin acl\n"
    "r:\n"
    "  accept\n";

static struct conf *load(const char *fmt, const char *name)
{
    char path[256], text[8192];
    struct sbuf errs;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(text, sizeof(text), fmt, dir);
    write_file(path, text);
    sbuf_init(&errs);
    struct conf *c = conf_load(path, &errs);
    if (c == NULL) {
        fprintf(stderr, "fuzz_session: %s", errs.s ? errs.s : "config error\n");
        abort();
    }
    sbuf_free(&errs);
    return c;
}

/* remove_tree - the scratch directory at exit (one level of subdirectories, two in spool) */
static void remove_tree(const char *path, int depth)
{
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *de;
        char sub[512];
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
            if (depth > 0 && de->d_type == DT_DIR)
                remove_tree(sub, depth - 1);
            else
                unlink(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

static void cleanup(void)
{
    conf_free(confs[0]);
    conf_free(confs[1]);
    SSL_CTX_free(tls_ctx);
    event_base_free(base);
    remove_tree(dir, 2);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256], cert[128], key[128];
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);       /* as in the daemon: a closed client is EPIPE, not death */
    str_copy(dir, access("/dev/shm", W_OK) == 0 ? "/dev/shm/fuzz-session-XXXXXX"
                                                 : "/tmp/fuzz-session-XXXXXX", sizeof(dir));
    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(spooldir, sizeof(spooldir), "%s/spool", dir);
    snprintf(logdir, sizeof(logdir), "%s/log", dir);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    make_cert(cert, key);
    if (mkdir(logdir, 0700) != 0 || !spool_init_dirs(spooldir, err, sizeof(err)) ||
        !log_open(logdir))
        abort();
    confs[0] = load(conf_a, "a.conf");
    confs[1] = load(conf_b, "b.conf");
    tls_ctx = tls_server_ctx(confs[0]->tls_certificate, confs[0]->tls_privatekey, err, sizeof(err));
    base = event_base_new();
    if (tls_ctx == NULL || base == NULL)
        abort();
    atexit(cleanup);
    return 0;
}

/* ---- the client side ---- */

struct client {
    int fd;
    uint32_t seed;
    unsigned flags;
    struct sbuf replies;     /* everything the session sent */
    size_t checked;          /* replies[0..checked) are whole lines already checked */
    bool eof;
};

/* next_chunk - a pseudo-random write size: mostly small, sometimes large */
static size_t next_chunk(struct client *c)
{
    c->seed ^= c->seed << 13;
    c->seed ^= c->seed >> 17;
    c->seed ^= c->seed << 5;
    return 1 + (c->seed & 0x100 ? c->seed % 2048 : c->seed % 16);
}

/* check_lines - complete reply lines are well-formed */
static void check_lines(struct client *c)
{
    char *s = c->replies.s;
    if (s == NULL)
        return;
    for (;;) {
        char *nl = memchr(s + c->checked, '\n', c->replies.len - c->checked);
        if (nl == NULL)
            break;
        char *line = s + c->checked;
        size_t len = (size_t)(nl - line) + 1;
        if (len < 6 || len > MAX_REPLY_LINE || nl[-1] != '\r' || line[0] < '2' || line[0] > '5' ||
            line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9' ||
            (line[3] != ' ' && line[3] != '-')) {
            fprintf(stderr, "bad reply line: %.*s\n", (int)len, line);
            abort();
        }
        for (size_t i = 4; i + 2 < len; i++)
            if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f) {
                fprintf(stderr, "unprintable reply: %.*s\n", (int)len, line);
                abort();
            }
        c->checked += len;
    }
    if (c->replies.len - c->checked > MAX_REPLY_LINE)
        abort();
}

/* drain - read what the session sent; returns bytes read */
static size_t drain(struct client *c)
{
    char buf[8192];
    size_t total = 0;
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            sbuf_add(&c->replies, buf, (size_t)n);
            total += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            c->eof = true;
        break;
    }
    check_lines(c);
    return total;
}

/* turn - one non-blocking turn of the loop, then read replies (unless lazy) */
static size_t turn(struct client *c, unsigned i)
{
    event_base_loop(base, EVLOOP_NONBLOCK);
    if ((c->flags & F_LAZY) && i % 8 != 0)
        return 0;
    return drain(c);
}

/* settle - run the loop until the session has nothing more to say for now */
static void settle(struct client *c, unsigned *turns, unsigned max)
{
    for (unsigned quiet = 0; quiet < QUIET_TURNS && *turns < max && !c->eof; (*turns)++)
        quiet = turn(c, *turns) ? 0 : quiet + 1;
}

/* ---- checks after the session ---- */

/* discarded - the main log says the message was accepted and done with at once (an ACL
 * discarded it: "ID => blackhole ...", then "ID Completed"); without a scheduler here,
 * nothing else completes a message */
static bool discarded(const char *log, const char *id)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "%s Completed\n", id);
    return log && strstr(log, pat) != NULL;
}

/* read_all - a file's content (NUL-terminated) or NULL */
static char *read_all(const char *path, size_t *len)
{
    struct sbuf b;
    char buf[8192];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *len = 0;
    if (fd < 0)
        return NULL;
    sbuf_init(&b);
    for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;)
        sbuf_add(&b, buf, (size_t)n);
    close(fd);
    *len = b.len;
    return b.s ? b.s : xstrdup("");
}

/* check_logs - printable lines only, valid UTF-8; then empty the logs for the next input */
static char *check_logs(void)
{
    static const char *const names[] = { "mainlog", "rejectlog", "paniclog" };
    char path[256], *main_text = NULL;
    for (size_t i = 0; i < ARRAY_LEN(names); i++) {
        size_t len;
        snprintf(path, sizeof(path), "%s/%s", logdir, names[i]);
        char *t = read_all(path, &len);
        if (t == NULL)
            continue;
        for (size_t j = 0; j < len; j++)
            if (((unsigned char)t[j] < 0x20 && t[j] != '\n') || t[j] == 0x7f) {
                fprintf(stderr, "control character 0x%02x in %s: %s\n", (unsigned char)t[j],
                        names[i], t);
                abort();
            }
        if (!utf8_valid(t, len)) {
            fprintf(stderr, "invalid UTF-8 in %s: %s\n", names[i], t);
            abort();
        }
        if (i == 2 && len > 0) {
            fprintf(stderr, "paniclog: %s\n", t);
            abort();
        }
        if (truncate(path, 0) != 0)
            abort();
        if (i == 0)
            main_text = t;
        else
            free(t);
    }
    return main_text;
}

/* check_message - a committed message reads back completely */
static void check_message(const char *id)
{
    struct envelope env;
    char buf[4096];
    if (spool_read_envelope(spooldir, id, &env) != 0) {
        fprintf(stderr, "%s: unreadable: %s\n", id, strerror(errno));
        abort();
    }
    struct spool_reader *r = spool_open_content(spooldir, id);
    if (r == NULL)
        abort();
    uint64_t total = 0;
    for (long n; (n = spool_read_content(r, buf, sizeof(buf))) != 0; total += (uint64_t)n)
        if (n < 0)
            abort();
    spool_close_content(r);
    if (total < env.size || env.nrcpts == 0)   /* content, after any data-ACL headers */
        abort();
    envelope_free(&env);
}

/* check_spool - acknowledged = stored (exactly once), nothing else stored, tmp/ empty */
static void check_spool(struct client *c, const char *mainlog)
{
    char **ids;
    size_t n = spool_list(spooldir, &ids), acked = 0;
    for (const char *p = c->replies.s; p && (p = strstr(p, "250 2.0.0 OK id=")) != NULL; p += 16) {
        char id[MSGID_LEN + 1];
        str_copy(id, p + 16, sizeof(id));
        size_t found = 0;
        for (size_t i = 0; i < n; i++)
            found += strcmp(ids[i], id) == 0;
        bool stored_none = (c->flags & F_NO_DELIVER) || discarded(mainlog, id);
        if (found != (stored_none ? 0u : 1u)) {
            fprintf(stderr, "%s acknowledged, found %zu times in input/\n", id, found);
            abort();
        }
        acked += found;
    }
    for (size_t i = 0; i < n; i++)
        check_message(ids[i]);
    /* After a close, 250s sent to the closed socket were never read: those messages are
     * stored (the client will send them again), so only "acknowledged => stored" holds. */
    if (acked != n && !((c->flags & F_CLOSE) && acked < n)) {
        fprintf(stderr, "%zu messages in input/, %zu acknowledged\n", n, acked);
        abort();
    }
    for (size_t i = 0; i < n; i++)
        spool_remove(spooldir, ids[i]);
    spool_list_free(ids, n);
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s/tmp", spooldir);
    DIR *d = opendir(tmp);
    for (struct dirent *de; d && (de = readdir(d)) != NULL;)
        if (de->d_name[0] != '.') {
            fprintf(stderr, "left in tmp/: %s\n", de->d_name);
            abort();
        }
    if (d)
        closedir(d);
}

/* ---- one input ---- */

static void peer_addr(bool v6, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (v6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_loopback;
        in6->sin6_port = htons(40000);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        inet_pton(AF_INET, "192.0.2.1", &in->sin_addr);
        in->sin_port = htons(40000);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct client c = { .flags = data[0], .seed = 0x9e3779b9u ^ ((uint32_t)data[1] << 8 | data[1]) };
    const char *in = (const char *)data + 2;
    size_t len = size - 2, pos = 0;
    int sv[2];
    struct sockaddr_storage ss;
    struct server srv;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    c.fd = sv[1];
    fd_nonblock(c.fd);
    if (c.flags & F_LAZY) {
        int small = 4096;
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
        setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    }
    sbuf_init(&c.replies);
    memset(&srv, 0, sizeof(srv));
    srv.base = base;
    srv.conf = confs[(c.flags & F_CONF_B) ? 1 : 0];
    srv.tls_ctx = (c.flags & F_CONF_B) ? NULL : tls_ctx;
    srv.sched_fd = -1;
    srv.interactive = c.flags & F_INTERACTIVE;
    srv.no_deliver = c.flags & F_NO_DELIVER;
    LIST_INIT(&srv.sessions);
    peer_addr(c.flags & F_IPV6, &ss);
    /* The seed byte's top bit: implicit TLS (a "/tls" listener), with the TLS configuration. */
    smtp_session_start(&srv, sv[0], (struct sockaddr *)&ss, (data[1] & 0x80) && srv.tls_ctx);

    unsigned turns = 0, max = 64 * (unsigned)len + 4096;
    if (c.flags & F_BANNER)
        while (c.replies.len == 0 && !c.eof && turns < max)
            turn(&c, turns++);
    while (pos < len && !c.eof && srv.nsessions > 0 && turns < max) {
        size_t n = next_chunk(&c);
        if (n > len - pos)
            n = len - pos;
        if (c.flags & F_LINES) {
            const char *nl = memchr(in + pos, '\n', n);
            if (nl)
                n = (size_t)(nl - (in + pos)) + 1;
        }
        ssize_t w = send(c.fd, in + pos, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0)
            pos += (size_t)w;
        else if (w < 0 && errno != EAGAIN)
            break;                          /* the session closed */
        if (c.flags & F_LINES)
            settle(&c, &turns, max);
        else
            turn(&c, turns++);
    }
    if (c.flags & F_CLOSE) {
        close(c.fd);
        c.fd = -1;
    } else {
        shutdown(c.fd, SHUT_WR);
    }
    /* The session must now end by itself, in a bounded number of turns. */
    unsigned end = turns + 4096;
    while (srv.nsessions > 0 && turns < end) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        if (c.fd >= 0)
            drain(&c);
        turns++;
    }
    if (srv.nsessions > 0) {
        fprintf(stderr, "session still open after the client went away (%u turns)\n", turns);
        abort();
    }
    if (c.fd >= 0) {
        drain(&c);
        close(c.fd);
    }
    if (event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE) != 0) {
        fprintf(stderr, "events left registered after the session ended\n");
        abort();
    }
    char *mainlog = check_logs();
    if (getenv("FUZZ_SESSION_DEBUG"))   /* replies and main log of each input, for seeds */
        fprintf(stderr, "---- flags 0x%02x\n%s---- mainlog\n%s", c.flags,
                c.replies.s ? c.replies.s : "", mainlog ? mainlog : "");
    check_spool(&c, mainlog);
    free(mainlog);
    sbuf_free(&c.replies);
    return 0;
}
