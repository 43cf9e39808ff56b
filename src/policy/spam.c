/* spam.c - one message's content scan with rspamd's HTTP protocol: a POST to /checkv2 opened
 * when the data phase starts, the message streamed to it as it arrives (chunked transfer
 * encoding, so its size need not be known), the verdict awaited once the data has ended.
 * Memory stays bounded: at most SPAM_BUF_HIGH bytes wait for the scanner, and past that the
 * session stops reading from its client (spam_scan_behind) until the scanner catches up.  A
 * scanner that is down, stops reading for tmo, or gives no verdict within tmo of the end of
 * data fails the scan: the condition defers (or, with /defer_ok, is false). */
#include "spam_int.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"

#define SPAM_BUF_HIGH (256u * 1024)  /* waiting bytes past which the client is paused */
#define SPAM_BUF_LOW (64u * 1024)    /* ... and under which it is resumed */
#define SPAM_REPLY_MAX (1u << 20)    /* longest reply accepted */
#define SPAM_HDR_MAX 600             /* longest request header line */

enum scan_state { SCAN_SENDING, SCAN_ENDED, SCAN_DONE };

struct spam_scan {
    struct spam_client *c;
    CURL *easy;                   /* NULL once the transfer is over */
    struct curl_slist *headers;
    enum scan_state state;
    bool upload_paused;           /* the read callback said PAUSE: resume when data comes */
    bool client_paused;           /* the session waits for the buffer to drain */
    struct evbuffer *buf;         /* message bytes not yet taken by libcurl */
    struct sbuf reply;
    struct event *stall;          /* the scanner stopped reading while the client waits */
    struct event *deadline;       /* the verdict is due tmo after the end of data */
    struct event *notify;         /* runs callbacks from the loop */
    struct spam_outcome out;
    struct timespec ended_at;
    void (*drained)(void *arg);
    void *drained_arg;
    spam_cb cb;
    void *cb_arg;
};

/* clean - header text: printable ASCII only, bounded */
static void clean(char *out, size_t sz, const char *s)
{
    size_t n = 0;
    for (; s && *s && n + 1 < sz; s++)
        out[n++] = (*s > 32 && *s < 127) ? *s : '?';
    out[n] = '\0';
}

/* add_header - "Name: value" (or "Name: <value>" for addresses) with the value cleaned;
 * nothing for an empty value */
static void add_header(struct spam_scan *s, const char *name, const char *value, bool angle)
{
    char v[400], line[SPAM_HDR_MAX];
    if (value == NULL || value[0] == '\0')
        return;
    clean(v, sizeof(v), value);
    str_fmt(line, sizeof(line), angle ? "%s: <%s>" : "%s: %s", name, v);
    s->headers = curl_slist_append(s->headers, line);
}

/* request_headers - what rspamd is told about the transaction (its protocol's headers) */
static void request_headers(struct spam_scan *s, const struct spam_meta *m)
{
    s->headers = curl_slist_append(s->headers, "Transfer-Encoding: chunked");
    s->headers = curl_slist_append(s->headers, "Expect:");   /* no 100-continue round trip */
    add_header(s, "IP", m->ip, false);
    add_header(s, "Helo", m->helo, false);
    add_header(s, "Hostname", m->host_name, false);
    add_header(s, "Queue-Id", m->queue_id, false);
    add_header(s, "MTA-Name", m->mta_name, false);
    if (m->sender != NULL && m->sender[0] == '\0')
        s->headers = curl_slist_append(s->headers, "From: <>");
    else
        add_header(s, "From", m->sender, true);
    for (size_t i = 0; i < m->nrcpts && i < SPAM_RCPTS_MAX; i++)
        add_header(s, "Rcpt", m->rcpts[i], true);
}

/* finish - the outcome is known: stop the timers, tell a waiting caller from the loop */
static void finish(struct spam_scan *s)
{
    s->state = SCAN_DONE;
    evtimer_del(s->stall);
    evtimer_del(s->deadline);
    evbuffer_drain(s->buf, evbuffer_get_length(s->buf));
    if (s->cb != NULL || s->client_paused)
        event_active(s->notify, 0, 0);
}

/* stop_transfer - take the easy handle off the multi handle */
static void stop_transfer(struct spam_scan *s)
{
    if (s->easy == NULL)
        return;
    curl_multi_remove_handle(s->c->multi, s->easy);
    curl_easy_cleanup(s->easy);
    s->easy = NULL;
}

/* fail - the scan cannot give a verdict */
static void fail(struct spam_scan *s, bool timed_out, const char *why)
{
    if (s->state == SCAN_DONE)
        return;
    stop_transfer(s);
    s->out.ok = false;
    s->out.timed_out = timed_out;
    str_copy(s->out.why, why, sizeof(s->out.why));
    finish(s);
}

/* elapsed - seconds since the end of data */
static double elapsed(const struct spam_scan *s)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - s->ended_at.tv_sec) + (now.tv_nsec - s->ended_at.tv_nsec) / 1e9;
}

void spam_scan_transfer_done(struct spam_scan *s, CURLcode rc)
{
    long status = 0;
    char why[200];
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        str_fmt(why, sizeof(why), "%s", curl_easy_strerror(rc));
    } else if (status != 200) {
        str_fmt(why, sizeof(why), "HTTP status %ld", status);
    } else if (s->state != SCAN_ENDED) {
        str_fmt(why, sizeof(why), "verdict before the end of the message");
    } else if (spam_reply_parse(s->reply.s ? s->reply.s : "", s->reply.len, &s->out.v, why,
                                sizeof(why))) {
        stop_transfer(s);
        s->out.ok = true;
        s->out.seconds = elapsed(s);
        finish(s);
        return;
    }
    fail(s, false, why);
}

