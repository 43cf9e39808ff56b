/* mta_sts_fetch.c - HTTPS GETs of MTA-STS policies without blocking the event loop: libcurl's
 * multi interface, its sockets and timer driven by libevent (curl's "multi_socket" API).
 * libcurl rather than libevent's evhttp client: it is actively maintained with a security
 * process, checks the certificate's name itself, and bounds sizes and times; evhttp would need
 * the TLS name check, redirect refusal and body limits written by hand.
 * Names are never resolved by curl: the caller resolves them with tandem's own resolver
 * (dns_servers) and the addresses are pinned with CURLOPT_RESOLVE. */
#include "tls_policy_int.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"

struct sts_fetcher {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    char *ca_file;
    unsigned timeout;
    int running;
};

struct sts_fetch {
    struct sts_fetcher *f;
    CURL *easy;
    struct curl_slist *resolve;
    struct sbuf body;
    bool too_big;
    sts_fetch_cb cb;
    void *arg;
    char err[CURL_ERROR_SIZE];
    struct event *fail_ev;        /* a fetch that could not start fails from the loop */
};

/* One socket curl watches. */
struct sts_sock {
    struct event *ev;
};

static unsigned curl_users;       /* curl_global_init is done once for the process */

static void check_done(struct sts_fetcher *f);

/* on_socket - curl's socket is ready */
static void on_socket(evutil_socket_t fd, short what, void *arg)
{
    struct sts_fetcher *f = arg;
    int action = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(f->multi, fd, action, &f->running);
    check_done(f);
}

/* on_timer - curl's timeout has come */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sts_fetcher *f = arg;
    (void)fd;
    (void)what;
    curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &f->running);
    check_done(f);
}

/* sock_cb - curl says which events a socket needs (or that it is done with it) */
static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct sts_fetcher *f = userp;
    struct sts_sock *ss = socketp;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (ss) {
            event_free(ss->ev);
            free(ss);
        }
        curl_multi_assign(f->multi, s, NULL);
        return 0;
    }
    short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0) |
                         EV_PERSIST);
    if (ss == NULL) {
        ss = xcalloc(1, sizeof(*ss));
        curl_multi_assign(f->multi, s, ss);
    } else {
        event_free(ss->ev);
    }
    ss->ev = event_new(f->base, s, kind, on_socket, f);
    if (ss->ev == NULL || event_add(ss->ev, NULL) != 0)
        fatalx("mta-sts: cannot watch a socket");
    return 0;
}

/* timer_cb - curl asks to be called after timeout_ms (-1: no timer) */
static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    struct sts_fetcher *f = userp;
    (void)m;
    if (timeout_ms < 0) {
        evtimer_del(f->timer);
        return 0;
    }
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    evtimer_add(f->timer, &tv);
    return 0;
}

struct sts_fetcher *sts_fetcher_new(struct event_base *base, const char *ca_file, unsigned timeout)
{
    if (curl_users++ == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        fatalx("mta-sts: cannot initialise libcurl");
    struct sts_fetcher *f = xcalloc(1, sizeof(*f));
    f->base = base;
    f->ca_file = ca_file ? xstrdup(ca_file) : NULL;
    f->timeout = timeout;
    f->multi = curl_multi_init();
    f->timer = evtimer_new(base, on_timer, f);
    if (f->multi == NULL || f->timer == NULL)
        fatalx("mta-sts: cannot set up HTTPS fetches");
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
    return f;
}

/* fetch_free - release one fetch (its easy handle already removed from the multi) */
static void fetch_free(struct sts_fetch *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->resolve);
    sbuf_free(&x->body);
    if (x->fail_ev)
        event_free(x->fail_ev);
    free(x);
}

void sts_fetcher_free(struct sts_fetcher *f)
{
    if (f == NULL)
        return;
    /* fetches still under way belong to jobs that were freed first (sts_jobs_free) */
    curl_multi_cleanup(f->multi);
    event_free(f->timer);
    free(f->ca_file);
    free(f);
    if (--curl_users == 0)
        curl_global_cleanup();
}

/* content_type_ok - "text/plain", with parameters or not (RFC 8461 3.2) */
static bool content_type_ok(const char *ct)
{
    if (ct == NULL || strncasecmp(ct, "text/plain", 10) != 0)
        return false;
    return ct[10] == '\0' || ct[10] == ';' || ct[10] == ' ' || ct[10] == '\t';
}

