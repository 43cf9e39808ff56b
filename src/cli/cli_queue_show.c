/* cli_queue_show.c - `tandem queue show ID`: the envelope, the retry state and each
 * recipient's last outcome (from the hints), then the header section; `show --raw ID`: the
 * stored message as it is. */
#include "cli_queue_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/core.h"
#include "queue/queue.h"
#include "smtp/smtp.h"
#include "store/store.h"

#define SHOW_HEADERS_MAX (64 * 1024)

/* when - "2026-11-24 13:00:00" */
static void when(time_t t, char *buf, size_t sz)
{
    struct tm tm;
    localtime_r(&t, &tm);
    if (strftime(buf, sz, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        str_copy(buf, "?", sz);
}

/* safe - peer-supplied text made printable */
static const char *safe(const char *s, char *buf, size_t sz)
{
    if (s == NULL)
        return "-";
    str_sanitize(buf, sz, s, strlen(s));
    return buf;
}

/* notify_words - NOTIFY=... as given */
static void notify_words(unsigned notify, char *buf, size_t sz)
{
    static const struct { unsigned bit; const char *word; } w[] = {
        { DSN_NOTIFY_NEVER, "NEVER" }, { DSN_NOTIFY_SUCCESS, "SUCCESS" },
        { DSN_NOTIFY_FAILURE, "FAILURE" }, { DSN_NOTIFY_DELAY, "DELAY" },
    };
    buf[0] = '\0';
    for (size_t i = 0; i < ARRAY_LEN(w); i++) {
        size_t n = strlen(buf);
        if (notify & w[i].bit)
            str_fmt(buf + n, sz - n, "%s%s", n ? "," : "NOTIFY=", w[i].word);
    }
}

/* print_envelope - who, from where, when, how big */
static void print_envelope(const struct envelope *env)
{
    char t[32], age[16], size[16], b1[1024], b2[512];
    static const char *ret[] = { "", " RET=FULL", " RET=HDRS" };
    static const char *body[] = { "", "7BIT", "8BITMIME", "BINARYMIME" };
    when(env->arrival, t, sizeof(t));
    fmt_age(age, sizeof(age), (long)(time(NULL) - env->arrival));
    fmt_size(size, sizeof(size), env->size);
    printf("Message:    %s\n", env->id);
    printf("Arrived:    %s (%s ago)\n", t, age);
    printf("Size:       %s (%llu bytes)\n", size, (unsigned long long)env->size);
    printf("Sender:     <%s>\n", safe(env->sender, b1, sizeof(b1)));
    if (env->client_ip)
        printf("Client:     [%s]:%d HELO=%s\n", env->client_ip, env->client_port,
               safe(env->helo, b1, sizeof(b1)));
    printf("Protocol:   %s%s%s\n", env->protocol ? env->protocol : "-", env->tls ? " X=" : "",
           env->tls ? safe(env->tls, b2, sizeof(b2)) : "");
    if (env->message_id)
        printf("Message-ID: <%s>\n", safe(env->message_id, b1, sizeof(b1)));
    if (env->envid || env->ret)
        printf("DSN:        %s%s%s\n", env->envid ? "ENVID=" : "",
               env->envid ? safe(env->envid, b1, sizeof(b1)) : "",
               ret[env->ret <= DSN_RET_HDRS ? env->ret : 0]);
    if (env->body || env->smtputf8)
        printf("Body:       %s%s\n", body[env->body <= BODY_BINARYMIME ? env->body : 0],
               env->smtputf8 ? " SMTPUTF8" : "");
}

/* print_note - a recipient's last outcome, if the hints remember one */
static void print_note(struct hints *h, const struct envelope *env, size_t i)
{
    struct rcpt_note n;
    char t[32], b[1024];
    if (!qstate_note_get(h, env->id, i, &n) || n.res.outcome == DLV_NOT_TRIED)
        return;
    when(n.when, t, sizeof(t));
    printf("      %s %s%s%s%s\n", n.timed_out ? "gave up at" : "last attempt", t,
           n.res.host[0] ? " host " : "", n.res.host[0] ? safe(n.res.host, b, sizeof(b)) : "",
           n.res.host[0] ? ":" : "");
    if (n.res.text[0])
        printf("      %s\n", safe(n.res.text, b, sizeof(b)));
}

/* print_rcpts - every recipient with its state, DSN parameters and last outcome */
static void print_rcpts(struct hints *h, const struct envelope *env)
{
    static const char *state[] = { "pending", "delivered", "failed" };
    char a[1024], o[1024], nw[64];
    printf("Recipients:\n");
    for (size_t i = 0; i < env->nrcpts; i++) {
        const struct rcpt *r = &env->rcpts[i];
        notify_words(r->notify, nw, sizeof(nw));
        printf("  <%s> %s%s%s%s%s\n", safe(r->addr, a, sizeof(a)),
               state[r->state <= RCPT_FAILED ? r->state : 0], nw[0] ? " " : "", nw,
               r->orcpt ? " ORCPT=" : "", r->orcpt ? safe(r->orcpt, o, sizeof(o)) : "");
        if (r->state != RCPT_DELIVERED)
            print_note(h, env, i);
    }
}

/* print_retry - how often it was tried and when it is due */
static void print_retry(struct hints *h, const char *id)
{
    struct msg_state st;
    char t1[32], t2[32];
    if (!qstate_get(h, id, &st) || st.attempts == 0)
        return;
    when(st.last_try, t1, sizeof(t1));
    when(st.next_try, t2, sizeof(t2));
    printf("Attempts:   %u, the last at %s; next at %s\n", st.attempts, t1, t2);
}

/* print_headers - the stored header section, line ends made local */
static void print_headers(const char *spooldir, const char *id)
{
    char buf[4096];
    struct sbuf h;
    struct spool_reader *r = spool_open_content(spooldir, id);
    long n;
    if (r == NULL)
        return;
    sbuf_init(&h);
    while (h.len < SHOW_HEADERS_MAX && (n = spool_read_content(r, buf, sizeof(buf))) > 0) {
        sbuf_add(&h, buf, (size_t)n);
        if (memmem(h.s, h.len, "\r\n\r\n", 4))
            break;
    }
    spool_close_content(r);
    char *end = h.s ? memmem(h.s, h.len, "\r\n\r\n", 4) : NULL;
    size_t len = end ? (size_t)(end - h.s) + 2 : h.len;
    printf("\nHeaders:\n");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)h.s[i];
        if (c != '\r')
            putchar(c == '\t' || c == '\n' || (c >= 0x20 && c != 0x7f) ? c : '?');
    }
    sbuf_free(&h);
}

