/* spam_client.c - the content scanner's client of one process: libcurl's multi interface
 * driven by the process's libevent loop (socket and timer callbacks), so that scans never
 * block the loop.  Each scan (spam.c) is one easy handle on the multi handle. */
#include "spam_int.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* One socket libcurl watches. */
struct sock_watch {
    struct spam_client *c;
    struct event *ev;
    curl_socket_t fd;
};

/* check_done - hand finished transfers to their scans */
static void check_done(struct spam_client *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct spam_scan *s = NULL;
        CURL *easy = m->easy_handle;
        CURLcode rc = m->data.result;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&s);
        if (s != NULL)
            spam_scan_transfer_done(s, rc);
    }
}

/* on_socket - a watched socket is ready */
static void on_socket(evutil_socket_t fd, short what, void *arg)
{
    struct sock_watch *w = arg;
    struct spam_client *c = w->c;
    int running, flags = (what & EV_READ ? CURL_CSELECT_IN : 0) |
                         (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(c->multi, fd, flags, &running);   /* may free w */
    check_done(c);
}

/* on_timer - libcurl's timeout is due */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct spam_client *c = arg;
    int running;
    (void)fd;
    (void)what;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

/* watch - CURLMOPT_SOCKETFUNCTION: start, change or stop watching a socket */
static int watch(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct spam_client *c = userp;
    struct sock_watch *w = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (w != NULL) {
            event_free(w->ev);
            free(w);
            curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    short kind = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (w == NULL) {
        w = xcalloc(1, sizeof(*w));
        w->c = c;
        w->fd = fd;
        curl_multi_assign(c->multi, fd, w);
    } else {
        event_free(w->ev);
    }
    w->ev = event_new(c->base, fd, kind, on_socket, w);
    if (w->ev == NULL)
        fatalx("spam: event_new failed");
    event_add(w->ev, NULL);
    return 0;
}

/* set_timer - CURLMOPT_TIMERFUNCTION: when libcurl wants to be called back (-1: never) */
static int set_timer(CURLM *multi, long ms, void *userp)
{
    struct spam_client *c = userp;
    (void)multi;
    if (ms < 0) {
        evtimer_del(c->timer);
        return 0;
    }
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    evtimer_add(c->timer, &tv);
    return 0;
}

void spam_client_kick(struct spam_client *c)
{
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

struct spam_client *spam_client_new(struct event_base *base, const struct spamd_addr *addr)
{
    if (addr->host == NULL)
        return NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_panic("spam: libcurl could not be initialised: scans will defer");
        return NULL;
    }
    struct spam_client *c = xcalloc(1, sizeof(*c));
    c->base = base;
    c->tmo = addr->tmo ? addr->tmo : 120;
    str_fmt(c->url, sizeof(c->url), strchr(addr->host, ':') ? "http://[%s]:%u/checkv2"
                                                             : "http://%s:%u/checkv2",
            addr->host, (unsigned)addr->port);
    c->multi = curl_multi_init();
    c->timer = evtimer_new(base, on_timer, c);
    if (c->multi == NULL || c->timer == NULL)
        fatalx("spam: cannot set up libcurl's multi handle");
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, watch);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, set_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    return c;
}

void spam_client_free(struct spam_client *c)
{
    if (c == NULL)
        return;
    curl_multi_cleanup(c->multi);   /* scans were freed first (their sessions are gone) */
    event_free(c->timer);
    free(c);
    curl_global_cleanup();
}