/* finish - report one finished transfer and free it */
static void finish(struct sts_fetch *x, CURLcode rc)
{
    long status = 0;
    const char *ct = NULL;
    char err[CURL_ERROR_SIZE + 64];
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct);
    if (x->too_big)
        str_fmt(err, sizeof(err), "the policy is larger than %d bytes", STS_BODY_MAX);
    else if (rc != CURLE_OK)
        str_fmt(err, sizeof(err), "%s", x->err[0] ? x->err : curl_easy_strerror(rc));
    else if (status != 200)
        str_fmt(err, sizeof(err), "HTTP status %ld", status);
    else if (!content_type_ok(ct))
        str_fmt(err, sizeof(err), "content type is not text/plain");
    else
        err[0] = '\0';
    if (err[0])
        x->cb(x->arg, NULL, 0, err);
    else
        x->cb(x->arg, x->body.s ? x->body.s : "", x->body.len, NULL);
    fetch_free(x);
}

/* check_done - hand over every transfer curl has finished */
static void check_done(struct sts_fetcher *f)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(f->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct sts_fetch *x = NULL;
        CURL *easy = m->easy_handle;
        CURLcode rc = m->data.result;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(f->multi, easy);
        finish(x, rc);
    }
}

/* on_body - collect the body, refusing more than STS_BODY_MAX bytes */
static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct sts_fetch *x = arg;
    size_t n = size * nmemb;
    if (x->body.len + n > STS_BODY_MAX) {
        x->too_big = true;
        return 0;
    }
    sbuf_add(&x->body, p, n);
    return n;
}

/* resolve_entry - "host:443:addr,addr" for CURLOPT_RESOLVE (IPv6 in brackets) */
static bool resolve_entry(const char *host, const struct sockaddr_storage *addrs, size_t n,
                          struct sbuf *out)
{
    sbuf_printf(out, "%s:443:", host);
    for (size_t i = 0; i < n; i++) {
        char ip[64];
        const void *a = addrs[i].ss_family == AF_INET6
                            ? (const void *)&((const struct sockaddr_in6 *)&addrs[i])->sin6_addr
                            : (const void *)&((const struct sockaddr_in *)&addrs[i])->sin_addr;
        if (inet_ntop(addrs[i].ss_family, a, ip, sizeof(ip)) == NULL)
            return false;
        sbuf_printf(out, addrs[i].ss_family == AF_INET6 ? "%s[%s]" : "%s%s", i ? "," : "", ip);
    }
    return n > 0;
}

/* easy_setup - one GET: HTTPS only, no redirects or proxies, certificate and name checked */
static bool easy_setup(struct sts_fetch *x, const char *url)
{
    CURL *e = x->easy;
    long t = (long)x->f->timeout;
    bool ok = curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_PROXY, "") == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_RESOLVE, x->resolve) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L) == CURLE_OK &&   /* rare: no pool */
              curl_easy_setopt(e, CURLOPT_TIMEOUT, t) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, t) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_MAXFILESIZE, (long)STS_BODY_MAX) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_USERAGENT, "tandem") == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_WRITEDATA, x) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->err) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_PRIVATE, x) == CURLE_OK;
    if (ok && x->f->ca_file)
        ok = curl_easy_setopt(e, CURLOPT_CAINFO, x->f->ca_file) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_CAPATH, NULL) == CURLE_OK;
    return ok;
}

/* fail_cb - a fetch that could not start reports from the loop */
static void fail_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sts_fetch *x = arg;
    (void)fd;
    (void)what;
    x->cb(x->arg, NULL, 0, x->err[0] ? x->err : "cannot start the HTTPS request");
    fetch_free(x);
}

struct sts_fetch *sts_fetch_start(struct sts_fetcher *f, const char *host, const char *path,
                                  const struct sockaddr_storage *addrs, size_t naddrs,
                                  sts_fetch_cb cb, void *arg)
{
    struct sts_fetch *x = xcalloc(1, sizeof(*x));
    struct sbuf entry, url;
    x->f = f;
    x->cb = cb;
    x->arg = arg;
    sbuf_init(&x->body);
    sbuf_init(&entry);
    sbuf_init(&url);
    sbuf_printf(&url, "https://%s%s", host, path);
    bool ok = resolve_entry(host, addrs, naddrs, &entry) &&
              (x->resolve = curl_slist_append(NULL, entry.s)) != NULL &&
              (x->easy = curl_easy_init()) != NULL && easy_setup(x, url.s) &&
              curl_multi_add_handle(f->multi, x->easy) == CURLM_OK;
    sbuf_free(&entry);
    sbuf_free(&url);
    if (!ok) {
        x->fail_ev = event_new(f->base, -1, 0, fail_cb, x);
        if (x->fail_ev == NULL)
            fatalx("mta-sts: cannot create an event");
        event_active(x->fail_ev, 0, 0);
    }
    return x;
}

void sts_fetch_cancel(struct sts_fetch *x)
{
    if (x == NULL)
        return;
    if (x->easy && x->fail_ev == NULL)
        curl_multi_remove_handle(x->f->multi, x->easy);
    fetch_free(x);
}