/* read_body - CURLOPT_READFUNCTION: the next bytes of the message, PAUSE while none are
 * waiting, 0 once the message has ended */
static size_t read_body(char *dst, size_t size, size_t nitems, void *arg)
{
    struct spam_scan *s = arg;
    size_t n = evbuffer_remove(s->buf, dst, size * nitems);
    if (n > 0) {
        if (s->client_paused && evbuffer_get_length(s->buf) < SPAM_BUF_LOW)
            event_active(s->notify, 0, 0);
        return n;
    }
    if (s->state == SCAN_ENDED)
        return 0;
    s->upload_paused = true;
    return CURL_READFUNC_PAUSE;
}

/* write_reply - CURLOPT_WRITEFUNCTION: collect the (bounded) reply */
static size_t write_reply(char *p, size_t size, size_t nitems, void *arg)
{
    struct spam_scan *s = arg;
    size_t n = size * nitems;
    if (s->reply.len + n > SPAM_REPLY_MAX)
        return 0;                        /* too long: the transfer fails */
    sbuf_add(&s->reply, p, n);
    return n;
}

/* notify_cb - from the loop: resume a paused session, or report the outcome */
static void notify_cb(evutil_socket_t fd, short what, void *arg)
{
    struct spam_scan *s = arg;
    (void)fd;
    (void)what;
    if (s->client_paused && (s->state == SCAN_DONE || evbuffer_get_length(s->buf) < SPAM_BUF_LOW)) {
        s->client_paused = false;
        evtimer_del(s->stall);
        s->drained(s->drained_arg);
    }
    if (s->state == SCAN_DONE && s->cb != NULL) {
        spam_cb cb = s->cb;
        s->cb = NULL;
        cb(s->cb_arg, &s->out);
    }
}

static void stalled(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fail(arg, true, "the scanner stopped reading the message");
}

static void overdue(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fail(arg, true, "no verdict in time (spamd_address tmo)");
}

/* easy_setup - the POST and its callbacks; false if libcurl refuses an option */
static bool easy_setup(struct spam_scan *s)
{
    CURL *e = s->easy;
    long tmo_ms = (long)s->c->tmo * 1000;
    return curl_easy_setopt(e, CURLOPT_URL, s->c->url) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_PROXY, "") == CURLE_OK &&   /* never an environment proxy */
           curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http") == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_POST, 1L) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_READFUNCTION, read_body) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_READDATA, s) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_reply) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_WRITEDATA, s) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, tmo_ms) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_PRIVATE, s) == CURLE_OK;
}

struct spam_scan *spam_scan_start(struct spam_client *c, const struct spam_meta *m,
                                  void (*drained)(void *arg), void *arg)
{
    struct spam_scan *s = xcalloc(1, sizeof(*s));
    s->c = c;
    s->drained = drained;
    s->drained_arg = arg;
    s->buf = evbuffer_new();
    sbuf_init(&s->reply);
    s->stall = evtimer_new(c->base, stalled, s);
    s->deadline = evtimer_new(c->base, overdue, s);
    s->notify = event_new(c->base, -1, 0, notify_cb, s);
    if (s->buf == NULL || s->stall == NULL || s->deadline == NULL || s->notify == NULL)
        fatalx("spam: cannot allocate a scan");
    request_headers(s, m);
    s->easy = curl_easy_init();
    if (s->easy == NULL || !easy_setup(s) || curl_multi_add_handle(c->multi, s->easy) != CURLM_OK) {
        fail(s, false, "libcurl refused the request");
        return s;
    }
    spam_client_kick(c);
    return s;
}

void spam_scan_feed(struct spam_scan *s, const char *p, size_t n)
{
    if (s->state != SCAN_SENDING || n == 0)
        return;                          /* failed already: the bytes are not kept */
    evbuffer_add(s->buf, p, n);
    if (s->upload_paused) {
        s->upload_paused = false;
        curl_easy_pause(s->easy, CURLPAUSE_CONT);
    }
}

bool spam_scan_behind(struct spam_scan *s)
{
    if (s->state != SCAN_SENDING || evbuffer_get_length(s->buf) < SPAM_BUF_HIGH)
        return false;
    if (!s->client_paused) {
        struct timeval tv = { (time_t)s->c->tmo, 0 };
        evtimer_add(s->stall, &tv);
    }
    s->client_paused = true;
    return true;
}

void spam_scan_end(struct spam_scan *s)
{
    if (s->state != SCAN_SENDING)
        return;
    s->state = SCAN_ENDED;
    clock_gettime(CLOCK_MONOTONIC, &s->ended_at);
    struct timeval tv = { (time_t)s->c->tmo, 0 };
    evtimer_add(s->deadline, &tv);
    if (s->upload_paused) {              /* the end of the chunks goes out now */
        s->upload_paused = false;
        curl_easy_pause(s->easy, CURLPAUSE_CONT);
    }
}

void spam_scan_result(struct spam_scan *s, spam_cb cb, void *arg)
{
    if (s->state == SCAN_SENDING)
        spam_scan_end(s);
    s->cb = cb;
    s->cb_arg = arg;
    if (s->state == SCAN_DONE)
        event_active(s->notify, 0, 0);
}

void spam_scan_cancel_result(struct spam_scan *s)
{
    s->cb = NULL;
}

void spam_scan_free(struct spam_scan *s)
{
    if (s == NULL)
        return;
    stop_transfer(s);
    curl_slist_free_all(s->headers);
    evbuffer_free(s->buf);
    sbuf_free(&s->reply);
    event_free(s->stall);
    event_free(s->deadline);
    event_free(s->notify);
    free(s);
}