/* print_raw - the content as stored */
static int print_raw(const char *spooldir, const char *id)
{
    char buf[8192];
    long n;
    struct spool_reader *r = spool_open_content(spooldir, id);
    if (r == NULL) {
        fprintf(stderr, "tandem: %s: no such message\n", id);
        return 1;
    }
    while ((n = spool_read_content(r, buf, sizeof(buf))) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    spool_close_content(r);
    return n < 0 ? 1 : 0;
}

int cli_queue_show(const struct cli_ctx *x, const char *id, bool raw)
{
    struct envelope env;
    char err[512];
    const char *dir = x->conf->spool_directory;
    if (!msgid_valid(id)) {
        fprintf(stderr, "tandem: %s: no such message\n", id);
        return 1;
    }
    if (raw)
        return print_raw(dir, id);
    envelope_init(&env);
    if (spool_read_envelope(dir, id, &env) != 0) {
        fprintf(stderr, "tandem: %s: %s\n", id, errno == ENOENT ? "no such message"
                                               : errno == EBADMSG ? "unreadable spool file"
                                               : strerror(errno));
        envelope_free(&env);
        return 1;
    }
    struct hints *h = hints_open(dir, err, sizeof(err));
    print_envelope(&env);
    print_retry(h, id);
    print_rcpts(h, &env);
    print_headers(dir, id);
    hints_close(h);
    envelope_free(&env);
    return 0;
}
